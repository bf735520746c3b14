//! The last checkout steps: the review page, then confirm (a free booking is confirmed at
//! once; a paid one goes to PayPal) or release the seats.

use diesel::prelude::*;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use super::{booking_redirect, context, load, Page};
use crate::bookings::lifecycle::transition;
use crate::bookings::Availability;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::BookingState;
use crate::paypal::PayPal;
use ticketing_db::ErrorKind;

#[get("/<token>/review")]
pub(super) async fn review(db: &State<Db>, token: &str) -> AppResult<Page> {
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
pub(super) async fn confirm(
    db: &State<Db>,
    paypal: &State<PayPal>,
    token: &str,
) -> AppResult<Page> {
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
pub(super) async fn release(
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
