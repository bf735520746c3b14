//! Door check-in, open to all staff. `/admin/checkin` lists the events that can be checked
//! in (published, not long past); `/admin/checkin/<event>` is the door of one event: the code
//! form (typed, or scanned by `static/checkin.js`), counts, search by name or code, the
//! full-screen result of the last ticket, signing an unsigned waiver on the staff device
//! (by the event's door policy), and undo of this staff member's last check-in.
//!
//! What a ticket gets is decided by `ticketing_domain::door::decide` over
//! `bookings::usability`, the waiver and the check-in time; QR payloads carry the event's
//! Ed25519 signature, checked here and, offline, in the browser.
//!
//! Offline devices download `/admin/checkin/<event>/attendees.json`, decide locally and
//! send their queued scans to `/admin/checkin/<event>/sync`. **The first scan to reach the
//! server wins**: a ticket already checked in (online, or by an earlier sync from another
//! device) makes the later scan a `duplicate`, and its device is told when the ticket was
//! checked in and that it was by another device. A scan is identified by its device,
//! code and scan time, so sending the same queue again changes nothing and gets the same
//! answers.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rocket::form::FromForm;
use rocket::http::{ContentType, Status};
use rocket::request::{FlashMessage, FromRequest, Outcome, Request};
use rocket::response::{Flash, Redirect};
use rocket::serde::json::Json;
use rocket::{get, post, State};
use rocket_dyn_templates::Template;
use serde::Deserialize;
use serde_json::{json, Value};
use ticketing_core::validate;
use ticketing_domain::door::{self, DoorResult, RefuseReason, WaiverPolicy, WaiverState};

use super::page;
use crate::auth::{self, AdminForm, Staff, StaffForm};
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::{Attendee, Booking, Event, TicketType};
use crate::routes::waivers::UserAgent;
use crate::schema::{attendees, bookings, door_scans, events, waivers};
use crate::timefmt;

/// Events end this long ago and still show on the start page (a late-night door).
const PAST_HOURS: i64 = 24;

#[get("/checkin?<event>")]
pub(super) async fn checkin_page(
    db: &State<Db>,
    staff: Staff,
    event: Option<i64>,
) -> AppResult<Result<Template, Redirect>> {
    if let Some(id) = event {
        return Ok(Err(Redirect::to(format!("/admin/checkin/{id}"))));
    }
    let list: Vec<Event> = db
        .run(|conn| {
            Ok(events::table
                .filter(events::visibility.ne("draft"))
                .filter(events::ends_at.gt(Utc::now() - chrono::Duration::hours(PAST_HOURS)))
                .order(events::starts_at)
                .select(Event::as_select())
                .load(conn)?)
        })
        .await?;
    let list: Vec<Value> = list
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "title": e.title,
                "when": timefmt::local_range(e.starts_at, e.ends_at, e.tz()),
                "venue": e.venue,
                "private": e.visibility == "private",
            })
        })
        .collect();
    Ok(Ok(page(
        "admin/checkin",
        &staff,
        json!({ "title": "Check-in", "events": list }),
    )))
}

/// The event and its door policy; drafts have no door.
fn door_event(conn: &mut PgConnection, id: i64) -> Result<(Event, WaiverPolicy), AppError> {
    let event = Event::find(conn, id)?;
    if event.visibility == "draft" {
        return Err(AppError::not_found());
    }
    let policy: String = events::table
        .find(id)
        .select(events::door_waiver_policy)
        .first(conn)?;
    Ok((
        event,
        WaiverPolicy::parse(&policy).unwrap_or(WaiverPolicy::SignAtDoor),
    ))
}

fn waiver_state(
    conn: &mut PgConnection,
    event: &Event,
    attendee_id: i64,
) -> QueryResult<WaiverState> {
    if !event.waiver_required {
        return Ok(WaiverState::NotRequired);
    }
    let signed: Option<Option<DateTime<Utc>>> = waivers::table
        .filter(waivers::attendee_id.eq(attendee_id))
        .select(waivers::signed_at)
        .first(conn)
        .optional()?;
    Ok(WaiverState::of(true, matches!(signed, Some(Some(_)))))
}

/// What the door said about one scan.
struct Checked {
    result: DoorResult,
    attendee: Option<Attendee>,
    ticket_type: Option<String>,
    /// Set when the attendee's waiver was just signed at the door.
    signed_now: bool,
}

fn type_name(conn: &mut PgConnection, id: i64) -> QueryResult<String> {
    crate::schema::ticket_types::table
        .find(id)
        .select(crate::schema::ticket_types::name)
        .first(conn)
}

/// Looks the scan up (locking the ticket), checks a QR payload's signature against the key
/// of the ticket's own event, and decides. Changes nothing.
fn look(
    conn: &mut PgConnection,
    event: &Event,
    policy: WaiverPolicy,
    input: &str,
) -> QueryResult<Checked> {
    let scan = door::parse_scan(input);
    let found: Option<(Attendee, Booking)> = attendees::table
        .inner_join(bookings::table)
        .filter(attendees::ticket_code.eq(&scan.code))
        .select((Attendee::as_select(), Booking::as_select()))
        .for_update()
        .first(conn)
        .optional()?;
    let refused = |reason| Checked {
        result: DoorResult::Refused { reason },
        attendee: None,
        ticket_type: None,
        signed_now: false,
    };
    let Some((a, b)) = found else {
        return Ok(refused(match scan.signature {
            Some(_) => RefuseReason::Forged,
            None => RefuseReason::Unknown,
        }));
    };
    if let Some(sig) = &scan.signature {
        let genuine = match sig {
            Some(sig) => door::key(conn, b.event_id)?.verifies(&scan.code, sig),
            None => false,
        };
        if !genuine {
            return Ok(refused(RefuseReason::Forged));
        }
    }
    let usability = crate::bookings::usability(&a, &b, event.id);
    let waiver = waiver_state(conn, event, a.id)?;
    let result = door::decide(usability, waiver, policy, a.checked_in_at);
    Ok(Checked {
        result,
        ticket_type: Some(type_name(conn, a.ticket_type_id)?),
        attendee: Some(a),
        signed_now: false,
    })
}

/// Marks `attendee` checked in (at `at`, by `staff`, from `device` when offline), audited.
fn mark_checked_in(
    conn: &mut PgConnection,
    staff: &Staff,
    attendee: &Attendee,
    at: DateTime<Utc>,
    device: Option<&str>,
) -> QueryResult<()> {
    diesel::update(attendees::table.find(attendee.id))
        .set((
            attendees::checked_in_at.eq(at),
            attendees::checked_in_by.eq(staff.user.id),
            attendees::checked_in_device.eq(device),
        ))
        .execute(conn)?;
    auth::audit(
        conn,
        staff,
        "attendee.checkin",
        "attendee",
        Some(attendee.id),
        Some(json!({ "checked_in": false })),
        Some(json!({ "checked_in": true, "ticket_code": attendee.ticket_code, "device": device })),
    )
}

fn result_view(c: &Checked, tz: chrono_tz::Tz) -> Value {
    let name = c.attendee.as_ref().map(|a| a.name.as_str()).unwrap_or("");
    let at = match c.result {
        DoorResult::AlreadyCheckedIn { at } => timefmt::local_datetime(at, tz),
        _ => String::new(),
    };
    let mut message = c.result.message(name, &at);
    if c.signed_now {
        message = format!("Waiver signed at the door. {message}");
    }
    json!({
        "kind": c.result.kind(),
        "tone": c.result.tone(),
        "message": message,
        "name": c.attendee.as_ref().map(|a| a.name.clone()).unwrap_or_else(|| "—".into()),
        "ticket_type": c.ticket_type.clone().unwrap_or_else(|| "—".into()),
        "code": c.attendee.as_ref().map(|a| a.ticket_code.clone()).unwrap_or_default(),
        "sign_at_door": matches!(c.result, DoorResult::ValidWaiverUnsigned { sign_at_door: true }),
    })
}

/// Everything the event's door page shows besides the result.
fn door_context(
    conn: &mut PgConnection,
    staff: &Staff,
    event: &Event,
    policy: WaiverPolicy,
    q: &str,
) -> Result<Value, AppError> {
    let tz = event.tz();
    let types = TicketType::for_events(conn, &[event.id])?;
    let rows: Vec<(Attendee, Booking)> = attendees::table
        .inner_join(bookings::table)
        .filter(bookings::event_id.eq(event.id))
        .select((Attendee::as_select(), Booking::as_select()))
        .order(attendees::id)
        .load(conn)?;
    let usable: Vec<&Attendee> = rows
        .iter()
        .filter(|(a, b)| {
            crate::bookings::usability(a, b, event.id) == crate::bookings::Usability::Usable
        })
        .map(|(a, _)| a)
        .collect();
    let per_type: Vec<Value> = types
        .iter()
        .filter_map(|t| {
            let of: Vec<&&Attendee> = usable.iter().filter(|a| a.ticket_type_id == t.id).collect();
            (!of.is_empty()).then(|| {
                json!({
                    "name": t.name,
                    "total": of.len(),
                    "checked_in": of.iter().filter(|a| a.checked_in_at.is_some()).count(),
                })
            })
        })
        .collect();
    let q = q.trim();
    let mut results = Vec::new();
    if !q.is_empty() {
        let lower = q.to_lowercase();
        let code = ticketing_core::tokens::normalize_code(q);
        let type_name = |id: i64| {
            types
                .iter()
                .find(|t| t.id == id)
                .map(|t| t.name.clone())
                .unwrap_or_default()
        };
        for (a, b) in rows
            .iter()
            .filter(|(a, _)| {
                a.name.to_lowercase().contains(&lower)
                    || (code.len() >= 4 && a.ticket_code.starts_with(&code))
            })
            .take(25)
        {
            let usability = crate::bookings::usability(a, b, event.id);
            let waiver = waiver_state(conn, event, a.id)?;
            let r = door::decide(usability, waiver, policy, a.checked_in_at);
            let at = a
                .checked_in_at
                .map(|t| timefmt::local_datetime(t, tz))
                .unwrap_or_default();
            results.push(json!({
                "name": a.name,
                "code": a.ticket_code,
                "ticket_type": type_name(a.ticket_type_id),
                "kind": r.kind(),
                "status": match r {
                    DoorResult::Valid => "Not checked in yet".to_string(),
                    DoorResult::ValidWaiverUnsigned { .. } => "Not checked in; waiver not signed".to_string(),
                    DoorResult::AlreadyCheckedIn { .. } => format!("Checked in at {at}"),
                    DoorResult::Refused { .. } => r.message(&a.name, &at),
                },
                "can_check_in": matches!(r, DoorResult::Valid | DoorResult::ValidWaiverUnsigned { .. }),
            }));
        }
    }
    let last: Option<Attendee> = attendees::table
        .inner_join(bookings::table)
        .filter(bookings::event_id.eq(event.id))
        .filter(attendees::checked_in_by.eq(staff.user.id))
        .filter(attendees::checked_in_at.is_not_null())
        .order(attendees::checked_in_at.desc())
        .select(Attendee::as_select())
        .first(conn)
        .optional()?;
    let waiver_text = if event.waiver_required {
        Some(ticketing_domain::waivers::ensure_current_text(conn, event)?)
    } else {
        None
    };
    Ok(json!({
        "title": format!("Check-in: {}", event.title),
        "event": {
            "id": event.id,
            "title": event.title,
            "when": timefmt::local_range(event.starts_at, event.ends_at, tz),
            "venue": event.venue,
            "waiver_required": event.waiver_required,
        },
        "counts": {
            "total": usable.len(),
            "checked_in": usable.iter().filter(|a| a.checked_in_at.is_some()).count(),
            "types": per_type,
        },
        "q": q,
        "searched": !q.is_empty(),
        "results": results,
        "undo": last.map(|a| json!({ "name": a.name, "code": a.ticket_code })),
        "policy": policy.as_str(),
        "can_edit_policy": staff.is_admin(),
        "waiver": waiver_text.map(|t| json!({ "body": t.body, "version": t.id })),
        "result": null,
        "sign": { "errors": {}, "full_name": "" },
        "notice": null,
    }))
}

#[get("/checkin/<id>?<q>")]
pub(super) async fn checkin_event(
    db: &State<Db>,
    staff: Staff,
    id: i64,
    q: Option<String>,
    flash: Option<FlashMessage<'_>>,
) -> AppResult<Template> {
    let s2 = staff.clone();
    let mut ctx = db
        .run(move |conn| {
            let (event, policy) = door_event(conn, id)?;
            door_context(conn, &s2, &event, policy, q.as_deref().unwrap_or(""))
        })
        .await?;
    ctx["notice"] = json!(flash.map(|f| json!({ "kind": f.kind(), "message": f.message() })));
    Ok(page("admin/checkin_event", &staff, ctx))
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

/// Checks a typed or scanned code in at the form's event; answers with the event's door
/// page showing the result.
#[post("/checkin", data = "<form>")]
pub(super) async fn checkin(db: &State<Db>, form: StaffForm<CheckinForm>) -> AppResult<Template> {
    let StaffForm { staff, form } = form;
    let event_id = form.event;
    let s2 = staff.clone();
    let ctx = db
        .run(move |conn| {
            let (event, policy) = door_event(conn, event_id)?;
            let checked = conn.transaction(|conn| {
                let c = look(conn, &event, policy, &form.code)?;
                if c.result.admits() {
                    if let Some(a) = &c.attendee {
                        mark_checked_in(conn, &s2, a, Utc::now(), None)?;
                    }
                }
                Ok::<_, diesel::result::Error>(c)
            })?;
            let mut ctx = door_context(conn, &s2, &event, policy, "")?;
            ctx["result"] = result_view(&checked, event.tz());
            Ok(ctx)
        })
        .await?;
    Ok(page("admin/checkin_event", &staff, ctx))
}

#[derive(FromForm)]
pub struct SignForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    code: String,
    #[field(default = String::new())]
    full_name: String,
    #[field(default = false)]
    consent: bool,
    #[field(default = 0)]
    version: i64,
}

csrf_form!(SignForm);

/// The attendee signs their waiver on the staff device (the event's policy allowing it):
/// recorded as signed at the door by this staff member, audited, and the ticket checked in.
#[post("/checkin/<id>/sign", data = "<form>")]
pub(super) async fn sign_at_door(
    db: &State<Db>,
    id: i64,
    agent: UserAgent,
    form: StaffForm<SignForm>,
) -> AppResult<(Status, Template)> {
    let StaffForm { staff, form } = form;
    let s2 = staff.clone();
    let (status, ctx) = db
        .run(move |conn| {
            let (event, policy) = door_event(conn, id)?;
            let text = ticketing_domain::waivers::ensure_current_text(conn, &event)?;
            let mut errors = serde_json::Map::new();
            let name = match validate::name(&form.full_name) {
                Ok(n) => n,
                Err(e) => {
                    errors.insert("full_name".into(), json!(e));
                    String::new()
                }
            };
            if !form.consent {
                errors.insert(
                    "consent".into(),
                    json!("Tick the box to confirm that the attendee has read and agrees to the waiver."),
                );
            }
            if form.version != text.id {
                errors.insert("form".into(), json!("The waiver text has changed since this page was opened. Read the current text and sign again."));
            }
            let outcome = conn.transaction(|conn| {
                let mut c = look(conn, &event, policy, &form.code)?;
                let can_sign = matches!(c.result, DoorResult::ValidWaiverUnsigned { sign_at_door: true });
                if !can_sign || !errors.is_empty() {
                    return Ok::<_, diesel::result::Error>((c, can_sign));
                }
                let Some(a) = c.attendee.clone() else { return Ok((c, false)) };
                let sig = ticketing_domain::waivers::Signature {
                    name: &name,
                    text: &text,
                    ip: s2.ip.clone(),
                    user_agent: agent.0.clone(),
                };
                if door::sign_at_door(conn, a.id, &sig, s2.user.id)? {
                    auth::audit(
                        conn,
                        &s2,
                        "waiver.signed_at_door",
                        "attendee",
                        Some(a.id),
                        Some(json!({ "signed": false })),
                        Some(json!({ "signed": true, "signed_name": name, "text_sha256": text.sha256, "at_door": true })),
                    )?;
                }
                mark_checked_in(conn, &s2, &a, Utc::now(), None)?;
                c.result = DoorResult::Valid;
                c.signed_now = true;
                Ok((c, true))
            })?;
            let (checked, can_sign) = outcome;
            let mut ctx = door_context(conn, &s2, &event, policy, "")?;
            ctx["result"] = result_view(&checked, event.tz());
            let status = if can_sign && !errors.is_empty() {
                ctx["sign"] = json!({
                    "errors": errors,
                    "full_name": form.full_name.chars().take(300).collect::<String>(),
                });
                Status::UnprocessableEntity
            } else {
                Status::Ok
            };
            Ok((status, ctx))
        })
        .await?;
    Ok((status, page("admin/checkin_event", &staff, ctx)))
}

#[derive(FromForm)]
pub struct UndoForm {
    #[field(default = String::new())]
    csrf: String,
}

csrf_form!(UndoForm);

/// Undoes this staff member's last check-in at the event (the ticket can be scanned again).
#[post("/checkin/<id>/undo", data = "<form>")]
pub(super) async fn undo(
    db: &State<Db>,
    id: i64,
    form: StaffForm<UndoForm>,
) -> AppResult<Flash<Redirect>> {
    let StaffForm { staff, .. } = form;
    let undone = db
        .run(move |conn| {
            door_event(conn, id)?;
            Ok(conn.transaction(|conn| {
                let last: Option<Attendee> = attendees::table
                    .inner_join(bookings::table)
                    .filter(bookings::event_id.eq(id))
                    .filter(attendees::checked_in_by.eq(staff.user.id))
                    .filter(attendees::checked_in_at.is_not_null())
                    .order(attendees::checked_in_at.desc())
                    .select(Attendee::as_select())
                    .for_update()
                    .first(conn)
                    .optional()?;
                let Some(a) = last else {
                    return Ok::<_, diesel::result::Error>(None);
                };
                diesel::update(attendees::table.find(a.id))
                    .set((
                        attendees::checked_in_at.eq(None::<DateTime<Utc>>),
                        attendees::checked_in_by.eq(None::<i64>),
                        attendees::checked_in_device.eq(None::<String>),
                    ))
                    .execute(conn)?;
                auth::audit(
                    conn,
                    &staff,
                    "attendee.checkin_undone",
                    "attendee",
                    Some(a.id),
                    Some(json!({ "checked_in": true, "checked_in_at": a.checked_in_at })),
                    Some(json!({ "checked_in": false })),
                )?;
                Ok(Some(a.name))
            })?)
        })
        .await?;
    let to = Redirect::to(format!("/admin/checkin/{id}"));
    Ok(match undone {
        Some(name) => Flash::success(
            to,
            format!("Check-in of {name} undone: the ticket can be scanned again."),
        ),
        None => Flash::error(to, "You have no check-in at this event to undo."),
    })
}

#[derive(FromForm)]
pub struct PolicyForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    policy: String,
}

csrf_form!(PolicyForm);

/// Admins choose what the door does with an unsigned required waiver (audited).
#[post("/checkin/<id>/policy", data = "<form>")]
pub(super) async fn set_policy(
    db: &State<Db>,
    id: i64,
    form: AdminForm<PolicyForm>,
) -> AppResult<Flash<Redirect>> {
    let AdminForm { staff, form } = form;
    let to = Redirect::to(format!("/admin/checkin/{id}"));
    let Some(policy) = WaiverPolicy::parse(&form.policy) else {
        return Ok(Flash::error(to, "Choose one of the two waiver policies."));
    };
    let changed = db
        .run(move |conn| {
            let (_, before) = door_event(conn, id)?;
            Ok(conn.transaction(|conn| {
                if before == policy {
                    return Ok::<_, diesel::result::Error>(false);
                }
                diesel::update(events::table.find(id))
                    .set(events::door_waiver_policy.eq(policy.as_str()))
                    .execute(conn)?;
                auth::audit(
                    conn,
                    &staff,
                    "event.door_waiver_policy",
                    "event",
                    Some(id),
                    Some(json!({ "door_waiver_policy": before.as_str() })),
                    Some(json!({ "door_waiver_policy": policy.as_str() })),
                )?;
                Ok(true)
            })?)
        })
        .await?;
    Ok(if changed {
        Flash::success(to, "Waiver policy at the door saved.")
    } else {
        Flash::success(to, "The waiver policy was already that; nothing changed.")
    })
}

/// The event's attendee list for offline check-in: codes, names, ticket types, what the
/// door would decide, the waiver state and check-in time, and the public key that verifies
/// QR signatures. No buyer emails or phones.
#[get("/checkin/<id>/attendees.json")]
pub(super) async fn attendees_json(
    db: &State<Db>,
    _staff: Staff,
    id: i64,
) -> AppResult<Json<Value>> {
    let body = db
        .run(move |conn| {
            let (event, policy) = door_event(conn, id)?;
            let key = door::key(conn, id)?;
            let types = TicketType::for_events(conn, &[id])?;
            let rows: Vec<(Attendee, Booking)> = attendees::table
                .inner_join(bookings::table)
                .filter(bookings::event_id.eq(id))
                .select((Attendee::as_select(), Booking::as_select()))
                .order(attendees::id)
                .load(conn)?;
            let signed: Vec<i64> = waivers::table
                .inner_join(attendees::table.inner_join(bookings::table))
                .filter(bookings::event_id.eq(id))
                .filter(waivers::signed_at.is_not_null())
                .select(waivers::attendee_id)
                .load(conn)?;
            let list: Vec<Value> = rows
                .iter()
                .map(|(a, b)| {
                    let u = crate::bookings::usability(a, b, id);
                    json!({
                        "code": a.ticket_code,
                        "name": a.name,
                        "ticket_type": types.iter().find(|t| t.id == a.ticket_type_id).map(|t| t.name.clone()),
                        "usability": u.kind(),
                        "refused_message": (u != crate::bookings::Usability::Usable).then(|| u.message()),
                        "waiver": WaiverState::of(event.waiver_required, signed.contains(&a.id)).as_str(),
                        "checked_in_at": a.checked_in_at,
                    })
                })
                .collect();
            Ok(json!({
                "event": { "id": event.id, "title": event.title, "timezone": event.timezone },
                "policy": policy.as_str(),
                "public_key": key.public_b64(),
                "generated_at": Utc::now(),
                "attendees": list,
            }))
        })
        .await?;
    Ok(Json(body))
}

/// The session's CSRF token in the `X-CSRF-Token` header (the offline sync posts JSON).
pub struct CsrfHeader(String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfHeader {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match req.headers().get_one("X-CSRF-Token") {
            Some(t) => Outcome::Success(CsrfHeader(t.to_string())),
            None => Outcome::Error((Status::Forbidden, ())),
        }
    }
}

#[derive(Deserialize)]
pub struct SyncScan {
    code: String,
    scanned_at: DateTime<Utc>,
}

#[derive(Deserialize)]
pub struct SyncBody {
    device: String,
    scans: Vec<SyncScan>,
}

/// Queued offline scans of one device: each checked in, refused, or a duplicate of an
/// earlier check-in (first to reach the server wins; see the module doc). Idempotent.
#[post("/checkin/<id>/sync", data = "<body>")]
pub(super) async fn sync(
    db: &State<Db>,
    staff: Staff,
    csrf: CsrfHeader,
    id: i64,
    body: Json<SyncBody>,
) -> AppResult<Json<Value>> {
    if !auth::same_secret(&staff.csrf, &csrf.0) {
        return Err(AppError::new(Status::Forbidden, auth::CSRF_REFUSED));
    }
    let body = body.into_inner();
    let device: String = body.device.trim().chars().take(64).collect();
    if device.is_empty() || body.scans.len() > 1000 {
        return Err(AppError::bad_request(
            "A device id and at most 1000 scans are needed.",
        ));
    }
    let results = db
        .run(move |conn| {
            let (event, policy) = door_event(conn, id)?;
            let tz = event.tz();
            let mut out = Vec::new();
            for scan in body.scans {
                let r = conn.transaction(|conn| {
                    sync_one(conn, &staff, &event, policy, &device, &scan, tz)
                })?;
                out.push(r);
            }
            Ok(out)
        })
        .await?;
    Ok(Json(json!({ "results": results })))
}

fn sync_one(
    conn: &mut PgConnection,
    staff: &Staff,
    event: &Event,
    policy: WaiverPolicy,
    device: &str,
    scan: &SyncScan,
    tz: chrono_tz::Tz,
) -> QueryResult<Value> {
    let raw: String = scan.code.chars().take(200).collect();
    let code = door::parse_scan(&raw).code;
    let answer = |outcome: &str, message: &str| json!({ "code": raw, "scanned_at": scan.scanned_at, "outcome": outcome, "message": message });
    let earlier: Option<(String, String)> = door_scans::table
        .filter(door_scans::device_id.eq(device))
        .filter(door_scans::ticket_code.eq(&code))
        .filter(door_scans::scanned_at.eq(scan.scanned_at))
        .select((door_scans::outcome, door_scans::message))
        .first(conn)
        .optional()?;
    if let Some((outcome, message)) = earlier {
        return Ok(answer(&outcome, &message));
    }
    let c = look(conn, event, policy, &raw)?;
    let (outcome, message) = match (c.result, &c.attendee) {
        (DoorResult::Valid, Some(a)) => {
            // A scan cannot be from the future.
            let at = scan.scanned_at.min(Utc::now());
            mark_checked_in(conn, staff, a, at, Some(device))?;
            ("checked_in", c.result.message(&a.name, ""))
        }
        (DoorResult::AlreadyCheckedIn { at }, Some(a)) => {
            let at_local = timefmt::local_datetime(at, tz);
            let same: bool = attendees::table
                .find(a.id)
                .select(attendees::checked_in_device)
                .first::<Option<String>>(conn)?
                .as_deref()
                == Some(device);
            if same {
                (
                    "checked_in",
                    format!("Checked in: {} (at {at_local}, by this device).", a.name),
                )
            } else {
                (
                    "duplicate",
                    format!(
                        "Already checked in at {at_local} by another device: {}.",
                        a.name
                    ),
                )
            }
        }
        (r, a) => {
            let n = a.as_ref().map(|a| a.name.as_str()).unwrap_or("");
            ("refused", r.message(n, ""))
        }
    };
    diesel::insert_into(door_scans::table)
        .values((
            door_scans::event_id.eq(event.id),
            door_scans::attendee_id.eq(c.attendee.as_ref().map(|a| a.id)),
            door_scans::device_id.eq(device),
            door_scans::ticket_code.eq(&code),
            door_scans::scanned_at.eq(scan.scanned_at),
            door_scans::user_id.eq(staff.user.id),
            door_scans::outcome.eq(outcome),
            door_scans::message.eq(&message),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(answer(outcome, &message))
}

/// The check-in service worker, served under `/admin/` so that it may control the
/// check-in pages (a worker's scope is at most its own path); staff only, like the pages.
#[get("/checkin-sw.js")]
pub(super) async fn service_worker(
    _staff: Staff,
    config: &State<crate::Config>,
) -> AppResult<(ContentType, String)> {
    let body = std::fs::read_to_string(config.static_dir.join("checkin-sw.js"))
        .map_err(AppError::internal)?;
    Ok((ContentType::JavaScript, body))
}
