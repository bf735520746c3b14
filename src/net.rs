//! Who is asking: the client's IP address behind Cloudflare, and per-IP rate limits.
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
    let peer = canonical(req.remote()?.ip());
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

/// A per-client-IP limit on an action (for example creating holds); `None` when disabled.
#[derive(Clone)]
pub struct IpRateLimit {
    limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
}

impl IpRateLimit {
    /// Allows `per_minute` actions a minute per IP, in bursts of up to that many; 0 disables.
    pub fn per_minute(per_minute: u32) -> IpRateLimit {
        IpRateLimit {
            limiter: NonZeroU32::new(per_minute)
                .map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)))),
        }
    }

    /// True when `ip` may act now (and counts the action).
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.limiter
            .as_ref()
            .is_none_or(|limiter| limiter.check_key(&ip).is_ok())
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
        let (a, b): (IpAddr, IpAddr) = ("1.1.1.1".parse().unwrap(), "2.2.2.2".parse().unwrap());
        assert!(limit.allow(a) && limit.allow(a));
        assert!(!limit.allow(a));
        assert!(limit.allow(b));
        assert!(IpRateLimit::per_minute(0).allow(a));
    }
}
