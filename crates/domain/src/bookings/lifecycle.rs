//! The booking and payment state machine: the one place where a booking changes state.
//!
//! ```text
//!   held ──────────► awaiting_payment ──────► paid ──► cancelled | refunded | reversed
//!    │  └──────────────────────┼───────────────▲
//!    ▼                         ▼               │ (a late capture, seats taken again)
//!  expired | cancelled      expired | cancelled│
//!    expired ──► awaiting_payment ─────────────┘
//! ```
//!
//! Allowed moves ([`BookingState::can_become`]):
//! - `held` → `awaiting_payment` (sent to PayPal), `paid` (free tickets, or a capture),
//!   `expired` (the hold ran out), `cancelled` (released by the buyer, or an admin);
//! - `awaiting_payment` → `paid`, `expired`, `cancelled`;
//! - `expired` → `awaiting_payment`, only for a late approval or capture, and only if every
//!   seat can be taken again ([`reopen_expired`]);
//! - `paid` → `cancelled`, `refunded`, `reversed`.
//!
//! `cancelled`, `refunded` and `reversed` are terminal: nothing moves a booking out of them
//! (test `payment_races::a_cancelled_paid_booking_stays_cancelled_on_a_second_return_and_a_late_webhook`).
//!
//! Every move happens under the booking's row lock (`FOR UPDATE`), from a state re-read under
//! that lock, or is refused and logged: [`transition`] returns `None` and changes nothing.
//! Leaving a seat-holding state returns the seats in the same transaction, exactly once.
//!
//! A **capture in flight** (`payments.capture_claimed_until` in the future, set by the
//! payment flow in one guarded UPDATE before PayPal's capture is called) blocks every move
//! from `held`/`awaiting_payment` to `expired` or `cancelled`: the sweeper skips such
//! bookings, and a cancellation is refused until the capture is answered or the claim lapses
//! (test `payment_races::a_hold_running_out_during_a_slow_capture_is_paid_and_its_seats_stay_taken`).
//! Money that arrives for a booking that cannot be honoured any more is not a state of the
//! booking but of its payment (`payments.unhonoured_at`): it is refunded automatically (see
//! `paypal::settlement`).

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use crate::bookings::holds::{release_seats, take_seats};
use ticketing_db::models::{Booking, BookingState};
use ticketing_db::schema::{booking_history, bookings};

/// True while a capture of the booking's payment is in flight (its claim has not lapsed).
pub fn capture_in_flight(conn: &mut PgConnection, booking_id: i64) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Flag {
        #[diesel(sql_type = Bool)]
        flag: bool,
    }
    Ok(diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM payments
                         WHERE booking_id = $1 AND capture_claimed_until > now()) AS flag",
    )
    .bind::<BigInt, _>(booking_id)
    .get_result::<Flag>(conn)?
    .flag)
}

fn history(
    conn: &mut PgConnection,
    id: i64,
    from: BookingState,
    to: BookingState,
    note: &str,
) -> QueryResult<()> {
    diesel::insert_into(booking_history::table)
        .values((
            booking_history::booking_id.eq(id),
            booking_history::from_state.eq(from.as_str()),
            booking_history::to_state.eq(to.as_str()),
            booking_history::note.eq(note),
        ))
        .execute(conn)?;
    Ok(())
}

/// Which mails a state change queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mails {
    /// The ones `outbox::on_transition` owes the buyer for this move.
    Owed,
    /// None: the caller queues its own (the last ticket of a booking cancelled or refunded
    /// on its own is told about in the ticket's mail, see `tickets::close_ticket`).
    None,
}

/// Moves booking `id` to `to` if it is in one of `from`, the move is allowed, and no capture
/// in flight forbids it, returning the updated booking; otherwise changes nothing, logs why,
/// and returns `None`. Call inside a transaction.
pub fn transition(
    conn: &mut PgConnection,
    id: i64,
    from: &[BookingState],
    to: BookingState,
    note: &str,
) -> QueryResult<Option<Booking>> {
    transition_with(conn, id, from, to, note, Mails::Owed)
}

/// [`transition`], saying which mails the move queues.
pub fn transition_with(
    conn: &mut PgConnection,
    id: i64,
    from: &[BookingState],
    to: BookingState,
    note: &str,
    mails: Mails,
) -> QueryResult<Option<Booking>> {
    let current = bookings::table
        .find(id)
        .for_update()
        .select(Booking::as_select())
        .first(conn)?;
    let old = current.state();
    if !from.contains(&old) || !old.can_become(to) {
        if old != to {
            tracing::info!(
                booking = id,
                from = old.as_str(),
                to = to.as_str(),
                note,
                "state change refused"
            );
        }
        return Ok(None);
    }
    if !old.holds_seats() && to.holds_seats() {
        // Only `reopen_expired` takes seats again; a plain transition never does.
        tracing::info!(
            booking = id,
            from = old.as_str(),
            to = to.as_str(),
            "state change refused: it would need seats"
        );
        return Ok(None);
    }
    if matches!(to, BookingState::Expired | BookingState::Cancelled)
        && old != BookingState::Paid
        && capture_in_flight(conn, id)?
    {
        tracing::info!(
            booking = id,
            to = to.as_str(),
            "state change refused: a capture is in flight"
        );
        return Ok(None);
    }
    let now = diesel::dsl::now;
    // The client's address serves only the cap on unpaid holds: not kept past them (test
    // `hoarding::released_expired_and_paid_holds_free_the_budget`).
    let client_key = matches!(to, BookingState::Held | BookingState::AwaitingPayment)
        .then(|| current.client_key.clone())
        .flatten();
    let updated = diesel::update(bookings::table.find(id))
        .set((
            bookings::state.eq(to.as_str()),
            bookings::updated_at.eq(now),
            bookings::client_key.eq(client_key),
        ))
        .returning(Booking::as_returning())
        .get_result(conn)?;
    if to == BookingState::Paid {
        diesel::update(bookings::table.find(id))
            .set(bookings::paid_at.eq(now))
            .execute(conn)?;
    }

    if old.holds_seats() && !to.holds_seats() {
        let items = current.items(conn)?;
        let ids: Vec<i64> = items.iter().map(|i| i.ticket_type_id).collect();
        let qtys: Vec<i32> = items.iter().map(|i| i.quantity).collect();
        release_seats(conn, current.event_id, current.seats, &ids, &qtys)?;
        diesel::update(bookings::table.find(id))
            .set(bookings::closed_at.eq(now))
            .execute(conn)?;
    }
    if mails == Mails::Owed {
        crate::outbox::on_transition(conn, &updated, old, to)?;
    }
    history(conn, id, old, to, note)?;
    Ok(Some(updated))
}

/// What [`reopen_expired`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopen {
    /// The booking holds its seats (it already did, or they were taken again now).
    Holding,
    /// The booking expired and its seats are gone.
    SeatsGone,
    /// The booking is in a state no payment may revive (cancelled, refunded, reversed, paid).
    Closed,
}

/// For a late approval or capture: a booking still holding its seats is left as it is; an
/// expired one takes all its seats again (only if every one is still free; the sale window
/// is not checked again, the buyer agreed while it was open) and moves back to
/// `awaiting_payment` with a fresh 30-minute hold. Terminal bookings are never reopened.
/// Call inside a transaction.
pub fn reopen_expired(conn: &mut PgConnection, booking_id: i64) -> QueryResult<Reopen> {
    let booking = bookings::table
        .find(booking_id)
        .for_update()
        .select(Booking::as_select())
        .first(conn)?;
    let state = booking.state();
    match state {
        BookingState::Held | BookingState::AwaitingPayment => return Ok(Reopen::Holding),
        BookingState::Expired => {}
        _ => return Ok(Reopen::Closed),
    }
    debug_assert!(state.can_become(BookingState::AwaitingPayment));
    let items = booking.items(conn)?;
    let type_ids: Vec<i64> = items.iter().map(|i| i.ticket_type_id).collect();
    let qtys: Vec<i32> = items.iter().map(|i| i.quantity).collect();
    if !take_seats(conn, booking.event_id, &type_ids, &qtys, false)? {
        return Ok(Reopen::SeatsGone);
    }
    diesel::update(bookings::table.find(booking_id))
        .set((
            bookings::state.eq(BookingState::AwaitingPayment.as_str()),
            bookings::closed_at.eq(None::<DateTime<Utc>>),
            bookings::hold_expires_at.eq(Utc::now() + Duration::minutes(30)),
            bookings::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    history(
        conn,
        booking_id,
        state,
        BookingState::AwaitingPayment,
        "late approval: seats taken again",
    )?;
    Ok(Reopen::Holding)
}

/// Expires up to `limit` holds whose deadline has passed and that have no capture in flight, returning their seats, and returns
/// the events they belonged to. Rows locked by another instance's sweeper are skipped
/// (`FOR UPDATE SKIP LOCKED`), so several app instances can sweep at once.
pub fn expire_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<i64>> {
    conn.transaction(|conn| {
        diesel::sql_query("SET LOCAL synchronous_commit = off").execute(conn)?;
        let due: Vec<(i64, i64)> = bookings::table
            .filter(bookings::state.eq_any(["held", "awaiting_payment"]))
            .filter(bookings::hold_expires_at.le(now))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                ticketing_db::schema::payments::table
                    .filter(ticketing_db::schema::payments::booking_id.eq(bookings::id))
                    .filter(
                        ticketing_db::schema::payments::capture_claimed_until.gt(diesel::dsl::now),
                    ),
            )))
            .order(bookings::hold_expires_at.asc())
            .limit(limit)
            .for_update()
            .skip_locked()
            .select((bookings::id, bookings::event_id))
            .load(conn)?;
        let mut events = Vec::new();
        for (id, event_id) in due {
            let moved = transition(
                conn,
                id,
                &[BookingState::Held, BookingState::AwaitingPayment],
                BookingState::Expired,
                "hold expired",
            )?;
            if moved.is_some() && !events.contains(&event_id) {
                events.push(event_id);
            }
        }
        Ok(events)
    })
}

/// The booking as the buyer should see it now: a hold past its deadline that the sweeper has
/// not reached yet is expired on the spot.
pub fn refresh(
    conn: &mut PgConnection,
    booking: Booking,
    now: DateTime<Utc>,
) -> QueryResult<Booking> {
    let state = booking.state();
    if matches!(state, BookingState::Held | BookingState::AwaitingPayment)
        && booking.hold_expires_at <= now
    {
        let id = booking.id;
        let moved = conn.transaction(|conn| {
            transition(
                conn,
                id,
                &[BookingState::Held, BookingState::AwaitingPayment],
                BookingState::Expired,
                "hold expired",
            )
        })?;
        return Ok(match moved {
            Some(b) => b,
            None => Booking::find(conn, id)?,
        });
    }
    Ok(booking)
}
