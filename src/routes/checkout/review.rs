//! The last checkout steps: the review page, then confirm (a free booking is confirmed at
//! once; a paid one goes to PayPal) or release the seats. Confirming needs the ticked box
//! "I accept the terms and the refund policy": without it the review page comes back with
//! the message next to the box and nothing changes; with it the booking records the terms
//! version and the time (`legal::review_needs_the_terms_box`, `legal::free_booking_records_terms`).

use diesel::prelude::*;
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use super::{booking_redirect, context, load, Loaded, Page};
use crate::bookings::lifecycle::transition;
use crate::bookings::Availability;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::{BookingState, LegalPage};
use crate::paypal::PayPal;
use crate::routes::form_errors;
use crate::schema::bookings;
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
        review_context(&l, None, None),
    )))
}

/// The review page's context: the shared one, the title naming the step, and the messages
/// (`terms`: next to the terms box; `form`: about the whole page) with their summary.
fn review_context(l: &Loaded, terms: Option<&str>, form: Option<&str>) -> serde_json::Value {
    let mut ctx = context(l, false);
    let mut errors = std::collections::HashMap::new();
    if let Some(message) = terms {
        errors.insert("accept_terms".to_string(), message.to_string());
        ctx["terms_error"] = json!(message);
    }
    if let Some(message) = form {
        errors.insert(form_errors::FORM.to_string(), message.to_string());
    }
    let fields = [form_errors::Field::new("accept_terms", "accept_terms", "")];
    ctx["summary"] = json!(form_errors::summary(&errors, &fields));
    ctx["title"] = json!(form_errors::title(
        if l.booking.total_minor == 0 {
            "Review and confirm"
        } else {
            "Review and pay"
        },
        &l.event.title,
        !errors.is_empty()
    ));
    ctx
}

/// The message next to the terms box when it was not ticked.
pub const TERMS_REQUIRED: &str =
    "Tick the box to accept the terms and the refund policy before you confirm.";

/// The confirm form: only the terms box (a missing or unreadable body is an unticked box).
#[derive(FromForm)]
pub(super) struct ConfirmForm {
    #[field(default = false)]
    accept_terms: bool,
}

/// The buyer confirms: a free booking is confirmed at once; a paid one goes to PayPal. A
/// booking whose buyer has not accepted the terms yet needs the ticked box first.
#[post("/<token>/confirm", data = "<form>")]
pub(super) async fn confirm(
    db: &State<Db>,
    paypal: &State<PayPal>,
    token: &str,
    form: Option<Form<ConfirmForm>>,
) -> AppResult<Page> {
    let l = load(db, token).await?;
    let state = l.booking.state();
    if !matches!(state, BookingState::Held | BookingState::AwaitingPayment) {
        return Ok(booking_redirect(token));
    }
    if !l.booking.has_details() {
        return Ok(Page::Redirect(Redirect::to(format!("/checkout/{token}"))));
    }
    if l.booking.terms_version.is_none() {
        if !form.is_some_and(|f| f.accept_terms) {
            let ctx = review_context(&l, Some(TERMS_REQUIRED), None);
            return Ok(Page::Status((
                Status::UnprocessableEntity,
                Template::render("checkout_review", ctx),
            )));
        }
        let id = l.booking.id;
        db.run(move |conn| {
            let version = LegalPage::terms_version(conn)?;
            diesel::update(
                bookings::table
                    .find(id)
                    .filter(bookings::terms_version.is_null()),
            )
            .set((
                bookings::terms_version.eq(version),
                bookings::terms_accepted_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?;
            Ok(())
        })
        .await?;
    }
    if l.booking.total_minor > 0 {
        return match paypal.start(db, l.booking.id).await {
            Ok(approve_url) => Ok(Page::Redirect(Redirect::to(approve_url))),
            Err(e) if e.kind == ErrorKind::Unavailable => {
                tracing::warn!(error = %e, "could not start a PayPal payment");
                let ctx = review_context(&l, None, Some(&e.message));
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
