//! Merchants' webhook settings as of a place in the global log (invariant 8:
//! each delivery uses the endpoint configuration in force at the event that
//! caused it, never an older one).
//!
//! A configuration change (new URL, rotated secret, events filter, disabled
//! endpoint) is a merchant event, and it sits before the payment events it
//! governs in the global log. So the settings for a payment event at
//! position `P` are the merchant's stream folded over its events positioned
//! before `P`, wherever the change was made (this process, another
//! command-api, an operator).
//!
//! Reading the merchant's stream for every event was a large share of a
//! delivery's cost, so the folds are kept, with a position up to which each is
//! known complete. Nothing here expires by time; an entry goes stale only
//! when the log shows a merchant event past that position:
//!
//! * the intake's consumer calls [`Merchants::seen`] for every merchant event
//!   as it receives it, before it hands out any later event of the log
//!   (JetStream delivers a consumer's messages in log order the first time);
//! * when the relay hands out an event at `P`, every event positioned before
//!   `P` is committed (the store's horizon), so a stream read made while
//!   handling `P` holds all of the merchant's events before `P`.
//!
//! Bounded: at most `capacity` merchants; when full, everything is forgotten
//! (and every entry is reloaded on its next use).

use std::collections::HashMap;
use std::sync::Mutex;

use paystream_domain::merchant::{Merchant, MerchantAggregate};
use paystream_domain::{Aggregate, MerchantId};
use paystream_store::runner::{self, CommandError};
use paystream_store::{PgEventStore, Position, StreamId};

/// One merchant's settings after each of its events, oldest first.
#[derive(Debug, Clone, Default)]
struct History {
    /// `(position of the event, merchant right after it)`.
    states: Vec<(Position, Merchant)>,
    /// Every event of the stream positioned before this one is in `states`.
    complete_before: Position,
}

impl History {
    /// The merchant as of `position` (after every event before it).
    fn as_of(&self, position: Position) -> Option<&Merchant> {
        let after = self.states.partition_point(|(at, _)| *at < position);
        after.checked_sub(1).map(|index| &self.states[index].1)
    }

    fn latest(&self) -> Option<&Merchant> {
        self.states.last().map(|(_, merchant)| merchant)
    }
}

#[derive(Debug, Default)]
struct Inner {
    histories: HashMap<MerchantId, History>,
    /// The latest merchant event seen in the log, per merchant.
    changed: HashMap<MerchantId, Position>,
    /// What was seen before the maps were last emptied: any merchant may
    /// have changed up to here.
    forgotten_through: Position,
}

impl Inner {
    fn changed_at(&self, merchant_id: MerchantId) -> Position {
        self.changed
            .get(&merchant_id)
            .copied()
            .unwrap_or_default()
            .max(self.forgotten_through)
    }

    fn make_room(&mut self, capacity: usize) {
        if self.histories.len() >= capacity || self.changed.len() >= capacity {
            let latest = self.changed.values().copied().max().unwrap_or_default();
            self.forgotten_through = self.forgotten_through.max(latest);
            self.histories.clear();
            self.changed.clear();
        }
    }
}

/// The merchants' settings, shared by the intake and the worker.
#[derive(Debug)]
pub struct Merchants {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl Merchants {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    /// (merchants remembered, capacity), for `/metrics`.
    pub fn size(&self) -> (usize, usize) {
        (self.lock().histories.len(), self.capacity)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Merchants remembered (for the metrics).
    pub fn len(&self) -> usize {
        self.lock().histories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The log shows an event of `merchant_id`'s stream at `position`. Must be
    /// called in log order, before any later event of the log is handled.
    pub fn seen(&self, merchant_id: MerchantId, position: Position) {
        let mut inner = self.lock();
        inner.make_room(self.capacity);
        let latest = inner.changed.entry(merchant_id).or_default();
        *latest = (*latest).max(position);
    }

    /// The merchant as of `position` (`None`: not registered then). Only for
    /// an event at `position` that the relay handed out, and whose
    /// predecessors in the log were all passed to [`Merchants::seen`].
    pub async fn as_of(
        &self,
        store: &PgEventStore,
        merchant_id: MerchantId,
        position: Position,
    ) -> Result<Option<Merchant>, CommandError> {
        {
            let mut inner = self.lock();
            let changed_at = inner.changed_at(merchant_id);
            if let Some(history) = inner.histories.get_mut(&merchant_id) {
                if position <= history.complete_before {
                    return Ok(history.as_of(position).cloned());
                }
                if changed_at < history.complete_before {
                    // No event of this merchant between: still complete.
                    history.complete_before = position;
                    return Ok(history.latest().cloned());
                }
            }
        }
        let mut history = read_history(store, merchant_id).await?;
        history.complete_before = position;
        let merchant = history.as_of(position).cloned();
        let mut inner = self.lock();
        inner.make_room(self.capacity);
        let kept = inner.histories.entry(merchant_id).or_default();
        // A later read holds everything an earlier one did.
        history.complete_before = history.complete_before.max(kept.complete_before);
        *kept = history;
        Ok(merchant)
    }

    /// The merchant now: the remembered fold when no later change was seen,
    /// otherwise a fresh read of its stream (not remembered: it is complete
    /// as of no known position).
    pub async fn current(
        &self,
        store: &PgEventStore,
        merchant_id: MerchantId,
    ) -> Result<Option<Merchant>, CommandError> {
        {
            let inner = self.lock();
            let changed_at = inner.changed_at(merchant_id);
            if let Some(history) = inner.histories.get(&merchant_id) {
                if changed_at < history.complete_before {
                    return Ok(history.latest().cloned());
                }
            }
        }
        read(store, merchant_id).await
    }
}

/// The merchant now, read from its stream.
pub async fn read(
    store: &PgEventStore,
    merchant_id: MerchantId,
) -> Result<Option<Merchant>, CommandError> {
    Ok(read_history(store, merchant_id).await?.latest().cloned())
}

/// The merchant's stream, folded after each event.
async fn read_history(
    store: &PgEventStore,
    merchant_id: MerchantId,
) -> Result<History, CommandError> {
    let stream = StreamId::new(MerchantAggregate::CATEGORY, merchant_id)?;
    let mut history = History::default();
    let mut state = None;
    runner::read_events::<MerchantAggregate>(store, &stream, |recorded, event| {
        state = MerchantAggregate::evolve(state.take(), &event);
        if let Some(merchant) = &state {
            history.states.push((recorded.position, merchant.clone()));
        }
    })
    .await?;
    Ok(history)
}

/// The merchant whose stream `stream` is, if it is a merchant stream.
pub fn merchant_of(stream: &str) -> Option<MerchantId> {
    stream
        .strip_prefix(MerchantAggregate::CATEGORY)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_id() -> MerchantId {
        MerchantId::from_uuid(uuid::Uuid::now_v7())
    }

    #[test]
    fn merchant_streams_are_recognised() {
        let id = new_id();
        assert_eq!(merchant_of(&format!("merchant-{id}")), Some(id));
        assert_eq!(merchant_of(&format!("payment-{id}")), None);
        assert_eq!(merchant_of("merchant-nope"), None);
    }

    #[test]
    fn a_change_seen_after_the_fold_makes_it_stale() {
        let merchants = Merchants::new(10);
        let id = new_id();
        {
            let mut inner = merchants.lock();
            inner.histories.insert(
                id,
                History {
                    states: Vec::new(),
                    complete_before: Position(100),
                },
            );
        }
        // Nothing seen: complete up to any later event.
        assert!(merchants.lock().changed_at(id) < Position(100));
        merchants.seen(id, Position(150));
        assert_eq!(merchants.lock().changed_at(id), Position(150));
        // Forgetting everything keeps the staleness.
        let small = Merchants::new(1);
        small.seen(id, Position(70));
        small.seen(new_id(), Position(80));
        assert_eq!(small.lock().changed_at(id), Position(70));
        assert_eq!(small.lock().changed_at(new_id()), Position(70));
    }
}
