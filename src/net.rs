//! Who is asking: the client's IP address behind Cloudflare, the key every per-client limit
//! counts ([`ClientKey`]: the address, or an IPv6 client's /64 network), and per-client rate
//! limits.
//!
//! `CF-Connecting-IP` is believed only when the TCP peer is inside Cloudflare's published
//! ranges (`config/cloudflare-ips.txt`, refreshed by `scripts/refresh-cloudflare-ips`);
//! from anywhere else the header could be forged, so the peer address is the client.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, Mutex};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use rocket::request::{FromRequest, Outcome};
use rocket::Request;

/// Cloudflare's address ranges, as loaded at start.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    pub ranges: Vec<IpNet>,
}

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.ranges.iter().any(|net| net.contains(&ip))
    }
}

/// The shortest IPv4 prefix accepted in a ranges file: Cloudflare's widest published v4
/// ranges are /13 (104.16.0.0/13, 172.64.0.0/13); one step of slack.
pub const WIDEST_V4_PREFIX: u8 = 12;
/// The shortest IPv6 prefix accepted: Cloudflare's widest v6 range is /29 (2a06:98c0::/29).
pub const WIDEST_V6_PREFIX: u8 = 28;

/// Parses a ranges file: one CIDR per line; blank lines and `#` comments are skipped. A
/// range wider than any Cloudflare publishes (`0.0.0.0/0`, `::/0`, anything shorter than
/// /12 or /28) and a range that reaches private, loopback, link-local or other non-public
/// addresses are refused: trusting them would let anyone forge `CF-Connecting-IP` (test
/// `refuses_ranges_wider_than_cloudflare_publishes`).
pub fn parse_ranges(text: &str) -> Result<Vec<IpNet>, String> {
    text.lines()
        .enumerate()
        .map(|(n, line)| (n + 1, line.split('#').next().unwrap_or("").trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(n, line)| {
            let net = line.parse::<IpNet>().map_err(|_| {
                format!("line {n}: {line:?} is not a CIDR range such as 173.245.48.0/20")
            })?;
            let widest = match net {
                IpNet::V4(_) => WIDEST_V4_PREFIX,
                IpNet::V6(_) => WIDEST_V6_PREFIX,
            };
            if net.prefix_len() < widest {
                return Err(format!(
                    "line {n}: {line:?} is wider than any range Cloudflare publishes (the widest are /13 for IPv4 and /29 for IPv6; shorter than /{widest} is refused)"
                ));
            }
            if !is_public(&net) {
                return Err(format!(
                    "line {n}: {line:?} reaches private, loopback or other non-public addresses, which are never Cloudflare's"
                ));
            }
            Ok(net)
        })
        .collect()
}

/// True when no address of `net` is in a special-purpose block (private, shared, loopback,
/// link-local, documentation, multicast, reserved; IPv6 unique-local, link-local, multicast
/// and mapped IPv4).
fn is_public(net: &IpNet) -> bool {
    const SPECIAL_V4: &[&str] = &[
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/3",
    ];
    const SPECIAL_V6: &[&str] = &[
        "::/8",
        "64:ff9b::/96",
        "100::/64",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ];
    let overlaps = |a: &IpNet, b: &IpNet| a.contains(&b.network()) || b.contains(&a.network());
    SPECIAL_V4
        .iter()
        .chain(SPECIAL_V6)
        .filter_map(|s| s.parse::<IpNet>().ok())
        .all(|special| !overlaps(net, &special))
}

/// Reads and parses a ranges file.
pub fn load_ranges(path: &Path) -> Result<Vec<IpNet>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
    parse_ranges(&text)
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The client's address for `req`: `CF-Connecting-IP` from a Cloudflare peer, else the peer.
pub fn client_ip(req: &Request<'_>) -> Option<IpAddr> {
    let mut remote = req.remote()?;
    // A connection relayed by the connection guard comes from loopback; the guard knows
    // whom it relays (test `connections::the_client_address_survives_the_guard`).
    if is_guard_side(remote.ip()) {
        if let Some(client) = req
            .rocket()
            .state::<Peers>()
            .and_then(|peers| peers.client_of(remote.port()))
        {
            remote = client;
        }
    }
    let peer = canonical(remote.ip());
    let trusted = req.rocket().state::<TrustedProxies>();
    if trusted.is_some_and(|t| t.contains(peer)) {
        if let Some(ip) = req
            .headers()
            .get_one("CF-Connecting-IP")
            .and_then(|h| h.trim().parse::<IpAddr>().ok())
        {
            return Some(canonical(ip));
        }
    }
    Some(peer)
}

/// Real client addresses of the connections the connection guard (`front`) opened to Rocket, by the guard's
/// local port on the loopback side.
#[derive(Debug, Clone, Default)]
pub struct Peers(Arc<Mutex<HashMap<u16, SocketAddr>>>);

impl Peers {
    /// The client behind a loopback connection from `port`, if the guard opened it.
    pub fn client_of(&self, port: u16) -> Option<SocketAddr> {
        self.lock().get(&port).copied()
    }

    /// Records that the guard's connection from `port` relays `client`.
    pub fn remember(&self, port: u16, client: SocketAddr) {
        self.lock().insert(port, client);
    }

    /// The guard's connection from `port` has ended.
    pub fn forget(&self, port: u16) {
        self.lock().remove(&port);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u16, SocketAddr>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `ip` is where the guard's own connections to Rocket come from.
pub fn is_guard_side(ip: IpAddr) -> bool {
    ip.is_loopback()
}

/// Request guard with the client's address (see [`client_ip`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientIp {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let ip = client_ip(req).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Outcome::Success(ClientIp(ip))
    }
}

/// How clients are bucketed: IPv6 addresses count by their first `v6_prefix` bits, since one
/// end site usually holds a whole /64 and could rotate through it.
#[derive(Debug, Clone, Copy)]
pub struct Bucketing {
    pub v6_prefix: u8,
}

impl Default for Bucketing {
    fn default() -> Self {
        Bucketing { v6_prefix: 64 }
    }
}

/// The unit every per-client limit counts: an IPv4 address, or the IPv6 network (see
/// [`Bucketing`]) an address is in. Test `net::tests::ipv6_clients_count_by_network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr, bucketing: Bucketing) -> ClientKey {
        match canonical(ip) {
            IpAddr::V6(v6) => {
                let prefix = bucketing.v6_prefix.min(128);
                let net = ipnet::Ipv6Net::new(v6, prefix)
                    .map(|n| n.trunc().addr())
                    .unwrap_or(v6);
                ClientKey(IpAddr::V6(net))
            }
            v4 => ClientKey(v4),
        }
    }

    /// The address or network start this key stands for.
    pub fn addr(&self) -> IpAddr {
        self.0
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/net"),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientKey {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let ip = client_ip(req).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let bucketing = req
            .rocket()
            .state::<Bucketing>()
            .copied()
            .unwrap_or_default();
        Outcome::Success(ClientKey::of(ip, bucketing))
    }
}

/// A per-client limit on an action (for example creating holds); `None` when disabled.
#[derive(Clone)]
pub struct IpRateLimit {
    limiter: Option<Arc<DefaultKeyedRateLimiter<ClientKey>>>,
}

impl IpRateLimit {
    /// Allows `per_minute` actions a minute per IP, in bursts of up to that many; 0 disables.
    pub fn per_minute(per_minute: u32) -> IpRateLimit {
        IpRateLimit {
            limiter: NonZeroU32::new(per_minute)
                .map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)))),
        }
    }

    /// True when `client` may act now (and counts the action).
    pub fn allow(&self, client: ClientKey) -> bool {
        self.limiter
            .as_ref()
            .is_none_or(|limiter| limiter.check_key(&client).is_ok())
    }

    /// Forgets addresses whose budget is full again (keeps memory bounded).
    pub fn tidy(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_with_comments_and_checks_membership() {
        let ranges =
            parse_ranges("# Cloudflare\n173.245.48.0/20\n\n2400:cb00::/32 # v6\n").unwrap();
        let t = TrustedProxies { ranges };
        assert!(t.contains("173.245.48.7".parse().unwrap()));
        assert!(t.contains("::ffff:173.245.48.7".parse().unwrap()));
        assert!(t.contains("2400:cb00::1".parse().unwrap()));
        assert!(!t.contains("10.0.0.1".parse().unwrap()));
        assert!(parse_ranges("173.245.48.0/99")
            .unwrap_err()
            .contains("line 1"));
    }

    #[test]
    fn refuses_ranges_wider_than_cloudflare_publishes() {
        let published = include_str!("../config/cloudflare-ips.txt");
        assert_eq!(parse_ranges(published).unwrap().len(), 22);
        for (range, says) in [
            ("0.0.0.0/0", "wider"),
            ("::/0", "wider"),
            ("104.0.0.0/8", "wider"),
            ("104.16.0.0/11", "wider"),
            ("2400::/16", "wider"),
            ("2a06:98c0::/27", "wider"),
            ("10.1.0.0/16", "non-public"),
            ("192.168.1.0/24", "non-public"),
            ("127.0.0.1/32", "non-public"),
            ("172.16.0.0/12", "non-public"),
            ("100.64.0.0/16", "non-public"),
            ("169.254.0.0/16", "non-public"),
            ("::1/128", "non-public"),
            ("fd00::/48", "non-public"),
            ("fe80::/64", "non-public"),
            ("::ffff:0:0/96", "non-public"),
        ] {
            let e = parse_ranges(&format!("173.245.48.0/20\n{range}\n")).unwrap_err();
            assert!(e.starts_with("line 2:") && e.contains(says), "{range}: {e}");
        }
        assert!(parse_ranges("104.16.0.0/12\n2a06:98c0::/28\n").is_ok());
    }

    #[test]
    fn rate_limit_counts_per_ip() {
        let limit = IpRateLimit::per_minute(2);
        let key = |s: &str| ClientKey::of(s.parse().unwrap(), Bucketing::default());
        let (a, b) = (key("1.1.1.1"), key("2.2.2.2"));
        assert!(limit.allow(a) && limit.allow(a));
        assert!(!limit.allow(a));
        assert!(limit.allow(b));
        assert!(IpRateLimit::per_minute(0).allow(a));
    }

    #[test]
    fn ipv6_clients_count_by_network() {
        let by64 = Bucketing::default();
        let key = |s: &str, b| ClientKey::of(s.parse().unwrap(), b);
        assert_eq!(
            key("2001:db8:1:2:aaaa::1", by64),
            key("2001:db8:1:2:ffff:1:2:3", by64)
        );
        assert_ne!(key("2001:db8:1:2::1", by64), key("2001:db8:1:3::1", by64));
        let by48 = Bucketing { v6_prefix: 48 };
        assert_eq!(key("2001:db8:1:2::1", by48), key("2001:db8:1:3::1", by48));
        let exact = Bucketing { v6_prefix: 128 };
        assert_ne!(key("2001:db8::1", exact), key("2001:db8::2", exact));
        // IPv4 and IPv4-mapped addresses are one address each.
        assert_eq!(key("::ffff:10.0.0.1", by64), key("10.0.0.1", by64));
        assert_ne!(key("10.0.0.1", by64), key("10.0.0.2", by64));
        assert_eq!(
            key("2001:db8:1:2::9", by64).to_string(),
            "2001:db8:1:2::/net"
        );
    }

    #[test]
    fn limits_count_an_ipv6_network_as_one_client() {
        let limit = IpRateLimit::per_minute(2);
        let key = |s: &str| ClientKey::of(s.parse().unwrap(), Bucketing::default());
        assert!(limit.allow(key("2001:db8::1")));
        assert!(limit.allow(key("2001:db8::2")));
        assert!(
            !limit.allow(key("2001:db8::3")),
            "a third address of the /64 is the same client"
        );
        assert!(limit.allow(key("2001:db9::1")));
    }
}
