//! The PostgreSQL connection pool (Diesel on r2d2) and the embedded migrations.
//! Handlers reach the database through [`Db::run`], which runs blocking Diesel code on
//! Tokio's blocking pool and turns pool exhaustion or an unreachable server into a 503.
//!
//! Connections the server has dropped (`pg_terminate_backend`, a restart of PostgreSQL) do not
//! go back into use: each connection carries a [`Health`] (its Diesel instrumentation) that
//! marks it broken when a query fails because the connection is gone, so r2d2 discards it
//! instead of returning it to the pool; and the first such failure tells the whole pool, so
//! every other connection is checked (`SELECT 1`) once before its next use. Normally a
//! checkout costs no round trip. One request fails per incident, not one per pooled
//! connection (tests `hardening::terminated_connections_are_replaced_at_once` and
//! `hardening::the_pool_recovers_from_a_postgres_restart`). Every connection of a serving
//! pool runs with `statement_timeout`, `lock_timeout` and
//! `idle_in_transaction_session_timeout` ([`Timeouts`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::pg::PgConnection;
use diesel::r2d2::{
    ConnectionManager, CustomizeConnection, ManageConnection, Pool, PooledConnection,
};
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::Error;

/// The migrations in the repository's `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

pub type PgPool = Pool<Manager>;
pub type PgConn = PooledConnection<Manager>;

/// Limits every connection of a serving pool runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `statement_timeout`: no query runs longer.
    pub statement: Duration,
    /// `lock_timeout`: no query waits longer for a row or table lock.
    pub lock: Duration,
    /// `idle_in_transaction_session_timeout`: a transaction left open this long is ended by
    /// the server (its locks released).
    pub idle_in_transaction: Duration,
}

impl Default for Timeouts {
    /// 15 s per statement, 5 s per lock wait, 60 s idle in a transaction.
    fn default() -> Timeouts {
        Timeouts {
            statement: Duration::from_secs(15),
            lock: Duration::from_secs(5),
            idle_in_transaction: Duration::from_secs(60),
        }
    }
}

impl Timeouts {
    /// The `SET` statements for a new connection.
    fn sql(&self) -> String {
        format!(
            "SET statement_timeout = {}; SET lock_timeout = {}; SET idle_in_transaction_session_timeout = {};",
            self.statement.as_millis(),
            self.lock.as_millis(),
            self.idle_in_transaction.as_millis()
        )
    }
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for Timeouts {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&self.sql())
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// What the connections of one pool know together: bumped each time one of them is found
/// gone, after which every other connection is checked before its next use.
#[derive(Debug, Default)]
struct PoolHealth {
    losses: AtomicU64,
}

/// One connection's health, kept as its Diesel instrumentation (which sees every query's
/// outcome): broken once a query failed because the connection is gone.
pub struct Health {
    broken: bool,
    /// The pool's loss count when this connection was last known good.
    checked_at: u64,
    pool: Arc<PoolHealth>,
}

impl Instrumentation for Health {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery { error: Some(e), .. } = event {
            if !self.broken && connection_lost(e) {
                self.broken = true;
                self.pool.losses.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// True when `e` says the connection itself is gone (closed by the server, or the server
/// went away), as opposed to a failed statement on a working connection.
pub fn connection_lost(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error as E};
    match e {
        E::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        E::DatabaseError(_, info) => {
            let m = info.message();
            m.contains("terminating connection")
                || m.contains("server closed the connection")
                || m.contains("no connection to the server")
        }
        _ => false,
    }
}

/// Diesel's connection manager, with each connection's [`Health`] checked by r2d2: a broken
/// connection is discarded when it comes back (`has_broken`), and after a loss anywhere in
/// the pool each connection is pinged once at its next checkout (`is_valid`, which costs
/// nothing otherwise).
pub struct Manager {
    inner: ConnectionManager<PgConnection>,
    pool: Arc<PoolHealth>,
}

impl Manager {
    pub fn new(database_url: &str) -> Manager {
        Manager {
            inner: ConnectionManager::new(database_url),
            pool: Arc::default(),
        }
    }

    fn health(conn: &mut PgConnection) -> Option<&mut Health> {
        conn.instrumentation().downcast_mut::<Health>()
    }
}

impl ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConnection, Self::Error> {
        let mut conn = self.inner.connect()?;
        conn.set_instrumentation(Health {
            broken: false,
            checked_at: self.pool.losses.load(Ordering::SeqCst),
            pool: self.pool.clone(),
        });
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), Self::Error> {
        let losses = self.pool.losses.load(Ordering::SeqCst);
        match Manager::health(conn) {
            Some(h) if h.broken => {
                return Err(diesel::r2d2::Error::ConnectionError(
                    diesel::ConnectionError::BadConnection("the connection was lost".into()),
                ))
            }
            Some(h) if h.checked_at == losses => return Ok(()),
            _ => {}
        }
        self.inner.is_valid(conn)?;
        if let Some(h) = Manager::health(conn) {
            h.checked_at = losses;
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        self.inner.has_broken(conn) || Manager::health(conn).is_some_and(|h| h.broken)
    }
}

/// A cheap-to-clone handle on the connection pool.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    /// One permit per pooled connection: [`Db::run`] waits here, as an async task, before
    /// it takes a blocking thread, so a burst of requests waits without a thread each.
    /// (Without it, 100 open availability streams started 100 blocking threads, each waiting
    /// on the pool, and kept ~75 MiB: `scripts/abuse`.)
    gate: std::sync::Arc<tokio::sync::Semaphore>,
    timeout: Duration,
}

impl Db {
    /// Builds the pool without waiting for a connection: the app can start (and answer
    /// `/healthz` with 503) while the database is still coming up.
    pub fn new(database_url: &str, size: u32, timeout: Duration) -> Db {
        Db::with_timeouts(database_url, size, timeout, Timeouts::default())
    }

    /// [`Db::new`] with the given per-connection [`Timeouts`].
    pub fn with_timeouts(database_url: &str, size: u32, timeout: Duration, limits: Timeouts) -> Db {
        Db::build(database_url, size, Some(size.min(2)), timeout, Some(limits))
    }

    /// A pool for one-shot commands (migrate, seed, create-admin): connections are made only
    /// when asked for, on the asking thread. Idle connections opened in the background could
    /// still be starting (libpq setting up TLS or GSSAPI) while the process exits, which
    /// crashes it at exit now and then.
    /// Commands run without statement timeouts (a migration may take long).
    pub fn on_demand(database_url: &str, timeout: Duration) -> Db {
        Db::build(database_url, 2, Some(0), timeout, None)
    }

    fn build(
        database_url: &str,
        size: u32,
        min_idle: Option<u32>,
        timeout: Duration,
        limits: Option<Timeouts>,
    ) -> Db {
        let builder = Pool::builder()
            .max_size(size)
            .min_idle(min_idle)
            .connection_timeout(timeout)
            // `Manager::is_valid` pings a connection only after a loss in the pool, so
            // testing on checkout costs no round trip otherwise.
            .test_on_check_out(true);
        let builder = match limits {
            Some(limits) => builder.connection_customizer(Box::new(limits)),
            None => builder,
        };
        Db {
            pool: builder.build_unchecked(Manager::new(database_url)),
            gate: std::sync::Arc::new(tokio::sync::Semaphore::new(size.max(1) as usize)),
            timeout,
        }
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
        ticketing_core::telemetry::pool_waiting(1.0);
        let permit = tokio::time::timeout(self.timeout, self.gate.clone().acquire_owned()).await;
        ticketing_core::telemetry::pool_waiting(-1.0);
        let permit = match permit {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => {
                return Err(Error::unavailable(
                    "timed out waiting for a database connection",
                ))
            }
        };
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // The wait was counted at the gate; with a permit a connection is free or
            // being made, so this checkout is not counted again.
            let mut conn = pool.get().map_err(Error::from)?;
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
