//! Deciding a batch of appends, without I/O: given the stream heads as read,
//! which appends go through, with which versions and hashes, and which heads
//! move. The adapter then writes the plan in one guarded statement.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::chain::{chain_hash, check_event_type, check_payload, EventFacts, GENESIS_HASH};
use super::{
    Appended, EventMetadata, ExpectedVersion, NewEvent, Position, StoreError, StreamId,
    MAX_EVENTS_PER_APPEND,
};

/// An append checked and canonicalised, ready to plan.
#[derive(Debug)]
pub struct PreparedAppend<'a> {
    pub stream: &'a StreamId,
    pub expected: u64,
    pub events: &'a [NewEvent],
    pub metadata: &'a EventMetadata,
    pub recorded_at: DateTime<Utc>,
    pub canonical: Vec<Vec<u8>>,
    pub schema_versions: Vec<i16>,
}

impl<'a> PreparedAppend<'a> {
    pub fn new(
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: &'a [NewEvent],
        metadata: &'a EventMetadata,
        recorded_at: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        if events.is_empty() || events.len() > MAX_EVENTS_PER_APPEND {
            return Err(StoreError::InvalidEvent(format!(
                "an append carries 1 to {MAX_EVENTS_PER_APPEND} events, got {}",
                events.len()
            )));
        }
        let expected = expected.as_u64();
        if i64::try_from(expected).is_err() {
            return Err(StoreError::InvalidEvent(format!(
                "expected version {expected} is out of range"
            )));
        }
        let mut canonical = Vec::with_capacity(events.len());
        let mut schema_versions = Vec::with_capacity(events.len());
        for (offset, event) in (1..).zip(events) {
            check_event_type(&event.event_type)?;
            check_payload(&event.payload)?;
            schema_versions.push(
                i16::try_from(event.schema_version)
                    .map_err(|_| StoreError::InvalidEvent("schema version above 32767".into()))?,
            );
            canonical.push(
                EventFacts {
                    stream_id: stream.as_str(),
                    version: expected + offset,
                    event_id: event.event_id,
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    recorded_at_micros: recorded_at.timestamp_micros(),
                    merchant_id: metadata.merchant_id,
                    causation_id: metadata.causation_id,
                    correlation_id: metadata.correlation_id,
                    actor: &metadata.actor,
                    idempotency: metadata.idempotency,
                    payload: &event.payload,
                }
                .canonical_bytes(),
            );
        }
        Ok(Self {
            stream,
            expected,
            events,
            metadata,
            recorded_at,
            canonical,
            schema_versions,
        })
    }
}

/// A stream's last version and hash, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub version: u64,
    pub hash: [u8; 32],
}

/// What happens to one append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Written as `first..=last`; its last event has batch ordinal `ordinal`
    /// (1-based over every event the plan writes).
    Append { first: u64, last: u64, ordinal: u64 },
    /// The same event ids were accepted earlier in this batch: a no-op.
    DuplicateInBatch { first: u64, last: u64, ordinal: u64 },
    /// The head is not at the expected version; `actual` is what it is.
    /// Whether it is a retry of a stored append needs a lookup.
    Mismatch { actual: u64 },
}

/// An event the plan writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    /// Index of its append in the batch, and of the event in that append.
    pub append: usize,
    pub event: usize,
    pub version: u64,
    pub hash: [u8; 32],
    /// 1-based over the plan's events: orders positions in the transaction.
    pub ordinal: u64,
}

/// How a stream's head moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadMove {
    pub stream: StreamId,
    /// The head the plan started from; `None`: the stream is new.
    pub from: Option<Head>,
    pub to: Head,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub decisions: Vec<Decision>,
    pub events: Vec<PlannedEvent>,
    pub heads: Vec<HeadMove>,
}

/// Decides every append in order against `heads` (a stream absent from it is
/// taken to be new; if it is not, the write finds out), chaining accepted
/// events onto their stream.
pub fn plan(appends: &[&PreparedAppend<'_>], heads: &HashMap<StreamId, Head>) -> Plan {
    let mut plan = Plan::default();
    // Per stream: the head as read, the head after accepted appends, and the
    // accepted event ids with their version and ordinal.
    let mut current: HashMap<&StreamId, (Option<Head>, Head)> = HashMap::new();
    let mut accepted: HashMap<(&StreamId, Uuid), (u64, u64)> = HashMap::new();
    for (append_index, append) in appends.iter().enumerate() {
        let (_, head) = current.entry(append.stream).or_insert_with(|| {
            let read = heads.get(append.stream).copied();
            (
                read,
                read.unwrap_or(Head {
                    version: 0,
                    hash: GENESIS_HASH,
                }),
            )
        });
        if head.version != append.expected {
            let earlier: Option<Vec<(u64, u64)>> = append
                .events
                .iter()
                .map(|event| accepted.get(&(append.stream, event.event_id)).copied())
                .collect();
            let decision = match earlier {
                Some(found) if found.windows(2).all(|pair| pair[1].0 == pair[0].0 + 1) => {
                    let (first, _) = found[0];
                    let (last, ordinal) = found[found.len() - 1];
                    Decision::DuplicateInBatch {
                        first,
                        last,
                        ordinal,
                    }
                }
                _ => Decision::Mismatch {
                    actual: head.version,
                },
            };
            plan.decisions.push(decision);
            continue;
        }
        let first = head.version + 1;
        for (event_index, (event, canonical)) in
            append.events.iter().zip(&append.canonical).enumerate()
        {
            head.version += 1;
            head.hash = chain_hash(&head.hash, canonical);
            let ordinal = plan.events.len() as u64 + 1;
            accepted.insert((append.stream, event.event_id), (head.version, ordinal));
            plan.events.push(PlannedEvent {
                append: append_index,
                event: event_index,
                version: head.version,
                hash: head.hash,
                ordinal,
            });
        }
        plan.decisions.push(Decision::Append {
            first,
            last: head.version,
            ordinal: plan.events.len() as u64,
        });
    }
    let mut moved: Vec<_> = current
        .into_iter()
        .filter(|(_, (read, now))| read.map_or(now.version > 0, |read| read != *now))
        .map(|(stream, (read, now))| HeadMove {
            stream: stream.clone(),
            from: read,
            to: now,
        })
        .collect();
    // One order for every writer, so that concurrent batches cannot deadlock.
    moved.sort_by(|a, b| a.stream.cmp(&b.stream));
    plan.heads = moved;
    plan
}

/// The outcome of an append once the plan is written: `base` is the position
/// of ordinal 1, `None` when the plan wrote nothing.
pub fn appended(first: u64, last: u64, ordinal: u64, base: i64, duplicate: bool) -> Appended {
    Appended {
        first_version: first,
        last_version: last,
        position: Position(base + ordinal as i64 - 1),
        duplicate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events(n: usize) -> Vec<NewEvent> {
        (0..n)
            .map(|i| NewEvent::new("Tested", 1, json!({ "i": i })))
            .collect()
    }

    fn prepare<'a>(
        stream: &'a StreamId,
        expected: u64,
        events: &'a [NewEvent],
        metadata: &'a EventMetadata,
    ) -> PreparedAppend<'a> {
        PreparedAppend::new(
            stream,
            ExpectedVersion::from_version(expected),
            events,
            metadata,
            DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn appends_chain_onto_their_stream_and_later_ones_see_earlier_ones() {
        let (a, b) = (
            StreamId::new("order", "a").unwrap(),
            StreamId::new("order", "b").unwrap(),
        );
        let meta = EventMetadata::default();
        let (e1, e2, e3, e4) = (events(2), events(1), events(1), events(1));
        let stored_b = Head {
            version: 4,
            hash: [7; 32],
        };
        let heads = HashMap::from([(b.clone(), stored_b)]);
        let appends = [
            prepare(&a, 0, &e1, &meta),
            prepare(&b, 4, &e2, &meta),
            prepare(&a, 2, &e3, &meta),
            prepare(&a, 2, &e4, &meta), // stale: the previous one moved `a` to 3
        ];
        let refs: Vec<_> = appends.iter().collect();
        let plan = plan(&refs, &heads);
        assert_eq!(
            plan.decisions,
            vec![
                Decision::Append {
                    first: 1,
                    last: 2,
                    ordinal: 2
                },
                Decision::Append {
                    first: 5,
                    last: 5,
                    ordinal: 3
                },
                Decision::Append {
                    first: 3,
                    last: 3,
                    ordinal: 4
                },
                Decision::Mismatch { actual: 3 },
            ]
        );
        let first_hash = chain_hash(&GENESIS_HASH, &appends[0].canonical[0]);
        assert_eq!(plan.events[0].hash, first_hash);
        assert_eq!(
            plan.events[1].hash,
            chain_hash(&first_hash, &appends[0].canonical[1])
        );
        assert_eq!(
            plan.events[2].hash,
            chain_hash(&stored_b.hash, &appends[1].canonical[0])
        );
        assert_eq!(plan.heads.len(), 2);
        assert_eq!(
            (
                plan.heads[0].stream.as_str(),
                plan.heads[0].from,
                plan.heads[0].to.version
            ),
            ("order-a", None, 3)
        );
        assert_eq!(
            (plan.heads[1].from, plan.heads[1].to.version),
            (Some(stored_b), 5)
        );
        assert_eq!(plan.heads[0].to.hash, plan.events[3].hash);
    }

    #[test]
    fn a_twin_of_an_accepted_append_is_a_duplicate_in_the_batch() {
        let a = StreamId::new("payment", "a").unwrap();
        let meta = EventMetadata::default();
        let twins = events(2);
        let appends = [prepare(&a, 0, &twins, &meta), prepare(&a, 0, &twins, &meta)];
        let refs: Vec<_> = appends.iter().collect();
        let plan = plan(&refs, &HashMap::new());
        assert_eq!(
            plan.decisions[1],
            Decision::DuplicateInBatch {
                first: 1,
                last: 2,
                ordinal: 2
            }
        );
        assert_eq!(plan.events.len(), 2);
    }

    #[test]
    fn nothing_accepted_moves_no_head() {
        let a = StreamId::new("payment", "a").unwrap();
        let meta = EventMetadata::default();
        let e = events(1);
        let appends = [prepare(&a, 3, &e, &meta)];
        let refs: Vec<_> = appends.iter().collect();
        let plan = plan(&refs, &HashMap::new());
        assert_eq!(plan.decisions, vec![Decision::Mismatch { actual: 0 }]);
        assert!(plan.heads.is_empty() && plan.events.is_empty());
    }
}
