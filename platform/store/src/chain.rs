//! Hash chains: the canonical bytes of an event, and the walk that finds the
//! first event of a stream that was changed, removed or reordered.
//!
//! `hash(event) = SHA-256(hash(previous event) || canonical(event))`, starting
//! from 32 zero bytes. `canonical` is a JSON array of the event's stored facts
//! with object keys sorted and no whitespace, so any backend, and any auditor
//! with a JSON library, can recompute it from what it reads.
//!
//! Two forms coexist, told apart by their first element: `paystream.event.v1`
//! for events without idempotency metadata (every event stored before it
//! existed keeps its hash), and `paystream.event.v2`, which adds the
//! idempotency key's hash and the request's hash after the actor.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{IdempotencyRecord, RecordedEvent, StoreError, StreamId};

pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Tags of the canonical forms: v1 without idempotency metadata, v2 with it.
const CANONICAL_FORM: &str = "paystream.event.v1";
const CANONICAL_FORM_IDEMPOTENT: &str = "paystream.event.v2";

/// The facts of one event that its hash covers.
#[derive(Debug, Clone, Copy)]
pub struct EventFacts<'a> {
    pub stream_id: &'a str,
    pub version: u64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u16,
    pub recorded_at_micros: i64,
    pub merchant_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    pub actor: &'a str,
    /// Covered by the v2 form only; `None` keeps the v1 form.
    pub idempotency: Option<IdempotencyRecord>,
    pub payload: &'a Value,
}

impl<'a> EventFacts<'a> {
    pub fn of(event: &'a RecordedEvent) -> Self {
        Self {
            stream_id: event.stream_id.as_str(),
            version: event.version,
            event_id: event.event_id,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            recorded_at_micros: event.recorded_at.timestamp_micros(),
            merchant_id: event.metadata.merchant_id,
            causation_id: event.metadata.causation_id,
            correlation_id: event.metadata.correlation_id,
            actor: &event.metadata.actor,
            idempotency: event.metadata.idempotency,
            payload: &event.payload,
        }
    }

    /// The canonical bytes the chain hashes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.push(b'[');
        let form = if self.idempotency.is_some() {
            CANONICAL_FORM_IDEMPOTENT
        } else {
            CANONICAL_FORM
        };
        let scalars: [&dyn ErasedJson; 11] = [
            &form,
            &self.stream_id,
            &self.version,
            &self.event_id,
            &self.event_type,
            &self.schema_version,
            &self.recorded_at_micros,
            &self.merchant_id,
            &self.causation_id,
            &self.correlation_id,
            &self.actor,
        ];
        for scalar in scalars {
            scalar.write_json(&mut out);
            out.push(b',');
        }
        if let Some(idempotency) = &self.idempotency {
            for hash in [&idempotency.key_hash, &idempotency.request_hash] {
                hex::encode(hash).write_json(&mut out);
                out.push(b',');
            }
        }
        write_canonical(self.payload, &mut out);
        out.push(b']');
        out
    }
}

/// `SHA-256(previous || canonical)`.
pub fn chain_hash(previous: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(canonical);
    hasher.finalize().into()
}

/// Event types are NATS subject tokens too: 1 to 100 ASCII letters, digits or `_`.
pub fn check_event_type(event_type: &str) -> Result<(), StoreError> {
    let valid = (1..=100).contains(&event_type.len())
        && event_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::InvalidEvent(format!(
            "event type must be 1 to 100 ASCII letters, digits or _, got {event_type:?}"
        )))
    }
}

/// Payloads are stored as JSON documents whose numbers a database may
/// normalise; only integers survive that unchanged, so only integers are
/// allowed (money is integer minor units anyway).
pub fn check_payload(payload: &Value) -> Result<(), StoreError> {
    match payload {
        Value::Number(number) if !(number.is_i64() || number.is_u64()) => Err(
            StoreError::InvalidEvent(format!("payload numbers must be integers, got {number}")),
        ),
        Value::String(text) if text.contains('\0') => Err(StoreError::InvalidEvent(
            "payload strings must not contain NUL".into(),
        )),
        Value::Array(items) => items.iter().try_for_each(check_payload),
        Value::Object(map) => map.iter().try_for_each(|(key, value)| {
            if key.contains('\0') {
                return Err(StoreError::InvalidEvent(
                    "payload keys must not contain NUL".into(),
                ));
            }
            check_payload(value)
        }),
        _ => Ok(()),
    }
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (index, (key, value)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                key.as_str().write_json(out);
                out.push(b':');
                write_canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => scalar.write_json(out),
    }
}

trait ErasedJson {
    fn write_json(&self, out: &mut Vec<u8>);
}

impl<T: Serialize + ?Sized> ErasedJson for T {
    fn write_json(&self, out: &mut Vec<u8>) {
        // Serialising a scalar into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, self);
    }
}

/// What is wrong at the first broken link of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainBreakKind {
    /// The event's stored hash does not match its content and predecessor:
    /// it, or the order of events, was changed.
    Altered,
    /// A version is missing: events were removed from the middle.
    Missing,
    /// The stream record says more events exist than are stored, or its last
    /// hash differs: events were removed from the end or rewritten.
    Truncated,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    pub stream_id: StreamId,
    /// The first version that does not verify.
    pub version: u64,
    pub kind: ChainBreakKind,
}

/// Walks one stream's events in version order and finds the first broken
/// link. Memory stays constant however long the stream is.
#[derive(Debug)]
pub struct ChainWalker {
    stream_id: StreamId,
    previous: [u8; 32],
    next_version: u64,
    broken: Option<ChainBreak>,
}

impl ChainWalker {
    pub fn new(stream_id: StreamId) -> Self {
        Self {
            stream_id,
            previous: GENESIS_HASH,
            next_version: 1,
            broken: None,
        }
    }

    pub fn stream_id(&self) -> &StreamId {
        &self.stream_id
    }

    /// Feeds the next stored event of the stream.
    pub fn push(&mut self, event: &RecordedEvent) {
        if self.broken.is_some() {
            return;
        }
        if event.version != self.next_version {
            self.fail(self.next_version, ChainBreakKind::Missing);
            return;
        }
        let canonical = EventFacts::of(event).canonical_bytes();
        if chain_hash(&self.previous, &canonical) != event.hash {
            self.fail(event.version, ChainBreakKind::Altered);
            return;
        }
        self.previous = event.hash;
        self.next_version += 1;
    }

    /// Ends the walk against what the stream record claims: its version and
    /// last hash (`None` when the record itself is gone).
    pub fn finish(mut self, head: Option<(u64, [u8; 32])>) -> Option<ChainBreak> {
        if self.broken.is_none() && head != Some((self.next_version - 1, self.previous)) {
            self.fail(
                self.next_version
                    .min(head.map_or(u64::MAX, |(version, _)| version + 1)),
                ChainBreakKind::Truncated,
            );
        }
        self.broken
    }

    fn fail(&mut self, version: u64, kind: ChainBreakKind) {
        self.broken = Some(ChainBreak {
            stream_id: self.stream_id.clone(),
            version,
            kind,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts(payload: &Value) -> EventFacts<'_> {
        EventFacts {
            stream_id: "order-order_A1b2C3d4E5f6G7h8",
            version: 1,
            event_id: Uuid::nil(),
            event_type: "OrderCreated",
            schema_version: 1,
            recorded_at_micros: 1_700_000_000_000_000,
            merchant_id: None,
            causation_id: None,
            correlation_id: None,
            actor: "merchant:x",
            idempotency: None,
            payload,
        }
    }

    #[test]
    fn canonical_bytes_sort_keys_and_have_no_whitespace() {
        let payload = json!({"b": 1, "a": {"z": [1, "x"], "y": null}, "ä": true});
        let bytes = facts(&payload).canonical_bytes();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"["paystream.event.v1","order-order_A1b2C3d4E5f6G7h8",1,"00000000-0000-0000-0000-000000000000","OrderCreated",1,1700000000000000,null,null,null,"merchant:x",{"a":{"y":null,"z":[1,"x"]},"b":1,"ä":true}]"#
        );
    }

    #[test]
    fn idempotency_metadata_takes_the_v2_form_and_is_covered() {
        let payload = json!({"a": 1});
        let record = IdempotencyRecord {
            key_hash: [0xab; 32],
            request_hash: [0x01; 32],
        };
        let with = EventFacts {
            idempotency: Some(record),
            ..facts(&payload)
        };
        assert_eq!(
            String::from_utf8(with.canonical_bytes()).unwrap(),
            format!(
                r#"["paystream.event.v2","order-order_A1b2C3d4E5f6G7h8",1,"00000000-0000-0000-0000-000000000000","OrderCreated",1,1700000000000000,null,null,null,"merchant:x","{}","{}",{{"a":1}}]"#,
                "ab".repeat(32),
                "01".repeat(32)
            )
        );
        // Stripping the record, or changing either hash, changes the bytes.
        let other = EventFacts {
            idempotency: Some(IdempotencyRecord {
                request_hash: [0x02; 32],
                ..record
            }),
            ..with
        };
        assert_ne!(with.canonical_bytes(), facts(&payload).canonical_bytes());
        assert_ne!(with.canonical_bytes(), other.canonical_bytes());
    }

    #[test]
    fn key_order_of_the_input_does_not_matter() {
        let one: Value = serde_json::from_str(r#"{"a":1,"b":{"c":2,"d":3}}"#).unwrap();
        let two: Value = serde_json::from_str(r#"{"b":{"d":3,"c":2},"a":1}"#).unwrap();
        assert_eq!(facts(&one).canonical_bytes(), facts(&two).canonical_bytes());
    }

    #[test]
    fn only_integer_payload_numbers_are_accepted() {
        assert!(check_payload(&json!({"amount": 5000, "big": u64::MAX, "n": -1})).is_ok());
        assert!(check_payload(&json!({"rate": 0.5})).is_err());
        assert!(check_payload(&json!(["a\u{0}b"])).is_err());
    }
}
