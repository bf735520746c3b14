//! Starting a payment: the PayPal order, created once per booking.

use chrono::Duration;
use diesel::prelude::*;

use super::client::NewOrder;
use super::service::{db_err, PayPal};
use ticketing_core::money::Money;
use ticketing_db::models::{Booking, BookingState, Event, Payment};
use ticketing_db::schema::{bookings, payments};
use ticketing_db::Db;
use ticketing_db::Error;
use ticketing_domain::bookings::lifecycle::transition;

impl PayPal {
    /// Starts (or resumes) paying for a held booking: creates the PayPal order once, moves
    /// the booking to `awaiting_payment` (extending its hold once), and returns the URL where
    /// the buyer approves.
    pub async fn start(&self, db: &Db, booking_id: i64) -> Result<String, Error> {
        let (booking, event, existing) = db
            .run(move |conn| {
                let booking = Booking::find(conn, booking_id)?;
                let event = Event::find(conn, booking.event_id)?;
                let payment = Payment::find_by_booking(conn, booking_id)?;
                Ok((booking, event, payment))
            })
            .await?;
        match booking.state() {
            BookingState::Held | BookingState::AwaitingPayment => {}
            _ => {
                return Err(Error::new(
                    ticketing_db::ErrorKind::Conflict,
                    "This booking can no longer be paid.",
                ))
            }
        }
        let payment = match existing {
            Some(p) => p,
            None => {
                let base = &self.inner.base_url;
                // PayPal sends the buyer back with its order id; only this opaque value, which
                // only the buyer's browser was given, opens the booking (never the order id).
                let state = return_state(&booking.access_token);
                let new = NewOrder {
                    booking_id: booking.id,
                    reference: booking.reference.clone(),
                    description: format!("{} — {} ticket(s)", event.title, booking.seats),
                    amount: Money::new(booking.total_minor, &booking.currency),
                    return_url: format!("{base}/payments/paypal/return?state={state}"),
                    cancel_url: format!("{base}/payments/paypal/cancel?state={state}"),
                    brand_name: self.inner.site_name.clone(),
                };
                let order = self
                    .client()
                    .create_order(&new, &format!("order-{}", booking.reference))
                    .await
                    .map_err(|e| {
                        Error::new(
                            ticketing_db::ErrorKind::Unavailable,
                            "PayPal could not be reached. Your seats are still held; please try again in a moment.",
                        )
                        .with_source(e)
                    })?;
                let approve = order
                    .approve_url()
                    .ok_or_else(|| {
                        Error::internal(format!("order {} has no approve link", order.id))
                    })?
                    .to_string();
                let (amount, currency) = (booking.total_minor, booking.currency.clone());
                db.run(move |conn| {
                    diesel::insert_into(payments::table)
                        .values((
                            payments::booking_id.eq(booking_id),
                            payments::order_id.eq(&order.id),
                            payments::order_status.eq(&order.status),
                            payments::amount_minor.eq(amount),
                            payments::currency.eq(&currency),
                            payments::approve_url.eq(&approve),
                        ))
                        .on_conflict(payments::booking_id)
                        .do_nothing()
                        .execute(conn)?;
                    Payment::find_by_booking(conn, booking_id)?.ok_or_else(Error::not_found)
                })
                .await?
            }
        };
        let minutes = i64::from(self.inner.hold_minutes);
        db.run(move |conn| {
            conn.transaction(|conn| {
                let moved = transition(
                    conn,
                    booking_id,
                    &[BookingState::Held],
                    BookingState::AwaitingPayment,
                    "buyer sent to PayPal",
                )?;
                if moved.is_some() {
                    // Leaving for PayPal extends the hold once.
                    diesel::update(
                        bookings::table
                            .find(booking_id)
                            .filter(bookings::hold_extended.eq(false)),
                    )
                    .set((
                        bookings::hold_expires_at
                            .eq(bookings::hold_expires_at + Duration::minutes(minutes)),
                        bookings::hold_extended.eq(true),
                    ))
                    .execute(conn)?;
                }
                Ok::<_, diesel::result::Error>(())
            })
            .map_err(db_err)
        })
        .await?;
        Ok(payment.approve_url)
    }
}

/// The opaque value in a booking's PayPal return and cancel URLs: derived from the booking's
/// secret, so it is stable across repeated order creations (same request id, same URLs) and
/// unknown to anyone who only knows the order id
/// (test `payment_races::the_paypal_order_id_alone_opens_nothing`).
pub fn return_state(access_token: &str) -> String {
    ticketing_core::tokens::derived("paypal-return", access_token)
}
