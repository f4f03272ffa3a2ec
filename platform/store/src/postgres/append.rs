//! How appends reach PostgreSQL: read the heads, plan in Rust, then write
//! the whole plan in one guarded statement.
//!
//! 1. `select` the heads (version, last hash) of the streams involved. No
//!    lock is taken.
//! 2. [`plan`]: decide each append against those heads and chain its
//!    events' hashes.
//! 3. One statement creates new heads (`on conflict do nothing`), advances
//!    existing ones only if they are still at the version read
//!    (`where version = previous`), and inserts the events of exactly the
//!    streams whose head moved. A writer that got there first makes our head
//!    move affect nothing, so none of our events for that stream are written:
//!    that append is a conflict. The statement is atomic, so one append is
//!    written whole or not at all.
//!
//! A stored event id reused on the common path fails the unique index and
//! with it the whole statement; the caller retries appends one by one and
//! classifies the reuse (a retry of a landed append is a no-op).

use std::collections::{HashMap, HashSet};

use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use super::{from_i64, now_micros, to_hash, PgEventStore};
use crate::append_plan::{appended, plan, Decision, Head, PreparedAppend};
use crate::head_cache::HeadCache;
use crate::{Appended, EventMetadata, ExpectedVersion, NewEvent, StoreError, StreamId};

const WRITE_PLAN: &str = "\
with created as (
    insert into event_streams (stream_id, category, version, last_hash, updated_at)
    select h.stream_id, split_part(h.stream_id, '-', 1), h.version, h.hash, $1
      from unnest($2::text[], $3::bigint[], $4::bytea[]) as h(stream_id, version, hash)
    on conflict (stream_id) do nothing
    returning stream_id
), advanced as (
    update event_streams s
       set version = h.version, last_hash = h.hash, updated_at = $1
      from unnest($5::text[], $6::bigint[], $7::bytea[], $8::bigint[], $9::bytea[])
           as h(stream_id, previous, previous_hash, version, hash)
     where s.stream_id = h.stream_id and s.version = h.previous
       and s.last_hash = h.previous_hash
    returning s.stream_id
), moved as (
    select stream_id from created union all select stream_id from advanced
), written as (
    insert into events (position, event_id, stream_id, category, version, event_type,
                        schema_version, payload, merchant_id, causation_id, correlation_id,
                        actor, idempotency_key_hash, idempotency_request_hash, recorded_at, hash)
    select (pg_current_xact_id()::text::bigint << 20) + $10 + e.ordinal - 1, e.event_id,
           e.stream_id, split_part(e.stream_id, '-', 1), e.version, e.event_type,
           e.schema_version, e.payload, e.merchant_id, e.causation_id, e.correlation_id,
           e.actor, e.idempotency_key_hash, e.idempotency_request_hash, $1, e.hash
      from unnest($11::uuid[], $12::text[], $13::bigint[], $14::text[], $15::smallint[],
                  $16::jsonb[], $17::uuid[], $18::uuid[], $19::uuid[], $20::text[],
                  $21::bytea[], $22::bigint[], $23::bytea[], $24::bytea[])
           as e(event_id, stream_id, version, event_type, schema_version, payload,
                merchant_id, causation_id, correlation_id, actor, hash, ordinal,
                idempotency_key_hash, idempotency_request_hash)
     where e.stream_id in (select stream_id from moved)
    returning 1
)
select coalesce((select array_agg(stream_id) from moved), '{}') as moved,
       (pg_current_xact_id()::text::bigint << 20) + $10 as base";

impl PgEventStore {
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
        let append = PreparedAppend::new(stream, expected, events, metadata, now_micros())?;
        match Self::append_batch(connection, tx_index, &[&append], None).await {
            Ok(mut outcomes) => outcomes
                .pop()
                .unwrap_or_else(|| Err(StoreError::Corrupt("an append had no outcome".into()))),
            Err(error) if is_event_id_violation(&error) => Err(StoreError::EventIdReused {
                event_id: events[0].event_id,
            }),
            Err(error) => Err(error.into()),
        }
    }

    /// Appends in a statement of its own; when an event id is already stored,
    /// tells a retry of a landed append (a no-op) from a real reuse.
    pub(crate) async fn append_alone(
        pool: &PgPool,
        cache: &HeadCache,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        metadata: &EventMetadata,
    ) -> Result<Appended, StoreError> {
        let append = PreparedAppend::new(stream, expected, events, metadata, now_micros())?;
        let mut connection = pool.acquire().await?;
        match Self::append_batch(&mut connection, 0, &[&append], Some(cache)).await {
            Ok(mut outcomes) => outcomes
                .pop()
                .unwrap_or_else(|| Err(StoreError::Corrupt("an append had no outcome".into()))),
            Err(error) if is_event_id_violation(&error) => {
                let ids: Vec<Uuid> = events.iter().map(|event| event.event_id).collect();
                let stored = stored_events(&mut connection, &ids).await?;
                classify_retry(stream, &ids, &stored)
                    .unwrap_or(Err(StoreError::EventIdReused { event_id: ids[0] }))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Runs appends as one plan: one write statement, plus reads only for
    /// heads it does not know and for appends whose expectation failed. One
    /// transaction: the caller's, or the write statement's own. Each append
    /// keeps its own outcome; a database error fails them all and writes
    /// nothing.
    ///
    /// `cache`: heads known to be committed. Pass it only when the write
    /// commits on its own, since the cache learns the heads this batch moves.
    pub(crate) async fn append_batch(
        connection: &mut PgConnection,
        tx_index: u32,
        appends: &[&PreparedAppend<'_>],
        cache: Option<&HeadCache>,
    ) -> Result<Vec<Result<Appended, StoreError>>, sqlx::Error> {
        // Heads to plan from: a stream first appended with no expected
        // version is taken to be new (the write finds out if it is not); a
        // cached head at the expected version is used as is; others are read.
        let mut heads = HashMap::new();
        let mut unknown = Vec::new();
        for append in appends {
            if heads.contains_key(append.stream) || unknown.contains(&append.stream.as_str()) {
                continue;
            }
            match cache.and_then(|cache| cache.get(append.stream)) {
                Some(head) if head.version == append.expected => {
                    heads.insert(append.stream.clone(), head);
                }
                _ if append.expected == 0 => {}
                _ => unknown.push(append.stream.as_str()),
            }
        }
        if !unknown.is_empty() {
            for (stream, head) in read_heads(connection, &unknown).await? {
                if let Some(cache) = cache {
                    cache.insert(&stream, head);
                }
                heads.insert(stream, head);
            }
        }
        let plan = plan(appends, &heads);

        let (moved, base) = if plan.events.is_empty() {
            (HashSet::new(), 0)
        } else {
            write_plan(connection, tx_index, appends, &plan).await?
        };
        let lost: Vec<&str> = plan
            .heads
            .iter()
            .map(|head| head.stream.as_str())
            .filter(|stream| !moved.contains(*stream))
            .collect();
        if let Some(cache) = cache {
            for head in &plan.heads {
                if moved.contains(head.stream.as_str()) {
                    cache.insert(&head.stream, head.to);
                } else {
                    cache.remove(&head.stream);
                }
            }
        }

        // Appends that did not go through: retries of landed appends, reused
        // ids, or conflicts. Only this path pays for lookups.
        let failed = |append: &PreparedAppend<'_>, decision: &Decision| match decision {
            Decision::Mismatch { .. } => true,
            _ => lost.contains(&append.stream.as_str()),
        };
        let failed_ids: Vec<Uuid> = appends
            .iter()
            .zip(&plan.decisions)
            .filter(|(append, decision)| failed(append, decision))
            .flat_map(|(append, _)| append.events.iter().map(|event| event.event_id))
            .collect();
        let (stored, actual) = if failed_ids.is_empty() {
            (HashMap::new(), HashMap::new())
        } else {
            let failed_streams: Vec<&str> = appends
                .iter()
                .zip(&plan.decisions)
                .filter(|(append, decision)| failed(append, decision))
                .map(|(append, _)| append.stream.as_str())
                .collect();
            (
                stored_events(connection, &failed_ids).await?,
                read_heads(connection, &failed_streams).await?,
            )
        };

        Ok(appends
            .iter()
            .zip(&plan.decisions)
            .map(|(append, decision)| {
                if failed(append, decision) {
                    let ids: Vec<Uuid> = append.events.iter().map(|event| event.event_id).collect();
                    let actual = actual.get(append.stream).map_or(0, |head| head.version);
                    return classify_retry(append.stream, &ids, &stored).unwrap_or_else(|| {
                        Err(StoreError::Conflict {
                            stream: append.stream.clone(),
                            expected: append.expected,
                            actual,
                        })
                    });
                }
                match *decision {
                    Decision::Append {
                        first,
                        last,
                        ordinal,
                    } => Ok(appended(first, last, ordinal, base, false)),
                    Decision::DuplicateInBatch {
                        first,
                        last,
                        ordinal,
                    } => Ok(appended(first, last, ordinal, base, true)),
                    Decision::Mismatch { .. } => Err(StoreError::Corrupt(
                        "a failed append was not classified".into(),
                    )),
                }
            })
            .collect())
    }
}

async fn read_heads(
    connection: &mut PgConnection,
    streams: &[&str],
) -> Result<HashMap<StreamId, Head>, sqlx::Error> {
    let rows = sqlx::query(
        "select stream_id, version, last_hash from event_streams where stream_id = any($1)",
    )
    .bind(streams)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter()
        .map(|row| {
            let corrupt = |error: StoreError| sqlx::Error::Decode(error.to_string().into());
            let stream = StreamId::parse(row.try_get("stream_id")?).map_err(corrupt)?;
            let version = from_i64(row.try_get("version")?).map_err(corrupt)?;
            let hash = to_hash(row.try_get("last_hash")?).map_err(corrupt)?;
            Ok((stream, Head { version, hash }))
        })
        .collect()
}

/// Where stored events with these ids are: id → (stream, version, position).
async fn stored_events(
    connection: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, (String, i64, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "select event_id, stream_id, version, position from events where event_id = any($1)",
    )
    .bind(ids)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("event_id")?,
                (
                    row.try_get("stream_id")?,
                    row.try_get("version")?,
                    row.try_get("position")?,
                ),
            ))
        })
        .collect()
}

/// `Some(Ok)` when every id is stored in `stream` as consecutive versions (a
/// retry of an append that landed), `Some(Err)` when some id is stored
/// otherwise, `None` when none is stored.
fn classify_retry(
    stream: &StreamId,
    ids: &[Uuid],
    stored: &HashMap<Uuid, (String, i64, i64)>,
) -> Option<Result<Appended, StoreError>> {
    let found: Vec<_> = ids.iter().filter_map(|id| stored.get(id)).collect();
    if found.is_empty() {
        return None;
    }
    let landed = found.len() == ids.len()
        && found.iter().all(|(s, _, _)| s == stream.as_str())
        && found.windows(2).all(|pair| pair[1].1 == pair[0].1 + 1);
    if !landed {
        return Some(Err(StoreError::EventIdReused { event_id: ids[0] }));
    }
    let (_, first, _) = found[0];
    let (_, last, position) = found[found.len() - 1];
    Some(Ok(Appended {
        first_version: u64::try_from(*first).unwrap_or_default(),
        last_version: u64::try_from(*last).unwrap_or_default(),
        position: crate::Position(*position),
        duplicate: true,
    }))
}

async fn write_plan(
    connection: &mut PgConnection,
    tx_index: u32,
    appends: &[&PreparedAppend<'_>],
    plan: &crate::append_plan::Plan,
) -> Result<(HashSet<String>, i64), sqlx::Error> {
    let recorded_at = appends.first().map_or_else(now_micros, |a| a.recorded_at);
    let (mut new_ids, mut new_versions, mut new_hashes) = (vec![], vec![], vec![]);
    let (mut old_ids, mut old_previous, mut old_previous_hashes) = (vec![], vec![], vec![]);
    let (mut old_versions, mut old_hashes) = (vec![], vec![]);
    for head in &plan.heads {
        match head.from {
            None => {
                new_ids.push(head.stream.as_str());
                new_versions.push(head.to.version as i64);
                new_hashes.push(head.to.hash.as_slice());
            }
            Some(previous) => {
                old_ids.push(head.stream.as_str());
                old_previous.push(previous.version as i64);
                old_previous_hashes.push(previous.hash.to_vec());
                old_versions.push(head.to.version as i64);
                old_hashes.push(head.to.hash.as_slice());
            }
        }
    }
    let count = plan.events.len();
    let mut event_ids = Vec::with_capacity(count);
    let mut stream_ids = Vec::with_capacity(count);
    let mut versions = Vec::with_capacity(count);
    let mut types = Vec::with_capacity(count);
    let mut schema_versions = Vec::with_capacity(count);
    let mut payloads = Vec::with_capacity(count);
    let mut merchant_ids = Vec::with_capacity(count);
    let mut causation_ids = Vec::with_capacity(count);
    let mut correlation_ids = Vec::with_capacity(count);
    let mut actors = Vec::with_capacity(count);
    let mut hashes = Vec::with_capacity(count);
    let mut ordinals = Vec::with_capacity(count);
    let mut key_hashes = Vec::with_capacity(count);
    let mut request_hashes = Vec::with_capacity(count);
    for planned in &plan.events {
        let append = appends[planned.append];
        let event = &append.events[planned.event];
        event_ids.push(event.event_id);
        stream_ids.push(append.stream.as_str());
        versions.push(planned.version as i64);
        types.push(event.event_type.as_str());
        schema_versions.push(append.schema_versions[planned.event]);
        payloads.push(&event.payload);
        merchant_ids.push(append.metadata.merchant_id);
        causation_ids.push(append.metadata.causation_id);
        correlation_ids.push(append.metadata.correlation_id);
        actors.push(append.metadata.actor.as_str());
        hashes.push(planned.hash.as_slice());
        ordinals.push(planned.ordinal as i64);
        let idempotency = append.metadata.idempotency.as_ref();
        key_hashes.push(idempotency.map(|record| record.key_hash.as_slice()));
        request_hashes.push(idempotency.map(|record| record.request_hash.as_slice()));
    }
    let row = sqlx::query(WRITE_PLAN)
        .bind(recorded_at)
        .bind(new_ids)
        .bind(new_versions)
        .bind(new_hashes)
        .bind(old_ids)
        .bind(old_previous)
        .bind(old_previous_hashes)
        .bind(old_versions)
        .bind(old_hashes)
        .bind(i64::from(tx_index))
        .bind(event_ids)
        .bind(stream_ids)
        .bind(versions)
        .bind(types)
        .bind(schema_versions)
        .bind(payloads)
        .bind(merchant_ids)
        .bind(causation_ids)
        .bind(correlation_ids)
        .bind(actors)
        .bind(hashes)
        .bind(ordinals)
        .bind(key_hashes)
        .bind(request_hashes)
        .fetch_one(&mut *connection)
        .await?;
    let moved: Vec<String> = row.try_get("moved")?;
    Ok((moved.into_iter().collect(), row.try_get("base")?))
}

fn is_event_id_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23505") && db.constraint() == Some("events_event_id_key"))
}
