//! Payments area (`/payments/paypal`): where PayPal sends the buyer back (return and cancel)
//! and where PayPal's webhooks arrive. Every outcome gets a clear page.

use rocket::data::{Data, ToByteUnit};
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::Redirect;
use rocket::{get, post, routes, Route, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::Booking;
use crate::models::Payment;
use crate::paypal::verify::TransmissionHeaders;
use crate::paypal::{CaptureOutcome, PayPal};
use crate::routes::checkout::Page;
use ticketing_db::ErrorKind;

pub fn routes() -> Vec<Route> {
    routes![paypal_return, paypal_cancel, webhook]
}

/// The payment and booking of a PayPal order id (`token` in PayPal's return URLs), only
/// together with the booking's return state (`state`, which only the buyer's browser got):
/// the order id alone, which staff and PayPal's mails show, opens nothing (404).
async fn by_order(db: &Db, order_id: &str, state: Option<&str>) -> AppResult<(Payment, Booking)> {
    let Some(state) = state.filter(|s| crate::tokens::looks_like_token(s)) else {
        return Err(AppError::not_found());
    };
    let (order_id, state) = (order_id.to_string(), state.to_string());
    db.run(move |conn| {
        let p = Payment::find_by_order(conn, &order_id)?.ok_or_else(AppError::not_found)?;
        let b = Booking::find(conn, p.booking_id)?;
        if !crate::tokens::same(&crate::paypal::order::return_state(&b.access_token), &state) {
            return Err(AppError::not_found());
        }
        Ok((p, b))
    })
    .await
}

fn result_page(status: Status, kind: &str, booking: &Booking, approve_url: Option<&str>) -> Page {
    // The page title names the outcome, as the page's heading does.
    let title = match kind {
        "pending" => "Payment pending",
        "declined" => "Payment declined",
        "not_approved" => "Payment not approved yet",
        "late" => "Sorry, your seats are gone",
        "booking_cancelled" => "This booking was cancelled",
        "refunded" => "Your payment is being refunded",
        "unavailable" => "We could not confirm your payment yet",
        "cancelled" => "Payment cancelled",
        _ => "Your reservation has expired",
    };
    Page::Status((
        status,
        Template::render(
            "payment_result",
            json!({
                "title": title,
                "kind": kind,
                "total": booking.total().display(),
                "booking_url": format!("/bookings/{}", booking.access_token),
                "confirm_url": format!("/checkout/{}/confirm", booking.access_token),
                "approve_url": approve_url,
                "reference": booking.reference,
            }),
        ),
    ))
}

/// The buyer approved at PayPal and came back: capture now.
#[get("/return?<token>&<state>")]
async fn paypal_return(
    db: &State<Db>,
    paypal: &State<PayPal>,
    token: &str,
    state: Option<&str>,
) -> AppResult<Page> {
    let (payment, booking) = by_order(db, token, state).await?;
    let id = payment.id;
    db.run(move |conn| Ok(Payment::mark_buyer_cancelled(conn, id, false)?))
        .await?;
    let outcome = paypal.capture(db, payment.id).await?;
    Ok(match outcome {
        CaptureOutcome::Paid | CaptureOutcome::Closed => {
            Page::Redirect(Redirect::to(format!("/bookings/{}", booking.access_token)))
        }
        CaptureOutcome::Pending => result_page(Status::Ok, "pending", &booking, None),
        CaptureOutcome::Declined { approve_url } => {
            result_page(Status::Ok, "declined", &booking, Some(&approve_url))
        }
        CaptureOutcome::NotApproved { approve_url } => {
            result_page(Status::Ok, "not_approved", &booking, Some(&approve_url))
        }
        CaptureOutcome::LateNoSeats => result_page(Status::Ok, "late", &booking, None),
        CaptureOutcome::Cancelled => result_page(Status::Ok, "booking_cancelled", &booking, None),
        CaptureOutcome::Refunded => result_page(Status::Ok, "refunded", &booking, None),
        CaptureOutcome::Unavailable => result_page(Status::Ok, "unavailable", &booking, None),
    })
}

/// The buyer cancelled at PayPal: their seats stay held while the hold lasts.
#[get("/cancel?<token>&<state>")]
async fn paypal_cancel(db: &State<Db>, token: &str, state: Option<&str>) -> AppResult<Page> {
    let (payment, booking) = by_order(db, token, state).await?;
    let (id, payment_id) = (booking.id, payment.id);
    let booking = db
        .run(move |conn| {
            // The booking page then says so, and offers to pay again or release the seats
            // (test `paypal_flow::a_cancel_at_paypal_is_said_on_the_booking_page`).
            Payment::mark_buyer_cancelled(conn, payment_id, true)?;
            let b = Booking::find(conn, id)?;
            Ok(crate::bookings::lifecycle::refresh(
                conn,
                b,
                chrono::Utc::now(),
            )?)
        })
        .await?;
    let kind = match booking.state() {
        s if s.holds_seats() => "cancelled",
        crate::models::BookingState::Cancelled => "booking_cancelled",
        _ => "expired",
    };
    Ok(result_page(Status::Ok, kind, &booking, None))
}

/// The raw body and the PayPal transmission headers of a webhook delivery.
pub struct Delivery {
    headers: Result<TransmissionHeaders, String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Delivery {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let get = |name: &str| req.headers().get_one(name).map(str::to_string);
        Outcome::Success(Delivery {
            headers: TransmissionHeaders::from_lookup(get),
        })
    }
}

/// PayPal's webhooks: verified before anything else (400 and a log line when not), recorded
/// once by event id, then settled from a fresh look at the order.
#[post("/webhook", data = "<body>")]
async fn webhook(
    db: &State<Db>,
    paypal: &State<PayPal>,
    delivery: Delivery,
    body: Data<'_>,
) -> (Status, String) {
    let (outcome, status, text) = receive(db, paypal, delivery, body).await;
    ticketing_core::telemetry::webhook(outcome);
    (status, text)
}

async fn receive(
    db: &State<Db>,
    paypal: &State<PayPal>,
    delivery: Delivery,
    body: Data<'_>,
) -> (&'static str, Status, String) {
    let body = match body.open(256.kibibytes()).into_bytes().await {
        Ok(b) if b.is_complete() => b.into_inner(),
        _ => {
            tracing::warn!("webhook refused: body unreadable or over 256 KiB");
            return ("refused", Status::BadRequest, "body too large".into());
        }
    };
    let headers = match delivery.headers {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(reason = %e, "webhook refused");
            return ("refused", Status::BadRequest, e);
        }
    };
    if let Err(reason) = paypal.verify_webhook(&headers, &body).await {
        tracing::warn!(reason = %reason, transmission = %headers.transmission_id, "webhook refused: verification failed");
        return (
            "unverified",
            Status::BadRequest,
            "verification failed".into(),
        );
    }
    match paypal.handle_webhook(db, &body).await {
        Ok(outcome) => {
            tracing::info!(outcome = %outcome, "webhook handled");
            ("handled", Status::Ok, "ok".into())
        }
        Err(e) if !matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal) => {
            tracing::warn!(error = %e, "webhook refused");
            ("refused", crate::error::status_of(e.kind), e.message)
        }
        Err(e) => {
            // PayPal retries deliveries that fail, so a passing fault loses nothing.
            tracing::error!(error = %e, "webhook failed");
            ("failed", Status::InternalServerError, "try again".into())
        }
    }
}
