//! The connection guard in front of the web server. Rocket 0.5 never times a connection out
//! (it turns hyper's header-read timeout off and has no idle timeout), so 200 slow
//! connections from one address could sit on the server for as long as they liked. `serve`
//! binds the public address itself and hands each accepted connection, byte for byte, to
//! Rocket listening on a loopback port; TLS, HTTP/1.1 and keep-alive pass through untouched.
//! What it adds, without reading the bytes:
//!
//! - a client that does not send its first byte within the send limit is dropped;
//! - a client still sending the same request (bytes the server has not answered yet) longer
//!   than the send limit after it started is dropped: a trickled header or body cannot hold
//!   a connection, while a handler may take as long as it needs once the client is quiet
//!   (up to the idle limit, which must exceed the slowest handler: PayPal calls are
//!   `PAYPAL_TIMEOUT_SECONDS` × 3 attempts at worst);
//! - a connection with no byte either way for the idle limit is closed (idle keep-alive; the
//!   availability streams send a heartbeat every 15 s, well inside it);
//! - a response the client does not read within the idle limit ends the connection;
//! - one client address (IPv6: its network) may hold at most `per_client` connections, and
//!   the whole server `total`; Cloudflare's addresses are exempt from the per-client cap,
//!   since every visitor arrives from them.
//!
//! Rocket sees each connection coming from the loopback port the guard connected from;
//! [`crate::net::Peers`] maps that port back to the real client address for [`crate::net::client_ip`].
//! Tests: `connections::*`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocket::tokio::io::{AsyncReadExt, AsyncWriteExt};
use rocket::tokio::net::{TcpListener, TcpStream};
use rocket::tokio::sync::Semaphore;
use rocket::tokio::time::{sleep_until, timeout, Instant};

use crate::net::{Bucketing, ClientKey, Peers, TrustedProxies};

/// The guard's limits (from the configuration; see `CONNECTION_*` in .env.example).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to send one request (and its first byte).
    pub send: Duration,
    /// How long a connection may stay without a byte either way.
    pub idle: Duration,
    /// Connections one client (address, or IPv6 network) may hold at once.
    pub per_client: usize,
    /// Connections the whole server holds at once; more wait to be accepted.
    pub total: usize,
}

/// Removes a connection's entry from [`Peers`] when the connection ends.
struct Registered {
    peers: Peers,
    port: u16,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.peers.forget(self.port);
    }
}

/// Open connections per client, released when a connection ends.
#[derive(Default)]
struct PerClient(Mutex<HashMap<ClientKey, usize>>);

struct Slot<'a> {
    counts: &'a PerClient,
    key: Option<ClientKey>,
}

impl PerClient {
    fn take(&self, key: Option<ClientKey>, cap: usize) -> Option<Slot<'_>> {
        if let Some(key) = key {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let open = map.entry(key).or_insert(0);
            if *open >= cap {
                return None;
            }
            *open += 1;
        }
        Some(Slot { counts: self, key })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut map = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(open) = map.get_mut(&key) {
                *open -= 1;
                if *open == 0 {
                    map.remove(&key);
                }
            }
        }
    }
}

/// Everything a connection task needs, shared by all of them.
struct Shared {
    upstream: SocketAddr,
    peers: Peers,
    trusted: TrustedProxies,
    bucketing: Bucketing,
    limits: Limits,
    per_client: PerClient,
    total: Arc<Semaphore>,
}

/// Accepts on `listener` and relays every connection to Rocket at `upstream` until
/// `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    peers: Peers,
    trusted: TrustedProxies,
    bucketing: Bucketing,
    limits: Limits,
    mut shutdown: rocket::Shutdown,
) {
    let shared = Arc::new(Shared {
        upstream,
        peers,
        trusted,
        bucketing,
        limits,
        per_client: PerClient::default(),
        total: Arc::new(Semaphore::new(limits.total.max(1))),
    });
    loop {
        let permit = rocket::tokio::select! {
            _ = &mut shutdown => return,
            permit = shared.total.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let accepted = rocket::tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (client, addr) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!(error = %e, "accept failed");
                rocket::tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = shared.clone();
        rocket::tokio::spawn(async move {
            let _permit = permit;
            let ip = addr.ip();
            let key = (!shared.trusted.contains(ip)).then(|| ClientKey::of(ip, shared.bucketing));
            let Some(_slot) = shared.per_client.take(key, shared.limits.per_client) else {
                ticketing_core::telemetry::connection_closed("per_client");
                return;
            };
            if let Err(e) = relay(&shared, client, addr).await {
                tracing::debug!(error = %e, "connection relay ended");
            }
        });
    }
}

/// Why a relay ended early (only logged at debug level: it is the guard working).
#[derive(Debug)]
enum Ended {
    Io(std::io::Error),
    Limit(&'static str),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Io(e) => write!(f, "{e}"),
            Ended::Limit(which) => write!(f, "closed: {which} limit"),
        }
    }
}

impl From<std::io::Error> for Ended {
    fn from(e: std::io::Error) -> Self {
        Ended::Io(e)
    }
}

async fn relay(shared: &Shared, mut client: TcpStream, addr: SocketAddr) -> Result<(), Ended> {
    let _ = client.set_nodelay(true);
    let mut server = TcpStream::connect(shared.upstream).await?;
    let _ = server.set_nodelay(true);
    let _registered = Registered {
        peers: shared.peers.clone(),
        port: server.local_addr()?.port(),
    };
    shared.peers.remember(_registered.port, addr);

    let Limits { send, idle, .. } = shared.limits;
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.split();
    // Small buffers: most connections idle or stream a few bytes at a time, and a page
    // passes through in a few rounds (500 open streams cost 16 MiB less than at 16 KiB).
    let mut up = vec![0u8; 4 * 1024];
    let mut down = vec![0u8; 8 * 1024];
    let opened = Instant::now();
    // When the client started sending what the server has not answered yet.
    let mut sending_since: Option<Instant> = None;
    let mut client_spoke = false;
    let mut last_byte = opened;
    loop {
        // Before its first byte the client is on the send clock; after that a quiet client
        // may be waiting for a slow handler, so only the idle clock runs (and bytes that
        // arrive late in a request end it, in the read branch).
        let send_deadline = (!client_spoke).then_some(opened + send);
        let deadline = match send_deadline {
            Some(d) => d.min(last_byte + idle),
            None => last_byte + idle,
        };
        rocket::tokio::select! {
            read = from_client.read(&mut up) => {
                let n = read?;
                if n == 0 {
                    // The client is done sending; let the answer finish, then end.
                    to_server.shutdown().await?;
                    return drain(&mut from_server, &mut to_client, &mut down, idle).await;
                }
                let now = Instant::now();
                if let Some(since) = sending_since {
                    if now > since + send {
                        ticketing_core::telemetry::connection_closed("send");
                        return Err(Ended::Limit("send"));
                    }
                } else {
                    sending_since = Some(now);
                }
                client_spoke = true;
                last_byte = now;
                timeout(idle, to_server.write_all(&up[..n]))
                    .await
                    .map_err(|_| Ended::Limit("upstream write"))??;
            }
            read = from_server.read(&mut down) => {
                let n = read?;
                if n == 0 {
                    to_client.shutdown().await.ok();
                    return Ok(());
                }
                // The server answered: the client's request is no longer pending.
                sending_since = None;
                timeout(idle, to_client.write_all(&down[..n]))
                    .await
                    .map_err(|_| Ended::Limit("client read"))??;
                last_byte = Instant::now();
            }
            _ = sleep_until(deadline) => {
                let which = if send_deadline.is_some_and(|d| d <= Instant::now()) {
                    "send"
                } else {
                    "idle"
                };
                ticketing_core::telemetry::connection_closed(which);
                return Err(Ended::Limit(which));
            }
        }
    }
}

/// After the client closed its sending side: pass the rest of the answer on, still bounded
/// by the idle limit.
async fn drain(
    from_server: &mut rocket::tokio::net::tcp::ReadHalf<'_>,
    to_client: &mut rocket::tokio::net::tcp::WriteHalf<'_>,
    buf: &mut [u8],
    idle: Duration,
) -> Result<(), Ended> {
    loop {
        let n = timeout(idle, from_server.read(buf))
            .await
            .map_err(|_| Ended::Limit("idle"))??;
        if n == 0 {
            to_client.shutdown().await.ok();
            return Ok(());
        }
        timeout(idle, to_client.write_all(&buf[..n]))
            .await
            .map_err(|_| Ended::Limit("client read"))??;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_client_slots_are_capped_and_given_back() {
        let counts = PerClient::default();
        let key = Some(ClientKey::of(
            "192.0.2.1".parse().unwrap(),
            Bucketing::default(),
        ));
        let a = counts.take(key, 2).unwrap();
        let _b = counts.take(key, 2).unwrap();
        assert!(counts.take(key, 2).is_none());
        drop(a);
        assert!(counts.take(key, 2).is_some());
        // Exempt peers (no key) are never counted.
        for _ in 0..10 {
            assert!(counts.take(None, 2).is_some());
        }
    }
}
