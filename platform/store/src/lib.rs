//! The event store: the port every backend implements, and its types.
//!
//! A stream holds one object's events (`payment-pay_…`), numbered by a gapless
//! `version` from 1. The global log orders every event of every stream by a
//! `Position` that only grows; readers of the global log never see an event
//! appear behind them (see the PostgreSQL adapter for how).

pub mod append_plan;
pub mod backoff;
pub mod chain;
pub mod group_commit;
pub mod head_cache;
pub mod memory;
pub mod postgres;
pub mod relay;
pub mod runner;
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use chain::{ChainBreak, ChainBreakKind};
pub use memory::MemoryEventStore;
pub use postgres::PgEventStore;

/// Most events a single append may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 1000;

/// `"{category}-{id}"`, e.g. `payment-pay_A1b2C3d4E5f6G7h8`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

impl StreamId {
    pub const MAX_LEN: usize = 200;

    /// A stream of `category` (lowercase ASCII letters and `_`) for object `id`.
    pub fn new(category: &str, id: impl fmt::Display) -> Result<Self, StoreError> {
        Self::parse(format!("{category}-{id}"))
    }

    pub fn parse(value: String) -> Result<Self, StoreError> {
        let valid = value.len() <= Self::MAX_LEN
            && value.split_once('-').is_some_and(|(category, id)| {
                !category.is_empty()
                    && category
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_')
                    && !id.is_empty()
                    && id.bytes().all(|b| b.is_ascii_graphic())
            });
        if valid {
            Ok(Self(value))
        } else {
            Err(StoreError::InvalidEvent(format!(
                "stream id must be `category-id` (at most {} printable ASCII characters), got {value:?}",
                Self::MAX_LEN
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `-`: `payment`, `order`, …
    pub fn category(&self) -> &str {
        self.0.split_once('-').map_or("", |(category, _)| category)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for StreamId {
    type Error = StoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<StreamId> for String {
    fn from(value: StreamId) -> Self {
        value.0
    }
}

/// A point in the global log. Positions only grow but are not dense.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Position(pub i64);

impl Position {
    /// Before the first event.
    pub const START: Position = Position(0);
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the writer believes the stream's version is. There is deliberately no
/// "any version": every command decides on a state it read, and appending
/// without that check could break per-stream order in the global log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have this version.
    Exact(u64),
}

impl ExpectedVersion {
    pub fn as_u64(self) -> u64 {
        match self {
            ExpectedVersion::NoStream => 0,
            ExpectedVersion::Exact(version) => version,
        }
    }

    /// The expectation for a stream whose current version is `version` (0 = none).
    pub fn from_version(version: u64) -> Self {
        if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        }
    }
}

/// An event to append. Its id makes the append idempotent.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub payload: serde_json::Value,
}

impl NewEvent {
    /// A new event with a fresh time-ordered (v7) id.
    pub fn new(
        event_type: impl Into<String>,
        schema_version: u16,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version,
            payload,
        }
    }
}

/// Who and what caused an append; stored on every event of the append.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventMetadata {
    pub merchant_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    /// `merchant:<id>`, `staff:<email>`, `system:acquirer`, …
    pub actor: String,
    /// The `Idempotency-Key` request that caused the append, when it had one.
    /// Absent from the JSON of events without one, so their form (and their
    /// hashes) are what they were before the field existed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub idempotency: Option<IdempotencyRecord>,
}

/// What an event records of the `Idempotency-Key` request that caused it:
/// hashes only, never the key or the body themselves (a body may carry a
/// card number). Both are SHA-256, shown as lowercase hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// SHA-256 of the key as sent (after trimming).
    #[serde(with = "hex_hash")]
    pub key_hash: [u8; 32],
    /// SHA-256 of the request: method, path and body, card number and CVV
    /// left out (see `http::idempotency::record`).
    #[serde(with = "hex_hash")]
    pub request_hash: [u8; 32],
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub position: Position,
    pub event_id: Uuid,
    pub stream_id: StreamId,
    pub version: u64,
    pub event_type: String,
    pub schema_version: u16,
    pub payload: serde_json::Value,
    #[serde(flatten)]
    pub metadata: EventMetadata,
    pub recorded_at: DateTime<Utc>,
    /// SHA-256 chaining this event to the previous one of its stream.
    #[serde(with = "hex_hash")]
    pub hash: [u8; 32],
}

/// The result of a successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub first_version: u64,
    pub last_version: u64,
    /// Position of the last appended event.
    pub position: Position,
    /// Every event id was already stored: nothing was written this time.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("stream {stream} is at version {actual}, not the expected {expected}")]
    Conflict {
        stream: StreamId,
        expected: u64,
        actual: u64,
    },
    #[error("event id {event_id} is already stored with different content or in another stream")]
    EventIdReused { event_id: Uuid },
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database's schema is behind this build (see
    /// `PgEventStore::migrate`): the service must not start on it.
    #[error("{0}")]
    Schema(String),
    /// The database cannot be reached or cannot serve right now (connection
    /// lost, pool exhausted, shutting down, out of resources, a transient
    /// serialization failure): retrying later may succeed.
    #[error("event store unavailable")]
    Unavailable(#[source] BackendError),
    /// The database refused a value that a request carried: text it cannot
    /// hold (a NUL character: SQLSTATE 22021 `character_not_in_repertoire`,
    /// 22P05 `untranslatable_character`) or text that is not of the column's
    /// type (22P02 `invalid_text_representation`). The input is at fault, not
    /// the database; services validate inputs first and this is the backstop.
    #[error("the database refused a value of the request")]
    InvalidValue(#[source] BackendError),
    /// Any other database error (a violated constraint, a row that does not
    /// decode, a bug in a statement): neither unavailability nor bad input.
    #[error("database error")]
    Database(#[source] BackendError),
}

/// The backend's own error, kept as the source of a [`StoreError`] for logs;
/// callers decide on the variant, never on the backend's type.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// SQLSTATEs of values the database refuses (see [`StoreError::InvalidValue`]).
const INVALID_VALUE_STATES: [&str; 3] = ["22021", "22P05", "22P02"];

/// Whether a database error means the database cannot serve right now:
/// SQLSTATE classes 08 (connection exception), 28 (the service's login is
/// refused), 53 (insufficient resources) and 58 (system error), a database
/// that does not exist or was dropped (3D000, 57P04), the shutdown and
/// start-up states 57P01–57P03, a
/// cancelled (timed out) statement 57014, serialization failures and
/// deadlocks (40001, 40P01), a lock not available (55P03) and a read-only
/// server (25006, as during a fail-over).
fn is_transient_state(code: &str) -> bool {
    ["08", "28", "53", "58"]
        .iter()
        .any(|class| code.starts_with(class))
        || [
            "3D000", "57P01", "57P02", "57P03", "57P04", "57014", "40001", "40P01", "55P03",
            "25006",
        ]
        .contains(&code)
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &error {
            E::Database(database) => match database.code() {
                Some(code) if INVALID_VALUE_STATES.contains(&code.as_ref()) => {
                    StoreError::InvalidValue(error.into())
                }
                Some(code) if is_transient_state(&code) => StoreError::Unavailable(error.into()),
                _ => StoreError::Database(error.into()),
            },
            E::Io(_)
            | E::Tls(_)
            | E::Protocol(_)
            | E::PoolTimedOut
            | E::PoolClosed
            | E::WorkerCrashed
            | E::Configuration(_) => StoreError::Unavailable(error.into()),
            _ => StoreError::Database(error.into()),
        }
    }
}

/// The port. Backends: PostgreSQL (default, [`PgEventStore`]) and in memory
/// ([`MemoryEventStore`]), both held to one contract suite
/// (`tests/store_contract/`); EventStoreDB next.
pub trait EventStore: Send + Sync {
    /// Appends `events` to `stream` atomically if its version is `expected`.
    /// A stale expectation is [`StoreError::Conflict`] and writes nothing.
    /// Re-appending events whose ids are all stored is a no-op
    /// (`Appended::duplicate`).
    fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        metadata: &EventMetadata,
    ) -> impl Future<Output = Result<Appended, StoreError>> + Send;

    /// Events of `stream` with a version above `after_version`, oldest first.
    fn read_stream(
        &self,
        stream: &StreamId,
        after_version: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Events of every stream after `after`, in global order, but only those
    /// whose place in that order is final: a later call never returns an event
    /// positioned before one it already returned.
    fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Checks one stream's hash chain; `None` when it is intact.
    fn verify_stream(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<ChainBreak>, StoreError>> + Send;

    /// Checks every stream's chain; returns the breaks found (empty = intact).
    fn verify_all(&self) -> impl Future<Output = Result<Vec<ChainBreak>, StoreError>> + Send;

    /// Checks the chains of the next `streams` streams after `after`, in
    /// stream id order: one bounded step of a walk over every stream.
    fn verify_streams(
        &self,
        after: Option<&str>,
        streams: usize,
    ) -> impl Future<Output = Result<VerifiedStreams, StoreError>> + Send;

    /// Whether any stream sorts after `after` (a walk that stopped there is
    /// complete when none does).
    fn has_streams_after(
        &self,
        after: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Several streams at once: each `(stream, version)` asks for the
    /// stream's events up to that version. Ordered by stream, then version.
    fn read_streams(
        &self,
        wanted: &[(StreamId, u64)],
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// One merchant's events (those whose metadata names it) after `after`,
    /// in global order, final positions only (as [`EventStore::read_all`]).
    fn read_merchant(
        &self,
        merchant: Uuid,
        after: Position,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// A filtered range of the global log, in global order (the audit
    /// export).
    fn read_range(
        &self,
        range: &LogRange,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Every position below this is final: no event will ever appear there.
    fn horizon(&self) -> impl Future<Output = Result<Position, StoreError>> + Send;

    /// A lower bound of every position not handed out yet: any position an
    /// append has been given is below it.
    fn next_position(&self) -> impl Future<Output = Result<Position, StoreError>> + Send;

    /// How many events and streams the log holds.
    fn size(&self) -> impl Future<Output = Result<LogSize, StoreError>> + Send;

    /// The payment stream that holds refund `refund_id` (a refund lives in
    /// its payment's stream), if it was ever requested.
    fn refund_stream(
        &self,
        refund_id: &str,
    ) -> impl Future<Output = Result<Option<StreamId>, StoreError>> + Send;

    /// Streams of `category` whose last event is of `event_type`, names
    /// `merchant` and was recorded at or after `since`; oldest such event
    /// first, at most `limit`.
    fn streams_ending_with(
        &self,
        category: &str,
        event_type: &str,
        merchant: Uuid,
        since: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StreamId>, StoreError>> + Send;
}

/// A filtered range of the global log: positions in `(after, before)`,
/// optionally recorded in `[recorded_from, recorded_to)` and of one
/// merchant (its metadata names it, or it is in its merchant stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRange {
    pub after: Position,
    pub before: Position,
    pub recorded_from: Option<DateTime<Utc>>,
    pub recorded_to: Option<DateTime<Utc>>,
    pub merchant: Option<Uuid>,
    pub limit: usize,
}

/// How many events and streams the log holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogSize {
    pub events: u64,
    pub streams: u64,
}

/// One step of a walk over every stream's chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifiedStreams {
    pub streams: u64,
    pub events: u64,
    /// Every broken stream of the step, in stream id order.
    pub breaks: Vec<StreamBreak>,
    /// The last stream of the step; `None` when it reached the end.
    pub upto: Option<String>,
}

/// A broken stream, as a walk over raw rows finds it: its id as stored
/// (which may not even parse), the first version that does not verify, and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBreak {
    pub stream_id: String,
    pub version: u64,
    pub kind: ChainBreakKind,
}

impl From<ChainBreak> for StreamBreak {
    fn from(broken: ChainBreak) -> Self {
        Self {
            stream_id: broken.stream_id.to_string(),
            version: broken.version,
            kind: broken.kind,
        }
    }
}

mod hex_hash {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hash: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&text, &mut hash).map_err(D::Error::custom)?;
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_category_dash_id() {
        let stream = StreamId::new("payment", "pay_A1b2C3d4E5f6G7h8").unwrap();
        assert_eq!(stream.as_str(), "payment-pay_A1b2C3d4E5f6G7h8");
        assert_eq!(stream.category(), "payment");
        for bad in [
            "payment",
            "-x",
            "Payment-x",
            "pay ment-x",
            "payment-",
            "payment-a b",
        ] {
            assert!(StreamId::parse(bad.to_string()).is_err(), "{bad} accepted");
        }
        assert!(StreamId::parse(format!("order-{}", "x".repeat(200))).is_err());
    }

    /// A database error with only a SQLSTATE, as the server would send it.
    #[derive(Debug)]
    struct State(&'static str);

    impl fmt::Display for State {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for State {}

    impl sqlx::error::DatabaseError for State {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn classify(error: sqlx::Error) -> &'static str {
        match StoreError::from(error) {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::InvalidValue(_) => "invalid value",
            StoreError::Database(_) => "database",
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn database_errors_caused_by_a_value_are_never_unavailability() {
        let database = |code| sqlx::Error::Database(Box::new(State(code)));
        for code in ["22021", "22P05", "22P02"] {
            assert_eq!(classify(database(code)), "invalid value", "{code}");
        }
        for code in [
            "08006", "08001", "53300", "57P01", "57P03", "57014", "40001", "40P01", "58030",
            "25006",
        ] {
            assert_eq!(classify(database(code)), "unavailable", "{code}");
        }
        // Other data exceptions, constraints, syntax: our bug, not an outage.
        for code in ["22003", "23505", "42601", "P0001", "XX000"] {
            assert_eq!(classify(database(code)), "database", "{code}");
        }
        assert_eq!(classify(sqlx::Error::PoolTimedOut), "unavailable");
        assert_eq!(classify(sqlx::Error::PoolClosed), "unavailable");
        assert_eq!(
            classify(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into())),
            "unavailable"
        );
        assert_eq!(classify(sqlx::Error::RowNotFound), "database");
        assert_eq!(
            classify(sqlx::Error::ColumnNotFound("x".into())),
            "database"
        );
    }
}
