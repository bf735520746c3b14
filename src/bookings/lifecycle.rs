//! Booking state changes. Leaving an active state (held, awaiting_payment, paid) for an
//! inactive one returns the booking's seats in the same transaction, and only the change
//! that actually moves the state does so: the booking row is locked first and its state
//! re-read, so a cancellation racing the expiry sweeper returns seats exactly once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::bookings::holds::release_seats;
use crate::models::{Booking, BookingState};
use crate::schema::{booking_history, bookings};

/// Moves booking `id` to `to` if it is in one of `from` (and the move is allowed), returning
/// the updated booking, or `None` when it was not in such a state. Call inside a transaction.
pub fn transition(
    conn: &mut PgConnection,
    id: i64,
    from: &[BookingState],
    to: BookingState,
    note: &str,
) -> QueryResult<Option<Booking>> {
    let current = bookings::table
        .find(id)
        .for_update()
        .select(Booking::as_select())
        .first(conn)?;
    let old = current.state();
    if !from.contains(&old) || !old.can_become(to) {
        return Ok(None);
    }
    let now = diesel::dsl::now;
    let updated = diesel::update(bookings::table.find(id))
        .set((
            bookings::state.eq(to.as_str()),
            bookings::updated_at.eq(now),
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
    crate::mail::on_transition(conn, &updated, old, to)?;
    diesel::insert_into(booking_history::table)
        .values((
            booking_history::booking_id.eq(id),
            booking_history::from_state.eq(old.as_str()),
            booking_history::to_state.eq(to.as_str()),
            booking_history::note.eq(note),
        ))
        .execute(conn)?;
    Ok(Some(updated))
}

/// Expires up to `limit` holds whose deadline has passed, returning their seats, and returns
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
