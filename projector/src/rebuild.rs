//! `projector rebuild [--projection NAME]`: rebuilds read models from the
//! event store (not NATS), while the live projector keeps serving.
//!
//! 1. Each projection gets a private schema `rebuild_<name>` with empty
//!    copies of its tables (`create table … (like public.…)`) and their
//!    keys; the other indexes are built once the rows are in.
//! 2. The global log is read from the start in pages by one reader task and
//!    handed to one applier task per projection, each on its own connection,
//!    so the projections fill their tables side by side. They apply with the
//!    same code as live tailing (`search_path` points at the private schema;
//!    the projection's SQL names tables without a schema).
//! 3. The swap, in one transaction per run: lock each projection's
//!    checkpoint row (the live projector waits on it), apply what was
//!    appended meanwhile, replace the public tables with the rebuilt ones
//!    and move the checkpoint to the last event applied. Readers see the old
//!    tables until the commit, the new ones after it, never a mix.
//!
//! No gap, no duplicate: the live projector applied only published events,
//! all of them below the store's horizon, so the rebuild has read each of
//! them too (the swap checks that). After the swap the live projector skips
//! every message at or below the new checkpoint and applies the rest.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paystream_store::{EventStore, PgEventStore, Position, RecordedEvent};
use sqlx::{Connection, PgConnection};
use tokio::sync::mpsc;

use crate::apply::{apply_parking, batch_settings, lock_checkpoints};
use crate::projection::{ApplyError, Projection};

/// Events read per page.
pub const PAGE: usize = 5_000;

fn schema(projection: Projection) -> String {
    format!("rebuild_{}", projection.name())
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    pub events: u64,
    pub parked: usize,
    pub elapsed: Duration,
    pub position: i64,
}

impl Report {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Rebuilds `projections` from `store`; `progress` draws a bar on stderr.
pub async fn rebuild(
    store: &PgEventStore,
    projections: &[Projection],
    progress: bool,
) -> Result<Report, ApplyError> {
    let started = Instant::now();
    let pool = store.pool();
    for projection in projections {
        prepare(&mut *pool.acquire().await?, *projection).await?;
    }
    // For the progress bar: events appended during the rebuild are counted
    // as they come.
    let total = store.size().await?.events;
    let mut bar = Progress::new(total, progress);

    // One reader, one applier per projection on its own connection: the
    // projections fill their tables side by side, and the reader stays a
    // few pages ahead. Each channel holds at most `AHEAD` pages.
    const AHEAD: usize = 3;
    let mut senders = Vec::with_capacity(projections.len());
    let mut appliers = Vec::with_capacity(projections.len());
    let applied: Arc<Vec<AtomicU64>> =
        Arc::new(projections.iter().map(|_| AtomicU64::new(0)).collect());
    for (slot, projection) in projections.iter().copied().enumerate() {
        let (sender, mut pages) = mpsc::channel::<Arc<Vec<RecordedEvent>>>(AHEAD);
        senders.push(sender);
        let pool = pool.clone();
        let applied = applied.clone();
        appliers.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            let mut parked = 0;
            while let Some(page) = pages.recv().await {
                let events: Vec<&RecordedEvent> = page.iter().collect();
                let mut tx = conn.begin().await?;
                use_schema(&mut tx, Some(projection)).await?;
                // Without waiting for each page's WAL flush (as every
                // projector transaction): a crash loses only this run's
                // private tables.
                batch_settings(&mut tx).await?;
                parked += apply_parking(&mut tx, projection, &events).await?;
                tx.commit().await?;
                applied[slot].fetch_add(page.len() as u64, Ordering::Relaxed);
            }
            index(&mut conn, projection).await?;
            Ok::<usize, ApplyError>(parked)
        }));
    }
    let reader_store = store.clone();
    let reader = tokio::spawn(async move {
        let mut after = Position::START;
        loop {
            let page = reader_store
                .read_all(after, PAGE)
                .await
                .map_err(|error| ApplyError::Poison(format!("reading the store: {error}")))?;
            after = page.last().map_or(after, |e| e.position);
            let done = page.len() < PAGE;
            let page = Arc::new(page);
            for sender in &senders {
                if sender.send(page.clone()).await.is_err() {
                    return Err(ApplyError::Poison("a projection stopped".into()));
                }
            }
            if done {
                return Ok::<Position, ApplyError>(after);
            }
        }
    });

    let slowest = || {
        applied
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    };
    let mut report = Report::default();
    while !reader.is_finished() || appliers.iter().any(|a| !a.is_finished()) {
        bar.show(slowest(), started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let joined =
        |error: tokio::task::JoinError| ApplyError::Poison(format!("rebuild task: {error}"));
    let after = reader.await.map_err(joined)??;
    for applier in appliers {
        report.parked += applier.await.map_err(joined)??;
    }
    report.events = slowest();
    report.position = after.0;

    let mut conn = pool.acquire().await?;
    let (events, parked, position) = swap(store, &mut conn, projections, report.position).await?;
    report.events += events;
    report.parked += parked;
    report.position = position;
    report.elapsed = started.elapsed();
    bar.show(report.events, report.elapsed);
    bar.finish();
    Ok(report)
}

/// Creates `rebuild_<name>` with empty copies of the projection's tables.
async fn prepare(conn: &mut PgConnection, projection: Projection) -> Result<(), sqlx::Error> {
    let schema = schema(projection);
    let mut tx = conn.begin().await?;
    sqlx::query(&format!("drop schema if exists {schema} cascade"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("create schema {schema}"))
        .execute(&mut *tx)
        .await?;
    for table in projection.tables().iter().chain(&["projection_parked"]) {
        // Keys now (upserts need them); other indexes once the rows are in
        // (see `index`): one sorted build is far cheaper than row by row.
        sqlx::query(&format!(
            "create table {schema}.{table} (like public.{table} including all excluding indexes)"
        ))
        .execute(&mut *tx)
        .await?;
        let keys: Vec<(String, String)> = sqlx::query_as(
            "select conname::text, pg_get_constraintdef(oid) from pg_constraint \
             where conrelid = ('public.' || $1)::regclass and contype in ('p', 'u')",
        )
        .bind(table)
        .fetch_all(&mut *tx)
        .await?;
        for (name, definition) in keys {
            sqlx::query(&format!(
                "alter table {schema}.{table} add constraint {name} {definition}"
            ))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await
}

/// Builds the projection's other indexes, as the public tables define them
/// (same names), and refreshes the planner statistics.
async fn index(conn: &mut PgConnection, projection: Projection) -> Result<(), sqlx::Error> {
    let schema = schema(projection);
    for table in projection.tables().iter().chain(&["projection_parked"]) {
        let definitions: Vec<String> = sqlx::query_scalar(
            "select pg_get_indexdef(indexrelid) from pg_index \
             where indrelid = ('public.' || $1)::regclass and not indisunique",
        )
        .bind(table)
        .fetch_all(&mut *conn)
        .await?;
        for definition in definitions {
            let definition = definition.replacen(
                &format!(" ON public.{table} "),
                &format!(" ON {schema}.{table} "),
                1,
            );
            sqlx::query(&definition).execute(&mut *conn).await?;
        }
        sqlx::query(&format!("analyze {schema}.{table}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn use_schema(
    conn: &mut PgConnection,
    projection: Option<Projection>,
) -> Result<(), sqlx::Error> {
    let path = projection.map_or("public".to_owned(), |p| format!("{}, public", schema(p)));
    sqlx::query(&format!("set local search_path to {path}"))
        .execute(conn)
        .await?;
    Ok(())
}

/// Catches up under the checkpoint locks and swaps the tables in.
/// Returns (events applied, parked, final position).
async fn swap(
    store: &PgEventStore,
    conn: &mut PgConnection,
    projections: &[Projection],
    mut position: i64,
) -> Result<(u64, usize, i64), ApplyError> {
    let mut tx = conn.begin().await?;
    batch_settings(&mut tx).await?;
    let live: Vec<i64> = lock_checkpoints(&mut tx, projections)
        .await?
        .into_iter()
        .map(|(position, _)| position)
        .collect();
    let (mut events, mut parked) = (0, 0);
    loop {
        let page = store
            .read_all(Position(position), PAGE)
            .await
            .map_err(|error| ApplyError::Poison(format!("reading the store: {error}")))?;
        let refs: Vec<&RecordedEvent> = page.iter().collect();
        for projection in projections {
            use_schema(&mut tx, Some(*projection)).await?;
            parked += apply_parking(&mut tx, *projection, &refs).await?;
        }
        events += page.len() as u64;
        position = page.last().map_or(position, |e| e.position.0);
        if page.len() < PAGE {
            break;
        }
    }
    use_schema(&mut tx, None).await?;
    for (projection, live_position) in projections.iter().zip(live) {
        if live_position > position {
            return Err(ApplyError::Poison(format!(
                "the live {projection} projection is at {live_position}, beyond the rebuilt {position}: refusing to swap"
            )));
        }
        let schema = schema(*projection);
        for table in projection.tables() {
            sqlx::query(&format!("drop table public.{table}"))
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!("alter table {schema}.{table} set schema public"))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("delete from public.projection_parked where projection = $1")
            .bind(projection.name())
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "insert into public.projection_parked select * from {schema}.projection_parked"
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!("drop schema {schema} cascade"))
            .execute(&mut *tx)
            .await?;
        // The stream sequence stays: it is at or before `position`, and the
        // live projector skips what lies between by position.
        sqlx::query(
            "update projection_checkpoints set position = $2, updated_at = now() \
             where projection = $1",
        )
        .bind(projection.name())
        .bind(position)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok((events, parked, position))
}

/// A progress bar on stderr: redrawn in place on a terminal, a line every
/// few seconds otherwise.
#[derive(Debug)]
struct Progress {
    total: u64,
    enabled: bool,
    terminal: bool,
    last: Option<Instant>,
}

impl Progress {
    fn new(total: u64, enabled: bool) -> Self {
        Self {
            total,
            enabled,
            terminal: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    fn show(&mut self, done: u64, elapsed: Duration) {
        if !self.enabled {
            return;
        }
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        if self.last.is_some_and(|last| last.elapsed() < every) && done < self.total {
            return;
        }
        self.last = Some(Instant::now());
        let total = self.total.max(done).max(1);
        let width = 30u64;
        let filled = usize::try_from(done * width / total).unwrap_or(0);
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
        let line = format!(
            "[{:<30}] {:>3}% {done}/{total} events {rate:.0} events/s",
            "#".repeat(filled),
            done * 100 / total,
        );
        let mut stderr = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(stderr, "\r{line}")
        } else {
            writeln!(stderr, "{line}")
        };
        let _ = stderr.flush();
    }

    fn finish(&self) {
        if self.enabled && self.terminal {
            eprintln!();
        }
    }
}
