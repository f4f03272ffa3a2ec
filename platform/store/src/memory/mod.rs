//! The in-memory backend: the port's semantics in one process, with no I/O.
//!
//! It exists so that the port is proven by two implementations that run
//! anywhere (the contract suite runs on both), and for single-process tools
//! and a deterministic simulation. It is never a stand-in for PostgreSQL in
//! a service's tests: those keep the real database.
//!
//! The same rules as PostgreSQL, from the same shared code:
//! - appends are checked and hashed by [`PreparedAppend`] and decided by
//!   [`plan`] (optimistic concurrency on the stream's version, the chain);
//! - a retry of an append that landed (every event id stored in this stream,
//!   consecutively) is a no-op that reports the original placement; an id
//!   stored otherwise is [`StoreError::EventIdReused`];
//! - positions come from one counter; an append that has reserved positions
//!   but not committed ([`MemoryEventStore::hold`]) holds the **horizon**
//!   back, so a tailing reader never moves past it;
//! - the stream's head (version and last hash) is kept apart from its events,
//!   so a verify finds events removed from the middle (`missing`), from the
//!   end (`truncated`) or changed (`altered`);
//! - the merchant index (events whose metadata names the merchant) is
//!   maintained on append.
//!
//! One mutex guards the log; no lock is held across an `await`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::append_plan::{plan, Decision, Head, PreparedAppend};
use crate::chain::ChainWalker;
use crate::{
    Appended, ChainBreak, EventMetadata, EventStore, ExpectedVersion, LogRange, LogSize, NewEvent,
    Position, RecordedEvent, StoreError, StreamId, VerifiedStreams,
};

/// The in-memory event store. Clones share one log, as connections to one
/// database do.
#[derive(Debug, Clone, Default)]
pub struct MemoryEventStore {
    log: Arc<Mutex<Log>>,
}

#[derive(Debug, Default)]
struct Log {
    /// Committed events by position.
    events: BTreeMap<Position, RecordedEvent>,
    /// Each stream's events: version → position.
    streams: BTreeMap<StreamId, BTreeMap<u64, Position>>,
    /// Each stream's head as the last append left it (the stream record).
    heads: HashMap<StreamId, Head>,
    /// Where each event id is stored.
    ids: HashMap<Uuid, Position>,
    /// The merchant index: positions of the events whose metadata names it.
    merchants: BTreeSet<(Uuid, Position)>,
    /// The last position handed out.
    last_position: i64,
    /// Positions reserved by appends that have not committed, and the
    /// streams they hold.
    pending: BTreeMap<i64, StreamId>,
}

impl Log {
    /// Every position below this is final.
    fn horizon(&self) -> Position {
        Position(
            self.pending
                .keys()
                .next()
                .copied()
                .unwrap_or(self.last_position + 1),
        )
    }

    fn head(&self, stream: &StreamId) -> Option<Head> {
        self.heads.get(stream).copied()
    }

    /// A retry of an append that landed, a reuse of stored ids, or `None`
    /// when no id is stored.
    fn stored_ids(
        &self,
        stream: &StreamId,
        events: &[NewEvent],
    ) -> Option<Result<Appended, StoreError>> {
        let found: Vec<&RecordedEvent> = events
            .iter()
            .filter_map(|event| self.ids.get(&event.event_id))
            .filter_map(|position| self.events.get(position))
            .collect();
        if found.is_empty() {
            return None;
        }
        let landed = found.len() == events.len()
            && found.iter().all(|event| &event.stream_id == stream)
            && found
                .windows(2)
                .all(|pair| pair[1].version == pair[0].version + 1);
        if !landed {
            return Some(Err(StoreError::EventIdReused {
                event_id: events[0].event_id,
            }));
        }
        Some(Ok(Appended {
            first_version: found[0].version,
            last_version: found[found.len() - 1].version,
            position: found[found.len() - 1].position,
            duplicate: true,
        }))
    }

    /// Decides `append` (whose ids are not stored) against the current head
    /// and, when it goes through, the events as they will be stored, their
    /// positions reserved.
    fn decide(&mut self, append: &PreparedAppend<'_>) -> Result<Vec<RecordedEvent>, StoreError> {
        if self.pending.values().any(|held| held == append.stream) {
            // A held append keeps its stream, as a row lock would; the other
            // writer learns it at once instead of waiting.
            return Err(StoreError::Conflict {
                stream: append.stream.clone(),
                expected: append.expected,
                actual: self.head(append.stream).map_or(0, |head| head.version),
            });
        }
        let heads: HashMap<StreamId, Head> = self
            .head(append.stream)
            .map(|head| (append.stream.clone(), head))
            .into_iter()
            .collect();
        let planned = plan(&[append], &heads);
        match planned.decisions.first() {
            Some(Decision::Append { .. }) => {}
            Some(Decision::Mismatch { actual }) => {
                return Err(StoreError::Conflict {
                    stream: append.stream.clone(),
                    expected: append.expected,
                    actual: *actual,
                })
            }
            other => {
                return Err(StoreError::Corrupt(format!(
                    "an append of its own was decided as {other:?}"
                )))
            }
        }
        Ok(planned
            .events
            .iter()
            .map(|planned| {
                self.last_position += 1;
                let event = &append.events[planned.event];
                RecordedEvent {
                    position: Position(self.last_position),
                    event_id: event.event_id,
                    stream_id: append.stream.clone(),
                    version: planned.version,
                    event_type: event.event_type.clone(),
                    schema_version: event.schema_version,
                    payload: event.payload.clone(),
                    metadata: append.metadata.clone(),
                    recorded_at: append.recorded_at,
                    hash: planned.hash,
                }
            })
            .collect())
    }

    /// Makes decided events visible, and moves their stream's head.
    fn commit(&mut self, events: Vec<RecordedEvent>) -> Option<Appended> {
        let (first, last) = (events.first()?.clone(), events.last()?.clone());
        for event in events {
            self.pending.remove(&event.position.0);
            self.ids.insert(event.event_id, event.position);
            if let Some(merchant) = event.metadata.merchant_id {
                self.merchants.insert((merchant, event.position));
            }
            self.streams
                .entry(event.stream_id.clone())
                .or_default()
                .insert(event.version, event.position);
            self.events.insert(event.position, event);
        }
        self.heads.insert(
            last.stream_id.clone(),
            Head {
                version: last.version,
                hash: last.hash,
            },
        );
        Some(Appended {
            first_version: first.version,
            last_version: last.version,
            position: last.position,
            duplicate: false,
        })
    }

    fn stream_events(&self, stream: &StreamId) -> impl Iterator<Item = &RecordedEvent> {
        self.streams
            .get(stream)
            .into_iter()
            .flat_map(|versions| versions.values())
            .filter_map(|position| self.events.get(position))
    }

    fn verify(&self, stream: &StreamId) -> (Option<ChainBreak>, u64) {
        let mut walker = ChainWalker::new(stream.clone());
        let mut events = 0;
        for event in self.stream_events(stream) {
            walker.push(event);
            events += 1;
        }
        let head = self.head(stream).map(|head| (head.version, head.hash));
        (walker.finish(head), events)
    }

    /// Every stream there is: those with a head, and those with events.
    fn stream_ids(&self) -> BTreeSet<&StreamId> {
        self.heads.keys().chain(self.streams.keys()).collect()
    }
}

/// An append whose positions are reserved but which is not committed:
/// readers of the global log stay behind it until [`HeldAppend::commit`].
#[derive(Debug)]
#[must_use = "a held append holds the horizon back until it is committed"]
pub struct HeldAppend {
    log: Arc<Mutex<Log>>,
    events: Vec<RecordedEvent>,
}

impl HeldAppend {
    /// Makes the events visible.
    pub fn commit(self) -> Option<Appended> {
        lock(&self.log).commit(self.events)
    }
}

fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now() -> DateTime<Utc> {
    // Microseconds, as PostgreSQL keeps them: the hash covers this value.
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default()
}

impl MemoryEventStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        lock(&self.log)
    }

    /// Decides an append and reserves its positions without committing it,
    /// as a transaction that has written but not committed: the global log's
    /// horizon stays below it until [`HeldAppend::commit`]. For tests and
    /// simulations of a late commit.
    pub fn hold(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        metadata: &EventMetadata,
    ) -> Result<HeldAppend, StoreError> {
        let prepared = PreparedAppend::new(stream, expected, events, metadata, now())?;
        let mut log = self.log();
        if log.stored_ids(stream, events).is_some() {
            return Err(StoreError::EventIdReused {
                event_id: events[0].event_id,
            });
        }
        let decided = log.decide(&prepared)?;
        for event in &decided {
            log.pending.insert(event.position.0, stream.clone());
        }
        Ok(HeldAppend {
            log: self.log.clone(),
            events: decided,
        })
    }

    /// Rewrites one stored event behind the store's back (tamper tests):
    /// `edit` gets the event; `None` removes it. The head stays as it was.
    #[cfg(feature = "testing")]
    pub fn tamper(
        &self,
        stream: &StreamId,
        version: u64,
        edit: impl FnOnce(RecordedEvent) -> Option<RecordedEvent>,
    ) {
        let mut log = self.log();
        let Some(position) = log
            .streams
            .get(stream)
            .and_then(|versions| versions.get(&version))
            .copied()
        else {
            return;
        };
        let Some(event) = log.events.remove(&position) else {
            return;
        };
        match edit(event) {
            Some(edited) => {
                log.events.insert(position, edited);
            }
            None => {
                if let Some(versions) = log.streams.get_mut(stream) {
                    versions.remove(&version);
                }
            }
        }
    }
}

impl EventStore for MemoryEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        metadata: &EventMetadata,
    ) -> Result<Appended, StoreError> {
        let prepared = PreparedAppend::new(stream, expected, &events, metadata, now())?;
        let mut log = self.log();
        if let Some(outcome) = log.stored_ids(stream, &events) {
            return outcome;
        }
        let decided = log.decide(&prepared)?;
        log.commit(decided)
            .ok_or_else(|| StoreError::Corrupt("an append decided no event".into()))
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.log();
        Ok(log
            .stream_events(stream)
            .filter(|event| event.version > after_version)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.log();
        let horizon = log.horizon();
        Ok(log
            .events
            .range(Position(after.0.saturating_add(1))..horizon)
            .take(limit)
            .map(|(_, event)| event.clone())
            .collect())
    }

    async fn verify_stream(&self, stream: &StreamId) -> Result<Option<ChainBreak>, StoreError> {
        Ok(self.log().verify(stream).0)
    }

    async fn verify_all(&self) -> Result<Vec<ChainBreak>, StoreError> {
        let log = self.log();
        Ok(log
            .stream_ids()
            .into_iter()
            .filter_map(|stream| log.verify(stream).0)
            .collect())
    }

    async fn verify_streams(
        &self,
        after: Option<&str>,
        streams: usize,
    ) -> Result<VerifiedStreams, StoreError> {
        let log = self.log();
        let rest: Vec<&StreamId> = log
            .stream_ids()
            .into_iter()
            .filter(|stream| after.is_none_or(|after| stream.as_str() > after))
            .collect();
        let step_streams = &rest[..rest.len().min(streams.max(1))];
        let mut step = VerifiedStreams::default();
        for stream in step_streams {
            let (broken, events) = log.verify(stream);
            step.streams += 1;
            step.events += events;
            step.breaks.extend(broken.map(Into::into));
        }
        if rest.len() > step_streams.len() {
            step.upto = step_streams.last().map(|stream| stream.as_str().to_owned());
        }
        Ok(step)
    }

    async fn has_streams_after(&self, after: &str) -> Result<bool, StoreError> {
        Ok(self
            .log()
            .stream_ids()
            .iter()
            .any(|stream| stream.as_str() > after))
    }

    async fn read_streams(
        &self,
        wanted: &[(StreamId, u64)],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.log();
        let wanted: BTreeMap<&StreamId, u64> = wanted
            .iter()
            .map(|(stream, upto)| (stream, *upto))
            .collect();
        Ok(wanted
            .into_iter()
            .flat_map(|(stream, upto)| {
                log.stream_events(stream)
                    .filter(move |event| event.version <= upto)
            })
            .cloned()
            .collect())
    }

    async fn read_merchant(
        &self,
        merchant: Uuid,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.log();
        let horizon = log.horizon();
        Ok(log
            .merchants
            .range((merchant, Position(after.0.saturating_add(1)))..(merchant, horizon))
            .take(limit)
            .filter_map(|(_, position)| log.events.get(position).cloned())
            .collect())
    }

    async fn read_range(&self, range: &LogRange) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.log();
        let before = range.before.min(log.horizon());
        let merchant_stream = range
            .merchant
            .map(|merchant| format!("merchant-{merchant}"));
        if range.after >= before {
            return Ok(Vec::new());
        }
        Ok(log
            .events
            .range(Position(range.after.0.saturating_add(1))..before)
            .map(|(_, event)| event)
            .filter(|event| {
                range
                    .recorded_from
                    .is_none_or(|from| event.recorded_at >= from)
            })
            .filter(|event| range.recorded_to.is_none_or(|to| event.recorded_at < to))
            .filter(|event| {
                range.merchant.is_none_or(|merchant| {
                    event.metadata.merchant_id == Some(merchant)
                        || merchant_stream.as_deref() == Some(event.stream_id.as_str())
                })
            })
            .take(range.limit)
            .cloned()
            .collect())
    }

    async fn horizon(&self) -> Result<Position, StoreError> {
        Ok(self.log().horizon())
    }

    async fn next_position(&self) -> Result<Position, StoreError> {
        Ok(Position(self.log().last_position + 1))
    }

    async fn size(&self) -> Result<LogSize, StoreError> {
        let log = self.log();
        Ok(LogSize {
            events: log.events.len() as u64,
            streams: log.stream_ids().len() as u64,
        })
    }

    async fn refund_stream(&self, refund_id: &str) -> Result<Option<StreamId>, StoreError> {
        let log = self.log();
        Ok(log
            .events
            .values()
            .find(|event| {
                event.stream_id.category() == "payment"
                    && event.event_type == "RefundCreated"
                    && event.payload["refund_id"].as_str() == Some(refund_id)
            })
            .map(|event| event.stream_id.clone()))
    }

    async fn streams_ending_with(
        &self,
        category: &str,
        event_type: &str,
        merchant: Uuid,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StreamId>, StoreError> {
        let log = self.log();
        let mut last: Vec<&RecordedEvent> = log
            .streams
            .iter()
            .filter(|(stream, _)| stream.category() == category)
            .filter_map(|(_, versions)| versions.values().next_back())
            .filter_map(|position| log.events.get(position))
            .filter(|event| {
                event.event_type == event_type
                    && event.metadata.merchant_id == Some(merchant)
                    && event.recorded_at >= since
            })
            .collect();
        last.sort_by_key(|event| event.position);
        Ok(last
            .into_iter()
            .take(limit)
            .map(|event| event.stream_id.clone())
            .collect())
    }
}
