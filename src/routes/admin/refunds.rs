//! Refunds (admins only): a full or partial refund of a booking's payment through PayPal,
//! from the form on the booking page, and one ticket refunded or cancelled on its own. The
//! refund form carries a one-time token so a resubmitted form cannot refund twice (a ticket
//! is refunded at most once by construction); the audit entry is written with the refund
//! request. Reasons are shown to the buyer (mail and booking page) and validated here.

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

/// Longest refund or cancellation reason (it goes to PayPal's note to the buyer too, which
/// takes 255).
pub(super) const MAX_REASON: usize = 250;

/// The admin's reason, shown to the buyer: trimmed, at most [`MAX_REASON`] characters, no
/// control characters (test `ticket_changes::a_bad_reason_is_refused_and_changes_nothing`).
pub(super) fn reason(raw: &str) -> Result<String, String> {
    ticketing_core::validate::single_line(raw, MAX_REASON)
}

/// What the admin typed, kept for the form shown again (bounded).
fn kept(raw: &str) -> String {
    raw.chars().take(MAX_REASON + 50).collect()
}

#[post("/bookings/<id>/refund", data = "<form>")]
pub(super) async fn refund_booking(
    db: &State<Db>,
    paypal: &State<PayPal>,
    id: i64,
    form: AdminForm<RefundForm>,
) -> AppResult<Page> {
    let AdminForm { staff, form } = form;
    let booking = db.run(move |conn| Ok(Booking::find(conn, id)?)).await?;
    let mut errors = json!({
        "amount_value": form.amount.chars().take(30).collect::<String>(),
        "refund_reason_value": kept(&form.reason),
    });
    let amount = if form.amount.trim().is_empty() {
        None
    } else {
        match parse_amount(&form.amount, &booking.currency) {
            Some(a) => Some(a),
            None => {
                errors["amount"] = json!("Enter the amount like 12.50, or leave it empty to refund everything that is left.");
                None
            }
        }
    };
    let reason = match reason(&form.reason) {
        Ok(r) => r,
        Err(e) => {
            errors["refund_reason"] = json!(e);
            String::new()
        }
    };
    if !form.confirm {
        errors["refund_confirm"] = json!("Tick the box to confirm the refund.");
    }
    if errors.get("amount").is_some()
        || errors.get("refund_reason").is_some()
        || errors.get("refund_confirm").is_some()
    {
        return detail_with_errors(db, &staff, id, errors).await;
    }
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
        errors["amount"] = json!(e.message);
        return detail_with_errors(db, &staff, id, errors).await;
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

#[derive(FromForm)]
pub struct TicketForm {
    #[field(default = String::new())]
    csrf: String,
    /// The attendee (ticket) id.
    #[field(default = 0)]
    ticket: i64,
    /// `refund` (its price back through PayPal) or `cancel` (no money moves).
    #[field(default = String::new())]
    action: String,
    #[field(default = String::new())]
    reason: String,
    #[field(default = false)]
    confirm: bool,
}

csrf_form!(TicketForm);

/// Refunds or cancels one ticket of a booking (admins only): its seat returns, its code stops
/// working at the door, the buyer is mailed. A refund goes through PayPal
/// (`PayPal::refund_ticket`); a cancellation, and any ticket of a free booking, does not.
#[post("/bookings/<id>/ticket", data = "<form>")]
pub(super) async fn close_ticket(
    db: &State<Db>,
    paypal: &State<PayPal>,
    id: i64,
    form: AdminForm<TicketForm>,
) -> AppResult<Page> {
    let AdminForm { staff, form } = form;
    let mut errors = json!({
        "ticket_reason_value": kept(&form.reason),
        "ticket_value": form.ticket,
    });
    let reason = match reason(&form.reason) {
        Ok(r) => r,
        Err(e) => {
            errors["ticket_reason"] = json!(e);
            String::new()
        }
    };
    if !form.confirm {
        errors["ticket_confirm"] = json!("Tick the box to confirm.");
    }
    let refund = match form.action.as_str() {
        "refund" => true,
        "cancel" => false,
        _ => {
            errors["ticket"] = json!("Choose Refund or Cancel.");
            false
        }
    };
    if form.ticket <= 0 {
        errors["ticket"] = json!("Choose a ticket.");
    }
    if ["ticket", "ticket_reason", "ticket_confirm"]
        .iter()
        .any(|k| errors.get(k).is_some())
    {
        return detail_with_errors(db, &staff, id, errors).await;
    }
    let attendee_id = form.ticket;
    let (s2, r2) = (staff.clone(), reason.clone());
    let audit_entry = move |conn: &mut diesel::PgConnection, refund_id: Option<i64>| {
        auth::audit(
            conn,
            &s2,
            if refund {
                "ticket.refund"
            } else {
                "ticket.cancel"
            },
            "attendee",
            Some(attendee_id),
            Some(json!({ "booking_id": id, "ticket": "valid" })),
            Some(json!({
                "booking_id": id,
                "ticket": if refund { "refunded" } else { "cancelled" },
                "refund_id": refund_id,
                "reason": r2,
            })),
        )
    };
    let result = if refund {
        paypal
            .refund_ticket(db, id, attendee_id, &reason, move |conn, refund_id| {
                audit_entry(conn, Some(refund_id))
            })
            .await
    } else {
        crate::paypal::refunds::cancel_ticket(db, id, attendee_id, &reason, move |conn| {
            audit_entry(conn, None)
        })
        .await
        .map(|_| 0)
    };
    let price = match result {
        Ok(price) => price,
        Err(e) if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal) => {
            return Err(e.into())
        }
        Err(e) => {
            errors["ticket"] = json!(e.message);
            return detail_with_errors(db, &staff, id, errors).await;
        }
    };
    let booking = db.run(move |conn| Ok(Booking::find(conn, id)?)).await?;
    let mut done = if refund {
        format!(
            "Ticket refunded ({} through PayPal) and its seat released; the buyer is told by mail.",
            crate::money::Money::new(price, &booking.currency).display()
        )
    } else {
        "Ticket cancelled and its seat released; the buyer is told by mail.".to_string()
    };
    if !booking.state().holds_seats() {
        done.push_str(&format!(
            " It was the last valid ticket: the booking is now {}.",
            booking.state
        ));
    }
    Ok(Page::Flash(Flash::success(
        Redirect::to(format!("/admin/bookings/{id}")),
        done,
    )))
}
