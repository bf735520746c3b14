//! The mail outbox page: the latest mails with when they were queued (UTC), subject, the
//! booking they are about (or "account mail" for a staff account's invite or reset), state,
//! attempts and last error, filtered by state; and the confirmation page of "Resend" (issue
//! 16: GET asks "Resend <subject> to <address>?", the POST in `bookings` does it).

use diesel::prelude::*;
use rocket::{get, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use super::page;
use crate::auth::Staff;
use crate::db::Db;
use crate::error::AppResult;
use crate::schema::{bookings, outbox};

#[get("/outbox?<state>")]
pub(super) async fn outbox_page(
    db: &State<Db>,
    staff: Staff,
    state: Option<&str>,
) -> AppResult<Template> {
    let state = state
        .filter(|s| ["pending", "sent", "failed"].contains(s))
        .map(str::to_string);
    let s2 = state.clone();
    let rows: Vec<(crate::models::OutboxRow, Option<String>)> = db
        .run(move |conn| {
            let mut q = outbox::table
                .left_join(bookings::table)
                .order(outbox::id.desc())
                .limit(200)
                .select((
                    crate::models::OutboxRow::as_select(),
                    bookings::reference.nullable(),
                ))
                .into_boxed();
            if let Some(s) = s2 {
                q = q.filter(outbox::state.eq(s));
            }
            Ok(q.load(conn)?)
        })
        .await?;
    let list: Vec<_> = rows.iter().map(|(m, reference)| json!({ "id": m.id, "kind": m.kind, "booking_id": m.booking_id, "reference": reference, "state": m.state, "attempts": m.attempts, "error": m.last_error, "to": m.to_email, "subject": m.subject, "created": m.created_at.format("%Y-%m-%d %H:%M").to_string() })).collect();
    Ok(page(
        "admin/outbox",
        &staff,
        json!({ "title": "Mail outbox", "mails": list, "state": state }),
    ))
}

/// "Resend <subject> to <address>?": the step before a booking's mail is queued again.
#[get("/outbox/<id>/resend")]
pub(super) async fn resend_confirm(db: &State<Db>, staff: Staff, id: i64) -> AppResult<Template> {
    let (mail, reference): (crate::models::OutboxRow, String) = db
        .run(move |conn| {
            Ok(outbox::table
                .inner_join(bookings::table)
                .filter(outbox::id.eq(id))
                .select((crate::models::OutboxRow::as_select(), bookings::reference))
                .first(conn)?)
        })
        .await?;
    Ok(page(
        "admin/outbox_resend",
        &staff,
        json!({ "title": "Resend mail", "mail": { "id": mail.id, "kind": mail.kind, "subject": mail.subject, "to": mail.to_email, "state": mail.state, "booking_id": mail.booking_id, "reference": reference } }),
    ))
}
