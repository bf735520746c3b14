//! The audit log: who changed what, with the state before and after, written inside the
//! transaction of the change it records so that an entry exists exactly when the change does.

use diesel::prelude::*;
use serde_json::Value;
use ticketing_db::schema::audit_log;

/// Who made a change: a signed-in staff member (with their IP), or the system itself (an
/// automatic refund, a job), recorded with no user.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub user_id: Option<i64>,
    pub ip: &'a str,
}

impl Actor<'_> {
    /// The site acting on its own (jobs, settlement).
    pub const SYSTEM: Actor<'static> = Actor {
        user_id: None,
        ip: "",
    };
}

/// Writes an audit entry (call inside the transaction of the change it records).
pub fn record(
    conn: &mut PgConnection,
    actor: Actor<'_>,
    action: &str,
    entity: &str,
    entity_id: Option<i64>,
    before: Option<Value>,
    after: Option<Value>,
) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::user_id.eq(actor.user_id),
            audit_log::action.eq(action),
            audit_log::entity.eq(entity),
            audit_log::entity_id.eq(entity_id),
            audit_log::before.eq(before),
            audit_log::after.eq(after),
            audit_log::ip.eq(actor.ip),
        ))
        .execute(conn)?;
    Ok(())
}
