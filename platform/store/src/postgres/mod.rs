//! The PostgreSQL event store (the default backend and source of truth).
//!
//! * Appends: see [`append`]: heads are read, the batch is planned in Rust,
//!   and one guarded statement writes it.
//! * Global order: an event's position is `(xid << 20) | index` of the
//!   transaction that appended it; [`EventStore::read_all`] only returns
//!   positions below the snapshot's xmin horizon, where every transaction has
//!   finished. A transaction that commits late therefore holds readers back
//!   until it commits; it is never skipped. (Any long-running writing
//!   transaction in the cluster delays readers the same way: keep them short.)

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgRow};
use sqlx::Row;
use uuid::Uuid;

use super::append_plan::Head;
use super::chain::ChainWalker;
use super::group_commit::{GroupCommit, GroupCommitConfig};
use super::head_cache::HeadCache;
use super::{
    Appended, ChainBreak, EventMetadata, EventStore, ExpectedVersion, IdempotencyRecord, LogRange,
    LogSize, NewEvent, Position, RecordedEvent, StoreError, StreamId, VerifiedStreams,
};

mod append;
pub mod lag;

/// Stream heads remembered per generation (two generations are kept).
const HEAD_CACHE_CAPACITY: usize = 50_000;

/// The migrations of every table the write side owns, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// `select <columns of an event> from events …` as a static string.
macro_rules! select_events {
    ($($rest:literal)*) => {
        concat!(
            "select position, event_id, stream_id, version, event_type, schema_version, payload, \
             merchant_id, causation_id, correlation_id, actor, idempotency_key_hash, \
             idempotency_request_hash, recorded_at, hash from events ",
            $($rest),*
        )
    };
}

mod reads;
mod verify;

/// How long a pooled connection lives (and keeps its cached plans).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// A pooled connection idle this long is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct PgEventStore {
    pool: PgPool,
    committer: GroupCommit,
    heads: Arc<HeadCache>,
}

impl PgEventStore {
    /// A store over `pool`; appends go through group commit.
    pub fn new(pool: PgPool, group_commit: GroupCommitConfig) -> Self {
        let heads = Arc::new(HeadCache::new(HEAD_CACHE_CAPACITY));
        let committer = GroupCommit::start(pool.clone(), group_commit, heads.clone());
        Self {
            pool,
            committer,
            heads,
        }
    }

    /// Applies the migrations this build carries, then closes its
    /// connection. One place runs it: `command-api migrate` (which
    /// `deploy/dev up` runs before any service starts), and test support.
    pub async fn migrate(database_url: &str) -> Result<(), StoreError> {
        let options: PgConnectOptions = database_url.parse()?;
        let pool = PoolOptions::<sqlx::Postgres>::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        let applied = MIGRATOR.run(&pool).await;
        pool.close().await;
        applied.map_err(|error| StoreError::Unavailable(error.into()))
    }

    /// Connects with explicit bounds. Refuses a database whose schema is
    /// behind this build ([`StoreError::Schema`]): services never migrate.
    ///
    /// A pooled connection is checked (one round trip) only when it has been
    /// idle for a while: one that has just served a query is alive, and
    /// pinging it before every use would double the round trips of a read.
    /// An idle one may have been cut by a database restart; it is pinged and,
    /// if dead, replaced before anyone sees it.
    ///
    /// Connections are renewed after [`CONNECTION_LIFETIME`]. PostgreSQL
    /// switches a prepared statement to a generic plan after five runs,
    /// costed with the table sizes of that moment; a connection opened while
    /// a table was small could keep scanning it whole as it grew, for as long
    /// as the connection lived. A renewed connection plans again with
    /// current statistics. (Planning every statement for its arguments
    /// instead, `plan_cache_mode = force_custom_plan`, cost PostgreSQL 27 %
    /// more CPU per payment end to end; the projector's batches, whose plans
    /// depend most on their arguments, still do it.)
    pub async fn connect(database_url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options: PgConnectOptions = database_url.parse()?;
        let pool = PoolOptions::new()
            .max_connections(max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .idle_timeout(Duration::from_secs(300))
            .max_lifetime(CONNECTION_LIFETIME)
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_AFTER_IDLE {
                        sqlx::Connection::ping(connection).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        ensure_schema(&pool).await?;
        // Without autovacuum, hot rows (stream heads, checkpoints, the
        // schedule) bloat their tables and nothing re-analyzes them, so
        // cached plans chosen while a table was small are never re-planned.
        let autovacuum: String = sqlx::query_scalar("show autovacuum")
            .fetch_one(&pool)
            .await?;
        if autovacuum != "on" {
            tracing::warn!(
                autovacuum,
                "PostgreSQL autovacuum is off: tables will bloat and query plans go stale; \
                 turn it on (deploy/dev does)"
            );
        }
        Ok(Self::new(pool, GroupCommitConfig::default()))
    }

    /// The schema version this build needs: its newest migration.
    pub fn schema_version() -> i64 {
        MIGRATOR
            .iter()
            .map(|migration| migration.version)
            .max()
            .unwrap_or(0)
    }

    /// Whether the database answers right now (one round trip).
    pub async fn ping(&self) -> bool {
        sqlx::query("select 1").execute(&self.pool).await.is_ok()
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// (stream heads remembered, most it keeps), for `/metrics`.
    pub fn head_cache_size(&self) -> (usize, usize) {
        self.heads.size()
    }

    pub fn group_commit(&self) -> &GroupCommit {
        &self.committer
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
        self.committer
            .append(stream.clone(), expected, events, metadata.clone())
            .await
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
        let events = rows
            .iter()
            .map(decode_event)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(last) = events.last() {
            // A committed (version, hash) pair: lets the next append skip a read.
            self.heads.insert(
                stream,
                Head {
                    version: last.version,
                    hash: last.hash,
                },
            );
        }
        Ok(events)
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

    async fn verify_streams(
        &self,
        after: Option<&str>,
        streams: usize,
    ) -> Result<VerifiedStreams, StoreError> {
        verify::verify_streams(self, after, streams).await
    }

    async fn has_streams_after(&self, after: &str) -> Result<bool, StoreError> {
        verify::has_streams_after(self, after).await
    }

    async fn read_streams(
        &self,
        wanted: &[(StreamId, u64)],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        reads::read_streams(self, wanted).await
    }

    async fn read_merchant(
        &self,
        merchant: Uuid,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        reads::read_merchant(self, merchant, after, limit).await
    }

    async fn read_range(&self, range: &LogRange) -> Result<Vec<RecordedEvent>, StoreError> {
        reads::read_range(self, range).await
    }

    async fn horizon(&self) -> Result<Position, StoreError> {
        reads::horizon(self).await
    }

    async fn next_position(&self) -> Result<Position, StoreError> {
        reads::next_position(self).await
    }

    async fn size(&self) -> Result<LogSize, StoreError> {
        reads::size(self).await
    }

    async fn refund_stream(&self, refund_id: &str) -> Result<Option<StreamId>, StoreError> {
        reads::refund_stream(self, refund_id).await
    }

    async fn streams_ending_with(
        &self,
        category: &str,
        event_type: &str,
        merchant: Uuid,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StreamId>, StoreError> {
        reads::streams_ending_with(self, category, event_type, merchant, since, limit).await
    }
}

type HeadRow = (StreamId, (u64, [u8; 32]));
type RowStream<'a> = futures::stream::BoxStream<'a, Result<PgRow, sqlx::Error>>;

async fn next_head(heads: &mut RowStream<'_>) -> Result<Option<HeadRow>, StoreError> {
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
    mut next: Option<HeadRow>,
    heads: &mut RowStream<'_>,
    breaks: &mut Vec<ChainBreak>,
) -> Result<(Option<(u64, [u8; 32])>, Option<HeadRow>), StoreError> {
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
            idempotency: decode_idempotency(row)?,
        },
        recorded_at: row.try_get::<DateTime<Utc>, _>("recorded_at")?,
        hash: to_hash(row.try_get("hash")?)?,
    })
}

/// The idempotency columns of an events row: both set, or neither.
pub fn decode_idempotency(row: &PgRow) -> Result<Option<IdempotencyRecord>, StoreError> {
    let key_hash: Option<Vec<u8>> = row.try_get("idempotency_key_hash")?;
    let request_hash: Option<Vec<u8>> = row.try_get("idempotency_request_hash")?;
    match (key_hash, request_hash) {
        (None, None) => Ok(None),
        (Some(key_hash), Some(request_hash)) => Ok(Some(IdempotencyRecord {
            key_hash: to_hash(key_hash)?,
            request_hash: to_hash(request_hash)?,
        })),
        _ => Err(StoreError::Corrupt(
            "an event has one idempotency hash without the other".into(),
        )),
    }
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
pub(crate) fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// Checks that every migration of this build is applied. A newer database
/// (a later build migrated it) is accepted: migrations only add.
async fn ensure_schema(pool: &PgPool) -> Result<(), StoreError> {
    let needed = PgEventStore::schema_version();
    let applied: Option<i64> =
        match sqlx::query_scalar("select max(version) from _sqlx_migrations where success")
            .fetch_one(pool)
            .await
        {
            Ok(version) => version,
            // 42P01 undefined_table: never migrated.
            Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42P01") => None,
            Err(error) => return Err(error.into()),
        };
    match applied {
        Some(version) if version >= needed => Ok(()),
        applied => Err(StoreError::Schema(format!(
            "the database schema is at migration {}, this build needs {needed}: \
             run `command-api migrate` first (`deploy/dev up` does)",
            applied.map_or_else(|| "none".to_owned(), |version| version.to_string())
        ))),
    }
}
