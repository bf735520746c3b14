//! The booking engine of SPEC §3: holds that never oversell, state changes that return seats
//! exactly once, the expiry sweeper, live availability for open event pages, and single
//! tickets cancelled or refunded on their own (`tickets`).

pub mod availability;
pub mod holds;
pub mod lifecycle;
pub mod tickets;

pub use availability::Availability;
pub use holds::{create_hold, HoldError, HoldLimits, HoldOutcome, HoldRequest};
pub use lifecycle::{expire_due, transition};
pub use tickets::{usability, TicketState, Usability};
