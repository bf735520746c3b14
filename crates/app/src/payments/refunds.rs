//! Refunds: written down before PayPal is asked, recorded once. An amount of a booking
//! ([`PayPal::refund`]), or one ticket's price ([`PayPal::refund_ticket`]: the ticket is
//! refunded, its seat returns, with a PayPal-Request-Id derived from the ticket's id so a
//! retried or doubled request never refunds twice); a ticket cancelled without money
//! ([`cancel_ticket`]) needs no PayPal at all.

use chrono::{Duration, Utc};
use diesel::prelude::*;

use super::service::{db_err, PayPal};
use ticketing_core::money::Money;
use ticketing_db::claim::{claim_due, Due};
use ticketing_db::models::{Booking, BookingState, Payment, Refund};
use ticketing_db::schema::{payments, refunds};
use ticketing_db::Db;
use ticketing_db::Error;
use ticketing_domain::bookings::lifecycle::transition;
use ticketing_domain::bookings::tickets::{close_ticket, TicketState};

/// Refunds still `REQUESTED` whose last ask is over ten minutes old, claimed by stamping
/// `attempted_at`.
const REFUNDS_DUE: Due<'static> = Due {
    table: "refunds",
    alias: "refunds",
    from: "refunds",
    condition: "status = 'REQUESTED' AND attempted_at < now() - interval '10 minutes'",
    order: "id",
    lease: "attempted_at = now()",
};

impl PayPal {
    /// Refunds `amount` (all that is left when `None`) of a booking's capture. A full refund
    /// moves the booking to `refunded` and returns its seats. `record` runs in the transaction
    /// that writes the refund down (the admin's audit entry), with the refund row's id.
    /// `form_token` is the admin form's one-time token: a form sent twice (a double click, the
    /// back button) finds its refund instead of refunding again.
    ///
    /// The refund is written down (`REQUESTED`, with its PayPal-Request-Id, claimed for this
    /// call) before PayPal is asked, and only one may be in flight per payment (a partial
    /// unique index). If PayPal's answer is lost, the row stays `REQUESTED` and
    /// `reconcile_refunds` asks again once the claim has lapsed, with the same request id,
    /// which PayPal answers with the same refund: money leaves at most once and every refund
    /// PayPal made ends up recorded.
    pub async fn refund<F>(
        &self,
        db: &Db,
        booking_id: i64,
        amount: Option<i64>,
        note: &str,
        form_token: Option<&str>,
        record: F,
    ) -> Result<(), Error>
    where
        F: FnOnce(&mut PgConnection, i64) -> QueryResult<()> + Send + 'static,
    {
        let note = note.to_string();
        let form_token = form_token.map(str::to_string);
        let refund_row: i64 = db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let p = locked_payment(conn, booking_id, "This booking has no PayPal payment.")?;
                    if let Some(token) = &form_token {
                        let sent: i64 = refunds::table
                            .filter(refunds::form_token.eq(token))
                            .count()
                            .get_result(conn)?;
                        if sent > 0 {
                            return Err(Error::new(
                                ticketing_db::ErrorKind::Conflict,
                                "This refund form was already sent; its refund is listed under Payment.",
                            ));
                        }
                    }
                    if refundable_capture(&p).is_none() {
                        return Err(Error::bad_request(
                            "There is no completed capture to refund.",
                        ));
                    }
                    let in_flight = Refund::in_flight(conn, p.id)?;
                    if in_flight > 0 {
                        return Err(Error::new(
                            ticketing_db::ErrorKind::Conflict,
                            "An earlier refund of this booking is still being confirmed with PayPal. Try again in a few minutes.",
                        ));
                    }
                    let left = p.amount_minor - p.refunded_minor;
                    let amount = amount.unwrap_or(left);
                    if amount <= 0 || amount > left {
                        return Err(Error::bad_request(format!(
                            "A refund must be between 0.01 and {}.",
                            Money::new(left, &p.currency).decimal_string()
                        )));
                    }
                    let id = diesel::insert_into(refunds::table)
                        .values((
                            refunds::payment_id.eq(p.id),
                            refunds::request_id
                                .eq(format!("refund-{}-{}", p.id, ticketing_core::tokens::url_token(9))),
                            refunds::amount_minor.eq(amount),
                            refunds::currency.eq(&p.currency),
                            refunds::status.eq(REFUND_REQUESTED),
                            refunds::note.eq(&note),
                            refunds::attempted_at.eq(Utc::now()),
                            refunds::form_token.eq(&form_token),
                        ))
                        .returning(refunds::id)
                        .get_result(conn)?;
                    record(conn, id)?;
                    Ok(id)
                })
            })
            .await?;
        self.issue_refund(db, refund_row, false).await
    }

    /// Sends refund row `refund_id` to PayPal — or again (`reask`: same request id, so the
    /// same refund) — and records PayPal's answer once. A refusal of the first ask marks the
    /// row `FAILED`; a refusal of a re-ask is unclear (did the first one go through?) and
    /// marks it `REVIEW`; no answer leaves it `REQUESTED`.
    pub(super) async fn issue_refund(
        &self,
        db: &Db,
        refund_id: i64,
        reask: bool,
    ) -> Result<(), Error> {
        let (row, payment, booking) = db
            .run(move |conn| {
                let row = Refund::find(conn, refund_id)?;
                let p: Payment = payments::table
                    .find(row.payment_id)
                    .select(Payment::as_select())
                    .first(conn)?;
                let b = Booking::find(conn, p.booking_id)?;
                Ok((row, p, b))
            })
            .await?;
        if row.status != REFUND_REQUESTED {
            return Ok(());
        }
        let mark = |status: &'static str| {
            db.run(move |conn| {
                diesel::update(refunds::table.find(refund_id))
                    .filter(refunds::status.eq(REFUND_REQUESTED))
                    .set(refunds::status.eq(status))
                    .execute(conn)?;
                Ok(())
            })
        };
        // A re-ask needs only the capture: after a full refund PayPal calls it REFUNDED.
        let capture_id = if reask {
            payment.capture_id.clone()
        } else {
            refundable_capture(&payment).map(str::to_string)
        };
        let Some(capture_id) = capture_id else {
            mark(if reask { REFUND_REVIEW } else { REFUND_FAILED }).await?;
            return Err(Error::bad_request(
                "There is no completed capture to refund.",
            ));
        };
        // Refunds of one payment go one at a time, so what was refunded before is settled.
        let full = row.amount_minor == payment.amount_minor - payment.refunded_minor;
        let money = Money::new(row.amount_minor, &payment.currency);
        let result = self
            .client()
            .refund_capture(
                &capture_id,
                (!full || payment.refunded_minor > 0).then_some(&money),
                &booking.reference,
                &row.note,
                &row.request_id,
            )
            .await;
        let refund = match result {
            Ok(refund) => refund,
            Err(e) if e.is_transient() => {
                tracing::warn!(refund = refund_id, error = %e, "no answer from PayPal to a refund; it will be asked again");
                return Err(Error::new(
                    ticketing_db::ErrorKind::Upstream,
                    "PayPal did not answer. The refund is recorded and will be confirmed with PayPal automatically; do not refund again.",
                )
                .with_source(e));
            }
            Err(e) => {
                if reask {
                    tracing::error!(refund = refund_id, request_id = %row.request_id, error = %e,
                        "PayPal refused a repeated refund request: check this refund in PayPal's dashboard");
                }
                mark(if reask { REFUND_REVIEW } else { REFUND_FAILED }).await?;
                return Err(Error::new(
                    ticketing_db::ErrorKind::Upstream,
                    "PayPal refused the refund.",
                )
                .with_source(e));
            }
        };
        // Only a completed or pending refund moves money; FAILED or CANCELLED is recorded as such.
        let counts = matches!(refund.status.as_str(), "COMPLETED" | "PENDING");
        let (booking_id, pid, amount) = (booking.id, payment.id, row.amount_minor);
        let (ticket, reason) = (row.attendee_id, row.note.clone());
        let paypal_status = refund.status.clone();
        db.run(move |conn| {
            conn.transaction(|conn| {
                // The booking first, then the payment: the lock order of settlement
                // (`service::lock_payment`), which PayPal's webhook about this very refund
                // runs at the same time; the other order could deadlock.
                ticketing_db::schema::bookings::table
                    .find(booking_id)
                    .for_update()
                    .select(ticketing_db::schema::bookings::id)
                    .first::<i64>(conn)?;
                // Recorded once, however many times PayPal was asked.
                let claimed = diesel::update(refunds::table.find(refund_id))
                    .filter(refunds::status.eq(REFUND_REQUESTED))
                    .set((
                        refunds::paypal_refund_id.eq(&refund.id),
                        refunds::status.eq(&refund.status),
                    ))
                    .execute(conn)?;
                if claimed == 0 || !counts {
                    return Ok(());
                }
                diesel::update(payments::table.find(pid))
                    .set((
                        payments::refunded_minor.eq(payments::refunded_minor + amount),
                        payments::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)?;
                if let Some(attendee_id) = ticket {
                    // One ticket's price: the ticket closes (its seat returns; the last one
                    // closes the booking) and the buyer gets the ticket's mail.
                    let closed = close_ticket(
                        conn,
                        attendee_id,
                        TicketState::Refunded,
                        &reason,
                        &format!("{} refunded ({})", money.decimal_string(), refund.id),
                    )?;
                    if closed.is_none() {
                        tracing::warn!(
                            refund = refund_id,
                            attendee = attendee_id,
                            "a ticket's refund was recorded, but the ticket or its booking had already closed"
                        );
                    }
                } else if full {
                    transition(
                        conn,
                        booking_id,
                        &[BookingState::Paid],
                        BookingState::Refunded,
                        &format!("refunded in full ({})", refund.id),
                    )?;
                } else {
                    diesel::insert_into(ticketing_db::schema::booking_history::table)
                        .values((
                            ticketing_db::schema::booking_history::booking_id.eq(booking_id),
                            ticketing_db::schema::booking_history::from_state.eq("paid"),
                            ticketing_db::schema::booking_history::to_state.eq("paid"),
                            ticketing_db::schema::booking_history::note.eq(format!(
                                "partial refund {} ({})",
                                money.decimal_string(),
                                refund.id
                            )),
                        ))
                        .execute(conn)?;
                    ticketing_domain::outbox::partial_refund(conn, booking_id, refund_id)?;
                }
                Ok::<_, diesel::result::Error>(())
            })
            .map_err(db_err)
        })
        .await?;
        if counts {
            Ok(())
        } else {
            Err(Error::new(
                ticketing_db::ErrorKind::Upstream,
                format!("PayPal did not complete the refund (status {paypal_status})."),
            ))
        }
    }

    /// Refunds ticket `attendee_id` of booking `booking_id`: its price (the unit price paid
    /// for its ticket type) goes back through PayPal and, once PayPal has it, the ticket is
    /// refunded and its seat returns (`tickets::close_ticket`). `reason` is shown to the
    /// buyer; `record` writes the admin's audit entry with the refund row.
    ///
    /// The request id is `refund-ticket-<attendee>-<n>`, `n` counting this ticket's refund
    /// rows (a new one only after PayPal refused the previous ask), and a unique index allows
    /// one live refund per ticket: two requests at once (a double click, a retry) refund once
    /// and the second is refused (test
    /// `ticket_changes::two_refunds_of_one_ticket_at_once_refund_it_once`).
    pub async fn refund_ticket<F>(
        &self,
        db: &Db,
        booking_id: i64,
        attendee_id: i64,
        reason: &str,
        record: F,
    ) -> Result<i64, Error>
    where
        F: FnOnce(&mut PgConnection, i64) -> QueryResult<()> + Send + 'static,
    {
        let reason = reason.to_string();
        let refund_row: Result<(i64, i64), Error> = db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let p = locked_payment(
                        conn,
                        booking_id,
                        "This booking has no PayPal payment; cancel the ticket instead.",
                    )?;
                    let booking = Booking::find(conn, booking_id)?;
                    let attendee = ticketing_db::schema::attendees::table
                        .find(attendee_id)
                        .filter(ticketing_db::schema::attendees::booking_id.eq(booking_id))
                        .select(ticketing_db::models::Attendee::as_select())
                        .first(conn)
                        .optional()?
                        .ok_or_else(|| Error::new(ticketing_db::ErrorKind::NotFound, "No such ticket in this booking."))?;
                    if TicketState::of(&attendee) != TicketState::Valid {
                        return Err(Error::new(
                            ticketing_db::ErrorKind::Conflict,
                            "This ticket was already cancelled or refunded.",
                        ));
                    }
                    if booking.state() != BookingState::Paid {
                        return Err(Error::bad_request("Only tickets of a paid booking can be refunded."));
                    }
                    let earlier: Vec<String> = refunds::table
                        .filter(refunds::attendee_id.eq(attendee_id))
                        .select(refunds::status)
                        .load(conn)?;
                    if earlier.iter().any(|s| s != REFUND_FAILED && s != "CANCELLED") {
                        return Err(Error::new(
                            ticketing_db::ErrorKind::Conflict,
                            "This ticket's refund was already asked for; it is listed under Payment.",
                        ));
                    }
                    if refundable_capture(&p).is_none() {
                        return Err(Error::bad_request("There is no completed capture to refund."));
                    }
                    if Refund::in_flight(conn, p.id)? > 0 {
                        return Err(Error::new(
                            ticketing_db::ErrorKind::Conflict,
                            "An earlier refund of this booking is still being confirmed with PayPal. Try again in a few minutes.",
                        ));
                    }
                    let price: i64 = ticketing_db::schema::booking_items::table
                        .filter(ticketing_db::schema::booking_items::booking_id.eq(booking_id))
                        .filter(ticketing_db::schema::booking_items::ticket_type_id.eq(attendee.ticket_type_id))
                        .select(ticketing_db::schema::booking_items::unit_price_minor)
                        .first(conn)?;
                    if price <= 0 {
                        return Err(Error::bad_request("This ticket was free; cancel it instead."));
                    }
                    let left = p.amount_minor - p.refunded_minor;
                    if price > left {
                        return Err(Error::bad_request(format!(
                            "Only {} of this payment is left to refund, less than the ticket's {}; refund an amount, or cancel the ticket without a refund.",
                            Money::new(left, &p.currency).display(),
                            Money::new(price, &p.currency).display()
                        )));
                    }
                    let id = diesel::insert_into(refunds::table)
                        .values((
                            refunds::payment_id.eq(p.id),
                            refunds::request_id.eq(format!(
                                "refund-ticket-{attendee_id}-{}",
                                earlier.len() + 1
                            )),
                            refunds::amount_minor.eq(price),
                            refunds::currency.eq(&p.currency),
                            refunds::status.eq(REFUND_REQUESTED),
                            refunds::note.eq(&reason),
                            refunds::attempted_at.eq(Utc::now()),
                            refunds::attendee_id.eq(attendee_id),
                        ))
                        .returning(refunds::id)
                        .get_result(conn)
                        .map_err(|e| match e {
                            // The other of two requests at once got here first.
                            diesel::result::Error::DatabaseError(
                                diesel::result::DatabaseErrorKind::UniqueViolation,
                                _,
                            ) => Error::new(
                                ticketing_db::ErrorKind::Conflict,
                                "This ticket's refund was already asked for; it is listed under Payment.",
                            ),
                            e => e.into(),
                        })?;
                    record(conn, id)?;
                    Ok((id, price))
                })
            })
            .await;
        let (refund_row, price) = refund_row?;
        self.issue_refund(db, refund_row, false).await?;
        Ok(price)
    }

    /// Asks PayPal again about refunds left `REQUESTED` whose last ask is over ten minutes old
    /// (longer than a call with its retries can take at the longest timeout), claiming them
    /// first so that several instances never ask about the same one at once. After a day
    /// (PayPal keeps request ids for a limited time, so a later ask could be a new refund) a
    /// refund still unanswered is marked `REVIEW` for a person to check.
    pub async fn reconcile_refunds(&self, db: &Db) -> Result<usize, Error> {
        let ids: Vec<i64> = db
            .run(|conn| {
                let stale = diesel::update(refunds::table)
                    .filter(refunds::status.eq(REFUND_REQUESTED))
                    .filter(refunds::created_at.lt(Utc::now() - Duration::hours(24)))
                    .set(refunds::status.eq(REFUND_REVIEW))
                    .returning(refunds::id)
                    .get_results::<i64>(conn)?;
                for id in stale {
                    tracing::error!(
                        refund = id,
                        "a refund stayed unanswered for a day: check it in PayPal's dashboard"
                    );
                }
                Ok(claim_due(conn, &REFUNDS_DUE, 20)?)
            })
            .await?;
        for id in &ids {
            match self.issue_refund(db, *id, true).await {
                Ok(()) => tracing::info!(refund = id, "refund reconciled"),
                Err(e) => tracing::warn!(refund = id, error = %e, "refund reconciliation failed"),
            }
        }
        Ok(ids.len())
    }
}

pub use ticketing_db::models::refund::{REFUND_FAILED, REFUND_REQUESTED, REFUND_REVIEW};

/// The capture id of a payment whose capture can still be refunded.
fn refundable_capture(p: &Payment) -> Option<&str> {
    p.capture_id.as_deref().filter(|_| {
        p.capture_status
            .as_deref()
            .is_some_and(|s| s == "COMPLETED" || s == "PARTIALLY_REFUNDED")
    })
}

/// Cancels ticket `attendee_id` of booking `booking_id` without returning money (a free
/// ticket, or the admin's decision): its seat returns at once, no PayPal call. Refused while
/// a refund of the ticket is being asked for. `record` writes the audit entry in the same
/// transaction. Returns what changed.
pub async fn cancel_ticket<F>(
    db: &Db,
    booking_id: i64,
    attendee_id: i64,
    reason: &str,
    record: F,
) -> Result<ticketing_domain::bookings::tickets::TicketClosed, Error>
where
    F: FnOnce(&mut PgConnection) -> QueryResult<()> + Send + 'static,
{
    let reason = reason.to_string();
    db.run(move |conn| {
        conn.transaction(|conn| {
            let belongs: i64 = ticketing_db::schema::attendees::table
                .find(attendee_id)
                .filter(ticketing_db::schema::attendees::booking_id.eq(booking_id))
                .count()
                .get_result(conn)?;
            if belongs == 0 {
                return Err(Error::new(ticketing_db::ErrorKind::NotFound, "No such ticket in this booking."));
            }
            let asked: i64 = refunds::table
                .filter(refunds::attendee_id.eq(attendee_id))
                .filter(refunds::status.eq(REFUND_REQUESTED))
                .count()
                .get_result(conn)?;
            if asked > 0 {
                return Err(Error::new(
                    ticketing_db::ErrorKind::Conflict,
                    "A refund of this ticket is being confirmed with PayPal; it closes the ticket when it is done.",
                ));
            }
            let closed = close_ticket(conn, attendee_id, TicketState::Cancelled, &reason, &reason)?
                .ok_or_else(|| {
                    Error::new(
                        ticketing_db::ErrorKind::Conflict,
                        "This ticket cannot be cancelled: it is already closed, or its booking is not paid.",
                    )
                })?;
            record(conn)?;
            Ok(closed)
        })
    })
    .await
}

/// The booking's payment, locked for the refund being written down; `missing` is the
/// admin's message when the booking has none (a free booking).
fn locked_payment(
    conn: &mut PgConnection,
    booking_id: i64,
    missing: &str,
) -> Result<Payment, Error> {
    payments::table
        .filter(payments::booking_id.eq(booking_id))
        .for_update()
        .select(Payment::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::bad_request(missing))
}
