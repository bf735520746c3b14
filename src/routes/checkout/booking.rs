//! The buyer's booking page (`/bookings/<token>`): tickets with QR codes once paid, what
//! was refunded, and the event as an `.ics` calendar file.

use chrono::Utc;
use rocket::http::Header;
use rocket::{get, Responder, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use super::{context, load, load_on};
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::BookingState;
use crate::money::Money;
use crate::tokens::looks_like_token;
use crate::AppInfo;

#[get("/<token>")]
pub(super) async fn booking_page(db: &State<Db>, token: &str) -> AppResult<Template> {
    if !looks_like_token(token) {
        return Err(AppError::not_found());
    }
    let token = token.to_string();
    let (l, payment) = db
        .run(move |conn| {
            let l = load_on(conn, &token)?;
            let payment = crate::models::Payment::find_by_booking(conn, l.booking.id)?;
            Ok((l, payment))
        })
        .await?;
    let paid = l.booking.state() == BookingState::Paid;
    let mut ctx = context(&l, paid);
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

#[derive(Responder)]
#[response(content_type = "text/calendar")]
pub(super) struct Calendar {
    body: String,
    disposition: Header<'static>,
}

#[get("/<token>/calendar.ics")]
pub(super) async fn calendar(
    db: &State<Db>,
    app: &State<AppInfo>,
    token: &str,
) -> AppResult<Calendar> {
    let l = load(db, token).await?;
    let host = app
        .base_url
        .split("://")
        .nth(1)
        .unwrap_or("tickets")
        .to_string();
    let url = format!("{}/bookings/{}", app.base_url, l.booking.access_token);
    let body = crate::ics::calendar(
        &crate::ics::CalendarEvent {
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
        },
        Utc::now(),
    );
    Ok(Calendar {
        body,
        disposition: Header::new(
            "Content-Disposition",
            format!("attachment; filename=\"{}.ics\"", l.booking.reference),
        ),
    })
}
