//! The audit log (admins only): who changed what and when, with each entry's before/after
//! snapshots shown as readable lines, filtered by action.

use chrono::Utc;
use diesel::prelude::*;
use rocket::{get, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use super::page;
use crate::auth::Admin;
use crate::db::Db;
use crate::error::AppResult;
use crate::schema::{audit_log, users};

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
    let rows: Vec<AuditRow> = db
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
            Ok(q.load(conn)?)
        })
        .await?;
    let list: Vec<_> = rows.iter().map(|r| json!({ "id": r.0, "who": r.1, "action": r.2, "entity": r.3, "entity_id": r.4, "changes": audit_changes(r.5.as_ref(), r.6.as_ref()), "ip": r.7, "at": r.8.format("%Y-%m-%d %H:%M:%S UTC").to_string() })).collect();
    Ok(page(
        "admin/audit",
        &admin.0,
        json!({ "title": "Audit log", "entries": list, "action": action }),
    ))
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
