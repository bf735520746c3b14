//! Test harness: every test gets its own PostgreSQL database cloned from a migrated template,
//! and an app built exactly as production builds it, driven over HTTP through Rocket's local
//! client. No global lock and no rows shared between tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use rocket::local::asynchronous::Client;
use sha2::{Digest, Sha256};
use ticketing::models::{Event, NewEvent, NewTicketType, TicketType};
use ticketing::Config;

/// The admin URL of the test server (`TEST_DATABASE_URL`, set by scripts/test).
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("TEST_DATABASE_URL is not set: run the tests with scripts/test, which provides PostgreSQL")
    })
}

/// `url` pointing at database `name` instead.
pub fn url_for(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let server = base.rsplit_once('/').map(|(s, _)| s).unwrap_or(base);
    format!("{server}/{name}{query}")
}

fn admin_conn() -> PgConnection {
    PgConnection::establish(&admin_url()).expect("connect to the test PostgreSQL server")
}

/// Name of the template database for the current migrations (content hash).
fn template_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut paths: Vec<_> = walk(std::path::Path::new(dir));
        paths.sort();
        let mut h = Sha256::new();
        for p in paths {
            h.update(p.to_string_lossy().as_bytes());
            h.update(std::fs::read(&p).unwrap());
        }
        format!("tmpl_{}", &hex::encode(h.finalize())[..16])
    })
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Creates the migrated template once per server and set of migrations. Safe across
/// processes: creation happens under an advisory lock.
fn ensure_template() -> &'static str {
    static DONE: OnceLock<()> = OnceLock::new();
    let name = template_name();
    DONE.get_or_init(|| {
        let mut conn = admin_conn();
        diesel::sql_query("SELECT pg_advisory_lock(7263541)")
            .execute(&mut conn)
            .unwrap();
        let exists = diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(name)
            .get_result::<Count>(&mut conn)
            .unwrap()
            .n
            > 0;
        if !exists {
            let building = format!("{name}_building");
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                .execute(&mut conn)
                .unwrap();
            diesel::sql_query(format!("CREATE DATABASE {building}"))
                .execute(&mut conn)
                .unwrap();
            {
                let mut c = PgConnection::establish(&url_for(&admin_url(), &building)).unwrap();
                ticketing::db::run_migrations(&mut c).expect("migrations apply to a new database");
            }
            diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
                .execute(&mut conn)
                .unwrap();
        }
        diesel::sql_query("SELECT pg_advisory_unlock(7263541)")
            .execute(&mut conn)
            .unwrap();
    });
    name
}

/// A database of this test's own, dropped (with its connections) when the value is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A fresh database with every migration applied (a copy of the template).
    pub fn migrated() -> TestDb {
        let template = ensure_template();
        TestDb::create(Some(template))
    }

    /// A fresh, empty database (no tables at all).
    pub fn empty() -> TestDb {
        TestDb::create(None)
    }

    fn create(template: Option<&str>) -> TestDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            ticketing::tokens::url_token(4)
                .to_lowercase()
                .replace(['-', '_'], "x")
        );
        let sql = match template {
            Some(t) => format!("CREATE DATABASE {name} TEMPLATE {t}"),
            None => format!("CREATE DATABASE {name}"),
        };
        diesel::sql_query(sql).execute(&mut admin_conn()).unwrap();
        TestDb {
            url: url_for(&admin_url(), &name),
            name,
        }
    }

    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connect to the test database")
    }

    /// Drops the database now, cutting off every connection (the app's pool included).
    pub fn drop_now(&self) {
        let _ = diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin_conn());
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.drop_now();
    }
}

/// The variables a test app runs with; tests add or override entries.
pub fn base_vars(database_url: &str) -> HashMap<String, String> {
    let root = env!("CARGO_MANIFEST_DIR");
    [
        ("APP_ENV", "local"),
        ("DATABASE_URL", database_url),
        ("DATABASE_POOL_SIZE", "4"),
        ("DATABASE_TIMEOUT_SECONDS", "2"),
        ("BASE_URL", "http://tickets.test"),
        ("LOG_LEVEL", "warn"),
        ("HOLD_RATE_PER_MINUTE", "0"),
        // Most tests book many seats from one address; `hoarding` tests the cap itself.
        ("MAX_SEATS_HELD_PER_CLIENT", "0"),
        ("TEMPLATE_DIR", &format!("{root}/templates")),
        ("STATIC_DIR", &format!("{root}/static")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A running app on its own database, reached through Rocket's local HTTP client.
pub struct TestApp {
    pub client: Client,
    pub db: TestDb,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
        let db = TestDb::migrated();
        let mut vars = base_vars(&db.url);
        adjust(&mut vars);
        let config = Config::from_map(&vars).expect("test configuration is valid");
        let pool = ticketing::connect(&config);
        let client = Client::tracked(ticketing::rocket(&config, pool))
            .await
            .expect("the app builds");
        TestApp { client, db }
    }

    pub fn conn(&self) -> PgConnection {
        self.db.conn()
    }

    /// GET `path` and return (status, body).
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let res = self.client.get(path.to_string()).dispatch().await;
        let status = res.status().code;
        (status, res.into_string().await.unwrap_or_default())
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Builds an event with sensible defaults; tests change what they care about.
pub struct EventSpec {
    pub slug: String,
    pub title: String,
    pub visibility: &'static str,
    pub starts_at: DateTime<Utc>,
    pub hours: i64,
    pub capacity: i32,
    pub timezone: &'static str,
    pub description: String,
    pub waiver: Option<String>,
}

impl EventSpec {
    pub fn public(slug: &str, days_ahead: i64) -> EventSpec {
        EventSpec {
            slug: slug.into(),
            title: format!("Event {slug}"),
            visibility: "public",
            starts_at: Utc::now() + Duration::days(days_ahead),
            hours: 3,
            capacity: 100,
            timezone: "Europe/Berlin",
            description: "A fine evening.".into(),
            waiver: None,
        }
    }

    pub fn waiver(mut self, text: &str) -> Self {
        self.waiver = Some(text.into());
        self
    }

    pub fn visibility(mut self, v: &'static str) -> Self {
        self.visibility = v;
        self
    }

    pub fn title(mut self, t: &str) -> Self {
        self.title = t.into();
        self
    }

    pub fn capacity(mut self, c: i32) -> Self {
        self.capacity = c;
        self
    }

    pub fn insert(self, conn: &mut PgConnection) -> Event {
        Event::insert(
            conn,
            &NewEvent {
                slug: self.slug,
                title: self.title,
                description: self.description,
                venue: "Test Hall".into(),
                timezone: self.timezone.into(),
                starts_at: self.starts_at,
                ends_at: self.starts_at + Duration::hours(self.hours),
                capacity: self.capacity,
                visibility: self.visibility.into(),
                private_token: (self.visibility == "private")
                    .then(ticketing::tokens::private_event_token),
                waiver_required: self.waiver.is_some(),
                waiver_text: self.waiver.unwrap_or_default(),
            },
        )
        .expect("insert test event")
    }
}

/// Adds a ticket type to `event`.
pub fn add_ticket_type(
    conn: &mut PgConnection,
    event: &Event,
    name: &str,
    price_minor: i64,
    capacity: i32,
) -> TicketType {
    TicketType::insert(
        conn,
        &NewTicketType {
            event_id: event.id,
            name: name.into(),
            description: String::new(),
            price_minor,
            currency: "EUR".into(),
            capacity,
            sales_open_at: None,
            sales_close_at: None,
            max_per_booking: 10,
            position: 0,
        },
    )
    .expect("insert ticket type")
}

/// The app served over real HTTP on 127.0.0.1 (a free port), with its background jobs.
pub struct TestServer {
    pub base: String,
    pub db: TestDb,
    shutdown: rocket::Shutdown,
}

impl TestServer {
    pub async fn spawn() -> TestServer {
        TestServer::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut HashMap<String, String>)) -> TestServer {
        let db = TestDb::migrated();
        let mut vars = base_vars(&db.url);
        vars.insert("DATABASE_POOL_SIZE".into(), "20".into());
        // A free port chosen now, so that BASE_URL (links, PayPal return URLs) points here.
        let port = free_port();
        adjust(&mut vars);
        let scheme = if vars.contains_key("TLS_CERT_FILE") {
            "https"
        } else {
            "http"
        };
        vars.insert("BASE_URL".into(), format!("{scheme}://127.0.0.1:{port}"));
        vars.insert("PORT".into(), port.to_string());
        let config = Config::from_map(&vars).expect("test configuration is valid");
        let (tx, rx) = rocket::tokio::sync::oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        let rocket = ticketing::rocket(&config, ticketing::connect(&config)).attach(
            rocket::fairing::AdHoc::on_liftoff("report port", move |r| {
                let port = r.config().port;
                let shutdown = r.shutdown();
                Box::pin(async move {
                    if let Some(tx) = tx.lock().unwrap().take() {
                        let _ = tx.send((port, shutdown));
                    }
                })
            }),
        );
        rocket::tokio::spawn(async move {
            if let Err(e) = rocket.launch().await {
                eprintln!("test server failed: {e}");
            }
        });
        let (bound, shutdown) =
            rocket::tokio::time::timeout(std::time::Duration::from_secs(20), rx)
                .await
                .expect("server started in time")
                .expect("server reported its port");
        assert_eq!(bound, port);
        TestServer {
            base: format!("{scheme}://127.0.0.1:{port}"),
            db,
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn conn(&self) -> PgConnection {
        self.db.conn()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
    }
}

/// Installs rustls' crypto provider (ring) once; reqwest needs it before any client is built.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client that does not follow redirects (tests look at each step) and keeps cookies.
/// A buyer over real HTTP: holds one seat of `type_id` per attendee (name, email; an empty
/// email means the buyer's) and fills in the details as Ana Lima. Returns the booking's
/// access token; the booking is left `held`, ready to confirm.
pub async fn hold_with_details(
    client: &reqwest::Client,
    server: &TestServer,
    event_id: i64,
    type_id: i64,
    attendees: &[(String, String)],
) -> String {
    let res = client
        .post(server.url("/checkout/hold"))
        .form(&[
            ("event_id", event_id.to_string()),
            (&format!("qty[{type_id}]"), attendees.len().to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "hold refused");
    let token = res.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let mut form = vec![
        ("buyer_name".to_string(), "Ana Lima".to_string()),
        ("buyer_email".to_string(), "ana@example.com".to_string()),
    ];
    for (i, (name, email)) in attendees.iter().enumerate() {
        form.push((format!("attendees[{i}].name"), name.clone()));
        form.push((format!("attendees[{i}].email"), email.clone()));
    }
    let res = client
        .post(server.url(&format!("/checkout/{token}")))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "details refused");
    token
}

pub fn http_client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A counter that disagrees with the bookings; its fields are shown by `Debug` in assertions.
#[derive(QueryableByName, Debug)]
#[allow(dead_code)]
pub struct InvariantRow {
    #[diesel(sql_type = Text)]
    pub what: String,
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub counter: i64,
    #[diesel(sql_type = BigInt)]
    pub actual: i64,
}

/// Every event and ticket type whose seat counter differs from the seats of its held,
/// awaiting_payment and paid bookings (SPEC §3's invariant); empty when it holds.
pub fn invariant_violations(conn: &mut PgConnection) -> Vec<InvariantRow> {
    diesel::sql_query(
        "SELECT 'event' AS what, e.id, e.seats_taken::bigint AS counter,
                COALESCE((SELECT sum(b.seats) FROM bookings b
                          WHERE b.event_id = e.id AND b.state IN ('held','awaiting_payment','paid')), 0)::bigint AS actual
           FROM events e
         UNION ALL
         SELECT 'ticket_type', t.id, t.seats_taken::bigint,
                COALESCE((SELECT sum(i.quantity) FROM booking_items i JOIN bookings b ON b.id = i.booking_id
                          WHERE i.ticket_type_id = t.id AND b.state IN ('held','awaiting_payment','paid')), 0)::bigint
           FROM ticket_types t",
    )
    .load::<InvariantRow>(conn)
    .unwrap()
    .into_iter()
    .filter(|r| r.counter != r.actual)
    .collect()
}

/// Seats taken on an event and the number of bookings, for "nothing changed" checks.
pub fn seat_state(conn: &mut PgConnection, event_id: i64) -> (i32, i64) {
    use ticketing::schema::{bookings, events};
    let taken: i32 = events::table
        .find(event_id)
        .select(events::seats_taken)
        .first(conn)
        .unwrap();
    let n: i64 = bookings::table
        .filter(bookings::event_id.eq(event_id))
        .count()
        .get_result(conn)
        .unwrap();
    (taken, n)
}

/// Starts the `ticketing serve` binary on a free port over the database at `db_url`, with
/// `env` added and its output appended to `log` (or discarded); returns once it answers
/// HTTP (any status: a test may start it before its database is usable). Other tests start
/// servers too: a port found free may be taken before this server binds it, and then the
/// server exits at once; such a start is tried again on another port.
pub fn spawn_server(
    db_url: &str,
    env: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> (std::process::Child, u16) {
    use std::time::{Duration, Instant};
    for _ in 0..5 {
        let port = free_port();
        let output = || match log {
            Some(path) => std::process::Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap(),
            ),
            None => std::process::Stdio::null(),
        };
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ticketing"))
            .arg("serve")
            .env("APP_ENV", "local")
            .env("DATABASE_URL", db_url)
            .env("PORT", port.to_string())
            .env("LOG_LEVEL", if log.is_some() { "info" } else { "warn" })
            .env("LOG_FORMAT", "json")
            .envs(env.iter().copied())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap();
        let up = Instant::now();
        while up.elapsed() < Duration::from_secs(20) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if answers_http(port) {
                return (child, port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("the server did not start on any of 5 ports");
}

/// Whether something on `port` answers `GET /healthz` with an HTTP status line.
fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 ")
}

/// The value of a page's hidden `csrf` field.
pub fn hidden_csrf(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .expect("a csrf field")
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

/// A mailer configured like the test app on `database_url`, to render queued mails as they
/// would be sent (`mailer.renderer().render(conn, id)`).
pub fn mailer(database_url: &str) -> ticketing::mail::Mailer {
    let config = Config::from_map(&base_vars(database_url)).unwrap();
    ticketing::mail::Mailer::new(
        &config.mail,
        &config.template_dir,
        &config.base_url,
        &config.site_name,
    )
    .unwrap()
}
