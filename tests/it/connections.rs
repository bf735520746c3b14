//! The connection guard (`src/front.rs`), against the real binary over real sockets: slow
//! and silent clients are cut off, idle keep-alive ends, one client cannot hold more than its
//! share of connections, and the app still sees each client's own address.
//! Clients use other loopback addresses (127.0.0.2, ...) so they count as distinct clients.

use std::time::{Duration, Instant};

use rocket::tokio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::TestDb;

/// The binary, serving with `env` on top of a local test configuration; its log in `log`.
pub struct Server {
    child: std::process::Child,
    pub port: u16,
    _db: TestDb,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ticketing serve` on a free port with `env` added (and its log appended to `log`).
pub fn serve(env: &[(&str, &str)], log: Option<&std::path::Path>) -> Server {
    let db = TestDb::migrated();
    let (child, port) = crate::helpers::spawn_server(&db.url, env, log);
    Server {
        child,
        port,
        _db: db,
    }
}

/// A connection to the server from the loopback address `from`.
async fn connect_from(from: [u8; 4], port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
}

/// Waits up to `within` for the server to close `conn`; how long it took, if it did.
async fn closed_within(conn: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.checked_sub(start.elapsed())?;
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends one `Connection: close` request and reads the whole answer.
async fn get(conn: &mut TcpStream, path: &str) -> String {
    conn.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_string(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    answer
}

#[rocket::async_test]
async fn the_client_address_survives_the_guard() {
    let log = std::env::temp_dir().join(format!("guard-ip-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let server = serve(&[], Some(&log));
    let mut conn = connect_from([127, 0, 0, 2], server.port).await;
    let answer = get(&mut conn, "/robots.txt").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("/robots.txt"))
        .unwrap_or_else(|| panic!("no request line in the log:\n{text}"));
    assert!(
        line.contains("127.0.0.2"),
        "the app saw another address: {line}"
    );
}

#[rocket::async_test]
async fn a_trickled_request_is_cut_off() {
    let server = serve(&[("CONNECTION_SEND_SECONDS", "2")], None);
    let mut conn = connect_from([127, 0, 0, 5], server.port).await;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let mut cut = None;
    // One header line every 300 ms: never a complete request.
    for n in 0..40 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if conn
            .write_all(format!("X-{n}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            cut = Some(start.elapsed());
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), conn.read(&mut buf)).await
        {
            cut = Some(start.elapsed());
            break;
        }
    }
    let cut = cut.expect("a trickling client was still connected after 12 s");
    assert!(cut < Duration::from_secs(8), "cut off only after {cut:?}");
}

#[rocket::async_test]
async fn silent_and_idle_connections_are_closed() {
    let server = serve(
        &[
            ("CONNECTION_SEND_SECONDS", "2"),
            ("CONNECTION_IDLE_SECONDS", "3"),
        ],
        None,
    );
    // Never a byte: closed on the send clock.
    let mut silent = connect_from([127, 0, 0, 6], server.port).await;
    let took = closed_within(&mut silent, Duration::from_secs(10))
        .await
        .expect("a silent connection stayed open 10 s");
    assert!(
        took >= Duration::from_millis(1500),
        "closed too early: {took:?}"
    );

    // A keep-alive connection after its answer: closed on the idle clock.
    let mut idle = connect_from([127, 0, 0, 6], server.port).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // A second request on the same connection is still served.
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let took = closed_within(&mut idle, Duration::from_secs(12))
        .await
        .expect("an idle keep-alive connection stayed open 12 s");
    assert!(took >= Duration::from_secs(2), "closed too early: {took:?}");
}

#[rocket::async_test]
async fn one_client_holds_at_most_its_share_of_connections() {
    let server = serve(&[("MAX_CONNECTIONS_PER_CLIENT", "4")], None);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from([127, 0, 0, 7], server.port).await);
    }
    // Let the guard count them before the fifth arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fifth = connect_from([127, 0, 0, 7], server.port).await;
    assert!(
        closed_within(&mut fifth, Duration::from_secs(2))
            .await
            .is_some(),
        "a fifth connection from one client was kept"
    );
    // Another client is served meanwhile.
    let mut other = connect_from([127, 0, 0, 8], server.port).await;
    assert!(get(&mut other, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    // A held connection still works, and once it is gone there is room again.
    let answer = get(&mut held[0], "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    held.remove(0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from([127, 0, 0, 7], server.port).await;
    assert!(get(&mut again, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
}
