//! The innermost layer: small, pure helpers every other crate may use. Nothing here knows
//! about HTTP or the database, so each is tested on its own.

pub mod ics;
pub mod money;
pub mod passwords;
pub mod telemetry;
pub mod timefmt;
pub mod tokens;
pub mod validate;
