//! Stream heads this process has seen committed: (version, last hash).
//!
//! An append whose expected version equals a cached head's version can be
//! planned without reading the head: versions are immutable once written, so
//! the cached hash is that version's hash. The write is still guarded by
//! version *and* hash, so a wrong entry costs a conflict, never a broken
//! chain. Only committed facts go in: heads read from the database and heads
//! moved by a statement that committed on its own.
//!
//! Bounded: two generations of at most `capacity` entries each; when the
//! current one fills up it becomes the previous one and the oldest is dropped.

use std::collections::HashMap;
use std::sync::Mutex;

use super::append_plan::Head;
use super::StreamId;

#[derive(Debug)]
pub struct HeadCache {
    capacity: usize,
    generations: Mutex<(HashMap<StreamId, Head>, HashMap<StreamId, Head>)>,
}

impl HeadCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            generations: Mutex::new((HashMap::new(), HashMap::new())),
        }
    }

    pub fn get(&self, stream: &StreamId) -> Option<Head> {
        let generations = self.lock();
        generations
            .0
            .get(stream)
            .or_else(|| generations.1.get(stream))
            .copied()
    }

    /// Records a committed head; an older version never replaces a newer one.
    pub fn insert(&self, stream: &StreamId, head: Head) {
        let mut generations = self.lock();
        let known = generations
            .0
            .get(stream)
            .or_else(|| generations.1.get(stream))
            .map(|known| known.version);
        if known.is_some_and(|version| version > head.version) {
            return;
        }
        if generations.0.len() >= self.capacity {
            generations.1 = std::mem::take(&mut generations.0);
        }
        generations.0.insert(stream.clone(), head);
    }

    /// (heads remembered, most it keeps), for `/metrics`.
    pub fn size(&self) -> (usize, usize) {
        let generations = self.lock();
        (generations.0.len() + generations.1.len(), 2 * self.capacity)
    }

    pub fn remove(&self, stream: &StreamId) {
        let mut generations = self.lock();
        generations.0.remove(stream);
        generations.1.remove(stream);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, (HashMap<StreamId, Head>, HashMap<StreamId, Head>)> {
        // A panic while holding the lock cannot leave a half-written entry.
        self.generations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(version: u64) -> Head {
        Head {
            version,
            hash: [version as u8; 32],
        }
    }

    #[test]
    fn keeps_the_newest_head_and_stays_bounded() {
        let cache = HeadCache::new(2);
        let (a, b, c) = (
            StreamId::new("order", "a").unwrap(),
            StreamId::new("order", "b").unwrap(),
            StreamId::new("order", "c").unwrap(),
        );
        cache.insert(&a, head(2));
        cache.insert(&a, head(1));
        assert_eq!(cache.get(&a), Some(head(2)));
        cache.insert(&b, head(1));
        cache.insert(&c, head(1)); // rotates: a and b move to the previous generation
        assert_eq!(cache.get(&a), Some(head(2)));
        cache.insert(&a, head(3));
        cache.insert(&b, head(2)); // rotates again: the generation holding the old entries is dropped
        assert_eq!(cache.get(&c), Some(head(1)));
        cache.remove(&c);
        assert_eq!(cache.get(&c), None);
    }
}
