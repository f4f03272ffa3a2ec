//! The log's reads beyond one stream: several streams at once, a merchant's
//! events, filtered ranges, positions and sizes, and lookups by content.
//! Every service reads the log through these (the port's methods), never
//! with SQL of its own.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{decode_event, to_i64, PgEventStore};
use crate::{LogRange, LogSize, Position, RecordedEvent, StoreError, StreamId};

pub(super) async fn read_streams(
    store: &PgEventStore,
    wanted: &[(StreamId, u64)],
) -> Result<Vec<RecordedEvent>, StoreError> {
    let streams: Vec<&str> = wanted.iter().map(|(stream, _)| stream.as_str()).collect();
    let versions: Vec<i64> = wanted
        .iter()
        .map(|(_, version)| i64::try_from(*version).unwrap_or(i64::MAX))
        .collect();
    let rows = sqlx::query(
        "select e.position, e.event_id, e.stream_id, e.version, e.event_type, e.schema_version, \
                e.payload, e.merchant_id, e.causation_id, e.correlation_id, e.actor, \
                e.idempotency_key_hash, e.idempotency_request_hash, e.recorded_at, e.hash \
           from unnest($1::text[], $2::bigint[]) as w(stream_id, upto) \
           join events e on e.stream_id = w.stream_id and e.version <= w.upto \
          order by e.stream_id, e.version",
    )
    .bind(&streams)
    .bind(&versions)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(decode_event).collect()
}

pub(super) async fn read_merchant(
    store: &PgEventStore,
    merchant: Uuid,
    after: Position,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = sqlx::query(select_events!(
        "where merchant_id = $1 and position > $2 and position < events_horizon() \
         order by position limit $3"
    ))
    .bind(merchant)
    .bind(after.0)
    .bind(to_i64(limit as u64)?)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(decode_event).collect()
}

pub(super) async fn read_range(
    store: &PgEventStore,
    range: &LogRange,
) -> Result<Vec<RecordedEvent>, StoreError> {
    // Two statements, so that each plan can use its indexes: the merchant's
    // bound is in the text only when given.
    let sql = if range.merchant.is_some() {
        select_events!(
            "where position > $1 and position < $2 \
               and ($3::timestamptz is null or recorded_at >= $3) \
               and ($4::timestamptz is null or recorded_at < $4) \
               and (merchant_id = $5 or stream_id = $6) \
             order by position limit $7"
        )
    } else {
        select_events!(
            "where position > $1 and position < $2 \
               and ($3::timestamptz is null or recorded_at >= $3) \
               and ($4::timestamptz is null or recorded_at < $4) \
               and $5::uuid is null and $6::text is null \
             order by position limit $7"
        )
    };
    let rows = sqlx::query(sql)
        .bind(range.after.0)
        .bind(range.before.0)
        .bind(range.recorded_from)
        .bind(range.recorded_to)
        .bind(range.merchant)
        .bind(
            range
                .merchant
                .map(|merchant| format!("merchant-{merchant}")),
        )
        .bind(to_i64(range.limit as u64)?)
        .fetch_all(store.pool())
        .await?;
    rows.iter().map(decode_event).collect()
}

pub(super) async fn horizon(store: &PgEventStore) -> Result<Position, StoreError> {
    let horizon: i64 = sqlx::query_scalar("select events_horizon()")
        .fetch_one(store.pool())
        .await?;
    Ok(Position(horizon))
}

/// Positions are the committing transaction's id shifted left by 20 bits
/// plus a counter (see the append), so every position still to come is at
/// least the current snapshot's `xmax` shifted, and above every position
/// stored.
pub(super) async fn next_position(store: &PgEventStore) -> Result<Position, StoreError> {
    let next: i64 = sqlx::query_scalar(
        "select greatest( \
             pg_snapshot_xmax(pg_current_snapshot())::text::bigint << 20, \
             coalesce((select max(position) from events), 0) + 1)",
    )
    .fetch_one(store.pool())
    .await?;
    Ok(Position(next))
}

pub(super) async fn size(store: &PgEventStore) -> Result<LogSize, StoreError> {
    let (events, streams): (i64, i64) = sqlx::query_as(
        "select (select count(*) from events), (select count(*) from event_streams)",
    )
    .fetch_one(store.pool())
    .await?;
    Ok(LogSize {
        events: u64::try_from(events).unwrap_or(0),
        streams: u64::try_from(streams).unwrap_or(0),
    })
}

/// Through the `events_refund_id` index.
pub(super) async fn refund_stream(
    store: &PgEventStore,
    refund_id: &str,
) -> Result<Option<StreamId>, StoreError> {
    let stream: Option<String> = sqlx::query_scalar(
        "select stream_id from events \
         where category = 'payment' and event_type = 'RefundCreated' \
           and payload ->> 'refund_id' = $1 \
         limit 1",
    )
    .bind(refund_id)
    .fetch_optional(store.pool())
    .await?;
    stream.map(parse_stream).transpose()
}

pub(super) async fn streams_ending_with(
    store: &PgEventStore,
    category: &str,
    event_type: &str,
    merchant: Uuid,
    since: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<StreamId>, StoreError> {
    let streams: Vec<String> = sqlx::query_scalar(
        "select last.stream_id from events last \
         where last.category = $1 and last.event_type = $2 \
           and last.merchant_id = $3 and last.recorded_at >= $4 \
           and not exists (select 1 from events later \
                           where later.stream_id = last.stream_id and later.version > last.version) \
         order by last.position \
         limit $5",
    )
    .bind(category)
    .bind(event_type)
    .bind(merchant)
    .bind(since)
    .bind(to_i64(limit as u64)?)
    .fetch_all(store.pool())
    .await?;
    streams.into_iter().map(parse_stream).collect()
}

fn parse_stream(stream: String) -> Result<StreamId, StoreError> {
    StreamId::parse(stream).map_err(|error| StoreError::Corrupt(error.to_string()))
}
