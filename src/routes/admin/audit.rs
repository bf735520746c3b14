//! The audit log (admins only): who changed what and when (UTC), with each entry's
//! before/after snapshots shown as readable lines and a link to the thing that changed,
//! filtered by a choice of the actions present.

use chrono::Utc;
use diesel::prelude::*;
use rocket::{get, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use super::page;
use crate::auth::Admin;
use crate::db::Db;
use crate::error::AppResult;
use crate::schema::{attendees, audit_log, outbox, ticket_types, users};
use std::collections::HashMap;

/// (id, who, action, entity, entity id, before, after, ip, when).
type AuditRow = (
    i64,
    Option<String>,
    String,
    String,
    Option<i64>,
    Option<serde_json::Value>,
    Option<serde_json::Value>,
    String,
    chrono::DateTime<Utc>,
);

#[get("/audit?<action>")]
pub(super) async fn audit_page(
    db: &State<Db>,
    admin: Admin,
    action: Option<&str>,
) -> AppResult<Template> {
    let action = action
        .map(|a| a.chars().take(60).collect::<String>())
        .filter(|a| !a.is_empty());
    let a2 = action.clone();
    let (rows, actions, links) = db
        .run(move |conn| {
            let mut q = audit_log::table
                .left_join(users::table)
                .order(audit_log::id.desc())
                .limit(300)
                .select((
                    audit_log::id,
                    users::email.nullable(),
                    audit_log::action,
                    audit_log::entity,
                    audit_log::entity_id,
                    audit_log::before,
                    audit_log::after,
                    audit_log::ip,
                    audit_log::created_at,
                ))
                .into_boxed();
            if let Some(a) = a2 {
                q = q.filter(audit_log::action.eq(a));
            }
            let rows: Vec<AuditRow> = q.load(conn)?;
            let actions: Vec<String> = audit_log::table
                .select(audit_log::action)
                .distinct()
                .order(audit_log::action)
                .load(conn)?;
            let links = Links::load(conn, &rows)?;
            Ok((rows, actions, links))
        })
        .await?;
    let list: Vec<_> = rows.iter().map(|r| json!({ "id": r.0, "who": r.1, "action": r.2, "entity": r.3, "entity_id": r.4, "link": links.of(&r.3, r.4), "changes": audit_changes(r.5.as_ref(), r.6.as_ref()), "ip": r.7, "at": r.8.format("%Y-%m-%d %H:%M:%S").to_string() })).collect();
    Ok(page(
        "admin/audit",
        &admin.0,
        json!({ "title": "Audit log", "entries": list, "action": action, "actions": actions }),
    ))
}

/// Where each entry's changed thing is shown: a ticket type on its event's page, an
/// attendee or a mail on its booking's.
struct Links {
    ticket_type_events: HashMap<i64, i64>,
    attendee_bookings: HashMap<i64, i64>,
    mail_bookings: HashMap<i64, i64>,
}

impl Links {
    fn load(conn: &mut PgConnection, rows: &[AuditRow]) -> QueryResult<Links> {
        let ids = |entity: &str| -> Vec<i64> {
            rows.iter()
                .filter(|r| r.3 == entity)
                .filter_map(|r| r.4)
                .collect()
        };
        let ticket_type_events = ticket_types::table
            .filter(ticket_types::id.eq_any(ids("ticket_type")))
            .select((ticket_types::id, ticket_types::event_id))
            .load::<(i64, i64)>(conn)?
            .into_iter()
            .collect();
        let attendee_bookings = attendees::table
            .filter(attendees::id.eq_any(ids("attendee")))
            .select((attendees::id, attendees::booking_id))
            .load::<(i64, i64)>(conn)?
            .into_iter()
            .collect();
        let mail_bookings = outbox::table
            .filter(outbox::id.eq_any(ids("outbox")))
            .filter(outbox::booking_id.is_not_null())
            .select((outbox::id, outbox::booking_id.assume_not_null()))
            .load::<(i64, i64)>(conn)?
            .into_iter()
            .collect();
        Ok(Links {
            ticket_type_events,
            attendee_bookings,
            mail_bookings,
        })
    }

    /// The admin page of `entity` `id`, if it has one.
    fn of(&self, entity: &str, id: Option<i64>) -> Option<String> {
        match (entity, id) {
            ("booking", Some(id)) => Some(format!("/admin/bookings/{id}")),
            ("event", Some(id)) => Some(format!("/admin/events/{id}")),
            ("ticket_type", Some(id)) => self
                .ticket_type_events
                .get(&id)
                .map(|e| format!("/admin/events/{e}#tt{id}-name")),
            ("attendee", Some(id)) => self
                .attendee_bookings
                .get(&id)
                .map(|b| format!("/admin/bookings/{b}")),
            ("outbox", Some(id)) => self
                .mail_bookings
                .get(&id)
                .map(|b| format!("/admin/bookings/{b}")),
            ("user", Some(id)) => Some(format!("/admin/users#user-{id}")),
            ("organiser" | "legal_page", _) => Some("/admin/settings".to_string()),
            _ => None,
        }
    }
}

/// An audit entry's before/after snapshots as readable lines: `field: old → new` for what
/// changed, `field: value` for what was set on a new record.
pub fn audit_changes(
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Vec<String> {
    use serde_json::Value;
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    };
    let empty = serde_json::Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| match (b.get(k), a.get(k)) {
            (Some(x), Some(y)) if x == y => None,
            (Some(x), Some(y)) => Some(format!("{k}: {} → {}", show(x), show(y))),
            (None, Some(y)) => Some(format!("{k}: {}", show(y))),
            (Some(x), None) => Some(format!("{k}: {} (removed)", show(x))),
            (None, None) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::audit_changes;
    use serde_json::json;

    #[test]
    fn audit_changes_lists_what_changed() {
        let before = json!({ "visibility": "draft", "capacity": 100, "title": "Gala" });
        let after =
            json!({ "visibility": "public", "capacity": 100, "title": "Gala", "note": null });
        assert_eq!(
            audit_changes(Some(&before), Some(&after)),
            vec!["note: —", "visibility: draft → public"]
        );
        assert_eq!(
            audit_changes(None, Some(&json!({ "amount": "€12.50", "id": 3 }))),
            vec!["amount: €12.50", "id: 3"]
        );
        assert_eq!(
            audit_changes(Some(&json!({ "role": "staff" })), None),
            vec!["role: staff (removed)"]
        );
        assert!(audit_changes(None, None).is_empty());
    }
}
