//! A bounded failure limiter: each key may fail `burst` times, then earns one more try every
//! `refill`. Unlike a request limiter it can be asked without counting ([`FailureLimit::allows`])
//! so only failures are charged, it can forget a key (an admin's unlock, a success), and it
//! never holds more than `capacity` keys: past that it first drops keys whose budget is full
//! again, then the key nearest to full. Keys are the caller's to bound in size.
//!
//! Tests: `limiter::tests::*` here, `admin::login_*` in the integration suite.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failure budgets per key (a generic cell-rate algorithm: `tat` is when the key's budget is
/// full again).
pub struct FailureLimit<K> {
    burst: u32,
    refill: Duration,
    capacity: usize,
    tats: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> FailureLimit<K> {
    pub fn new(burst: u32, refill: Duration, capacity: usize) -> Self {
        FailureLimit {
            burst: burst.max(1),
            refill,
            capacity: capacity.max(1),
            tats: Mutex::new(HashMap::new()),
        }
    }

    /// How far ahead of `now` a key's budget may run before it is refused.
    fn tolerance(&self) -> Duration {
        self.refill * self.burst
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<K, Instant>> {
        // A panic elsewhere while holding the lock leaves only counters behind: keep going.
        self.tats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `key` may try now (counts nothing).
    pub fn allows(&self, key: &K) -> bool {
        self.allows_at(key, Instant::now())
    }

    fn allows_at(&self, key: &K, now: Instant) -> bool {
        match self.map().get(key) {
            Some(tat) => tat.saturating_duration_since(now) + self.refill <= self.tolerance(),
            None => true,
        }
    }

    /// Charges one failure to `key`.
    pub fn fail(&self, key: &K) {
        self.fail_at(key, Instant::now())
    }

    fn fail_at(&self, key: &K, now: Instant) {
        let mut map = self.map();
        if !map.contains_key(key) && map.len() >= self.capacity {
            map.retain(|_, tat| *tat > now);
            if map.len() >= self.capacity {
                if let Some(nearest) = map
                    .iter()
                    .min_by_key(|(_, tat)| **tat)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&nearest);
                }
            }
        }
        let tat = map.get(key).copied().filter(|t| *t > now).unwrap_or(now);
        map.insert(key.clone(), tat + self.refill);
    }

    /// Gives back one charged failure of `key` (a try that turned out not to be one).
    pub fn refund(&self, key: &K) {
        let now = Instant::now();
        let mut map = self.map();
        if let Some(tat) = map.get_mut(key) {
            *tat = tat.checked_sub(self.refill).unwrap_or(now).max(now);
        }
    }

    /// Forgets `key` (its budget is full again).
    pub fn clear(&self, key: &K) {
        self.map().remove(key);
    }

    /// Forgets every key `pred` picks (an admin unlocking an account on every network).
    pub fn clear_where(&self, pred: impl Fn(&K) -> bool) -> usize {
        let mut map = self.map();
        let before = map.len();
        map.retain(|k, _| !pred(k));
        before - map.len()
    }

    /// The keys refused right now.
    pub fn refused(&self) -> Vec<K> {
        let now = Instant::now();
        self.map()
            .iter()
            .filter(|(_, tat)| tat.saturating_duration_since(now) + self.refill > self.tolerance())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Drops keys whose budget is full again; keeps memory to what is in use.
    pub fn tidy(&self) {
        let now = Instant::now();
        let mut map = self.map();
        map.retain(|_, tat| *tat > now);
        map.shrink_to_fit();
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn burst_then_one_per_refill() {
        let limit = FailureLimit::new(3, MIN, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limit.allows_at(&"a", t0));
            limit.fail_at(&"a", t0);
        }
        assert!(!limit.allows_at(&"a", t0), "the fourth try is refused");
        assert!(limit.allows_at(&"b", t0), "other keys are not affected");
        assert!(!limit.allows_at(&"a", t0 + MIN / 2));
        assert!(
            limit.allows_at(&"a", t0 + MIN),
            "one more try after a refill"
        );
        limit.fail_at(&"a", t0 + MIN);
        assert!(!limit.allows_at(&"a", t0 + MIN));
    }

    #[test]
    fn asking_counts_nothing_and_clear_resets() {
        let limit = FailureLimit::new(1, MIN, 10);
        for _ in 0..100 {
            assert!(limit.allows(&1));
        }
        limit.fail(&1);
        assert!(!limit.allows(&1));
        assert_eq!(limit.refused(), vec![1]);
        limit.clear(&1);
        assert!(limit.allows(&1));
        assert!(limit.refused().is_empty());
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let limit = FailureLimit::new(5, MIN, 100);
        for n in 0..10_000 {
            limit.fail(&n);
        }
        assert_eq!(limit.len(), 100);
        // The newest key is kept.
        assert!(limit.map().contains_key(&9_999));
    }

    #[test]
    fn tidy_forgets_keys_whose_budget_is_full() {
        let limit = FailureLimit::new(2, Duration::from_millis(1), 10);
        limit.fail(&"x");
        std::thread::sleep(Duration::from_millis(5));
        limit.tidy();
        assert!(limit.is_empty());
    }
}
