//! The web layer's handle on the database: the pool of `ticketing-db`, managed as Rocket
//! state, whose [`Db::run`] returns the HTTP error type, so a handler can build its refusal
//! inside the blocking closure. It dereferences to [`ticketing_db::Db`] for the layers below.

use std::ops::Deref;
use std::time::Duration;

use diesel::pg::PgConnection;

use crate::error::AppError;

pub use ticketing_db::{run_migrations, PgConn, PgPool, MIGRATIONS};

/// A cheap-to-clone handle on the connection pool.
#[derive(Clone)]
pub struct Db(ticketing_db::Db);

impl Deref for Db {
    type Target = ticketing_db::Db;

    fn deref(&self) -> &ticketing_db::Db {
        &self.0
    }
}

impl From<ticketing_db::Db> for Db {
    fn from(db: ticketing_db::Db) -> Db {
        Db(db)
    }
}

impl Db {
    /// See [`ticketing_db::Db::new`].
    pub fn new(database_url: &str, size: u32, timeout: Duration) -> Db {
        Db(ticketing_db::Db::new(database_url, size, timeout))
    }

    /// See [`ticketing_db::Db::on_demand`].
    pub fn on_demand(database_url: &str, timeout: Duration) -> Db {
        Db(ticketing_db::Db::on_demand(database_url, timeout))
    }

    /// A connection for blocking code (commands, background jobs already on a blocking thread).
    pub fn get(&self) -> Result<PgConn, AppError> {
        Ok(self.0.get()?)
    }

    /// Runs `f` with a pooled connection on a blocking thread (see [`ticketing_db::Db::run`]:
    /// waiting for a connection takes no thread).
    pub async fn run<F, R>(&self, f: F) -> Result<R, AppError>
    where
        F: FnOnce(&mut PgConnection) -> Result<R, AppError> + Send + 'static,
        R: Send + 'static,
    {
        self.0.run(move |conn| Ok(f(conn))).await?
    }

    /// Applies every pending migration; returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<String>, AppError> {
        Ok(self.0.migrate()?)
    }
}
