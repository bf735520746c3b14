//! Live availability: seats left per ticket type for events that someone is watching.
//!
//! Each open event page subscribes (Server-Sent Events) to a `watch` channel of its event.
//! A background task refreshes the watched events from the database every second, and at
//! once when this instance changed seats itself ([`Availability::nudge`]). Reading from the
//! database (rather than trusting in-process notes) keeps every instance right when several
//! run, and shows holds released by any instance's sweeper.
//!
//! Each snapshot also carries, never sent to the browser, who may see the event now
//! ([`Gate`]): a stream opened through a link that is no longer the event's (a rotated
//! private link, an event made draft or private) ends at the next refresh (tests
//! `private::a_stream_opened_with_an_old_link_ends_when_the_link_is_rotated`,
//! `public::an_open_stream_ends_when_its_event_is_no_longer_public`). [`StreamSlots`] caps
//! the streams one client keeps open (test `hoarding::one_client_may_keep_only_a_few_streams_open`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::prelude::*;
use serde::Serialize;
use tokio::sync::{watch, Notify};

use ticketing_db::schema::{events, ticket_types};
use ticketing_db::Db;

/// Seats left for one event: overall and per ticket type (capped by the overall), and the
/// seats in holds not yet paid for ("in other buyers' baskets").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Snapshot {
    pub event_id: i64,
    pub seats_left: i32,
    pub ticket_types: BTreeMap<i64, i32>,
    pub in_baskets: i32,
    /// Who may see the event now; never sent.
    #[serde(skip)]
    pub gate: Gate,
}

/// How an event can be reached now: its visibility, slug and private link.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gate {
    visibility: String,
    slug: String,
    private_token: Option<String>,
}

/// The link a stream was opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// `/events/<slug>`.
    Public(String),
    /// `/p/<token>`.
    Private(String),
}

impl Gate {
    /// True while `link` still leads to the event.
    pub fn admits(&self, link: &Link) -> bool {
        match link {
            Link::Public(slug) => self.visibility == "public" && self.slug == *slug,
            Link::Private(token) => {
                self.visibility == "private"
                    && self
                        .private_token
                        .as_deref()
                        .is_some_and(|t| ticketing_core::tokens::same(t, token))
            }
        }
    }
}

#[derive(Clone)]
pub struct Availability {
    inner: Arc<Inner>,
}

struct Inner {
    channels: Mutex<HashMap<i64, watch::Sender<Snapshot>>>,
    wake: Notify,
}

impl Default for Availability {
    fn default() -> Self {
        Availability::new()
    }
}

impl Availability {
    pub fn new() -> Availability {
        Availability {
            inner: Arc::new(Inner {
                channels: Mutex::new(HashMap::new()),
                wake: Notify::new(),
            }),
        }
    }

    /// A receiver of `event_id`'s availability, starting from `initial` (just read from the
    /// database, so it also replaces an older value other watchers of the event hold: a page
    /// opened right after seats came back must not be shown the number from before).
    pub fn subscribe(&self, initial: Snapshot) -> watch::Receiver<Snapshot> {
        let mut channels = self.inner.channels.lock().expect("availability lock");
        match channels.get(&initial.event_id) {
            Some(tx) => {
                tx.send_if_modified(|current| {
                    if *current == initial {
                        false
                    } else {
                        *current = initial;
                        true
                    }
                });
                tx.subscribe()
            }
            None => {
                let id = initial.event_id;
                let (tx, rx) = watch::channel(initial);
                channels.insert(id, tx);
                rx
            }
        }
    }

    /// Asks the refresher to look again now (after this instance took or returned seats).
    pub fn nudge(&self) {
        self.inner.wake.notify_one();
    }

    fn watched(&self) -> Vec<i64> {
        let mut channels = self.inner.channels.lock().expect("availability lock");
        channels.retain(|_, tx| tx.receiver_count() > 0);
        channels.keys().copied().collect()
    }

    fn publish(&self, snapshots: Vec<Snapshot>) {
        let channels = self.inner.channels.lock().expect("availability lock");
        for snap in snapshots {
            if let Some(tx) = channels.get(&snap.event_id) {
                tx.send_if_modified(|current| {
                    if *current == snap {
                        false
                    } else {
                        *current = snap;
                        true
                    }
                });
            }
        }
    }

    /// Refreshes watched events every `period` (or sooner when nudged) until `shutdown`.
    pub async fn run(
        self,
        db: Db,
        period: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(period) => {}
            }
            let ids = self.watched();
            if ids.is_empty() {
                continue;
            }
            match db.run(move |conn| Ok(load(conn, &ids)?)).await {
                Ok(snaps) => self.publish(snaps),
                Err(e) => tracing::warn!(error = %e, "availability refresh failed"),
            }
        }
    }
}

/// (event id, capacity, taken, visibility, slug, private token, ticket type id, its
/// capacity, its taken).
type AvailabilityRow = (
    i64,
    i32,
    i32,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i32>,
    Option<i32>,
);

/// Seats in the `held` and `awaiting_payment` bookings of each of `event_ids` (absent: none).
pub fn baskets(conn: &mut PgConnection, event_ids: &[i64]) -> QueryResult<HashMap<i64, i32>> {
    use diesel::dsl::sum;
    use ticketing_db::schema::bookings;
    let rows: Vec<(i64, Option<i64>)> = bookings::table
        .filter(bookings::event_id.eq_any(event_ids))
        .filter(bookings::state.eq_any(["held", "awaiting_payment"]))
        .group_by(bookings::event_id)
        .select((bookings::event_id, sum(bookings::seats)))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, n)| (id, i32::try_from(n.unwrap_or(0)).unwrap_or(i32::MAX)))
        .collect())
}

/// Seats of `event_id` in holds not paid for yet (for the event page).
pub fn seats_in_baskets(conn: &mut PgConnection, event_id: i64) -> QueryResult<i32> {
    Ok(baskets(conn, &[event_id])?
        .get(&event_id)
        .copied()
        .unwrap_or(0))
}

/// Reads the current snapshots of `event_ids` (two queries).
pub fn load(conn: &mut PgConnection, event_ids: &[i64]) -> QueryResult<Vec<Snapshot>> {
    let rows: Vec<AvailabilityRow> = events::table
        .left_join(ticket_types::table)
        .filter(events::id.eq_any(event_ids))
        .select((
            events::id,
            events::capacity,
            events::seats_taken,
            events::visibility,
            events::slug,
            events::private_token,
            ticket_types::id.nullable(),
            ticket_types::capacity.nullable(),
            ticket_types::seats_taken.nullable(),
        ))
        .load(conn)?;
    let held = baskets(conn, event_ids)?;
    let mut out: BTreeMap<i64, Snapshot> = BTreeMap::new();
    for (event_id, cap, taken, visibility, slug, private_token, tt_id, tt_cap, tt_taken) in rows {
        let event_left = (cap - taken).max(0);
        let snap = out.entry(event_id).or_insert_with(|| Snapshot {
            event_id,
            seats_left: event_left,
            ticket_types: BTreeMap::new(),
            in_baskets: held.get(&event_id).copied().unwrap_or(0),
            gate: Gate {
                visibility,
                slug,
                private_token,
            },
        });
        if let (Some(id), Some(c), Some(t)) = (tt_id, tt_cap, tt_taken) {
            snap.ticket_types.insert(id, (c - t).max(0).min(event_left));
        }
    }
    Ok(out.into_values().collect())
}

/// The availability streams open per client, capped (0: no cap).
#[derive(Clone)]
pub struct StreamSlots {
    max: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
    total: Arc<AtomicUsize>,
}

/// One open stream's place; given back when dropped (the stream ended or its client left).
pub struct StreamSlot {
    key: String,
    slots: StreamSlots,
}

impl StreamSlots {
    pub fn new(max_per_client: u32) -> StreamSlots {
        StreamSlots {
            max: max_per_client as usize,
            open: Arc::new(Mutex::new(HashMap::new())),
            total: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A place for one more stream of client `key`, or `None` when it has `max` open.
    pub fn take(&self, key: &str) -> Option<StreamSlot> {
        let mut open = self.open.lock().expect("stream slots lock");
        let n = open.entry(key.to_string()).or_insert(0);
        if self.max > 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(StreamSlot {
            key: key.to_string(),
            slots: self.clone(),
        })
    }

    /// Streams open now, over all clients.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// The most streams one client may keep open (0: no cap).
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().expect("stream slots lock");
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
        self.slots.total.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(left: i32) -> Snapshot {
        Snapshot {
            event_id: 7,
            seats_left: left,
            ticket_types: BTreeMap::from([(70, left)]),
            ..Snapshot::default()
        }
    }

    #[test]
    fn stream_slots_are_counted_per_client_and_given_back() {
        let slots = StreamSlots::new(2);
        let a1 = slots.take("a").unwrap();
        let _a2 = slots.take("a").unwrap();
        assert!(slots.take("a").is_none());
        let _b = slots.take("b").unwrap();
        assert_eq!(slots.open(), 3);
        drop(a1);
        assert!(slots.take("a").is_some());
        assert!(StreamSlots::new(0).take("a").is_some());
    }

    #[test]
    fn a_gate_admits_only_the_current_link() {
        let gate = Gate {
            visibility: "private".into(),
            slug: "s".into(),
            private_token: Some("new-token".into()),
        };
        assert!(gate.admits(&Link::Private("new-token".into())));
        assert!(!gate.admits(&Link::Private("old-token".into())));
        assert!(!gate.admits(&Link::Public("s".into())));
        let public = Gate {
            visibility: "public".into(),
            slug: "s".into(),
            private_token: None,
        };
        assert!(public.admits(&Link::Public("s".into())));
        assert!(!public.admits(&Link::Public("t".into())));
    }

    #[test]
    fn a_new_watcher_brings_the_fresher_number_to_everyone() {
        let hub = Availability::new();
        let mut first = hub.subscribe(snap(21));
        // Seats came back; a page opened now read 23 from the database.
        let second = hub.subscribe(snap(23));
        assert_eq!(second.borrow().seats_left, 23);
        assert!(first.has_changed().unwrap());
        assert_eq!(first.borrow_and_update().seats_left, 23);
        // The same number again changes nothing.
        let _third = hub.subscribe(snap(23));
        assert!(!first.has_changed().unwrap());
    }
}
