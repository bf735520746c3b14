//! Checkout area (`/checkout`, `/bookings`): choosing tickets creates a hold; then attendee
//! details, review, and payment (free bookings are confirmed here; paid ones go on to
//! PayPal); the buyer's private booking page with tickets, QR codes and an `.ics` file.
//! Every page is reached through the booking's secret access token, works without
//! JavaScript, and keeps the buyer's input with a message next to each bad field.
//!
//! One file per step: `hold` (the ticket form), `details` (buyer and attendees),
//! `review` (review, confirm or release), `booking` (the booking page and its calendar
//! file). This module holds what every step shares: loading a booking by its token and the
//! page context built from it.

use chrono::Utc;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{routes, Responder, Route};
use rocket_dyn_templates::Template;
use serde::Serialize;
use serde_json::json;

use crate::bookings::lifecycle::refresh;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::event::EventLookup;
use crate::models::{Attendee, Booking, BookingItem, Event, TicketType};
use crate::money::Money;
use crate::timefmt;
use crate::tokens::looks_like_token;

mod booking;
mod details;
mod hold;
mod rehold;
mod review;

pub use details::{AttendeeInput, DetailsForm};
pub use hold::{ensure_browser_id, HoldForm};

pub fn routes() -> Vec<Route> {
    routes![
        hold::hold,
        hold::total,
        rehold::rehold,
        details::details,
        details::save_details,
        review::review,
        review::confirm,
        review::release
    ]
}

pub fn booking_routes() -> Vec<Route> {
    routes![
        booking::booking_page,
        booking::calendar,
        booking::tickets_pdf,
        booking::ticket_pdf
    ]
}

/// A page or a redirect.
#[derive(Responder)]
pub enum Page {
    Template(Template),
    Redirect(Redirect),
    Status((Status, Template)),
    /// A redirect carrying a one-time message for the next page ("Refunded €12.50").
    Flash(rocket::response::Flash<Redirect>),
}

/// Everything a checkout or booking page shows.
struct Loaded {
    booking: Booking,
    event: Event,
    items: Vec<BookingItem>,
    attendees: Vec<Attendee>,
    types: Vec<TicketType>,
    waivers: Vec<crate::waivers::Waiver>,
    /// Signs the QR codes (door check-in verifies them).
    qr_key: ticketing_domain::door::DoorKey,
}

impl Loaded {
    /// The name of one of the event's ticket types (empty for an unknown id).
    fn type_name(&self, id: i64) -> String {
        self.types
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.name.clone())
            .unwrap_or_default()
    }
}

async fn load(db: &Db, token: &str) -> AppResult<Loaded> {
    if !looks_like_token(token) {
        return Err(AppError::not_found());
    }
    let token = token.to_string();
    db.run(move |conn| load_on(conn, &token)).await
}

/// [`load`] on a connection already at hand.
fn load_on(conn: &mut diesel::PgConnection, token: &str) -> AppResult<Loaded> {
    let booking = Booking::find_by_access_token(conn, token)?;
    let booking = refresh(conn, booking, Utc::now())?;
    let (event, types) = Event::with_ticket_types(conn, EventLookup::Id(booking.event_id))?;
    let items = booking.items(conn)?;
    let attendees = booking.attendees(conn)?;
    let ids: Vec<i64> = attendees.iter().map(|a| a.id).collect();
    let waivers = crate::waivers::for_attendees(conn, &ids)?;
    let qr_key = ticketing_domain::door::key(conn, event.id)?;
    Ok(Loaded {
        booking,
        event,
        items,
        attendees,
        types,
        waivers,
        qr_key,
    })
}

#[derive(Serialize)]
struct ItemView {
    name: String,
    quantity: i32,
    unit_price: String,
    line_total: String,
}

#[derive(Serialize)]
struct AttendeeView {
    index: usize,
    ticket_type: String,
    name: String,
    email: String,
    ticket_code: String,
    checked_in: bool,
    qr_svg: Option<String>,
    /// "signed", "unsigned", or None when the event needs no waiver (or none was sent yet).
    waiver: Option<&'static str>,
    waiver_url: Option<String>,
}

/// The shared context of every checkout and booking page.
fn context(l: &Loaded, with_qr: bool) -> serde_json::Value {
    let tz = l.event.tz();
    let type_name = |id: i64| l.type_name(id);
    let items: Vec<ItemView> = l
        .items
        .iter()
        .map(|i| ItemView {
            name: type_name(i.ticket_type_id),
            quantity: i.quantity,
            unit_price: Money::new(i.unit_price_minor, &i.currency).display(),
            line_total: Money::new(i.unit_price_minor * i64::from(i.quantity), &i.currency)
                .display(),
        })
        .collect();
    let waiver_of = |a: &Attendee| l.waivers.iter().find(|w| w.attendee_id == a.id);
    // A ticket cancelled on its own is no ticket any more: no QR code is drawn for it (the
    // booking page lists it under "Refunds and cancelled tickets").
    let people: Vec<AttendeeView> = l
        .attendees
        .iter()
        .filter(|a| a.cancelled_at.is_none())
        .enumerate()
        .map(|(index, a)| AttendeeView {
            index,
            ticket_type: type_name(a.ticket_type_id),
            name: a.name.clone(),
            email: a.email.clone(),
            ticket_code: a.ticket_code.clone(),
            checked_in: a.checked_in_at.is_some(),
            qr_svg: with_qr.then(|| qr_svg(&l.qr_key.payload(&a.ticket_code))),
            waiver: waiver_of(a).map(|w| {
                if w.signed_at.is_some() {
                    "signed"
                } else {
                    "unsigned"
                }
            }),
            waiver_url: waiver_of(a).map(|w| format!("/waivers/{}", w.token)),
        })
        .collect();
    let b = &l.booking;
    let minutes_left = ((b.hold_expires_at - Utc::now()).num_seconds().max(0) + 59) / 60;
    json!({
        "title": l.event.title,
        "booking": {
            "reference": b.reference,
            "token": b.access_token,
            "state": b.state,
            "state_label": b.state().label(),
            "seats": b.seats,
            "total": b.total().display(),
            "free": b.total_minor == 0,
            "buyer_name": b.buyer_name,
            "buyer_email": b.buyer_email,
            "buyer_phone": b.buyer_phone,
            "has_details": b.has_details(),
            "hold_expires_at": b.hold_expires_at.to_rfc3339(),
            "hold_expires_local": timefmt::local_time(b.hold_expires_at, tz),
            "minutes_left": minutes_left,
            "terms_accepted": b.terms_version.is_some(),
        },
        "event": {
            "title": l.event.title,
            "slug": l.event.slug,
            "venue": l.event.venue,
            "when": timefmt::local_range(l.event.starts_at, l.event.ends_at, tz),
            "timezone": l.event.timezone,
            "public": l.event.visibility() == crate::models::Visibility::Public,
            "url": event_url(&l.event, &l.booking),
            "waiver_required": l.event.waiver_required,
        },
        "items": items,
        "attendees": people,
    })
}

/// Where the buyer goes back to choose tickets again: a public event's page; a private
/// event's link only if the booking was made with it and it is still the event's link (a
/// rotated link is never handed out to holders of the old one); otherwise nowhere (test
/// `private::a_booking_page_links_back_only_by_the_link_it_was_made_with_while_it_is_current`).
fn event_url(event: &Event, booking: &Booking) -> Option<String> {
    use crate::models::Visibility;
    match (event.visibility(), &event.private_token) {
        (Visibility::Public, _) => Some(format!("/events/{}", event.slug)),
        (Visibility::Private, Some(token)) => {
            let current = crate::bookings::holds::link_hash(token);
            booking
                .private_link_hash
                .as_deref()
                .is_some_and(|made_with| crate::tokens::same(made_with, &current))
                .then(|| format!("/p/{token}"))
        }
        _ => None,
    }
}

/// An SVG QR code of a ticket code (qrcode crate).
pub fn qr_svg(code: &str) -> String {
    match qrcode::QrCode::new(code.as_bytes()) {
        Ok(qr) => qr
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(168, 168)
            .quiet_zone(true)
            .build()
            // Inline in HTML: drop the XML declaration.
            .split_once("?>")
            .map(|(_, svg)| svg.to_string())
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn booking_redirect(token: &str) -> Page {
    Page::Redirect(Redirect::to(format!("/bookings/{token}")))
}
