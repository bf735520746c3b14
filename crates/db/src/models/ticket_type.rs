//! Ticket types: what a buyer can choose for an event, at what price, how many, and when.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::ticket_types;
use ticketing_core::money::Money;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = ticket_types, check_for_backend(diesel::pg::Pg))]
pub struct TicketType {
    pub id: i64,
    pub event_id: i64,
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: String,
    pub capacity: i32,
    pub seats_taken: i32,
    pub sales_open_at: Option<DateTime<Utc>>,
    pub sales_close_at: Option<DateTime<Utc>>,
    pub max_per_booking: i32,
    pub position: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ticket_types)]
pub struct NewTicketType {
    pub event_id: i64,
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: String,
    pub capacity: i32,
    pub sales_open_at: Option<DateTime<Utc>>,
    pub sales_close_at: Option<DateTime<Utc>>,
    pub max_per_booking: i32,
    pub position: i32,
}

/// Where a ticket type stands for a buyer at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleState {
    NotYetOnSale,
    OnSale,
    SalesClosed,
    SoldOut,
}

impl SaleState {
    pub fn as_str(self) -> &'static str {
        match self {
            SaleState::NotYetOnSale => "not_yet_on_sale",
            SaleState::OnSale => "on_sale",
            SaleState::SalesClosed => "sales_closed",
            SaleState::SoldOut => "sold_out",
        }
    }
}

impl TicketType {
    pub fn price(&self) -> Money {
        Money::new(self.price_minor, &self.currency)
    }

    /// Seats a buyer can still take: the smaller of this type's and the event's remainder.
    pub fn seats_left(&self, event_seats_left: i32) -> i32 {
        (self.capacity - self.seats_taken)
            .max(0)
            .min(event_seats_left)
    }

    pub fn sale_state(&self, now: DateTime<Utc>, event_seats_left: i32) -> SaleState {
        if self.sales_open_at.is_some_and(|t| now < t) {
            SaleState::NotYetOnSale
        } else if self.sales_close_at.is_some_and(|t| now >= t) {
            SaleState::SalesClosed
        } else if self.seats_left(event_seats_left) == 0 {
            SaleState::SoldOut
        } else {
            SaleState::OnSale
        }
    }
}

/// Database methods.
impl TicketType {
    pub fn insert(conn: &mut PgConnection, new: &NewTicketType) -> QueryResult<TicketType> {
        diesel::insert_into(ticket_types::table)
            .values(new)
            .returning(TicketType::as_returning())
            .get_result(conn)
    }

    /// The ticket types of several events at once (the listing page).
    pub fn for_events(conn: &mut PgConnection, event_ids: &[i64]) -> QueryResult<Vec<TicketType>> {
        ticket_types::table
            .filter(ticket_types::event_id.eq_any(event_ids))
            .order((ticket_types::position.asc(), ticket_types::id.asc()))
            .select(TicketType::as_select())
            .load(conn)
    }
}
