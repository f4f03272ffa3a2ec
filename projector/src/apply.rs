//! Applying a batch: the read-model rows and the checkpoint move together in
//! one transaction, and a poison event is parked instead of stopping the
//! projection.
//!
//! * [`apply_parking`] applies events inside the caller's transaction, in a
//!   savepoint; if one of them is poison, it rolls the savepoint back and
//!   applies them one at a time, parking each poison event in
//!   `projection_parked` (every later event of its stream is then parked
//!   too, as a gap: it would otherwise be folded over a hole).
//! * [`apply_live`] is one live step for every projection, in one
//!   transaction: lock the checkpoint rows, check the messages continue the
//!   JetStream sequence each records, skip positions at or below each
//!   (redeliveries), apply the rest, move the checkpoints.

use paystream_store::RecordedEvent;
use sqlx::{Connection, PgConnection, PgPool};

use crate::projection::{ApplyError, Projection};

/// An event carried by one JetStream message.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub stream_sequence: u64,
    pub event: RecordedEvent,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub applied: usize,
    /// At or below the checkpoint: applied before.
    pub skipped: usize,
    pub parked: usize,
    /// The checkpoint after the step.
    pub position: i64,
    pub stream_sequence: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The batch does not continue the checkpoint's stream sequence: a
    /// message was skipped (another consumer took it, or it expired). The
    /// consumer must restart from the checkpoint.
    #[error(
        "the messages start at stream sequence {first}, but the checkpoint is at {checkpoint}"
    )]
    Gap { first: u64, checkpoint: u64 },
}

impl From<sqlx::Error> for StepError {
    fn from(error: sqlx::Error) -> Self {
        StepError::Apply(ApplyError::Database(error))
    }
}

/// The settings of every projector transaction, set once at its start.
///
/// Plan every statement for its actual arguments: a cached generic plan
/// chosen while a table was nearly empty (a fresh deployment, a rebuild)
/// would keep scanning it whole as it grows (a rebuild measured 10x slower).
/// And do not wait for the WAL flush: the read models are derived, so a crash
/// may lose the last moments of commits without harm, the checkpoint going
/// back with them and the events applied again.
pub async fn batch_settings(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(
        "select set_config('plan_cache_mode', 'force_custom_plan', true), \
                set_config('synchronous_commit', 'off', true)",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies `events` in the caller's transaction (begun with
/// [`batch_settings`]), in a savepoint; returns how many were parked.
pub async fn apply_parking(
    conn: &mut PgConnection,
    projection: Projection,
    events: &[&RecordedEvent],
) -> Result<usize, ApplyError> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut whole = conn.begin().await?;
    match projection.apply(&mut whole, events).await {
        Ok(()) => {
            whole.commit().await?;
            return Ok(0);
        }
        Err(error) if error.is_poison() => whole.rollback().await?,
        Err(error) => return Err(error),
    }
    // One at a time. A later event of a stream whose earlier event is
    // parked fails the version check and is parked as a gap, the same
    // whether the two arrive in one batch or in two.
    let mut parked = 0;
    for event in events {
        let mut one = conn.begin().await?;
        let error = match projection.apply(&mut one, &[event]).await {
            Ok(()) => {
                one.commit().await?;
                continue;
            }
            Err(error) if error.is_poison() => error,
            Err(error) => return Err(error),
        };
        one.rollback().await?;
        let error = error.to_string();
        tracing::error!(%projection, position = event.position.0, stream = %event.stream_id,
            event_type = %event.event_type, %error, "poison event parked");
        park(&mut *conn, projection, event, &error).await?;
        parked += 1;
    }
    Ok(parked)
}

async fn park(
    conn: &mut PgConnection,
    projection: Projection,
    event: &RecordedEvent,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into projection_parked \
           (projection, position, event_id, stream_id, event_type, error, parked_at) \
         values ($1, $2, $3, $4, $5, $6, $7) on conflict do nothing",
    )
    .bind(projection.name())
    .bind(event.position.0)
    .bind(event.event_id)
    .bind(event.stream_id.as_str())
    .bind(&event.event_type)
    .bind(error)
    // The event's own time: a rebuild parks the same rows.
    .bind(event.recorded_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The checkpoint: (position, stream sequence); (0, 0) before the first event.
pub async fn checkpoint(pool: &PgPool, projection: Projection) -> Result<(i64, u64), sqlx::Error> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "select position, stream_sequence from projection_checkpoints where projection = $1",
    )
    .bind(projection.name())
    .fetch_optional(pool)
    .await?;
    Ok(row.map_or((0, 0), |(position, sequence)| {
        (position, u64::try_from(sequence).unwrap_or(0))
    }))
}

/// Locks the checkpoint rows of `projections` for this transaction, always
/// in name order (the live step and the rebuild's swap both lock several:
/// one order means they wait for each other, never deadlock), creating them
/// at 0 the first time. Returns (position, stream sequence) in the order of
/// `projections`: one statement per batch once the rows exist.
pub async fn lock_checkpoints(
    conn: &mut PgConnection,
    projections: &[Projection],
) -> Result<Vec<(i64, u64)>, sqlx::Error> {
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    let lock = || {
        sqlx::query_as::<_, (String, i64, i64)>(
            "select projection, position, stream_sequence from projection_checkpoints \
             where projection = any($1) order by projection for update",
        )
        .bind(&names)
    };
    let mut rows = lock().fetch_all(&mut *conn).await?;
    if rows.len() < names.len() {
        sqlx::query(
            "insert into projection_checkpoints (projection, position) \
             select unnest($1::text[]), 0 on conflict (projection) do nothing",
        )
        .bind(&names)
        .execute(&mut *conn)
        .await?;
        rows = lock().fetch_all(&mut *conn).await?;
    }
    Ok(names
        .iter()
        .map(|name| {
            rows.iter()
                .find(|(projection, _, _)| projection == name)
                .map_or((0, 0), |(_, position, sequence)| {
                    (*position, u64::try_from(*sequence).unwrap_or(0))
                })
        })
        .collect())
}

/// Moves the checkpoints of `projections` to their `outcomes`, in one
/// statement.
async fn write_checkpoints(
    conn: &mut PgConnection,
    projections: &[Projection],
    outcomes: &[Outcome],
) -> Result<(), sqlx::Error> {
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    let positions: Vec<i64> = outcomes.iter().map(|o| o.position).collect();
    let sequences: Vec<i64> = outcomes
        .iter()
        .map(|o| i64::try_from(o.stream_sequence).unwrap_or(i64::MAX))
        .collect();
    sqlx::query(
        "update projection_checkpoints c \
         set position = v.position, stream_sequence = v.stream_sequence, updated_at = now() \
         from unnest($1::text[], $2::bigint[], $3::bigint[]) as v(projection, position, stream_sequence) \
         where c.projection = v.projection",
    )
    .bind(&names)
    .bind(&positions)
    .bind(&sequences)
    .execute(conn)
    .await?;
    Ok(())
}

/// One live step over consecutive messages (`batch` in stream order), for
/// every projection in `projections`, in one transaction: each projection
/// skips what its own checkpoint already covers and applies the rest, and
/// all the checkpoints move with the rows. Returns one outcome per
/// projection.
///
/// The batch is first applied without savepoints; only if an event is
/// poison is it applied again, each projection in a savepoint and the
/// poison events parked one by one.
pub async fn apply_live(
    pool: &PgPool,
    projections: &[Projection],
    batch: &[Delivered],
) -> Result<Vec<Outcome>, StepError> {
    if let Some(pair) = batch
        .windows(2)
        .find(|pair| pair[1].stream_sequence != pair[0].stream_sequence + 1)
    {
        return Err(StepError::Gap {
            first: pair[1].stream_sequence,
            checkpoint: pair[0].stream_sequence,
        });
    }
    match live_step(pool, projections, batch, false).await {
        Err(StepError::Apply(error)) if error.is_poison() => {
            live_step(pool, projections, batch, true).await
        }
        other => other,
    }
}

async fn live_step(
    pool: &PgPool,
    projections: &[Projection],
    batch: &[Delivered],
    parking: bool,
) -> Result<Vec<Outcome>, StepError> {
    let mut tx = pool.begin().await?;
    batch_settings(&mut tx).await?;
    let checkpoints = lock_checkpoints(&mut tx, projections).await?;
    let mut outcomes = Vec::with_capacity(projections.len());
    for (projection, (position, sequence)) in projections.iter().copied().zip(checkpoints) {
        // Messages at or below the checkpoint's sequence were handled
        // before; the rest must start right after it. A sequence of 0 is
        // unknown (fresh, or rebuilt from the store): the position check
        // alone decides what is new.
        let newer: Vec<&Delivered> = batch
            .iter()
            .filter(|m| m.stream_sequence > sequence)
            .collect();
        if let Some(first) = newer.first() {
            if sequence != 0 && first.stream_sequence != sequence + 1 {
                return Err(StepError::Gap {
                    first: first.stream_sequence,
                    checkpoint: sequence,
                });
            }
        }
        let fresh: Vec<&RecordedEvent> = newer
            .iter()
            .map(|m| &m.event)
            .filter(|event| event.position.0 > position)
            .collect();
        let parked = if parking {
            apply_parking(&mut tx, projection, &fresh).await?
        } else {
            projection.apply(&mut tx, &fresh).await?;
            0
        };
        outcomes.push(Outcome {
            applied: fresh.len() - parked,
            skipped: batch.len() - fresh.len(),
            parked,
            position: fresh.last().map_or(position, |event| event.position.0),
            stream_sequence: newer.last().map_or(sequence, |m| m.stream_sequence),
        });
    }
    write_checkpoints(&mut tx, projections, &outcomes).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// One step of catching up from the store, for events JetStream no longer
/// holds: applies those after the checkpoint and, if `stream_sequence` is
/// given, records it as the sequence the consumer resumes after.
pub async fn apply_from_store(
    pool: &PgPool,
    projection: Projection,
    events: &[RecordedEvent],
    stream_sequence: Option<u64>,
) -> Result<Outcome, StepError> {
    let mut tx = pool.begin().await?;
    batch_settings(&mut tx).await?;
    let (position, sequence) = lock_checkpoints(&mut tx, &[projection]).await?[0];
    let fresh: Vec<&RecordedEvent> = events
        .iter()
        .filter(|event| event.position.0 > position)
        .collect();
    let parked = apply_parking(&mut tx, projection, &fresh).await?;
    let outcome = Outcome {
        applied: fresh.len() - parked,
        skipped: events.len() - fresh.len(),
        parked,
        position: fresh.last().map_or(position, |event| event.position.0),
        stream_sequence: stream_sequence.unwrap_or(sequence),
    };
    write_checkpoints(&mut tx, &[projection], &[outcome]).await?;
    tx.commit().await?;
    Ok(outcome)
}
