//! The buyer's booking page (`/bookings/<token>`): tickets with QR codes once paid, what
//! was refunded, the event as an `.ics` calendar file, and the tickets as PDF
//! (`tickets.pdf` for all, `tickets/<code>.pdf` for one attendee's; tests `it::tickets::*`).

use chrono::Utc;
use rocket::http::Header;
use rocket::{get, Responder, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use super::{context, load, load_on, Loaded};
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::BookingState;
use crate::money::Money;
use crate::tokens::looks_like_token;
use crate::AppInfo;

#[get("/<token>")]
pub(super) async fn booking_page(
    db: &State<Db>,
    app: &State<AppInfo>,
    token: &str,
) -> AppResult<Template> {
    if !looks_like_token(token) {
        return Err(AppError::not_found());
    }
    let token = token.to_string();
    let (l, payment, refunds) = db
        .run(move |conn| {
            let l = load_on(conn, &token)?;
            let payment = crate::models::Payment::find_by_booking(conn, l.booking.id)?;
            let refunds = refunds_of(conn, payment.as_ref())?;
            Ok((l, payment, refunds))
        })
        .await?;
    let paid = l.booking.state() == BookingState::Paid;
    let mut ctx = context(&l, paid);
    ctx["title"] = json!(crate::routes::form_errors::title(
        if paid {
            "You're booked"
        } else {
            "Your booking"
        },
        &l.event.title,
        false
    ));
    // The waivers still to sign, for "What to do next" (each attendee also gets the link).
    ctx["waivers_pending"] = json!(l.waivers.iter().any(|w| w.signed_at.is_none()));
    ctx["waivers_sent"] = json!(!l.waivers.is_empty());
    changes(&mut ctx, &l, &refunds);
    ctx["google_calendar"] = json!(google_calendar_link(&l, app));
    // Money that came after the booking closed: the page must not say "nothing was charged".
    ctx["unhonoured"] = json!(payment.as_ref().is_some_and(|p| p.unhonoured_at.is_some()));
    ctx["cancelled_at_paypal"] = json!(payment
        .as_ref()
        .is_some_and(|p| p.buyer_cancelled_at.is_some()));
    // What was refunded, so a buyer sees a partial refund next to the total.
    ctx["refunded"] = json!(payment.filter(|p| p.refunded_minor > 0).map(|p| Money::new(
        p.refunded_minor,
        &p.currency
    )
    .display()));
    Ok(Template::render("booking", ctx))
}

/// The refunds of a payment that moved money (completed or pending at PayPal), oldest first.
fn refunds_of(
    conn: &mut diesel::PgConnection,
    payment: Option<&crate::models::Payment>,
) -> Result<Vec<crate::models::Refund>, AppError> {
    use crate::schema::refunds;
    use diesel::prelude::*;
    let Some(p) = payment else {
        return Ok(Vec::new());
    };
    Ok(refunds::table
        .filter(refunds::payment_id.eq(p.id))
        .filter(refunds::status.eq_any(["COMPLETED", "PENDING"]))
        .order(refunds::id)
        .select(crate::models::Refund::as_select())
        .load(conn)?)
}

/// The "Refunds and cancelled tickets" block (issue 15/16): each refund with its amount, date
/// in the event's zone and the admin's reason, and each ticket cancelled or refunded on its
/// own. Cancelled tickets are not in the ticket list (`context`), so no QR code of theirs is
/// drawn (tests
/// `ticket_changes::*`).
fn changes(ctx: &mut serde_json::Value, l: &Loaded, refunds: &[crate::models::Refund]) {
    let tz = l.event.tz();
    let closed: Vec<&crate::models::Attendee> = l
        .attendees
        .iter()
        .filter(|a| a.cancelled_at.is_some())
        .collect();
    ctx["refund_list"] = json!(refunds
        .iter()
        .map(|r| json!({
            "amount": Money::new(r.amount_minor, &r.currency).display(),
            "at": crate::timefmt::local_datetime(r.created_at, tz),
            "reason": r.note,
            "pending": r.status == "PENDING",
            "ticket": r.attendee_id.and_then(|id| l.attendees.iter().find(|a| a.id == id)).map(|a| a.name.clone()),
        }))
        .collect::<Vec<_>>());
    ctx["cancelled_tickets"] = json!(closed
        .iter()
        .map(|a| json!({
            "name": a.name,
            "ticket_type": l.type_name(a.ticket_type_id),
            "code": a.ticket_code,
            "refunded": a.cancel_state.as_deref() == Some("refunded"),
            "at": a.cancelled_at.map(|t| crate::timefmt::local_datetime(t, tz)),
            "reason": a.cancel_reason,
        }))
        .collect::<Vec<_>>());
}

#[derive(Responder)]
#[response(content_type = "text/calendar")]
pub(super) struct Calendar {
    body: String,
    disposition: Header<'static>,
}

/// The booking's calendar entry; its description links the booking page.
fn calendar_event<'a>(l: &'a Loaded, app: &AppInfo) -> crate::ics::CalendarEvent<'a> {
    let host = app.base_url.split("://").nth(1).unwrap_or("tickets");
    let url = format!("{}/bookings/{}", app.base_url, l.booking.access_token);
    crate::ics::CalendarEvent {
        uid: format!("{}@{host}", l.booking.reference),
        title: &l.event.title,
        location: &l.event.venue,
        description: format!(
            "Booking {} ({} seat{}). Your tickets: {url}",
            l.booking.reference,
            l.booking.seats,
            if l.booking.seats == 1 { "" } else { "s" }
        ),
        url,
        starts_at: l.event.starts_at,
        ends_at: l.event.ends_at,
    }
}

/// The "Add to Google Calendar" link: the booking's secret link stays out of it (Google
/// would keep it), so the entry names only the reference.
fn google_calendar_link(l: &Loaded, app: &AppInfo) -> String {
    let mut event = calendar_event(l, app);
    event.description = format!("Booking {} at {}", l.booking.reference, app.site_name);
    crate::ics::google_calendar_link(&event)
}

#[get("/<token>/calendar.ics")]
pub(super) async fn calendar(
    db: &State<Db>,
    app: &State<AppInfo>,
    token: &str,
) -> AppResult<Calendar> {
    let l = load(db, token).await?;
    let body = crate::ics::calendar(&calendar_event(&l, app), Utc::now());
    Ok(Calendar {
        body,
        disposition: Header::new(
            "Content-Disposition",
            format!("attachment; filename=\"{}.ics\"", l.booking.reference),
        ),
    })
}

#[derive(Responder)]
#[response(content_type = "application/pdf")]
pub(super) struct Pdf {
    body: Vec<u8>,
    disposition: Header<'static>,
}

/// All tickets of a paid booking, one page each.
#[get("/<token>/tickets.pdf")]
pub(super) async fn tickets_pdf(db: &State<Db>, token: &str) -> AppResult<Pdf> {
    pdf(db, token, None).await
}

/// One attendee's ticket: `file` is `<ticket code>.pdf`.
#[get("/<token>/tickets/<file>")]
pub(super) async fn ticket_pdf(db: &State<Db>, token: &str, file: &str) -> AppResult<Pdf> {
    let code = file
        .strip_suffix(".pdf")
        .filter(|c| (1..=64).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(AppError::not_found)?;
    pdf(db, token, Some(code)).await
}

/// The PDF of a paid booking's tickets (or of the one with `code`); 404 for an unknown
/// token or code and for a booking without valid tickets (unpaid, cancelled, refunded).
async fn pdf(db: &Db, token: &str, code: Option<&str>) -> AppResult<Pdf> {
    if !looks_like_token(token) {
        return Err(AppError::not_found());
    }
    let (token, only) = (token.to_string(), code.map(str::to_string));
    let (reference, tickets) = db
        .run(move |conn| {
            let booking = crate::models::Booking::find_by_access_token(conn, &token)?;
            let booking = crate::bookings::lifecycle::refresh(conn, booking, Utc::now())?;
            let tickets = crate::tickets_pdf::booking_tickets(conn, &booking, only.as_deref())?;
            Ok((booking.reference, tickets))
        })
        .await?;
    if tickets.is_empty() {
        return Err(AppError::not_found());
    }
    let filename = match code {
        Some(code) => format!("ticket-{reference}-{code}.pdf"),
        None => format!("tickets-{reference}.pdf"),
    };
    let title = format!("Tickets {reference}");
    let body =
        rocket::tokio::task::spawn_blocking(move || crate::tickets_pdf::render(&title, &tickets))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)?;
    Ok(Pdf {
        body,
        disposition: Header::new(
            "Content-Disposition",
            format!("attachment; filename=\"{filename}\""),
        ),
    })
}
