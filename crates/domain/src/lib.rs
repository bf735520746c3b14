//! The domain layer: the rules and transactions of bookings, with no HTTP in sight. Holds
//! that never oversell, the booking state machine, live availability, the mail outbox (rows
//! queued in the caller's transaction), waivers, staff accounts' one-time links and the audit
//! log. Functions take a
//! connection and return Diesel results, typed outcomes (`HoldError`, `Reopen`) or
//! [`ticketing_db::Error`]; only the HTTP layer turns them into statuses.

pub mod accounts;
pub mod audit;
pub mod bookings;
pub mod door;
pub mod outbox;
pub mod waivers;
