//! Refunds (admins only): a full or partial refund of a booking's payment through PayPal,
//! from the form on the booking page. The form carries a one-time token so a resubmitted
//! form cannot refund twice; the audit entry is written with the refund request.

use rocket::form::FromForm;
use rocket::response::{Flash, Redirect};
use rocket::{post, State};
use serde_json::json;

use super::bookings::detail_with_errors;
use super::parse_amount;
use crate::auth::{self, AdminForm};
use crate::db::Db;
use crate::error::AppResult;
use crate::models::Booking;
use crate::paypal::PayPal;
use crate::routes::checkout::Page;
use ticketing_db::ErrorKind;

#[derive(FromForm)]
pub struct RefundForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = false)]
    confirm: bool,
    /// Decimal amount in the booking's currency; empty for everything left.
    #[field(default = String::new())]
    amount: String,
    #[field(default = String::new())]
    reason: String,
    /// One-time token of the rendered form (see `PayPal::refund`).
    #[field(default = String::new())]
    refund_token: String,
}

csrf_form!(RefundForm);

#[post("/bookings/<id>/refund", data = "<form>")]
pub(super) async fn refund_booking(
    db: &State<Db>,
    paypal: &State<PayPal>,
    id: i64,
    form: AdminForm<RefundForm>,
) -> AppResult<Page> {
    let AdminForm { staff, form } = form;
    let booking = db.run(move |conn| Ok(Booking::find(conn, id)?)).await?;
    let amount = if form.amount.trim().is_empty() {
        None
    } else {
        match parse_amount(&form.amount, &booking.currency) {
            Some(a) => Some(a),
            None => {
                let msg = "Enter the amount like 12.50, or leave it empty to refund everything that is left.";
                return detail_with_errors(db, &staff, id, json!({ "amount": msg, "amount_value": form.amount.chars().take(30).collect::<String>() })).await;
            }
        }
    };
    if !form.confirm {
        return detail_with_errors(db, &staff, id, json!({ "refund_confirm": "Tick the box to confirm the refund.", "amount_value": form.amount.chars().take(30).collect::<String>() })).await;
    }
    let reason: String = form.reason.chars().take(250).collect();
    // The audit entry is written with the refund request, so a refund finished later by the
    // reconciliation job still says who asked for it.
    let (s2, r2, state, currency) = (
        staff.clone(),
        reason.clone(),
        booking.state.clone(),
        booking.currency.clone(),
    );
    let audit = move |conn: &mut diesel::PgConnection, refund_id: i64| {
        auth::audit(
            conn,
            &s2,
            "booking.refund",
            "booking",
            Some(id),
            Some(json!({ "state": state })),
            Some(json!({
                "refund_id": refund_id,
                "amount_minor": amount,
                "amount": amount.map_or_else(
                    || "all that was left".to_string(),
                    |a| crate::money::Money::new(a, &currency).display(),
                ),
                "reason": r2,
            })),
        )
    };
    let token = Some(form.refund_token.as_str()).filter(|t| !t.is_empty());
    if let Err(e) = paypal.refund(db, id, amount, &reason, token, audit).await {
        if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal) {
            return Err(e.into());
        }
        return detail_with_errors(db, &staff, id, json!({ "amount": e.message, "amount_value": form.amount.chars().take(30).collect::<String>() })).await;
    }
    let done = match amount {
        Some(a) => format!(
            "Refunded {} through PayPal; the buyer is told by mail.",
            crate::money::Money::new(a, &booking.currency).display()
        ),
        None => {
            "Refunded everything that was left through PayPal; the buyer is told by mail.".into()
        }
    };
    Ok(Page::Flash(Flash::success(
        Redirect::to(format!("/admin/bookings/{id}")),
        done,
    )))
}
