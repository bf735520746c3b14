//! One ticket (an attendee row) of a paid booking: whether it may be used at the door
//! ([`usability`], the one place that decides it; check-in calls it), and cancelling or
//! refunding it on its own ([`close_ticket`]), which extends the booking state machine of
//! `lifecycle` by a ticket-level one:
//!
//! ```text
//!   valid ──► cancelled | refunded     (terminal; only while the booking is paid)
//! ```
//!
//! Closing a ticket returns its seat to the ticket type's and the event's counters in the
//! caller's transaction, and lowers the booking's `seats` and its item's `quantity` by one,
//! so `seats taken == seats of held, awaiting_payment and paid bookings` keeps holding (test
//! `ticket_changes::one_ticket_refunded_returns_its_seat_and_its_code_stops_working`).
//! Closing the last valid ticket moves the booking itself, through `lifecycle::transition`,
//! to `cancelled` or `refunded` (test `ticket_changes::the_last_ticket_closes_the_booking`);
//! the state machine refuses what it does not allow, and nothing is changed then.

use diesel::prelude::*;

use crate::bookings::holds::release_seats;
use crate::bookings::lifecycle::{transition_with, Mails};
use ticketing_db::models::{Attendee, Booking, BookingState};
use ticketing_db::schema::{attendees, booking_history, booking_items, bookings};

/// The states of one ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketState {
    Valid,
    Cancelled,
    Refunded,
}

impl TicketState {
    pub fn of(attendee: &Attendee) -> TicketState {
        match attendee.cancel_state.as_deref() {
            None => TicketState::Valid,
            Some("refunded") => TicketState::Refunded,
            Some(_) => TicketState::Cancelled,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::Valid => "valid",
            TicketState::Cancelled => "cancelled",
            TicketState::Refunded => "refunded",
        }
    }

    /// Only a valid ticket changes, and only to cancelled or refunded.
    pub fn can_become(self, to: TicketState) -> bool {
        matches!(
            (self, to),
            (
                TicketState::Valid,
                TicketState::Cancelled | TicketState::Refunded
            )
        )
    }

    /// The booking state the booking moves to when its last valid ticket goes this way.
    fn booking_state(self) -> BookingState {
        match self {
            TicketState::Refunded => BookingState::Refunded,
            _ => BookingState::Cancelled,
        }
    }
}

/// Whether a ticket gets its holder in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usability {
    Usable,
    /// The ticket is for another event than the one being checked in.
    WrongEvent,
    /// The ticket itself was cancelled or refunded (the booking may still be paid).
    TicketClosed(TicketState),
    /// The booking is not paid (held, expired, cancelled, refunded, reversed).
    BookingNotValid(BookingState),
}

impl Usability {
    /// A machine-readable kind (check-in's `result.kind`).
    pub fn kind(self) -> &'static str {
        match self {
            Usability::Usable => "valid",
            Usability::WrongEvent => "wrong_event",
            Usability::TicketClosed(_) => "cancelled",
            Usability::BookingNotValid(_) => "invalid",
        }
    }

    /// What door staff are told when the ticket is not usable.
    pub fn message(self) -> String {
        match self {
            Usability::Usable => "Valid.".into(),
            Usability::WrongEvent => "This ticket is for another event.".into(),
            Usability::TicketClosed(TicketState::Refunded) => {
                "This ticket was cancelled (refunded).".into()
            }
            Usability::TicketClosed(_) => "This ticket was cancelled.".into(),
            Usability::BookingNotValid(state) => {
                format!("This ticket is not valid (booking {}).", state.label())
            }
        }
    }
}

/// Whether `attendee`'s ticket (of `booking`) is usable at `event_id`'s door. The one
/// decision check-in, the PDF tickets and the booking page rely on; whether it was already
/// used is for the caller (tests `ticket_changes::*`).
pub fn usability(attendee: &Attendee, booking: &Booking, event_id: i64) -> Usability {
    if booking.event_id != event_id {
        return Usability::WrongEvent;
    }
    match TicketState::of(attendee) {
        TicketState::Valid => {}
        closed => return Usability::TicketClosed(closed),
    }
    match booking.state() {
        BookingState::Paid => Usability::Usable,
        other => Usability::BookingNotValid(other),
    }
}

/// What [`close_ticket`] did.
#[derive(Debug, Clone)]
pub struct TicketClosed {
    pub attendee: Attendee,
    /// The booking after the change.
    pub booking: Booking,
    /// The state the booking moved to when this was its last valid ticket.
    pub booking_closed: Option<BookingState>,
}

/// Cancels or refunds (`to`) ticket `attendee_id` of a paid booking, with the admin's
/// `reason` (shown to the buyer), and queues the buyer's "ticket cancelled" mail. Returns
/// `None`, changing nothing, when the state machine refuses (the ticket is not valid, or
/// its booking is not paid). Call inside a transaction; locks the booking, then the ticket.
pub fn close_ticket(
    conn: &mut PgConnection,
    attendee_id: i64,
    to: TicketState,
    reason: &str,
    note: &str,
) -> QueryResult<Option<TicketClosed>> {
    let booking_id: i64 = attendees::table
        .find(attendee_id)
        .select(attendees::booking_id)
        .first(conn)?;
    let booking = bookings::table
        .find(booking_id)
        .for_update()
        .select(Booking::as_select())
        .first(conn)?;
    let attendee = attendees::table
        .find(attendee_id)
        .for_update()
        .select(Attendee::as_select())
        .first(conn)?;
    let from = TicketState::of(&attendee);
    if !from.can_become(to) || booking.state() != BookingState::Paid {
        tracing::info!(
            attendee = attendee_id,
            from = from.as_str(),
            to = to.as_str(),
            booking_state = booking.state.as_str(),
            "ticket change refused"
        );
        return Ok(None);
    }
    let others: i64 = attendees::table
        .filter(attendees::booking_id.eq(booking_id))
        .filter(attendees::id.ne(attendee_id))
        .filter(attendees::cancelled_at.is_null())
        .count()
        .get_result(conn)?;
    let attendee = diesel::update(attendees::table.find(attendee_id))
        .set((
            attendees::cancelled_at.eq(diesel::dsl::now),
            attendees::cancel_state.eq(to.as_str()),
            attendees::cancel_reason.eq(reason),
        ))
        .returning(Attendee::as_returning())
        .get_result(conn)?;
    let what = format!(
        "ticket {} {}{}",
        attendee.ticket_code,
        to.as_str(),
        if note.is_empty() {
            String::new()
        } else {
            format!(": {note}")
        }
    );
    let (booking, booking_closed) = if others == 0 {
        // The last valid ticket: the booking itself closes, returning its (last) seat. The
        // buyer's mail is the ticket's, which says so; not a second one for the booking.
        let target = to.booking_state();
        match transition_with(
            conn,
            booking_id,
            &[BookingState::Paid],
            target,
            &format!("{what} (the last valid ticket)"),
            Mails::None,
        )? {
            Some(b) => (b, Some(target)),
            None => return Err(diesel::result::Error::RollbackTransaction),
        }
    } else {
        let item_id: i64 = booking_items::table
            .filter(booking_items::booking_id.eq(booking_id))
            .filter(booking_items::ticket_type_id.eq(attendee.ticket_type_id))
            .filter(booking_items::quantity.gt(0))
            .order(booking_items::id)
            .select(booking_items::id)
            .first(conn)?;
        diesel::update(booking_items::table.find(item_id))
            .set(booking_items::quantity.eq(booking_items::quantity - 1))
            .execute(conn)?;
        let b = diesel::update(bookings::table.find(booking_id))
            .set((
                bookings::seats.eq(bookings::seats - 1),
                bookings::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Booking::as_returning())
            .get_result(conn)?;
        release_seats(conn, b.event_id, 1, &[attendee.ticket_type_id], &[1])?;
        diesel::insert_into(booking_history::table)
            .values((
                booking_history::booking_id.eq(booking_id),
                booking_history::from_state.eq("paid"),
                booking_history::to_state.eq("paid"),
                booking_history::note.eq(&what),
            ))
            .execute(conn)?;
        (b, None)
    };
    crate::outbox::ticket_cancelled(conn, booking_id, attendee_id)?;
    Ok(Some(TicketClosed {
        attendee,
        booking,
        booking_closed,
    }))
}

/// Corrects an attendee's name (a typo at checkout); returns the name before. The name is
/// read from here by the ticket page, the PDF and check-in, so all show the new one. Call
/// inside a transaction (the caller writes the audit entry).
pub fn rename_attendee(
    conn: &mut PgConnection,
    booking_id: i64,
    attendee_id: i64,
    name: &str,
) -> QueryResult<String> {
    let before: String = attendees::table
        .find(attendee_id)
        .filter(attendees::booking_id.eq(booking_id))
        .for_update()
        .select(attendees::name)
        .first(conn)?;
    diesel::update(attendees::table.find(attendee_id))
        .set(attendees::name.eq(name))
        .execute(conn)?;
    Ok(before)
}
