//! The first checkout step: the ticket form of an event page (public or private) makes a
//! hold, or shows the page again with fresh numbers, the buyer's input and the messages.

use std::collections::HashMap;

use chrono::Utc;
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{post, State};

use super::Page;
use crate::bookings::holds::{create_hold, HoldError, HoldLimits, HoldRequest};
use crate::bookings::Availability;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::event::EventLookup;
use crate::models::{Event, TicketType};
use crate::net::{ClientKey, IpRateLimit};
use crate::routes::public::{render_event, TicketForm};
use crate::tokens::looks_like_token;
use crate::views::EventView;
use crate::Config;
use ticketing_core::validate;

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
pub(super) async fn hold(
    db: &State<Db>,
    config: &State<Config>,
    jar: &rocket::http::CookieJar<'_>,
    availability: &State<Availability>,
    limit: &State<IpRateLimit>,
    client_key: ClientKey,
    form: Form<HoldForm>,
) -> AppResult<Page> {
    if !limit.allow(client_key) {
        tracing::warn!(client = %client_key, "hold rate limit reached");
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
    let details_minutes = config.hold_details_minutes;
    let seat_cap = config.max_seats_held_per_client;
    let client_key = client_key.to_string();
    let now = Utc::now();
    let outcome = db
        .run(move |conn| {
            let (event, types) = Event::with_ticket_types(conn, EventLookup::Id(event_id))?;
            if !link_admits(&event, private_token.as_deref()) {
                return Err(AppError::not_found());
            }
            let (quantities, mut errors) = read_quantities(&form.qty, &types);
            let mut refused = false;
            let mut status = Status::UnprocessableEntity;
            let request = HoldRequest {
                event_id: event.id,
                quantities,
                idempotency_key: key,
                client_key: Some(client_key),
                private_token: private_token.clone(),
            };
            let limits = HoldLimits {
                details_minutes,
                client_cap: seat_cap.for_event(types.iter().map(|t| t.max_per_booking)),
            };
            if errors.is_empty() {
                match create_hold(conn, &event, &types, &request, now, limits) {
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
                    Err(HoldError::ClientLimit { held, cap }) => {
                        // 429: this client's own budget, not the event, is exhausted; it
                        // comes back as its holds are paid, released or run out.
                        status = Status::TooManyRequests;
                        errors.insert("form".into(), client_limit_message(held, cap));
                    }
                    Err(HoldError::Db(e)) => return Err(e.into()),
                }
            }
            // Show the page again with fresh numbers, the buyer's input and the messages.
            let (fresh, types) = Event::with_ticket_types(conn, EventLookup::Id(event.id))?;
            if refused {
                not_enough_messages(&fresh, &types, &request.quantities, &mut errors);
            }
            let values = kept_values(&form.qty);
            let in_baskets = crate::bookings::availability::seats_in_baskets(conn, fresh.id)?;
            Ok(Err((
                EventView::new(&fresh, &types, now),
                in_baskets,
                errors,
                values,
                status,
            )))
        })
        .await?;
    match outcome {
        Ok(access_token) => {
            availability.nudge();
            Ok(Page::Redirect(Redirect::to(format!(
                "/checkout/{access_token}"
            ))))
        }
        Err((view, in_baskets, errors, values, status)) => {
            let page = render_event(
                view,
                in_baskets,
                private_token_shown.as_deref(),
                TicketForm {
                    errors,
                    values,
                    form_token,
                },
            );
            Ok(Page::Status((status, page)))
        }
    }
}

/// "Update total" of the ticket form without JavaScript: the event page again with the
/// quantities chosen, their messages, and the running total the server computed (see
/// `public::order_total`). Takes no seats (test `checkout_ux::the_total_without_javascript`).
#[post("/total", data = "<form>")]
pub(super) async fn total(db: &State<Db>, form: Form<HoldForm>) -> AppResult<Page> {
    let form = form.into_inner();
    let Ok(event_id) = form.event_id.trim().parse::<i64>() else {
        return Err(AppError::not_found());
    };
    let private_token = form.private_token.clone().filter(|t| !t.is_empty());
    let shown = private_token.clone();
    let form_token = form.form_token.clone().unwrap_or_default();
    let now = Utc::now();
    let (view, in_baskets, errors, values) = db
        .run(move |conn| {
            let (event, types) = Event::with_ticket_types(conn, EventLookup::Id(event_id))?;
            if !link_admits(&event, private_token.as_deref()) {
                return Err(AppError::not_found());
            }
            let (_, errors) = read_quantities(&form.qty, &types);
            let in_baskets = crate::bookings::availability::seats_in_baskets(conn, event.id)?;
            Ok((
                EventView::new(&event, &types, now),
                in_baskets,
                errors,
                kept_values(&form.qty),
            ))
        })
        .await?;
    let status = if errors.is_empty() {
        Status::Ok
    } else {
        Status::UnprocessableEntity
    };
    let page = render_event(
        view,
        in_baskets,
        shown.as_deref(),
        TicketForm {
            errors,
            values,
            form_token,
        },
    );
    Ok(Page::Status((status, page)))
}

/// Whether a ticket form came through a way that leads to its event: a public event's page
/// (no token), or a private event's current secret link.
fn link_admits(event: &Event, private_token: Option<&str>) -> bool {
    match event.visibility() {
        crate::models::Visibility::Public => private_token.is_none(),
        crate::models::Visibility::Private => {
            private_token.is_some() && event.private_token.as_deref() == private_token
        }
        crate::models::Visibility::Draft => false,
    }
}

/// The quantities of a ticket form (ticket type id, quantity > 0), and the messages of the
/// fields that are not a quantity this event sells.
fn read_quantities(
    qty: &HashMap<String, String>,
    types: &[TicketType],
) -> (Vec<(i64, i32)>, HashMap<String, String>) {
    let mut errors: HashMap<String, String> = HashMap::new();
    let mut quantities = Vec::new();
    for (key, raw) in qty {
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
    (quantities, errors)
}

/// What the buyer typed into the quantity fields, kept for the page shown again.
fn kept_values(qty: &HashMap<String, String>) -> HashMap<String, String> {
    qty.iter()
        .map(|(k, v)| (format!("qty-{k}"), v.chars().take(20).collect()))
        .collect()
}

/// Why a client's hold was refused by the per-client cap (test
/// `hoarding::one_client_cannot_hold_more_than_the_cap_and_another_client_still_can`).
pub(super) fn client_limit_message(held: i32, cap: i32) -> String {
    let seats = |n: i32| format!("{n} seat{}", if n == 1 { "" } else { "s" });
    format!(
        "You already hold {} for this event, and one buyer may hold at most {cap} at a time. \
         Finish or release your other booking first (or wait for it to run out). \
         Nothing was reserved.",
        seats(held)
    )
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
