//! Checkout area (`/checkout`, `/bookings`): choosing tickets creates a hold; then attendee
//! details, review, and payment (free bookings are confirmed here; paid ones go on to
//! PayPal); the buyer's private booking page with tickets, QR codes and an `.ics` file.
//! Every page is reached through the booking's secret access token, works without
//! JavaScript, and keeps the buyer's input with a message next to each bad field.

use std::collections::HashMap;

use chrono::Utc;
use diesel::prelude::*;
use rocket::form::{Form, FromForm};
use rocket::http::{Header, Status};
use rocket::response::Redirect;
use rocket::{get, post, routes, Responder, Route, State};
use rocket_dyn_templates::Template;
use serde::Serialize;
use serde_json::json;

use crate::bookings::holds::{create_hold, HoldError, HoldRequest};
use crate::bookings::lifecycle::{refresh, transition};
use crate::bookings::Availability;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::event::EventLookup;
use crate::models::{Attendee, Booking, BookingItem, BookingState, Event, TicketType};
use crate::money::Money;
use crate::net::{ClientIp, IpRateLimit};
use crate::paypal::PayPal;
use crate::routes::public::{render_event, TicketForm};
use crate::schema::{attendees, bookings};
use crate::tokens::looks_like_token;
use crate::views::EventView;
use crate::{timefmt, AppInfo, Config};
use ticketing_core::validate;
use ticketing_db::ErrorKind;

pub fn routes() -> Vec<Route> {
    routes![hold, details, save_details, review, confirm, release]
}

pub fn booking_routes() -> Vec<Route> {
    routes![booking_page, calendar]
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

#[derive(FromForm)]
pub struct HoldForm {
    #[field(default = String::new())]
    event_id: String,
    private_token: Option<String>,
    form_token: Option<String>,
    #[field(default = HashMap::new())]
    qty: HashMap<String, String>,
}

/// The cookie that ties a ticket form's token to the browser that was shown the form.
const BROWSER_COOKIE: &str = "bid";

/// The browser's random id, set (HttpOnly, SameSite=Lax) when an event page is shown. A hold
/// made with a form token is found again (a double click, the back button) only by the
/// browser that made it: the stored key is derived from this id, the event and the form
/// token, so a token planted in another buyer's form and replayed leads nowhere (test
/// `bookings::a_replayed_form_token_never_reveals_another_buyers_booking`). A cross-site
/// form post does not carry the cookie, so it makes an unkeyed hold.
pub fn ensure_browser_id(jar: &rocket::http::CookieJar<'_>, secure: bool) {
    if jar.get(BROWSER_COOKIE).is_none() {
        jar.add(
            rocket::http::Cookie::build((BROWSER_COOKIE, crate::tokens::url_token(18)))
                .path("/")
                .http_only(true)
                .same_site(rocket::http::SameSite::Lax)
                .secure(secure)
                .max_age(rocket::time::Duration::days(1)),
        );
    }
}

/// The idempotency key of a hold: only for a server-made form token and this browser's id.
fn hold_key(
    jar: &rocket::http::CookieJar<'_>,
    event_id: i64,
    form_token: Option<&str>,
) -> Option<String> {
    let token = form_token.filter(|t| looks_like_token(t))?;
    let browser = jar
        .get(BROWSER_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|b| looks_like_token(b))?;
    Some(crate::tokens::derived(
        "hold-key",
        &format!("{browser}|{event_id}|{token}"),
    ))
}

/// Creates a hold from the ticket form of an event page (public or private).
#[post("/hold", data = "<form>")]
#[allow(clippy::too_many_arguments)]
async fn hold(
    db: &State<Db>,
    config: &State<Config>,
    jar: &rocket::http::CookieJar<'_>,
    availability: &State<Availability>,
    limit: &State<IpRateLimit>,
    client: ClientIp,
    form: Form<HoldForm>,
) -> AppResult<Page> {
    if !limit.allow(client.0) {
        tracing::warn!(client = %client.0, "hold rate limit reached");
        return Err(AppError::new(
            Status::TooManyRequests,
            "Too many booking attempts from your network. Please wait a minute and try again.",
        ));
    }
    let form = form.into_inner();
    let Ok(event_id) = form.event_id.trim().parse::<i64>() else {
        return Err(AppError::not_found());
    };
    let key = hold_key(jar, event_id, form.form_token.as_deref());
    let private_token = form.private_token.clone().filter(|t| !t.is_empty());
    let private_token_shown = private_token.clone();
    let form_token = form.form_token.clone().unwrap_or_default();
    let hold_minutes = config.hold_minutes;
    let now = Utc::now();
    let outcome = db
        .run(move |conn| {
            let (event, types) = Event::with_ticket_types(conn, EventLookup::Id(event_id))?;
            // A private event is bookable only with its current secret token.
            let allowed = match event.visibility() {
                crate::models::Visibility::Public => private_token.is_none(),
                crate::models::Visibility::Private => {
                    private_token.is_some() && event.private_token == private_token
                }
                crate::models::Visibility::Draft => false,
            };
            if !allowed {
                return Err(AppError::not_found());
            }
            let mut errors: HashMap<String, String> = HashMap::new();
            let mut refused = false;
            let mut quantities = Vec::new();
            for (key, raw) in &form.qty {
                let Some(t) = key
                    .parse::<i64>()
                    .ok()
                    .and_then(|id| types.iter().find(|t| t.id == id))
                else {
                    errors.insert(
                        "form".into(),
                        "That ticket type is not sold for this event.".into(),
                    );
                    continue;
                };
                match validate::quantity(raw) {
                    Ok(0) => {}
                    Ok(n) if n > t.max_per_booking => {
                        errors.insert(
                            format!("qty-{}", t.id),
                            format!("At most {} per booking.", t.max_per_booking),
                        );
                    }
                    Ok(n) => quantities.push((t.id, n)),
                    Err(msg) => {
                        errors.insert(format!("qty-{}", t.id), msg);
                    }
                }
            }
            let request = HoldRequest {
                event_id: event.id,
                quantities,
                idempotency_key: key,
            };
            if errors.is_empty() {
                match create_hold(conn, &event, &types, &request, now, hold_minutes) {
                    Ok(outcome) => return Ok(Ok(outcome.access_token)),
                    Err(HoldError::Invalid {
                        ticket_type_id,
                        message,
                    }) => {
                        let key = ticket_type_id
                            .map(|id| format!("qty-{id}"))
                            .unwrap_or_else(|| "form".into());
                        errors.insert(key, message);
                    }
                    Err(HoldError::NotEnough) => refused = true,
                    Err(HoldError::Db(e)) => return Err(e.into()),
                }
            }
            // Show the page again with fresh numbers, the buyer's input and the messages.
            let (fresh, types) = Event::with_ticket_types(conn, EventLookup::Id(event.id))?;
            if refused {
                not_enough_messages(&fresh, &types, &request.quantities, &mut errors);
            }
            let values: HashMap<String, String> = form
                .qty
                .iter()
                .map(|(k, v)| (format!("qty-{k}"), v.chars().take(20).collect()))
                .collect();
            Ok(Err((EventView::new(&fresh, &types, now), errors, values)))
        })
        .await?;
    match outcome {
        Ok(access_token) => {
            availability.nudge();
            Ok(Page::Redirect(Redirect::to(format!(
                "/checkout/{access_token}"
            ))))
        }
        Err((view, errors, values)) => {
            let page = render_event(
                view,
                private_token_shown.as_deref(),
                TicketForm {
                    errors,
                    values,
                    form_token,
                },
            );
            Ok(Page::Status((Status::UnprocessableEntity, page)))
        }
    }
}

/// Tells the buyer, per ticket type and for the event, how many seats are left.
fn not_enough_messages(
    event: &Event,
    types: &[TicketType],
    wanted: &[(i64, i32)],
    errors: &mut HashMap<String, String>,
) {
    let event_left = event.seats_left();
    for &(id, qty) in wanted {
        let left = types
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.seats_left(event_left))
            .unwrap_or(0);
        if qty > left {
            errors.insert(format!("qty-{id}"), left_message(left));
        }
    }
    let wanted_total: i32 = wanted.iter().map(|(_, q)| q).sum();
    if wanted_total > event_left || errors.is_empty() {
        let status = match event_left {
            0 => "This event is sold out.".to_string(),
            1 => "Only 1 seat is left for this event.".to_string(),
            n => format!("Only {n} seats are left for this event."),
        };
        errors.insert("form".into(), format!("{status} Nothing was reserved."));
    }
}

fn left_message(n: i32) -> String {
    match n {
        0 => "Sold out.".into(),
        1 => "Only 1 left.".into(),
        n => format!("Only {n} left."),
    }
}

/// Everything a checkout or booking page shows.
struct Loaded {
    booking: Booking,
    event: Event,
    items: Vec<BookingItem>,
    attendees: Vec<Attendee>,
    types: Vec<TicketType>,
    waivers: Vec<crate::waivers::Waiver>,
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
    Ok(Loaded {
        booking,
        event,
        items,
        attendees,
        types,
        waivers,
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
    let type_name = |id: i64| {
        l.types
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.name.clone())
            .unwrap_or_default()
    };
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
    let people: Vec<AttendeeView> = l
        .attendees
        .iter()
        .enumerate()
        .map(|(index, a)| AttendeeView {
            index,
            ticket_type: type_name(a.ticket_type_id),
            name: a.name.clone(),
            email: a.email.clone(),
            ticket_code: a.ticket_code.clone(),
            checked_in: a.checked_in_at.is_some(),
            qr_svg: with_qr.then(|| qr_svg(&a.ticket_code)),
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
        },
        "event": {
            "title": l.event.title,
            "slug": l.event.slug,
            "venue": l.event.venue,
            "when": timefmt::local_range(l.event.starts_at, l.event.ends_at, tz),
            "timezone": l.event.timezone,
            "public": l.event.visibility() == crate::models::Visibility::Public,
            "url": event_url(&l.event),
            "waiver_required": l.event.waiver_required,
        },
        "items": items,
        "attendees": people,
    })
}

/// Where the buyer goes back to choose tickets again.
fn event_url(event: &Event) -> String {
    match (&event.visibility(), &event.private_token) {
        (crate::models::Visibility::Private, Some(token)) => format!("/p/{token}"),
        _ => format!("/events/{}", event.slug),
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

#[get("/<token>")]
async fn details(db: &State<Db>, token: &str) -> AppResult<Page> {
    let l = load(db, token).await?;
    if l.booking.state() != BookingState::Held {
        return Ok(booking_redirect(token));
    }
    let mut ctx = context(&l, false);
    let mut values: HashMap<String, String> = HashMap::new();
    values.insert("buyer_name".into(), l.booking.buyer_name.clone());
    values.insert("buyer_email".into(), l.booking.buyer_email.clone());
    values.insert("buyer_phone".into(), l.booking.buyer_phone.clone());
    for (i, a) in l.attendees.iter().enumerate() {
        values.insert(format!("attendees.{i}.name"), a.name.clone());
        values.insert(format!("attendees.{i}.email"), a.email.clone());
    }
    ctx["values"] = json!(values);
    ctx["errors"] = json!({});
    Ok(Page::Template(Template::render("checkout_details", ctx)))
}

#[derive(FromForm, Default)]
pub struct AttendeeInput {
    #[field(default = String::new())]
    name: String,
    #[field(default = String::new())]
    email: String,
}

#[derive(FromForm)]
pub struct DetailsForm {
    #[field(default = String::new())]
    buyer_name: String,
    #[field(default = String::new())]
    buyer_email: String,
    #[field(default = String::new())]
    buyer_phone: String,
    #[field(default = Vec::new())]
    attendees: Vec<AttendeeInput>,
}

#[post("/<token>", data = "<form>")]
async fn save_details(db: &State<Db>, token: &str, form: Form<DetailsForm>) -> AppResult<Page> {
    let l = load(db, token).await?;
    if l.booking.state() != BookingState::Held {
        return Ok(booking_redirect(token));
    }
    let form = form.into_inner();
    let mut errors: HashMap<String, String> = HashMap::new();
    let mut check = |key: String, result: Result<String, String>| match result {
        Ok(v) => v,
        Err(msg) => {
            errors.insert(key, msg);
            String::new()
        }
    };
    let buyer_name = check("buyer_name".into(), validate::name(&form.buyer_name));
    let buyer_email = check("buyer_email".into(), validate::email(&form.buyer_email));
    let buyer_phone = check("buyer_phone".into(), validate::phone(&form.buyer_phone));
    let mut people = Vec::new();
    for i in 0..l.attendees.len() {
        let input = form.attendees.get(i);
        let name = check(
            format!("attendees.{i}.name"),
            validate::name(input.map(|a| a.name.as_str()).unwrap_or("")),
        );
        let raw_email = input.map(|a| a.email.trim()).unwrap_or("");
        let email = if raw_email.is_empty() {
            String::new()
        } else {
            check(format!("attendees.{i}.email"), validate::email(raw_email))
        };
        people.push((name, email));
    }
    if form.attendees.len() > l.attendees.len() {
        errors.insert(
            "form".into(),
            "The form had more attendees than seats held.".into(),
        );
    }
    if !errors.is_empty() {
        let mut values: HashMap<String, String> = HashMap::new();
        let keep = |s: &str| s.chars().take(300).collect::<String>();
        values.insert("buyer_name".into(), keep(&form.buyer_name));
        values.insert("buyer_email".into(), keep(&form.buyer_email));
        values.insert("buyer_phone".into(), keep(&form.buyer_phone));
        for (i, a) in form.attendees.iter().enumerate().take(l.attendees.len()) {
            values.insert(format!("attendees.{i}.name"), keep(&a.name));
            values.insert(format!("attendees.{i}.email"), keep(&a.email));
        }
        let mut ctx = context(&l, false);
        ctx["values"] = json!(values);
        ctx["errors"] = json!(errors);
        return Ok(Page::Status((
            Status::UnprocessableEntity,
            Template::render("checkout_details", ctx),
        )));
    }
    let booking_id = l.booking.id;
    let saved = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let n = diesel::update(
                    bookings::table
                        .find(booking_id)
                        .filter(bookings::state.eq(BookingState::Held.as_str())),
                )
                .set((
                    bookings::buyer_name.eq(&buyer_name),
                    bookings::buyer_email.eq(&buyer_email),
                    bookings::buyer_phone.eq(&buyer_phone),
                    bookings::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)?;
                for (i, (name, email)) in people.iter().enumerate() {
                    diesel::update(
                        attendees::table
                            .filter(attendees::booking_id.eq(booking_id))
                            .filter(attendees::position.eq(i as i32 + 1)),
                    )
                    .set((attendees::name.eq(name), attendees::email.eq(email)))
                    .execute(conn)?;
                }
                Ok::<_, diesel::result::Error>(n == 1)
            })
            .map_err(AppError::from)
        })
        .await?;
    Ok(if saved {
        Page::Redirect(Redirect::to(format!("/checkout/{token}/review")))
    } else {
        booking_redirect(token)
    })
}

#[get("/<token>/review")]
async fn review(db: &State<Db>, token: &str) -> AppResult<Page> {
    let l = load(db, token).await?;
    if l.booking.state() != BookingState::Held {
        return Ok(booking_redirect(token));
    }
    if !l.booking.has_details() {
        return Ok(Page::Redirect(Redirect::to(format!("/checkout/{token}"))));
    }
    Ok(Page::Template(Template::render(
        "checkout_review",
        context(&l, false),
    )))
}

/// The buyer confirms: a free booking is confirmed at once; a paid one goes to PayPal.
#[post("/<token>/confirm")]
async fn confirm(db: &State<Db>, paypal: &State<PayPal>, token: &str) -> AppResult<Page> {
    let l = load(db, token).await?;
    let state = l.booking.state();
    if !matches!(state, BookingState::Held | BookingState::AwaitingPayment) {
        return Ok(booking_redirect(token));
    }
    if !l.booking.has_details() {
        return Ok(Page::Redirect(Redirect::to(format!("/checkout/{token}"))));
    }
    if l.booking.total_minor > 0 {
        return match paypal.start(db, l.booking.id).await {
            Ok(approve_url) => Ok(Page::Redirect(Redirect::to(approve_url))),
            Err(e) if e.kind == ErrorKind::Unavailable => {
                tracing::warn!(error = %e, "could not start a PayPal payment");
                let mut ctx = context(&l, false);
                ctx["error"] = json!(e.message);
                Ok(Page::Status((
                    Status::ServiceUnavailable,
                    Template::render("checkout_review", ctx),
                )))
            }
            Err(e) => Err(e.into()),
        };
    }
    let id = l.booking.id;
    db.run(move |conn| {
        conn.transaction(|conn| {
            transition(
                conn,
                id,
                &[BookingState::Held],
                BookingState::Paid,
                "free booking confirmed",
            )
        })
        .map_err(AppError::from)
    })
    .await?;
    Ok(booking_redirect(token))
}

/// The buyer gives the seats back before paying.
#[post("/<token>/release")]
async fn release(
    db: &State<Db>,
    availability: &State<Availability>,
    token: &str,
) -> AppResult<Page> {
    let l = load(db, token).await?;
    let id = l.booking.id;
    let released = db
        .run(move |conn| {
            conn.transaction(|conn| {
                transition(
                    conn,
                    id,
                    &[BookingState::Held, BookingState::AwaitingPayment],
                    BookingState::Cancelled,
                    "released by the buyer",
                )
            })
            .map_err(AppError::from)
        })
        .await?;
    if released.is_some() {
        availability.nudge();
    }
    Ok(booking_redirect(token))
}

#[get("/<token>")]
async fn booking_page(db: &State<Db>, token: &str) -> AppResult<Template> {
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
struct Calendar {
    body: String,
    disposition: Header<'static>,
}

#[get("/<token>/calendar.ics")]
async fn calendar(db: &State<Db>, app: &State<AppInfo>, token: &str) -> AppResult<Calendar> {
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
