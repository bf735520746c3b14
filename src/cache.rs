//! A tiny in-memory cache for public pages, rendered (an event page; a page of the
//! listing), kept for about a second. Under a rush thousands of visitors open the same
//! pages; this turns thousands of identical queries per second into one. Seats left may lag
//! by up to a second on first paint, which the live availability stream corrects; every
//! decision that matters (a hold) reads the database. Private events are never cached, so a
//! rotated link stops working at once.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an entry is served before the database is asked again.
pub const TTL: Duration = Duration::from_millis(1000);
/// Entries kept at most per cache (stale ones are dropped first when full).
const MAX_ENTRIES: usize = 1024;

/// A map whose entries are served for [`TTL`].
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, Arc<V>)>>,
}

impl<K: Eq + Hash, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        TtlCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V> TtlCache<K, V> {
    /// The cached value for `key` if it is fresh.
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        let entries = self.entries.lock().expect("cache lock");
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: K, value: Arc<V>) {
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Forgets everything (after an admin change, so this instance shows it at once).
    pub fn clear(&self) {
        self.entries.lock().expect("cache lock").clear();
    }
}

/// Public event pages by slug, rendered (with a slot for each visitor's form token).
pub type EventCache = TtlCache<String, String>;
/// Listing pages by page number, rendered (`None`: past the last page).
pub type ListingCache = TtlCache<i64, Option<String>>;

/// Both public-page caches as a request guard, for the admin handlers that change what the
/// public pages show.
pub struct PublicCaches<'r> {
    events: &'r EventCache,
    listing: &'r ListingCache,
}

impl PublicCaches<'_> {
    /// Forgets cached public pages in this instance (others catch up within a second).
    pub fn invalidate(&self) {
        self.events.clear();
        self.listing.clear();
    }
}

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for PublicCaches<'r> {
    type Error = ();

    async fn from_request(
        req: &'r rocket::Request<'_>,
    ) -> rocket::request::Outcome<Self, Self::Error> {
        let rocket = req.rocket();
        match (rocket.state::<EventCache>(), rocket.state::<ListingCache>()) {
            (Some(events), Some(listing)) => {
                rocket::request::Outcome::Success(PublicCaches { events, listing })
            }
            _ => rocket::request::Outcome::Error((rocket::http::Status::InternalServerError, ())),
        }
    }
}
