//! The database layer: the Diesel schema, one model per table, the connection pool with the
//! embedded migrations, the error type every upper layer returns, and the one helper every
//! job uses to claim due rows.

pub mod claim;
pub mod error;
pub mod models;
pub mod pool;
pub mod schema;

pub use error::{Error, ErrorKind, Result};
pub use pool::{checkout, run_migrations, Db, PgConn, PgPool, Timeouts, MIGRATIONS};
