//! Small bounded memories that spare the dispatcher database reads:
//!
//! * [`Payments`]: the payment as folded at its latest version seen, so
//!   the next event of the same payment folds from it instead of re-reading
//!   the stream. Any miss (evicted, another dispatcher saw the previous
//!   event, a gap) falls back to reading the stream.
//! * [`Rows`]: the versions whose schedule rows this dispatcher wrote, so
//!   its own delivery events, echoed back by the relay, need no read to show
//!   that their row is not behind. A fresh process remembers nothing and
//!   reads, which is what repairs a row left behind by a crash.
//!
//! Both forget their oldest entries first once full.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

use paystream_domain::payment::Payment;

/// A map that forgets its oldest keys beyond `capacity`.
#[derive(Debug)]
struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn insert(&mut self, key: K, value: V) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                if let Some(oldest) = self.order.pop_front() {
                    self.map.remove(&oldest);
                }
            }
        }
    }
}

/// Payments as last folded: stream id → (version, state).
#[derive(Debug)]
pub struct Payments(Mutex<Bounded<String, (u64, Payment)>>);

impl Payments {
    pub fn new(capacity: usize) -> Self {
        Self(Mutex::new(Bounded::new(capacity)))
    }

    /// (entries, capacity), for `/metrics`.
    pub fn size(&self) -> (usize, usize) {
        let payments = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (payments.len(), payments.capacity)
    }

    /// The payment at exactly `version` of `stream`, if remembered.
    pub fn at(&self, stream: &str, version: u64) -> Option<Payment> {
        let payments = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match payments.get(&stream.to_owned()) {
            Some((at, payment)) if *at == version => Some(payment.clone()),
            _ => None,
        }
    }

    /// Remembers `payment` at `version`, unless a later version is known.
    pub fn remember(&self, stream: &str, version: u64, payment: &Payment) {
        let mut payments = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = stream.to_owned();
        if payments.get(&key).is_some_and(|(at, _)| *at >= version) {
            return;
        }
        payments.insert(key, (version, payment.clone()));
    }
}

/// Schedule rows this dispatcher wrote: delivery id → the version the row
/// is known to reflect at least (or to be gone at).
#[derive(Debug)]
pub struct Rows(Mutex<Bounded<String, i64>>);

impl Rows {
    pub fn new(capacity: usize) -> Self {
        Self(Mutex::new(Bounded::new(capacity)))
    }

    /// (entries, capacity), for `/metrics`.
    pub fn size(&self) -> (usize, usize) {
        let rows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (rows.len(), rows.capacity)
    }

    pub fn wrote(&self, delivery_id: &str, version: i64) {
        let mut rows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = delivery_id.to_owned();
        if rows.get(&key).is_some_and(|at| *at >= version) {
            return;
        }
        rows.insert(key, version);
    }

    /// Whether this dispatcher wrote the row at `version` or later.
    pub fn up_to_date(&self, delivery_id: &str, version: i64) -> bool {
        let rows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        rows.get(&delivery_id.to_owned())
            .is_some_and(|at| *at >= version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_entries_go_first() {
        let rows = Rows::new(2);
        rows.wrote("a", 1);
        rows.wrote("b", 1);
        rows.wrote("a", 2);
        assert!(rows.up_to_date("a", 2));
        assert!(!rows.up_to_date("a", 3));
        rows.wrote("c", 1);
        assert!(!rows.up_to_date("a", 1), "a was the oldest");
        assert!(rows.up_to_date("b", 1) && rows.up_to_date("c", 1));
    }
}
