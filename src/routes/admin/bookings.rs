//! Bookings: the searchable list, the detail page (attendees, waivers, history, payment,
//! refunds, mails), cancelling a booking (admins only, with an explicit confirmation box),
//! correcting an attendee's name (staff too, audited), and sending a booking's mail again. The refund form on the detail page is in `refunds`.

use chrono::Utc;
use diesel::prelude::*;
use rocket::form::FromForm;
use rocket::http::Status;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use super::{page, CsrfOnly};
use crate::auth::{self, AdminForm, Staff, StaffForm};
use crate::bookings::lifecycle::transition;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::{Booking, BookingState, Event};
use crate::routes::checkout::Page;
use crate::schema::{bookings, events, outbox};
use crate::timefmt;

const PER_PAGE: i64 = 25;

#[get("/bookings?<q>&<event>&<state>&<page>")]
pub(super) async fn bookings_list(
    db: &State<Db>,
    staff: Staff,
    q: Option<&str>,
    event: Option<i64>,
    state: Option<&str>,
    page: Option<i64>,
) -> AppResult<Template> {
    let q = q.unwrap_or("").trim().chars().take(100).collect::<String>();
    let state = state
        .filter(|s| BookingState::parse(s).is_some())
        .map(str::to_string);
    let page_no = crate::views::page_number(page);
    let (q2, s2) = (q.clone(), state.clone());
    let (rows, total, event_list) = db
        .run(move |conn| {
            let like = (!q2.is_empty()).then(|| {
                format!(
                    "%{}%",
                    q2.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                )
            });
            // The same filters for the page and for the count.
            let filtered = || {
                let mut query = bookings::table.inner_join(events::table).into_boxed();
                if let Some(like) = &like {
                    query = query.filter(
                        bookings::buyer_name
                            .ilike(like.clone())
                            .or(bookings::buyer_email.ilike(like.clone()))
                            .or(bookings::reference.ilike(like.clone())),
                    );
                }
                if let Some(e) = event {
                    query = query.filter(bookings::event_id.eq(e));
                }
                if let Some(s) = &s2 {
                    query = query.filter(bookings::state.eq(s.clone()));
                }
                query
            };
            let total: i64 = filtered().count().get_result(conn)?;
            let rows: Vec<(Booking, Event)> = filtered()
                .order(bookings::id.desc())
                .limit(PER_PAGE)
                .offset(crate::views::page_offset(page_no, PER_PAGE))
                .select((Booking::as_select(), Event::as_select()))
                .load(conn)?;
            let event_list: Vec<(i64, String)> = events::table
                .order(events::starts_at.desc())
                .select((events::id, events::title))
                .limit(200)
                .load(conn)?;
            Ok((rows, total, event_list))
        })
        .await?;
    let list: Vec<_> = rows
        .iter()
        .map(|(b, e)| json!({ "id": b.id, "reference": b.reference, "buyer": b.buyer_name, "email": b.buyer_email, "event": e.title, "state": b.state, "seats": b.seats, "total": b.total().display(), "created": timefmt::local_datetime(b.created_at, e.tz()), "zone": e.timezone }))
        .collect();
    // The export links carry the list's filters (none: every event).
    let export_query = {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(e) = event {
            query.append_pair("event", &e.to_string());
        }
        if !q.is_empty() {
            query.append_pair("q", &q);
        }
        if let Some(s) = &state {
            query.append_pair("state", s);
        }
        query.finish()
    };
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    Ok(self::page(
        "admin/bookings",
        &staff,
        json!({
            "title": "Bookings", "bookings": list, "total": total, "page": page_no, "pages": pages,
            "q": q, "event": event, "state": state, "export_query": export_query, "events": event_list.iter().map(|(id, t)| json!({"id": id, "title": t})).collect::<Vec<_>>(),
            "states": ["held", "awaiting_payment", "paid", "cancelled", "refunded", "expired", "reversed"],
        }),
    ))
}

#[get("/bookings/<id>")]
pub(super) async fn booking_detail(
    db: &State<Db>,
    staff: Staff,
    id: i64,
    flash: Option<FlashMessage<'_>>,
) -> AppResult<Template> {
    let mut ctx = detail_ctx(db, id).await?;
    ctx["notice"] = json!(flash.map(|f| json!({ "kind": f.kind(), "message": f.message() })));
    Ok(page("admin/booking", &staff, ctx))
}

/// The booking page again with messages next to the refund or cancel form's fields (422).
pub(super) async fn detail_with_errors(
    db: &Db,
    staff: &Staff,
    id: i64,
    errors: serde_json::Value,
) -> AppResult<Page> {
    let mut ctx = detail_ctx(db, id).await?;
    ctx["errors"] = errors;
    Ok(Page::Status((
        Status::UnprocessableEntity,
        page("admin/booking", staff, ctx),
    )))
}

/// Everything the booking detail page shows.
async fn detail_ctx(db: &Db, id: i64) -> AppResult<serde_json::Value> {
    db
        .run(move |conn| {
            let b = Booking::find(conn, id)?;
            let e = Event::find(conn, b.event_id)?;
            let people = b.attendees(conn)?;
            let ids: Vec<i64> = people.iter().map(|a| a.id).collect();
            let ws = crate::waivers::for_attendees(conn, &ids)?;
            let history = b.history(conn)?;
            let payment = crate::models::Payment::find_by_booking(conn, id)?;
            let refund_rows: Vec<(i64, String, String, String, chrono::DateTime<Utc>)> = match &payment {
                Some(p) => crate::schema::refunds::table
                    .filter(crate::schema::refunds::payment_id.eq(p.id))
                    .order(crate::schema::refunds::id)
                    .select((
                        crate::schema::refunds::amount_minor,
                        crate::schema::refunds::currency,
                        crate::schema::refunds::status,
                        crate::schema::refunds::note,
                        crate::schema::refunds::created_at,
                    ))
                    .load(conn)?,
                None => Vec::new(),
            };
            let refund_list: Vec<_> = refund_rows
                .iter()
                .map(|(minor, currency, status, note, at)| json!({
                    "amount": crate::money::Money::new(*minor, currency).amount(),
                    "status": status,
                    "note": note,
                    "at": timefmt::local_datetime(*at, e.tz()),
                }))
                .collect();
            let types = crate::models::TicketType::for_events(conn, &[e.id])?;
            let items = b.items(conn)?;
            let price_of = |type_id: i64| items.iter().find(|i| i.ticket_type_id == type_id).map(|i| i.unit_price_minor).unwrap_or(0);
            let mails: Vec<crate::models::OutboxRow> = outbox::table.filter(outbox::booking_id.eq(id)).order(outbox::id).select(crate::models::OutboxRow::as_select()).load(conn)?;
            let tz = e.tz();
            Ok(json!({
                "title": format!("Booking {}", b.reference),
                "b": { "id": b.id, "reference": b.reference, "state": b.state, "buyer": b.buyer_name, "email": b.buyer_email, "phone": b.buyer_phone, "seats": b.seats, "total": b.total().display(), "total_minor": b.total_minor, "currency": b.currency, "created": timefmt::local_datetime(b.created_at, tz) },
                "event": { "id": e.id, "title": e.title, "when": timefmt::local_range(e.starts_at, e.ends_at, tz), "zone": e.timezone },
                "attendees": people.iter().map(|a| {
                    let w = ws.iter().find(|w| w.attendee_id == a.id);
                    let ticket = crate::bookings::TicketState::of(a);
                    json!({ "id": a.id, "name": a.name, "email": a.email, "code": a.ticket_code, "checked_in": a.checked_in_at.map(|t| timefmt::local_datetime(t, tz)),
                            "waiver": w.map(|w| if w.signed_at.is_some() { "signed" } else { "unsigned" }),
                            "ticket_type": types.iter().find(|t| t.id == a.ticket_type_id).map(|t| t.name.clone()).unwrap_or_default(),
                            "price": crate::money::Money::new(price_of(a.ticket_type_id), &b.currency).display(),
                            "ticket": ticket.as_str(), "valid": ticket == crate::bookings::TicketState::Valid,
                            "closed_at": a.cancelled_at.map(|t| timefmt::local_datetime(t, tz)), "reason": a.cancel_reason })
                }).collect::<Vec<_>>(),
                "valid_tickets": people.iter().filter(|a| a.cancelled_at.is_none()).count(),
                "history": history.iter().map(|h| json!({ "from": h.from_state, "to": h.to_state, "note": h.note, "at": timefmt::local_datetime(h.created_at, tz) })).collect::<Vec<_>>(),
                "payment": payment.map(|p| json!({ "order_id": p.order_id, "capture_id": p.capture_id, "status": p.capture_status.clone().unwrap_or(p.order_status.clone()), "amount": crate::money::Money::new(p.amount_minor, &p.currency).display(), "refunded": crate::money::Money::new(p.refunded_minor, &p.currency).amount(), "refundable": crate::money::Money::new(p.amount_minor - p.refunded_minor, &p.currency).decimal_string(), "refunds": refund_list, "form_token": crate::tokens::url_token(18),
                    "holds_money": matches!(p.capture_status.as_deref(), Some("COMPLETED" | "PARTIALLY_REFUNDED")) && p.refunded_minor < p.amount_minor,
                    "unhonoured": p.unhonoured_at.is_some() })),
                "errors": {},
                "mails": mails.iter().map(|m| json!({ "id": m.id, "kind": m.kind, "subject": m.subject, "state": m.state, "attempts": m.attempts, "error": m.last_error, "to": m.to_email, "created": timefmt::local_datetime(m.created_at, tz) })).collect::<Vec<_>>(),
            }))
        })
        .await
}

#[derive(FromForm)]
pub struct ReasonForm {
    #[field(default = String::new())]
    csrf: String,
    /// The explicit confirmation box (so the action never goes through on one click).
    #[field(default = false)]
    confirm: bool,
    #[field(default = String::new())]
    reason: String,
}

csrf_form!(ReasonForm);

#[post("/bookings/<id>/cancel", data = "<form>")]
pub(super) async fn cancel_booking(
    db: &State<Db>,
    id: i64,
    form: AdminForm<ReasonForm>,
) -> AppResult<Page> {
    let AdminForm { staff, form } = form;
    if !form.confirm {
        return detail_with_errors(
            db,
            &staff,
            id,
            json!({ "cancel_confirm": "Tick the box to confirm the cancellation." }),
        )
        .await;
    }
    let reason = match ticketing_core::validate::single_line(&form.reason, 300) {
        Ok(reason) => reason,
        Err(e) => return detail_with_errors(db, &staff, id, json!({ "cancel_reason": e })).await,
    };
    let was_paid = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let before = Booking::find(conn, id)?;
                let moved = transition(
                    conn,
                    id,
                    &[
                        BookingState::Held,
                        BookingState::AwaitingPayment,
                        BookingState::Paid,
                    ],
                    BookingState::Cancelled,
                    &format!("cancelled by {}: {reason}", staff.user.email),
                )?;
                if moved.is_some() {
                    auth::audit(
                        conn,
                        &staff,
                        "booking.cancel",
                        "booking",
                        Some(id),
                        Some(json!({ "state": before.state })),
                        Some(json!({ "state": "cancelled", "reason": reason })),
                    )?;
                }
                Ok::<_, diesel::result::Error>(moved.map(|_| before.state() == BookingState::Paid))
            })
            .map_err(Into::into)
        })
        .await?;
    let to = Redirect::to(format!("/admin/bookings/{id}"));
    Ok(Page::Flash(match was_paid {
        Some(true) => Flash::success(
            to,
            "Booking cancelled and its seats released; the buyer is told by mail.",
        ),
        Some(false) => Flash::success(to, "Booking cancelled and its seats released."),
        None => Flash::error(to, "Nothing to cancel: the booking is no longer active."),
    }))
}

#[post("/outbox/<id>/resend", data = "<form>")]
pub(super) async fn resend_mail(
    db: &State<Db>,
    id: i64,
    form: StaffForm<CsrfOnly>,
) -> AppResult<Redirect> {
    let StaffForm { staff, .. } = form;
    let booking_id = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let booking_id: i64 = outbox::table
                    .find(id)
                    .filter(outbox::booking_id.is_not_null())
                    .select(outbox::booking_id.assume_not_null())
                    .first(conn)?;
                crate::outbox::resend(conn, id)?;
                auth::audit(
                    conn,
                    &staff,
                    "mail.resend",
                    "outbox",
                    Some(id),
                    None,
                    Some(json!({ "state": "pending" })),
                )?;
                Ok::<_, diesel::result::Error>(booking_id)
            })
            .map_err(AppError::from)
        })
        .await?;
    Ok(Redirect::to(format!("/admin/bookings/{booking_id}")))
}

#[derive(FromForm)]
pub struct RenameForm {
    #[field(default = String::new())]
    csrf: String,
    /// The attendee id.
    #[field(default = 0)]
    attendee: i64,
    #[field(default = String::new())]
    name: String,
}

csrf_form!(RenameForm);

/// Corrects an attendee's name (staff and admins): audited with the name before and after;
/// the ticket page, the PDF and check-in show the new one (test
/// `ticket_changes::a_corrected_name_is_audited_and_shown_everywhere`).
#[post("/bookings/<id>/attendee-name", data = "<form>")]
pub(super) async fn rename_attendee(
    db: &State<Db>,
    id: i64,
    form: StaffForm<RenameForm>,
) -> AppResult<Page> {
    let StaffForm { staff, form } = form;
    let name = match ticketing_core::validate::name(&form.name) {
        Ok(name) => name,
        Err(e) => {
            return detail_with_errors(
                db,
                &staff,
                id,
                json!({ "rename": e, "rename_value": form.name.chars().take(150).collect::<String>(), "rename_attendee": form.attendee }),
            )
            .await
        }
    };
    let attendee = form.attendee;
    let n2 = name.clone();
    let before = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let before = crate::bookings::tickets::rename_attendee(conn, id, attendee, &n2)?;
                if before != n2 {
                    auth::audit(
                        conn,
                        &staff,
                        "attendee.rename",
                        "attendee",
                        Some(attendee),
                        Some(json!({ "booking_id": id, "name": before })),
                        Some(json!({ "booking_id": id, "name": n2 })),
                    )?;
                }
                Ok::<_, diesel::result::Error>(before)
            })
            .map_err(AppError::from)
        })
        .await?;
    let to = Redirect::to(format!("/admin/bookings/{id}"));
    Ok(Page::Flash(if before == name {
        Flash::success(to, "The name was already that; nothing changed.")
    } else {
        Flash::success(to, format!("Name corrected: {before} → {name}."))
    }))
}
