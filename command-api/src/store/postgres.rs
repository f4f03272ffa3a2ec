//! The PostgreSQL event store (the default backend and source of truth).
//!
//! * Appends are one call of the `append_events` SQL function: it locks the
//!   stream's row, checks the expected version and event-id idempotency,
//!   chains the hashes and inserts, all in one round trip and one commit.
//! * Global order: an event's position is `(xid << 20) | index` of the
//!   transaction that appended it; [`EventStore::read_all`] only returns
//!   positions below the snapshot's xmin horizon, where every transaction has
//!   finished. A transaction that commits late therefore holds readers back
//!   until it commits; it is never skipped. (Any long-running writing
//!   transaction in the cluster delays readers the same way: keep them short.)

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgRow};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::chain::{check_event_type, check_payload, ChainWalker, EventFacts};
use super::{
    Appended, ChainBreak, EventMetadata, EventStore, ExpectedVersion, NewEvent, Position,
    RecordedEvent, StoreError, StreamId, MAX_EVENTS_PER_APPEND,
};

/// The migrations of every table the write side owns, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// `select <columns of an event> from events …` as a static string.
macro_rules! select_events {
    ($($rest:literal)*) => {
        concat!(
            "select position, event_id, stream_id, version, event_type, schema_version, payload, \
             merchant_id, causation_id, correlation_id, actor, recorded_at, hash from events ",
            $($rest),*
        )
    };
}

#[derive(Debug, Clone)]
pub struct PgEventStore {
    pool: PgPool,
}

impl PgEventStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Connects with explicit bounds and applies the migrations.
    pub async fn connect(database_url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options: PgConnectOptions = database_url.parse()?;
        let pool = PoolOptions::new()
            .max_connections(max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .idle_timeout(Duration::from_secs(300))
            .connect_with(options)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|error| StoreError::Unavailable(error.into()))?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Appends inside a transaction the caller owns, so several appends (or
    /// other writes) commit together. `tx_index` is the number of events this
    /// transaction has appended so far; it orders them within the transaction.
    pub async fn append_in(
        connection: &mut PgConnection,
        tx_index: u32,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        metadata: &EventMetadata,
    ) -> Result<Appended, StoreError> {
        if events.is_empty() || events.len() > MAX_EVENTS_PER_APPEND {
            return Err(StoreError::InvalidEvent(format!(
                "an append carries 1 to {MAX_EVENTS_PER_APPEND} events, got {}",
                events.len()
            )));
        }
        let expected_version = expected.as_u64();
        let recorded_at = now_micros();
        let mut canonical = Vec::with_capacity(events.len());
        for (offset, event) in (1..).zip(events) {
            check_event_type(&event.event_type)?;
            check_payload(&event.payload)?;
            canonical.push(
                EventFacts {
                    stream_id: stream.as_str(),
                    version: expected_version + offset,
                    event_id: event.event_id,
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    recorded_at_micros: recorded_at.timestamp_micros(),
                    merchant_id: metadata.merchant_id,
                    causation_id: metadata.causation_id,
                    correlation_id: metadata.correlation_id,
                    actor: &metadata.actor,
                    payload: &event.payload,
                }
                .canonical_bytes(),
            );
        }
        let schema_versions = events
            .iter()
            .map(|event| i16::try_from(event.schema_version))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| StoreError::InvalidEvent("schema version above 32767".into()))?;

        let row = sqlx::query(
            "select outcome, first_version, last_version, last_position \
             from append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(stream.as_str())
        .bind(stream.category())
        .bind(to_i64(expected_version)?)
        .bind(i32::try_from(tx_index).map_err(|_| StoreError::InvalidEvent("tx index".into()))?)
        .bind(
            events
                .iter()
                .map(|event| event.event_id)
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|event| event.event_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(schema_versions)
        .bind(
            events
                .iter()
                .map(|event| &event.payload)
                .collect::<Vec<_>>(),
        )
        .bind(canonical)
        .bind(metadata.merchant_id)
        .bind(metadata.causation_id)
        .bind(metadata.correlation_id)
        .bind(metadata.actor.as_str())
        .bind(recorded_at)
        .fetch_one(&mut *connection)
        .await
        .map_err(map_unique_violation)?;

        let outcome: String = row.try_get("outcome")?;
        let first_version: Option<i64> = row.try_get("first_version")?;
        let last_version: Option<i64> = row.try_get("last_version")?;
        let last_position: Option<i64> = row.try_get("last_position")?;
        let appended = |duplicate| -> Result<Appended, StoreError> {
            Ok(Appended {
                first_version: from_i64(first_version.unwrap_or_default())?,
                last_version: from_i64(last_version.unwrap_or_default())?,
                position: Position(last_position.unwrap_or_default()),
                duplicate,
            })
        };
        match outcome.as_str() {
            "appended" => appended(false),
            "duplicate" => appended(true),
            "conflict" => Err(StoreError::Conflict {
                stream: stream.clone(),
                expected: expected_version,
                actual: from_i64(last_version.unwrap_or_default())?,
            }),
            "event_id_reused" => Err(StoreError::EventIdReused {
                event_id: events[0].event_id,
            }),
            other => Err(StoreError::Corrupt(format!(
                "append_events answered {other:?}"
            ))),
        }
    }

    /// The position below which the global log is final right now.
    pub async fn horizon(&self) -> Result<Position, StoreError> {
        let horizon: i64 = sqlx::query_scalar("select events_horizon()")
            .fetch_one(&self.pool)
            .await?;
        Ok(Position(horizon))
    }
}

impl EventStore for PgEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        metadata: &EventMetadata,
    ) -> Result<Appended, StoreError> {
        let mut connection = self.pool.acquire().await?;
        Self::append_in(&mut connection, 0, stream, expected, &events, metadata).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(select_events!(
            "\
             where stream_id = $1 and version > $2 order by version limit $3"
        ))
        .bind(stream.as_str())
        .bind(to_i64(after_version)?)
        .bind(to_i64(limit as u64)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_event).collect()
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(select_events!(
            "\
             where position > $1 and position < events_horizon() order by position limit $2"
        ))
        .bind(after.0)
        .bind(to_i64(limit as u64)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_event).collect()
    }

    async fn verify_stream(&self, stream: &StreamId) -> Result<Option<ChainBreak>, StoreError> {
        let head = sqlx::query("select version, last_hash from event_streams where stream_id = $1")
            .bind(stream.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| decode_head(&row))
            .transpose()?;
        let mut walker = ChainWalker::new(stream.clone());
        let mut events = sqlx::query(select_events!("where stream_id = $1 order by version"))
            .bind(stream.as_str())
            .fetch(&self.pool);
        while let Some(row) = events.try_next().await? {
            walker.push(&decode_event(&row)?);
        }
        Ok(walker.finish(head))
    }

    async fn verify_all(&self) -> Result<Vec<ChainBreak>, StoreError> {
        // Merge-join two ordered scans: stream heads and events by (stream, version).
        let mut heads = sqlx::query(
            "select stream_id, version, last_hash from event_streams order by stream_id",
        )
        .fetch(&self.pool);
        let mut events =
            sqlx::query(select_events!("order by stream_id, version")).fetch(&self.pool);

        let mut breaks = Vec::new();
        let mut next_head = next_head(&mut heads).await?;
        let mut walker: Option<ChainWalker> = None;
        while let Some(row) = events.try_next().await? {
            let event = decode_event(&row)?;
            if walker.as_ref().map(|w| w.stream_id()) != Some(&event.stream_id) {
                if let Some(done) = walker.take() {
                    let head;
                    (head, next_head) =
                        take_head(done.stream_id(), next_head, &mut heads, &mut breaks).await?;
                    breaks.extend(done.finish(head));
                }
                walker = Some(ChainWalker::new(event.stream_id.clone()));
            }
            if let Some(walker) = walker.as_mut() {
                walker.push(&event);
            }
        }
        if let Some(done) = walker.take() {
            let head;
            (head, next_head) =
                take_head(done.stream_id(), next_head, &mut heads, &mut breaks).await?;
            breaks.extend(done.finish(head));
        }
        // Heads left over have no events at all.
        while let Some((stream_id, head)) = next_head {
            breaks.extend(ChainWalker::new(stream_id).finish(Some(head)));
            next_head = self::next_head(&mut heads).await?;
        }
        Ok(breaks)
    }
}

type Head = (StreamId, (u64, [u8; 32]));
type RowStream<'a> = futures::stream::BoxStream<'a, Result<PgRow, sqlx::Error>>;

async fn next_head(heads: &mut RowStream<'_>) -> Result<Option<Head>, StoreError> {
    match heads.try_next().await? {
        Some(row) => {
            let stream_id = StreamId::parse(row.try_get("stream_id")?)?;
            Ok(Some((stream_id, decode_head(&row)?)))
        }
        None => Ok(None),
    }
}

/// Advances the head scan to `stream_id`; heads passed on the way belong to
/// streams whose events are all gone.
async fn take_head(
    stream_id: &StreamId,
    mut next: Option<Head>,
    heads: &mut RowStream<'_>,
    breaks: &mut Vec<ChainBreak>,
) -> Result<(Option<(u64, [u8; 32])>, Option<Head>), StoreError> {
    while let Some((head_stream, head)) = next.take() {
        match head_stream.cmp(stream_id) {
            std::cmp::Ordering::Less => {
                breaks.extend(ChainWalker::new(head_stream).finish(Some(head)));
                next = next_head(heads).await?;
            }
            std::cmp::Ordering::Equal => return Ok((Some(head), next_head(heads).await?)),
            std::cmp::Ordering::Greater => return Ok((None, Some((head_stream, head)))),
        }
    }
    Ok((None, None))
}

fn decode_head(row: &PgRow) -> Result<(u64, [u8; 32]), StoreError> {
    let version: i64 = row.try_get("version")?;
    let hash: Vec<u8> = row.try_get("last_hash")?;
    Ok((from_i64(version)?, to_hash(hash)?))
}

fn decode_event(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let schema_version: i16 = row.try_get("schema_version")?;
    Ok(RecordedEvent {
        position: Position(row.try_get("position")?),
        event_id: row.try_get("event_id")?,
        stream_id: StreamId::parse(row.try_get("stream_id")?)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?,
        version: from_i64(row.try_get("version")?)?,
        event_type: row.try_get("event_type")?,
        schema_version: u16::try_from(schema_version)
            .map_err(|_| StoreError::Corrupt(format!("schema version {schema_version}")))?,
        payload: row.try_get("payload")?,
        metadata: EventMetadata {
            merchant_id: row.try_get::<Option<Uuid>, _>("merchant_id")?,
            causation_id: row.try_get("causation_id")?,
            correlation_id: row.try_get("correlation_id")?,
            actor: row.try_get("actor")?,
        },
        recorded_at: row.try_get::<DateTime<Utc>, _>("recorded_at")?,
        hash: to_hash(row.try_get("hash")?)?,
    })
}

fn to_hash(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| StoreError::Corrupt(format!("hash of {} bytes", bytes.len())))
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::InvalidEvent(format!("{value} is out of range")))
}

fn from_i64(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative version {value}")))
}

/// The database keeps microseconds; the canonical bytes must hash what it keeps.
fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// A concurrent append that stored the same event id in another stream.
fn map_unique_violation(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        if db.code().as_deref() == Some("23505") && db.constraint() == Some("events_event_id_key") {
            return StoreError::EventIdReused {
                event_id: Uuid::nil(),
            };
        }
        if db.code().as_deref() == Some("23505")
            && db.constraint() == Some("events_stream_id_version_key")
        {
            return StoreError::Corrupt(
                "two writers stored one stream version; the stream lock failed".into(),
            );
        }
    }
    StoreError::Unavailable(error)
}
