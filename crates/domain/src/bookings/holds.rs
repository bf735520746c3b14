//! Creating a hold: every requested seat taken at once from both the ticket types' and the
//! event's capacity, or nothing taken at all.
//!
//! # Why this never oversells
//! Seats are counters (`events.seats_taken`, `ticket_types.seats_taken`) with CHECK
//! constraints `seats_taken <= capacity`. A hold increments them with a conditional `UPDATE
//! ... WHERE seats_taken + n <= capacity`; under READ COMMITTED, PostgreSQL takes the row lock
//! and re-checks that condition against the latest committed value, so two racing holds can
//! never both pass on the same last seat. If any counter refuses, the whole transaction (the
//! booking row included) rolls back. The CHECK constraints would refuse an oversell even if
//! this code were wrong.
//!
//! # Why it is fast under a rush
//! The naive design pays a disk flush (about 1.5 ms here) while holding the hot event-row
//! lock, so holds on one event serialise at the disk's commit rate (~650/s); and every client
//! round trip made while the lock is held (the next statement, the COMMIT) adds to the time
//! every other buyer waits. So:
//! 1. The whole hold is one call of the SQL function `create_hold` (migration
//!    `..._create_hold`), run as a single implicit transaction: the event row is locked only
//!    while PostgreSQL itself takes the seats and writes the booking, never across a network
//!    round trip; PL/pgSQL also caches the statements' plans per connection.
//! 2. Hold transactions commit with `synchronous_commit = off`: the commit returns before its
//!    WAL record is flushed, so the lock is released at memory speed. This is safe for holds:
//!    asynchronous commit never breaks atomicity or ordering, only durability of the last few
//!    hundred milliseconds after a crash. A hold lost in a crash loses its booking row and its
//!    counter increment together (the invariant still holds and seats are only *freed*, never
//!    oversold). Nothing with money uses it: moving a booking to `awaiting_payment` or `paid`
//!    commits synchronously, which also flushes every earlier hold.
//!
//! Lock order everywhere is booking row → event row → ticket-type rows, so the hold path, the
//! sweeper and cancellations cannot deadlock.
//!
//! # Against stock hoarding (issue 14)
//! - A client (its address, IPv6 by /64) may hold at most [`HoldLimits::client_cap`] seats
//!   of one event at once, counted over its `held` and `awaiting_payment` bookings whose
//!   deadline has not passed. `create_hold` (migration `..._hold_limits`) counts them after
//!   taking the seats, while it holds the event row's lock, so parallel holds of one client
//!   cannot pass the cap together (test `hoarding::parallel_holds_of_one_client_never_pass_the_cap`).
//! - A new hold lasts [`HoldLimits::details_minutes`]; sending the details form extends it to
//!   the full hold ([`extend_after_details`]), so a hold nobody fills in is released sooner
//!   (test `hoarding::a_hold_without_details_lasts_five_minutes_and_details_extend_it_to_the_full_hold`).

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};

use ticketing_db::models::{Booking, Event, TicketType};

/// What a buyer asked for.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub event_id: i64,
    /// (ticket type id, quantity) pairs with quantity > 0, one per ticket type.
    pub quantities: Vec<(i64, i32)>,
    /// The ticket form's one-time token.
    pub idempotency_key: Option<String>,
    /// Who asks (see [`HoldLimits::client_cap`]); stored on the booking.
    pub client_key: Option<String>,
    /// The private link's token the form came with (`None`: the public page); stored as
    /// [`link_hash`], so the booking page links back only while it is the event's link.
    pub private_token: Option<String>,
}

/// How long a new hold lasts and how many seats one client may hold.
#[derive(Debug, Clone, Copy)]
pub struct HoldLimits {
    /// A new hold's lifetime until its details are sent.
    pub details_minutes: u32,
    /// Seats one client may hold at once for the event, this hold included (`None`: no cap).
    pub client_cap: Option<i32>,
}

/// What a booking keeps of the private link it was made with.
pub fn link_hash(private_token: &str) -> String {
    ticketing_core::tokens::derived("event-link", private_token)
}

/// A hold that exists: made now, or found again for a resubmitted form.
#[derive(Debug)]
pub struct HoldOutcome {
    pub booking_id: i64,
    /// The secret of the buyer's checkout and booking pages.
    pub access_token: String,
    /// False when the same form had already made this booking.
    pub created: bool,
}

#[derive(Debug)]
pub enum HoldError {
    /// The request itself is wrong; `ticket_type_id` says which field, `None` the whole form.
    Invalid {
        ticket_type_id: Option<i64>,
        message: String,
    },
    /// Not enough seats: nothing was taken. The caller reads fresh numbers to tell the buyer.
    NotEnough,
    /// The client holds `held` seats of this event already, and `cap` at most: nothing was
    /// taken.
    ClientLimit {
        held: i32,
        cap: i32,
    },
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for HoldError {
    fn from(e: diesel::result::Error) -> Self {
        HoldError::Db(e)
    }
}

/// Checks a request against the event's ticket types (ownership, sale window, per-booking
/// maximum) before any seat is touched.
pub fn check_request(
    event: &Event,
    types: &[TicketType],
    req: &HoldRequest,
    now: DateTime<Utc>,
) -> Result<(), HoldError> {
    let invalid = |id: Option<i64>, message: String| HoldError::Invalid {
        ticket_type_id: id,
        message,
    };
    if event.has_ended(now) {
        return Err(invalid(None, "This event has ended.".into()));
    }
    if req.quantities.is_empty() {
        return Err(invalid(None, "Choose at least one ticket.".into()));
    }
    let mut currency: Option<&str> = None;
    for &(id, qty) in &req.quantities {
        let Some(t) = types.iter().find(|t| t.id == id && t.event_id == event.id) else {
            return Err(invalid(
                None,
                "That ticket type is not sold for this event.".into(),
            ));
        };
        if qty <= 0 {
            return Err(invalid(Some(id), "Choose at least one ticket.".into()));
        }
        if qty > t.max_per_booking {
            return Err(invalid(
                Some(id),
                format!("At most {} per booking.", t.max_per_booking),
            ));
        }
        if t.sales_open_at.is_some_and(|at| now < at) {
            return Err(invalid(Some(id), "Not on sale yet.".into()));
        }
        if t.sales_close_at.is_some_and(|at| now >= at) {
            return Err(invalid(
                Some(id),
                "Sales for this ticket have closed.".into(),
            ));
        }
        match currency {
            Some(c) if c != t.currency => {
                return Err(invalid(
                    None,
                    "Tickets in different currencies must be booked separately.".into(),
                ))
            }
            _ => currency = Some(&t.currency),
        }
    }
    Ok(())
}

/// Creates a hold for `req` lasting `limits.details_minutes`, or refuses it whole (counted
/// in `holds_total` by outcome).
pub fn create_hold(
    conn: &mut PgConnection,
    event: &Event,
    types: &[TicketType],
    req: &HoldRequest,
    now: DateTime<Utc>,
    limits: HoldLimits,
) -> Result<HoldOutcome, HoldError> {
    let result = try_hold(conn, event, types, req, now, limits);
    ticketing_core::telemetry::hold(match &result {
        Ok(_) => "made",
        Err(HoldError::NotEnough) => "sold_out",
        Err(HoldError::ClientLimit { .. }) => "client_limit",
        Err(HoldError::Invalid { .. }) => "invalid",
        Err(HoldError::Db(_)) => "error",
    });
    result
}

fn try_hold(
    conn: &mut PgConnection,
    event: &Event,
    types: &[TicketType],
    req: &HoldRequest,
    now: DateTime<Utc>,
    limits: HoldLimits,
) -> Result<HoldOutcome, HoldError> {
    check_request(event, types, req, now)?;
    let mut quantities = req.quantities.clone();
    quantities.sort_by_key(|&(id, _)| id);
    let priced: Vec<(&TicketType, i32)> = quantities
        .iter()
        .map(|&(id, q)| (types.iter().find(|t| t.id == id).expect("checked"), q))
        .collect();
    let seats: i32 = priced.iter().map(|(_, q)| q).sum();
    let currency = priced[0].0.currency.clone();

    let type_ids: Vec<i64> = priced.iter().map(|(t, _)| t.id).collect();
    let qtys: Vec<i32> = priced.iter().map(|(_, q)| *q).collect();
    let prices: Vec<i64> = priced.iter().map(|(t, _)| t.price_minor).collect();
    let codes: Vec<String> = (0..seats)
        .map(|_| ticketing_core::tokens::ticket_code())
        .collect();
    let access_token = ticketing_core::tokens::url_token(32);
    let result = diesel::sql_query(
        "SELECT booking_id, outcome
           FROM create_hold($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind::<BigInt, _>(event.id)
    .bind::<Array<BigInt>, _>(&type_ids)
    .bind::<Array<Integer>, _>(&qtys)
    .bind::<Array<BigInt>, _>(&prices)
    .bind::<Text, _>(&currency)
    .bind::<Text, _>(ticketing_core::tokens::booking_reference())
    .bind::<Text, _>(&access_token)
    .bind::<Timestamptz, _>(now + Duration::minutes(i64::from(limits.details_minutes)))
    .bind::<Nullable<Text>, _>(req.idempotency_key.as_deref())
    .bind::<Array<Text>, _>(&codes)
    .bind::<Nullable<Text>, _>(req.client_key.as_deref())
    .bind::<Nullable<Integer>, _>(limits.client_cap)
    .bind::<Nullable<Text>, _>(req.private_token.as_deref().map(link_hash))
    .get_result::<HoldResult>(conn);
    match result {
        Ok(HoldResult {
            booking_id: Some(id),
            outcome,
        }) => {
            let created = outcome == "created";
            let access_token = if created {
                access_token
            } else {
                Booking::find(conn, id)?.access_token
            };
            return Ok(HoldOutcome {
                booking_id: id,
                access_token,
                created,
            });
        }
        // Not enough seats: nothing was changed.
        Ok(_) => {}
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message() == "not enough seats" => {}
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message() == "client hold limit" =>
        {
            return Err(HoldError::ClientLimit {
                held: info
                    .details()
                    .and_then(|d| d.trim().parse().ok())
                    .unwrap_or(0),
                cap: limits.client_cap.unwrap_or(0),
            });
        }
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message() == "duplicate form submission" =>
        {
            let key = req.idempotency_key.as_deref().unwrap_or_default();
            return Booking::find_by_idempotency_key(conn, key)?
                .map(|b| HoldOutcome {
                    booking_id: b.id,
                    access_token: b.access_token,
                    created: false,
                })
                .ok_or(HoldError::Db(diesel::result::Error::NotFound));
        }
        Err(e) => return Err(e.into()),
    }
    Err(HoldError::NotEnough)
}

/// After the details form of held booking `booking_id` was saved: the hold lasts
/// `hold_minutes` from its start (never less than it has already). A hold past its deadline
/// is not revived. Returns whether the booking was extended.
pub fn extend_after_details(
    conn: &mut PgConnection,
    booking_id: i64,
    hold_minutes: u32,
) -> QueryResult<bool> {
    use ticketing_db::schema::bookings;
    let full = bookings::created_at + Duration::minutes(i64::from(hold_minutes));
    let n = diesel::update(
        bookings::table
            .find(booking_id)
            .filter(bookings::state.eq("held"))
            .filter(bookings::hold_expires_at.gt(diesel::dsl::now))
            .filter(bookings::hold_expires_at.lt(full)),
    )
    .set(bookings::hold_expires_at.eq(full))
    .execute(conn)?;
    Ok(n == 1)
}

#[derive(QueryableByName)]
struct HoldResult {
    #[diesel(sql_type = Nullable<BigInt>)]
    booking_id: Option<i64>,
    #[diesel(sql_type = Text)]
    outcome: String,
}

/// Takes seats by the rule holds use (SQL `take_seats`: event row, then ticket types, never
/// past a capacity), outside a new hold: for a late approval that needs an expired booking's
/// seats again. Runs in a savepoint, so a short ticket type gives everything back and answers
/// `false` without aborting the caller's transaction. `check_window`: also refuse ticket types
/// outside their sale window.
pub(crate) fn take_seats(
    conn: &mut PgConnection,
    event_id: i64,
    type_ids: &[i64],
    qtys: &[i32],
    check_window: bool,
) -> QueryResult<bool> {
    let result = conn.transaction(|conn| {
        diesel::sql_query("SELECT take_seats($1, $2, $3, $4) AS taken")
            .bind::<BigInt, _>(event_id)
            .bind::<Array<BigInt>, _>(type_ids)
            .bind::<Array<Integer>, _>(qtys)
            .bind::<diesel::sql_types::Bool, _>(check_window)
            .get_result::<TakeResult>(conn)
    });
    match result {
        Ok(r) => Ok(r.taken),
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message() == "not enough seats" =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

#[derive(QueryableByName)]
struct TakeResult {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    taken: bool,
}

#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = BigInt)]
    event_rows: i64,
    #[diesel(sql_type = BigInt)]
    type_rows: i64,
}

/// Gives back seats taken by a hold: event row first, then its ticket types (the lock order).
pub(crate) fn release_seats(
    conn: &mut PgConnection,
    event_id: i64,
    seats: i32,
    ids: &[i64],
    qtys: &[i32],
) -> QueryResult<()> {
    let released: Taken = diesel::sql_query(
        "WITH ev AS (
            UPDATE events SET seats_taken = seats_taken - $2 WHERE id = $1 RETURNING id
        ), tt AS (
            UPDATE ticket_types t SET seats_taken = t.seats_taken - r.q
            FROM unnest($3::bigint[], $4::int[]) AS r(id, q)
            WHERE t.id = r.id AND t.event_id = $1 AND EXISTS (SELECT 1 FROM ev)
            RETURNING t.id
        )
        SELECT (SELECT count(*) FROM ev) AS event_rows, (SELECT count(*) FROM tt) AS type_rows",
    )
    .bind::<BigInt, _>(event_id)
    .bind::<Integer, _>(seats)
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Integer>, _>(qtys)
    .get_result(conn)?;
    if released.event_rows != 1 || released.type_rows != ids.len() as i64 {
        // Cannot happen while foreign keys hold; refuse rather than drift the counters.
        return Err(diesel::result::Error::RollbackTransaction);
    }
    Ok(())
}
