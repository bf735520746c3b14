//! The PostgreSQL connection pool (Diesel on r2d2) and the embedded migrations.
//! Handlers reach the database through [`Db::run`], which runs blocking Diesel code on
//! Tokio's blocking pool and turns pool exhaustion or an unreachable server into a 503.

use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::Error;

/// The migrations in the repository's `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

pub type PgPool = Pool<ConnectionManager<PgConnection>>;
pub type PgConn = PooledConnection<ConnectionManager<PgConnection>>;

/// A cheap-to-clone handle on the connection pool.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
}

impl Db {
    /// Builds the pool without waiting for a connection: the app can start (and answer
    /// `/healthz` with 503) while the database is still coming up.
    pub fn new(database_url: &str, size: u32, timeout: Duration) -> Db {
        Db::build(database_url, size, Some(size.min(2)), timeout)
    }

    /// A pool for one-shot commands (migrate, seed, create-admin): connections are made only
    /// when asked for, on the asking thread. Idle connections opened in the background could
    /// still be starting (libpq setting up TLS or GSSAPI) while the process exits, which
    /// crashes it at exit now and then.
    pub fn on_demand(database_url: &str, timeout: Duration) -> Db {
        Db::build(database_url, 2, Some(0), timeout)
    }

    fn build(database_url: &str, size: u32, min_idle: Option<u32>, timeout: Duration) -> Db {
        let manager = ConnectionManager::<PgConnection>::new(database_url);
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(min_idle)
            .connection_timeout(timeout)
            // A broken connection is noticed by its failed query and dropped by the manager;
            // testing every checkout would double the round trips of every request.
            .test_on_check_out(false)
            .build_unchecked(manager);
        Db { pool }
    }

    /// The underlying r2d2 pool (for layers that run their own blocking tasks).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A connection for blocking code (commands, background jobs already on a blocking thread).
    pub fn get(&self) -> Result<PgConn, Error> {
        checkout(&self.pool)
    }

    /// Publishes the pool's connections in use and idle (for `/metrics`).
    pub fn record_state(&self) {
        let state = self.pool.state();
        ticketing_core::telemetry::pool_connections(
            state.connections - state.idle_connections,
            state.idle_connections,
        );
    }

    /// Runs `f` with a pooled connection on a blocking thread.
    pub async fn run<F, R>(&self, f: F) -> Result<R, Error>
    where
        F: FnOnce(&mut PgConnection) -> Result<R, Error> + Send + 'static,
        R: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = checkout(&pool)?;
            f(&mut conn)
        })
        .await
        .map_err(|e| Error::internal(format!("database task failed: {e}")))?
    }

    /// Applies every pending migration; returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<String>, Error> {
        let mut conn = self.get()?;
        run_migrations(&mut conn)
    }
}

/// A connection from `pool`, counted as waiting while the pool has none to give.
pub fn checkout(pool: &PgPool) -> Result<PgConn, Error> {
    ticketing_core::telemetry::pool_waiting(1.0);
    let conn = pool.get();
    ticketing_core::telemetry::pool_waiting(-1.0);
    conn.map_err(Error::from)
}

/// Applies every pending embedded migration on `conn`.
pub fn run_migrations(conn: &mut PgConnection) -> Result<Vec<String>, Error> {
    conn.run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(|v| v.to_string()).collect())
        .map_err(|e| Error::internal(format!("migrations failed: {e}")))
}
