//! Door check-in: a ticket code is checked against the chosen event and, when valid, marked
//! as checked in (once; a second scan says when it was). Open to all staff.

use chrono::Utc;
use diesel::prelude::*;
use rocket::form::FromForm;
use rocket::{get, post, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use super::page;
use crate::auth::{self, Staff, StaffForm};
use crate::bookings::Usability;
use crate::db::Db;
use crate::error::AppResult;
use crate::models::{Attendee, Booking, Event};
use crate::schema::{attendees, bookings, events};
use crate::timefmt;

#[get("/checkin?<event>")]
pub(super) async fn checkin_page(
    db: &State<Db>,
    staff: Staff,
    event: Option<i64>,
) -> AppResult<Template> {
    let list: Vec<(i64, String)> = db
        .run(|conn| {
            Ok(events::table
                .filter(events::ends_at.gt(Utc::now() - chrono::Duration::days(1)))
                .order(events::starts_at)
                .select((events::id, events::title))
                .load(conn)?)
        })
        .await?;
    Ok(page(
        "admin/checkin",
        &staff,
        json!({ "title": "Check-in", "events": list.iter().map(|(id, t)| json!({"id": id, "title": t})).collect::<Vec<_>>(), "event": event, "result": null }),
    ))
}

#[derive(FromForm)]
pub struct CheckinForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = 0)]
    event: i64,
    #[field(default = String::new())]
    code: String,
}

csrf_form!(CheckinForm);

#[post("/checkin", data = "<form>")]
pub(super) async fn checkin(db: &State<Db>, form: StaffForm<CheckinForm>) -> AppResult<Template> {
    let StaffForm { staff, form } = form;
    let code = crate::tokens::normalize_code(&form.code);
    let event_id = form.event;
    let s2 = staff.clone();
    let (result, list) = db
        .run(move |conn| {
            let result = conn.transaction(|conn| {
                let found: Option<(Attendee, Booking)> = attendees::table
                    .inner_join(bookings::table)
                    .filter(attendees::ticket_code.eq(&code))
                    .select((Attendee::as_select(), Booking::as_select()))
                    .for_update()
                    .first(conn)
                    .optional()?;
                Ok::<_, diesel::result::Error>(match found {
                    None => json!({ "kind": "unknown", "message": "No ticket has this code." }),
                    // Whether a ticket gets in is decided in one place (`bookings::usability`).
                    Some((a, b)) if crate::bookings::usability(&a, &b, event_id) != Usability::Usable => {
                        let u = crate::bookings::usability(&a, &b, event_id);
                        json!({ "kind": u.kind(), "message": u.message() })
                    }
                    Some((a, b)) if a.checked_in_at.is_some() => {
                        let tz = Event::find(conn, b.event_id)?.tz();
                        let at = timefmt::local_datetime(a.checked_in_at.unwrap_or_default(), tz);
                        json!({ "kind": "already", "message": format!("Already checked in: {} (at {at}).", a.name) })
                    }
                    Some((a, _)) => {
                        diesel::update(attendees::table.find(a.id)).set(attendees::checked_in_at.eq(diesel::dsl::now)).execute(conn)?;
                        auth::audit(conn, &s2, "attendee.checkin", "attendee", Some(a.id), Some(json!({ "checked_in": false })), Some(json!({ "checked_in": true })))?;
                        json!({ "kind": "valid", "message": format!("Valid: {} — welcome!", a.name) })
                    }
                })
            })?;
            let list: Vec<(i64, String)> = events::table.filter(events::ends_at.gt(Utc::now() - chrono::Duration::days(1))).order(events::starts_at).select((events::id, events::title)).load(conn)?;
            Ok((result, list))
        })
        .await?;
    Ok(page(
        "admin/checkin",
        &staff,
        json!({ "title": "Check-in", "events": list.iter().map(|(id, t)| json!({"id": id, "title": t})).collect::<Vec<_>>(), "event": event_id, "result": result }),
    ))
}
