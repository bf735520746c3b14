//! Live availability: seats left per ticket type for events that someone is watching.
//!
//! Each open event page subscribes (Server-Sent Events) to a `watch` channel of its event.
//! A background task refreshes the watched events from the database every second, and at
//! once when this instance changed seats itself ([`Availability::nudge`]). Reading from the
//! database (rather than trusting in-process notes) keeps every instance right when several
//! run, and shows holds released by any instance's sweeper.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::prelude::*;
use serde::Serialize;
use tokio::sync::{watch, Notify};

use ticketing_db::schema::{events, ticket_types};
use ticketing_db::Db;

/// Seats left for one event: overall and per ticket type (capped by the overall).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Snapshot {
    pub event_id: i64,
    pub seats_left: i32,
    pub ticket_types: BTreeMap<i64, i32>,
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

/// (event id, capacity, taken, ticket type id, its capacity, its taken).
type AvailabilityRow = (i64, i32, i32, Option<i64>, Option<i32>, Option<i32>);

/// Reads the current snapshots of `event_ids` in one query.
pub fn load(conn: &mut PgConnection, event_ids: &[i64]) -> QueryResult<Vec<Snapshot>> {
    let rows: Vec<AvailabilityRow> = events::table
        .left_join(ticket_types::table)
        .filter(events::id.eq_any(event_ids))
        .select((
            events::id,
            events::capacity,
            events::seats_taken,
            ticket_types::id.nullable(),
            ticket_types::capacity.nullable(),
            ticket_types::seats_taken.nullable(),
        ))
        .load(conn)?;
    let mut out: BTreeMap<i64, Snapshot> = BTreeMap::new();
    for (event_id, cap, taken, tt_id, tt_cap, tt_taken) in rows {
        let event_left = (cap - taken).max(0);
        let snap = out.entry(event_id).or_insert_with(|| Snapshot {
            event_id,
            seats_left: event_left,
            ticket_types: BTreeMap::new(),
        });
        if let (Some(id), Some(c), Some(t)) = (tt_id, tt_cap, tt_taken) {
            snap.ticket_types.insert(id, (c - t).max(0).min(event_left));
        }
    }
    Ok(out.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(left: i32) -> Snapshot {
        Snapshot {
            event_id: 7,
            seats_left: left,
            ticket_types: BTreeMap::from([(70, left)]),
        }
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
