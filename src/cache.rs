//! A tiny in-memory cache of public event pages' data (the event and its ticket types),
//! kept for about a second. Under a rush thousands of visitors open the same event page;
//! this turns thousands of identical queries per second into one. Seats left may lag by up
//! to a second on first paint, which the live availability stream corrects; every decision
//! that matters (a hold) reads the database. Private events are never cached, so a rotated
//! link stops working at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::models::{Event, TicketType};

/// How long an entry is served before the database is asked again.
pub const TTL: Duration = Duration::from_millis(1000);
/// Entries kept at most (old ones are dropped first when full).
const MAX_ENTRIES: usize = 1024;

pub type EventData = Arc<(Event, Vec<TicketType>)>;

#[derive(Default)]
pub struct EventCache {
    entries: Mutex<HashMap<String, (Instant, EventData)>>,
}

impl EventCache {
    /// The cached data for `slug` if it is fresh.
    pub fn get(&self, slug: &str) -> Option<EventData> {
        let entries = self.entries.lock().expect("event cache lock");
        entries
            .get(slug)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, data)| data.clone())
    }

    pub fn put(&self, slug: &str, data: EventData) {
        let mut entries = self.entries.lock().expect("event cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(slug.to_string(), (Instant::now(), data));
    }

    /// Forgets everything (after an admin change, so this instance shows it at once).
    pub fn clear(&self) {
        self.entries.lock().expect("event cache lock").clear();
    }
}
