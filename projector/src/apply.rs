//! Applying a batch: the read-model rows and the checkpoint move together in
//! one transaction, and a poison event is parked instead of stopping the
//! projection.
//!
//! * [`apply_parking`] applies events inside the caller's transaction, in a
//!   savepoint; if one of them is poison, it rolls the savepoint back and
//!   applies them one at a time, parking each poison event in
//!   `projection_parked` (every later event of its stream is then parked
//!   too, as a gap: it would otherwise be folded over a hole).
//! * [`apply_live`] is one live step: lock the checkpoint row, check the
//!   messages continue the JetStream sequence it records, skip positions at
//!   or below it (redeliveries), apply the rest, move the checkpoint.

use paystream_command_api::store::RecordedEvent;
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

/// Applies `events` in the caller's transaction; returns how many were parked.
pub async fn apply_parking(
    conn: &mut PgConnection,
    projection: Projection,
    events: &[&RecordedEvent],
) -> Result<usize, ApplyError> {
    if events.is_empty() {
        return Ok(0);
    }
    // Plan every statement for its actual arguments: a cached generic plan
    // chosen while a table was nearly empty (a fresh deployment, a rebuild)
    // would keep scanning it whole as it grows (a rebuild measured 10x
    // slower). And do not wait for the WAL flush: the read models are
    // derived, so a crash may lose the last moments of commits without harm,
    // the checkpoint going back with them and the events applied again.
    sqlx::query(
        "select set_config('plan_cache_mode', 'force_custom_plan', true), \
                set_config('synchronous_commit', 'off', true)",
    )
    .execute(&mut *conn)
    .await?;
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

/// Locks the checkpoint row for this transaction (creating it at 0 the
/// first time: one statement per batch once it exists).
pub async fn lock_checkpoint(
    conn: &mut PgConnection,
    projection: Projection,
) -> Result<(i64, u64), sqlx::Error> {
    let lock = || {
        sqlx::query_as::<_, (i64, i64)>(
            "select position, stream_sequence from projection_checkpoints \
             where projection = $1 for update",
        )
        .bind(projection.name())
    };
    let row = match lock().fetch_optional(&mut *conn).await? {
        Some(row) => row,
        None => {
            sqlx::query(
                "insert into projection_checkpoints (projection, position) values ($1, 0) \
                 on conflict (projection) do nothing",
            )
            .bind(projection.name())
            .execute(&mut *conn)
            .await?;
            lock().fetch_one(&mut *conn).await?
        }
    };
    let (position, sequence) = row;
    Ok((position, u64::try_from(sequence).unwrap_or(0)))
}

/// One live step over consecutive messages (`batch` in stream order).
pub async fn apply_live(
    pool: &PgPool,
    projection: Projection,
    batch: &[Delivered],
) -> Result<Outcome, StepError> {
    let mut tx = pool.begin().await?;
    let (position, sequence) = lock_checkpoint(&mut tx, projection).await?;
    // Messages at or below the checkpoint's sequence were handled before;
    // the rest must start right after it.
    let newer: Vec<&Delivered> = batch
        .iter()
        .filter(|m| m.stream_sequence > sequence)
        .collect();
    let Some(first) = newer.first() else {
        tx.commit().await?;
        return Ok(Outcome {
            skipped: batch.len(),
            position,
            stream_sequence: sequence,
            ..Outcome::default()
        });
    };
    // A sequence of 0 is unknown (fresh, or rebuilt from the store): the
    // position check alone decides what is new.
    if sequence != 0 && first.stream_sequence != sequence + 1 {
        return Err(StepError::Gap {
            first: first.stream_sequence,
            checkpoint: sequence,
        });
    }
    if let Some(pair) = newer
        .windows(2)
        .find(|pair| pair[1].stream_sequence != pair[0].stream_sequence + 1)
    {
        return Err(StepError::Gap {
            first: pair[1].stream_sequence,
            checkpoint: pair[0].stream_sequence,
        });
    }
    let fresh: Vec<&RecordedEvent> = newer
        .iter()
        .map(|m| &m.event)
        .filter(|event| event.position.0 > position)
        .collect();
    let parked = apply_parking(&mut tx, projection, &fresh).await?;
    let last = newer.last().map_or(sequence, |m| m.stream_sequence);
    let new_position = fresh.last().map_or(position, |event| event.position.0);
    sqlx::query(
        "update projection_checkpoints \
         set position = $2, stream_sequence = $3, updated_at = now() where projection = $1",
    )
    .bind(projection.name())
    .bind(new_position)
    .bind(i64::try_from(last).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Outcome {
        applied: fresh.len() - parked,
        skipped: batch.len() - fresh.len(),
        parked,
        position: new_position,
        stream_sequence: last,
    })
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
    let (position, sequence) = lock_checkpoint(&mut tx, projection).await?;
    let fresh: Vec<&RecordedEvent> = events
        .iter()
        .filter(|event| event.position.0 > position)
        .collect();
    let parked = apply_parking(&mut tx, projection, &fresh).await?;
    let new_position = fresh.last().map_or(position, |event| event.position.0);
    let new_sequence = stream_sequence.unwrap_or(sequence);
    sqlx::query(
        "update projection_checkpoints \
         set position = $2, stream_sequence = $3, updated_at = now() where projection = $1",
    )
    .bind(projection.name())
    .bind(new_position)
    .bind(i64::try_from(new_sequence).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Outcome {
        applied: fresh.len() - parked,
        skipped: events.len() - fresh.len(),
        parked,
        position: new_position,
        stream_sequence: new_sequence,
    })
}
