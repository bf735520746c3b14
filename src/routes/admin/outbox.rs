//! The mail outbox page: the latest mails with their state, attempts and last error,
//! filtered by state. (Sending a booking's mail again is on the booking page, in `bookings`.)

use diesel::prelude::*;
use rocket::{get, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use super::page;
use crate::auth::Staff;
use crate::db::Db;
use crate::error::AppResult;
use crate::schema::outbox;

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
    let rows: Vec<crate::models::OutboxRow> = db
        .run(move |conn| {
            let mut q = outbox::table
                .order(outbox::id.desc())
                .limit(200)
                .select(crate::models::OutboxRow::as_select())
                .into_boxed();
            if let Some(s) = s2 {
                q = q.filter(outbox::state.eq(s));
            }
            Ok(q.load(conn)?)
        })
        .await?;
    let list: Vec<_> = rows.iter().map(|m| json!({ "id": m.id, "kind": m.kind, "booking_id": m.booking_id, "state": m.state, "attempts": m.attempts, "error": m.last_error, "to": m.to_email, "subject": m.subject, "created": m.created_at.format("%Y-%m-%d %H:%M UTC").to_string() })).collect();
    Ok(page(
        "admin/outbox",
        &staff,
        json!({ "title": "Mail outbox", "mails": list, "state": state }),
    ))
}
