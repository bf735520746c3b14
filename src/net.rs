//! Who is asking: the client's IP address behind Cloudflare, the key every per-client limit
//! counts ([`ClientKey`]: the address, or an IPv6 client's /64 network), and per-client rate
//! limits.
//!
//! `CF-Connecting-IP` is believed only when the TCP peer is inside Cloudflare's published
//! ranges (`config/cloudflare-ips.txt`, refreshed by `scripts/refresh-cloudflare-ips`);
//! from anywhere else the header could be forged, so the peer address is the client.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;

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

/// Parses a ranges file: one CIDR per line; blank lines and `#` comments are skipped.
pub fn parse_ranges(text: &str) -> Result<Vec<IpNet>, String> {
    text.lines()
        .enumerate()
        .map(|(n, line)| (n + 1, line.split('#').next().unwrap_or("").trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(n, line)| {
            line.parse::<IpNet>().map_err(|_| {
                format!("line {n}: {line:?} is not a CIDR range such as 173.245.48.0/20")
            })
        })
        .collect()
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
    if crate::front::is_guard_side(remote.ip()) {
        if let Some(client) = req
            .rocket()
            .state::<crate::front::Peers>()
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
