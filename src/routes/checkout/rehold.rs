//! "Hold my seats again": a hold that ran out while the buyer was typing their details is
//! not revived (the state machine never moves a booking out of `expired` for that); instead
//! the same seats (same ticket types and quantities) are taken in a new hold through the
//! hold code every hold uses, so the same capacity and per-client rules apply and the hold
//! is refused whole when they are not all free. The details typed so far come back with the
//! form (as its fields) and fill in the new hold's details form.
//!
//! Only an `expired` booking that never went to PayPal can be held again: a booking in any
//! other state goes to its booking page, and one with a payment stays as it is, since a late
//! approval may still complete it (tests `checkout_ux::rehold_*`).

use std::collections::HashMap;

use chrono::Utc;
use rocket::form::Form;
use rocket::http::Status;
use rocket::{post, State};
use rocket_dyn_templates::Template;

use super::details::{details_page, expired_page, typed_values, DetailsForm};
use super::{booking_redirect, load, load_on, Page};
use crate::bookings::holds::{create_hold, link_hash, HoldError, HoldLimits, HoldRequest};
use crate::bookings::Availability;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::event::EventLookup;
use crate::models::{BookingState, Event, Payment, Visibility};
use crate::net::{ClientKey, IpRateLimit};
use crate::Config;

/// What an attempt to hold the seats again came to.
enum Outcome {
    /// A hold exists (made now, or by the same form a moment ago): its token.
    Held(String),
    /// Refused, with the reason for the buyer; nothing was taken.
    Refused(String),
}

#[post("/<token>/rehold", data = "<form>")]
#[allow(clippy::too_many_arguments)]
pub(super) async fn rehold(
    db: &State<Db>,
    config: &State<Config>,
    availability: &State<Availability>,
    limit: &State<IpRateLimit>,
    client_key: ClientKey,
    token: &str,
    form: Form<DetailsForm>,
) -> AppResult<Page> {
    let l = load(db, token).await?;
    let form = form.into_inner();
    let values = typed_values(&form, l.attendees.len());
    match l.booking.state() {
        BookingState::Expired => {}
        // Still held (a second click): the same hold, with what was typed.
        BookingState::Held => {
            let ctx = details_page(&l, config.hold_minutes, &values, &HashMap::new());
            return Ok(Page::Template(Template::render("checkout_details", ctx)));
        }
        _ => return Ok(booking_redirect(token)),
    }
    if !limit.allow(client_key) {
        tracing::warn!(client = %client_key, "hold rate limit reached");
        return Err(AppError::new(
            Status::TooManyRequests,
            "Too many booking attempts from your network. Please wait a minute and try again.",
        ));
    }
    let old = l.booking.clone();
    let items: Vec<(i64, i32)> = l
        .items
        .iter()
        .map(|i| (i.ticket_type_id, i.quantity))
        .collect();
    let details_minutes = config.hold_details_minutes;
    let seat_cap = config.max_seats_held_per_client;
    let client = client_key.to_string();
    let now = Utc::now();
    let outcome = db
        .run(move |conn| {
            if Payment::find_by_booking(conn, old.id)?.is_some() {
                return Ok(Outcome::Refused(
                    "This booking went on to PayPal, so it cannot be held again here. \
                     See your booking page, or choose tickets again on the event page."
                        .into(),
                ));
            }
            let (event, types) = Event::with_ticket_types(conn, EventLookup::Id(old.event_id))?;
            // Only by the way the booking was made, while that way still leads to the event.
            let private_token = match (event.visibility(), &event.private_token) {
                (Visibility::Public, _) => None,
                (Visibility::Private, Some(current))
                    if old.private_link_hash.as_deref().is_some_and(|made_with| {
                        crate::tokens::same(made_with, &link_hash(current))
                    }) =>
                {
                    Some(current.clone())
                }
                _ => {
                    return Ok(Outcome::Refused(
                        "These tickets can no longer be booked through the link you used.".into(),
                    ))
                }
            };
            let request = HoldRequest {
                event_id: event.id,
                quantities: items.clone(),
                // A second click finds the hold the first one made.
                idempotency_key: Some(crate::tokens::derived("rehold", &old.access_token)),
                client_key: Some(client),
                private_token,
            };
            let limits = HoldLimits {
                details_minutes,
                client_cap: seat_cap.for_event(types.iter().map(|t| t.max_per_booking)),
            };
            Ok(
                match create_hold(conn, &event, &types, &request, now, limits) {
                    Ok(made) => Outcome::Held(made.access_token),
                    Err(HoldError::NotEnough) => {
                        let (fresh, types) =
                            Event::with_ticket_types(conn, EventLookup::Id(event.id))?;
                        let event_left = fresh.seats_left();
                        let short: Vec<String> = items
                            .iter()
                            .filter_map(|&(id, wanted)| {
                                let t = types.iter().find(|t| t.id == id)?;
                                let left = t.seats_left(event_left).min(event_left);
                                (left < wanted).then(|| format!("{}: {left} left", t.name))
                            })
                            .collect();
                        Outcome::Refused(format!(
                            "Sorry, the same seats are not all free any more ({}). Nothing was \
                             reserved. You can choose other tickets on the event page.",
                            if short.is_empty() {
                                format!("{event_left} left for the event")
                            } else {
                                short.join("; ")
                            }
                        ))
                    }
                    Err(HoldError::Invalid { message, .. }) => {
                        Outcome::Refused(format!("{message} Nothing was reserved."))
                    }
                    Err(HoldError::ClientLimit { held, cap }) => {
                        Outcome::Refused(super::hold::client_limit_message(held, cap))
                    }
                    Err(HoldError::Db(e)) => return Err(e.into()),
                },
            )
        })
        .await?;
    match outcome {
        Outcome::Refused(problem) => Ok(expired_page(
            &l,
            config.hold_minutes,
            &values,
            Some(problem),
        )),
        Outcome::Held(new_token) => {
            availability.nudge();
            let held = db.run(move |conn| load_on(conn, &new_token)).await?;
            Ok(match held.booking.state() {
                BookingState::Held => {
                    let ctx = details_page(&held, config.hold_minutes, &values, &HashMap::new());
                    Page::Template(Template::render("checkout_details", ctx))
                }
                // The hold an earlier click made has run out too: offer it again.
                BookingState::Expired => expired_page(&held, config.hold_minutes, &values, None),
                _ => booking_redirect(&held.booking.access_token),
            })
        }
    }
}
