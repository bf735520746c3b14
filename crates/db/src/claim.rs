//! The one way a background job claims its due rows: one `UPDATE ... WHERE id IN (SELECT
//! ... FOR UPDATE SKIP LOCKED) RETURNING id`, so several instances never work on the same
//! row and a crash only delays a row until its lease passes. Every job (reconciliation,
//! refund reconciliation, webhook re-settlement, the mail outbox) describes its rows with a
//! [`Due`] and calls [`claim_due`] (test `jobs::two_instances_never_claim_the_same_row_and_a_lease_holds`).
//! The hold sweeper is the one job that does not lease: it locks due bookings inside the
//! transaction that expires them (`ticketing_domain::bookings::lifecycle::expire_due`).

use diesel::prelude::*;
use diesel::sql_types::BigInt;

/// Which rows of one table are due, and how claiming one marks it.
#[derive(Debug, Clone, Copy)]
pub struct Due<'a> {
    /// The table whose rows are claimed (its `id` is returned).
    pub table: &'a str,
    /// Its alias in `from` (locked with `FOR UPDATE OF`).
    pub alias: &'a str,
    /// The `FROM` clause, with joins when the condition needs other tables.
    pub from: &'a str,
    /// The SQL condition a due row meets.
    pub condition: &'a str,
    /// The order in which due rows are taken.
    pub order: &'a str,
    /// The `SET` clause that marks a claimed row (its lease).
    pub lease: &'a str,
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The statement [`claim_due`] runs for `due`.
pub fn claim_sql(due: &Due<'_>) -> String {
    format!(
        "UPDATE {table} SET {lease} WHERE id IN (
            SELECT {alias}.id FROM {from}
             WHERE {condition}
             ORDER BY {order}
             LIMIT $1
             FOR UPDATE OF {alias} SKIP LOCKED)
         RETURNING id",
        table = due.table,
        lease = due.lease,
        alias = due.alias,
        from = due.from,
        condition = due.condition,
        order = due.order,
    )
}

/// Claims up to `limit` due rows and returns their ids, in no particular order.
pub fn claim_due(conn: &mut PgConnection, due: &Due<'_>, limit: i64) -> QueryResult<Vec<i64>> {
    Ok(diesel::sql_query(claim_sql(due))
        .bind::<BigInt, _>(limit)
        .load::<Claimed>(conn)?
        .into_iter()
        .map(|r| r.id)
        .collect())
}
