//! Bookings, their items and attendees, and the booking states of SPEC §3.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::{attendees, booking_history, booking_items, bookings};
use ticketing_core::money::Money;

/// The states of a booking. `held`, `awaiting_payment` and `paid` hold seats; the others
/// have given them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingState {
    Held,
    AwaitingPayment,
    Paid,
    Cancelled,
    Refunded,
    Expired,
    Reversed,
}

impl BookingState {
    pub const ACTIVE: [&'static str; 3] = ["held", "awaiting_payment", "paid"];
    /// Every state.
    pub const ALL: [BookingState; 7] = [
        BookingState::Held,
        BookingState::AwaitingPayment,
        BookingState::Paid,
        BookingState::Cancelled,
        BookingState::Refunded,
        BookingState::Expired,
        BookingState::Reversed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BookingState::Held => "held",
            BookingState::AwaitingPayment => "awaiting_payment",
            BookingState::Paid => "paid",
            BookingState::Cancelled => "cancelled",
            BookingState::Refunded => "refunded",
            BookingState::Expired => "expired",
            BookingState::Reversed => "reversed",
        }
    }

    pub fn parse(s: &str) -> Option<BookingState> {
        Some(match s {
            "held" => BookingState::Held,
            "awaiting_payment" => BookingState::AwaitingPayment,
            "paid" => BookingState::Paid,
            "cancelled" => BookingState::Cancelled,
            "refunded" => BookingState::Refunded,
            "expired" => BookingState::Expired,
            "reversed" => BookingState::Reversed,
            _ => return None,
        })
    }

    /// True while the booking takes seats from capacity.
    pub fn holds_seats(self) -> bool {
        matches!(
            self,
            BookingState::Held | BookingState::AwaitingPayment | BookingState::Paid
        )
    }

    /// The states a booking may move to from this one (the whole machine is drawn in
    /// `bookings::lifecycle`). Cancelled, refunded and reversed are terminal.
    pub fn can_become(self, to: BookingState) -> bool {
        use BookingState::*;
        matches!(
            (self, to),
            (Held, AwaitingPayment | Paid | Expired | Cancelled)
                | (AwaitingPayment, Paid | Expired | Cancelled)
                | (Expired, AwaitingPayment)
                | (Paid, Cancelled | Refunded | Reversed)
        )
    }

    /// Words for the buyer.
    pub fn label(self) -> &'static str {
        match self {
            BookingState::Held => "Seats held, details needed",
            BookingState::AwaitingPayment => "Awaiting payment",
            BookingState::Paid => "Confirmed",
            BookingState::Cancelled => "Cancelled",
            BookingState::Refunded => "Refunded",
            BookingState::Expired => "Expired",
            BookingState::Reversed => "Payment reversed",
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = bookings, check_for_backend(diesel::pg::Pg))]
pub struct Booking {
    pub id: i64,
    pub reference: String,
    pub access_token: String,
    pub event_id: i64,
    pub state: String,
    pub seats: i32,
    pub total_minor: i64,
    pub currency: String,
    pub buyer_name: String,
    pub buyer_email: String,
    pub buyer_phone: String,
    pub hold_expires_at: DateTime<Utc>,
    pub hold_extended: bool,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Who made the hold (the client key of `routes::checkout::client_key`); `None` for
    /// bookings older than the per-client cap.
    pub client_key: Option<String>,
    /// `tokens::derived("event-link", token)` of the private link the booking was made
    /// with; `None` when it was made on the public page.
    pub private_link_hash: Option<String>,
    /// The version of the terms (`legal_pages` `terms`) the buyer accepted on the review
    /// page, and when; `None` until they confirm.
    pub terms_version: Option<i32>,
    pub terms_accepted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = bookings)]
pub struct NewBooking {
    pub reference: String,
    pub access_token: String,
    pub event_id: i64,
    pub state: String,
    pub seats: i32,
    pub total_minor: i64,
    pub currency: String,
    pub hold_expires_at: DateTime<Utc>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = booking_items, check_for_backend(diesel::pg::Pg))]
pub struct BookingItem {
    pub id: i64,
    pub booking_id: i64,
    pub ticket_type_id: i64,
    pub quantity: i32,
    pub unit_price_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = booking_items)]
pub struct NewBookingItem {
    pub booking_id: i64,
    pub ticket_type_id: i64,
    pub quantity: i32,
    pub unit_price_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = attendees, check_for_backend(diesel::pg::Pg))]
pub struct Attendee {
    pub id: i64,
    pub booking_id: i64,
    pub ticket_type_id: i64,
    pub position: i32,
    pub name: String,
    pub email: String,
    pub ticket_code: String,
    pub checked_in_at: Option<DateTime<Utc>>,
    /// When the ticket was cancelled or refunded on its own (`cancel_state` says which);
    /// `None` while it is valid. See `ticketing_domain::bookings::tickets`.
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_state: Option<String>,
    /// The admin's reason, shown to the buyer.
    pub cancel_reason: String,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = attendees)]
pub struct NewAttendee {
    pub booking_id: i64,
    pub ticket_type_id: i64,
    pub position: i32,
    pub ticket_code: String,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = booking_history, check_for_backend(diesel::pg::Pg))]
pub struct HistoryEntry {
    pub id: i64,
    pub booking_id: i64,
    pub from_state: Option<String>,
    pub to_state: String,
    pub note: String,
    pub created_at: DateTime<Utc>,
}

impl Booking {
    pub fn state(&self) -> BookingState {
        BookingState::parse(&self.state).unwrap_or(BookingState::Expired)
    }

    pub fn total(&self) -> Money {
        Money::new(self.total_minor, &self.currency)
    }

    /// True when the buyer's and attendees' details have been given.
    pub fn has_details(&self) -> bool {
        !self.buyer_email.is_empty()
    }
}

/// Database methods.
impl Booking {
    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Booking> {
        bookings::table
            .find(id)
            .select(Booking::as_select())
            .first(conn)
    }

    pub fn find_by_access_token(conn: &mut PgConnection, token: &str) -> QueryResult<Booking> {
        bookings::table
            .filter(bookings::access_token.eq(token))
            .select(Booking::as_select())
            .first(conn)
    }

    pub fn find_by_idempotency_key(
        conn: &mut PgConnection,
        key: &str,
    ) -> QueryResult<Option<Booking>> {
        bookings::table
            .filter(bookings::idempotency_key.eq(key))
            .select(Booking::as_select())
            .first(conn)
            .optional()
    }

    pub fn items(&self, conn: &mut PgConnection) -> QueryResult<Vec<BookingItem>> {
        booking_items::table
            .filter(booking_items::booking_id.eq(self.id))
            .order(booking_items::id.asc())
            .select(BookingItem::as_select())
            .load(conn)
    }

    pub fn attendees(&self, conn: &mut PgConnection) -> QueryResult<Vec<Attendee>> {
        attendees::table
            .filter(attendees::booking_id.eq(self.id))
            .order(attendees::position.asc())
            .select(Attendee::as_select())
            .load(conn)
    }

    pub fn history(&self, conn: &mut PgConnection) -> QueryResult<Vec<HistoryEntry>> {
        booking_history::table
            .filter(booking_history::booking_id.eq(self.id))
            .order(booking_history::id.asc())
            .select(HistoryEntry::as_select())
            .load(conn)
    }
}
