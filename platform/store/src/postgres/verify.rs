//! The chain walk over every stream, one bounded step at a time (the audit's
//! `verify`): each step takes the next chunk of stream heads in id order and
//! checks their events and heads in one statement, row by row, so a step
//! costs the same however large the log is.
//!
//! Unlike `verify_all`, a walk over raw rows also reports what does not
//! even decode (an altered row) and heads whose stream id does not parse.

use futures::TryStreamExt;
use sqlx::Row;

use super::{decode_event, from_i64, to_hash, PgEventStore};
use crate::chain::{ChainBreakKind, ChainWalker};
use crate::{StoreError, StreamBreak, StreamId, VerifiedStreams};

/// The statement verifying one range of streams: the event columns, then
/// the head's (`head_*`), in (stream, version) order. The bounds are in the
/// text only when given (`$1`: streams after, `$2`: streams up to), so every
/// plan can use the `(stream_id, version)` and head indexes.
fn chunk_sql(after: bool, upto: bool) -> String {
    let range = match (after, upto) {
        (true, true) => "where stream_id > $1 and stream_id <= $2",
        (true, false) => "where stream_id > $1",
        (false, true) => "where stream_id <= $1",
        (false, false) => "",
    };
    format!(
        "select coalesce(e.stream_id, s.stream_id) as key, \
                e.position, e.event_id, e.stream_id, e.version, e.event_type, e.schema_version, \
                e.payload, e.merchant_id, e.causation_id, e.correlation_id, e.actor, \
                e.idempotency_key_hash, e.idempotency_request_hash, \
                e.recorded_at, e.hash, s.version as head_version, s.last_hash as head_hash \
         from (select * from events {range}) e \
         full join (select stream_id, version, last_hash from event_streams {range}) s \
           on s.stream_id = e.stream_id \
         order by 1, e.version"
    )
}

/// One stream being walked.
struct Walk {
    key: String,
    walker: Option<ChainWalker>,
    head: Option<(u64, [u8; 32])>,
    /// A row that could not even be decoded: the stream is broken there.
    undecodable: Option<u64>,
}

impl Walk {
    fn finish(self) -> Option<StreamBreak> {
        if let Some(version) = self.undecodable {
            return Some(StreamBreak {
                stream_id: self.key,
                version,
                kind: ChainBreakKind::Altered,
            });
        }
        match (self.walker, StreamId::parse(self.key.clone())) {
            (Some(walker), _) => walker.finish(self.head).map(StreamBreak::from),
            (None, Ok(stream)) => ChainWalker::new(stream)
                .finish(self.head)
                .map(StreamBreak::from),
            (None, Err(_)) => Some(StreamBreak {
                stream_id: self.key,
                version: 1,
                kind: ChainBreakKind::Truncated,
            }),
        }
    }
}

fn close(step: &mut VerifiedStreams, walk: Walk) {
    step.streams += 1;
    step.breaks.extend(walk.finish());
}

pub(super) async fn verify_streams(
    store: &PgEventStore,
    after: Option<&str>,
    streams: usize,
) -> Result<VerifiedStreams, StoreError> {
    let pool = store.pool();
    let offset = i64::try_from(streams.max(1) - 1).unwrap_or(i64::MAX);
    // The upper stream of this chunk (`None`: the chunk runs to the end).
    let upto: Option<String> = match after {
        Some(after) => {
            sqlx::query_scalar(
                "select stream_id from event_streams where stream_id > $1 \
                 order by stream_id offset $2 limit 1",
            )
            .bind(after)
            .bind(offset)
            .fetch_optional(pool)
            .await?
        }
        None => {
            sqlx::query_scalar(
                "select stream_id from event_streams order by stream_id offset $1 limit 1",
            )
            .bind(offset)
            .fetch_optional(pool)
            .await?
        }
    };
    let sql = chunk_sql(after.is_some(), upto.is_some());
    let mut query = sqlx::query(&sql);
    for bound in [after, upto.as_deref()].into_iter().flatten() {
        query = query.bind(bound);
    }
    let mut rows = query.fetch(pool);
    let mut step = VerifiedStreams::default();
    let mut walk: Option<Walk> = None;
    while let Some(row) = rows.try_next().await? {
        let key: String = row.try_get("key")?;
        if walk.as_ref().map(|walk| walk.key.as_str()) != Some(key.as_str()) {
            if let Some(done) = walk.take() {
                close(&mut step, done);
            }
            let head = match row.try_get::<Option<i64>, _>("head_version")? {
                Some(_) => Some(decode_head_columns(&row)?),
                None => None,
            };
            walk = Some(Walk {
                key: key.clone(),
                walker: None,
                head,
                undecodable: None,
            });
        }
        let Some(current) = walk.as_mut() else {
            continue;
        };
        // A head without events has one row with no event columns.
        let Some(version) = row.try_get::<Option<i64>, _>("version")? else {
            continue;
        };
        step.events += 1;
        if current.undecodable.is_some() {
            continue;
        }
        match decode_event(&row) {
            Ok(event) => current
                .walker
                .get_or_insert_with(|| ChainWalker::new(event.stream_id.clone()))
                .push(&event),
            Err(_) => current.undecodable = Some(u64::try_from(version).unwrap_or(0)),
        }
    }
    if let Some(done) = walk.take() {
        close(&mut step, done);
    }
    drop(rows);
    step.upto = upto;
    Ok(step)
}

/// The head's version and last hash, from the `head_*` columns.
fn decode_head_columns(row: &sqlx::postgres::PgRow) -> Result<(u64, [u8; 32]), StoreError> {
    let version: i64 = row.try_get("head_version")?;
    let hash: Vec<u8> = row.try_get("head_hash")?;
    Ok((from_i64(version)?, to_hash(hash)?))
}

pub(super) async fn has_streams_after(
    store: &PgEventStore,
    after: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "select exists (select 1 from event_streams where stream_id > $1) \
             or exists (select 1 from events where stream_id > $1)",
    )
    .bind(after)
    .fetch_one(store.pool())
    .await?)
}
