//! Event store throughput, next to a raw single-row INSERT baseline measured
//! on the same database in the same run; then the same appends on the
//! in-memory backend, the ceiling of what the port's own code costs.
//!
//! `cargo bench -p paystream-store --bench event_store`
//! Env: `PAYSTREAM_BENCH_DATABASE_URL` (a role that may create databases;
//! default `PAYSTREAM_TEST_DATABASE_URL`), `PAYSTREAM_BENCH_SECONDS` per phase
//! (default 5), `PAYSTREAM_BENCH_WRITERS` (default 16).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use paystream_store::group_commit::GroupCommitConfig;
use paystream_store::{
    EventMetadata, EventStore, ExpectedVersion, MemoryEventStore, NewEvent, PgEventStore, Position,
    StoreError, StreamId,
};
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

struct Phase {
    name: &'static str,
    operations: u64,
    conflicts: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64()
    }

    fn row(&self, baseline: f64) -> String {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0}% | {} |",
            self.name,
            self.rate(),
            ms(0.5),
            ms(0.99),
            ms(0.999),
            100.0 * self.rate() / baseline,
            self.conflicts
        )
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Runs `writers` tasks for `seconds`; each call of `operation(writer, n)`
/// returns Ok(true) for a success, Ok(false) for a conflict.
async fn run_phase<F, Fut>(
    name: &'static str,
    writers: usize,
    duration: Duration,
    operation: F,
) -> Phase
where
    F: Fn(usize, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<bool, StoreError>> + Send,
{
    let operations = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let operation = operation.clone();
        let operations = operations.clone();
        let conflicts = conflicts.clone();
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new(3).expect("histogram");
            let mut n = 0;
            while Instant::now() < deadline {
                let began = Instant::now();
                match operation(writer, n).await {
                    Ok(true) => {
                        operations.fetch_add(1, Ordering::Relaxed);
                        let _ = latency.record(began.elapsed().as_micros() as u64);
                    }
                    Ok(false) => {
                        conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => panic!("{name}: {error}"),
                }
                n += 1;
            }
            latency
        }));
    }
    let mut latency = Histogram::<u64>::new(3).expect("histogram");
    for task in tasks {
        latency.add(task.await.expect("writer")).expect("merge");
    }
    Phase {
        name,
        operations: operations.load(Ordering::Relaxed),
        conflicts: conflicts.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
        latency,
    }
}

fn event(n: u64) -> NewEvent {
    NewEvent::new(
        "PaymentCreated",
        1,
        json!({"payment_id": format!("pay_{n:016}"), "amount": 50000, "currency": "INR", "method": "upi", "vpa": "user@bank"}),
    )
}

/// Streams each writer appends to in turn, one event an append.
const STREAMS_PER_WRITER: u64 = 64;

/// Appends of one event each, every writer on streams of its own: the same
/// phase on any backend.
async fn many_streams<S: EventStore + Clone + 'static>(
    name: &'static str,
    store: S,
    run: &str,
    writers: usize,
    duration: Duration,
) -> Phase {
    let run = run.to_owned();
    run_phase(name, writers, duration, move |writer, n| {
        let store = store.clone();
        let stream = StreamId::new(
            "payment",
            format!("{run}_{writer}_{}", n % STREAMS_PER_WRITER),
        );
        let version = n / STREAMS_PER_WRITER;
        async move {
            store
                .append(
                    &stream?,
                    ExpectedVersion::from_version(version),
                    vec![event(n)],
                    &EventMetadata::default(),
                )
                .await?;
            Ok(true)
        }
    })
    .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(()); // `cargo test --benches` asks for a list; there is none.
    }
    let admin = std::env::var("PAYSTREAM_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("PAYSTREAM_TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let seconds: u64 = env_or("PAYSTREAM_BENCH_SECONDS", 5);
    let writers: usize = env_or("PAYSTREAM_BENCH_WRITERS", 16);
    let duration = Duration::from_secs(seconds);

    let name = format!("ps_bench_{}", Uuid::now_v7().simple());
    let mut admin_connection = PgConnection::connect(&admin).await?;
    admin_connection
        .execute(format!("create database {name}").as_str())
        .await?;
    let url = format!("{}/{name}", admin.rsplit_once('/').map_or("", |(s, _)| s));
    let group_commit = GroupCommitConfig {
        writers: env_or(
            "PAYSTREAM_GROUP_COMMIT_WRITERS",
            GroupCommitConfig::default().writers,
        ),
        ..GroupCommitConfig::default()
    };
    PgEventStore::migrate(&url).await?;
    let migrated = PgEventStore::connect(&url, writers as u32 + 2).await?;
    let pool: PgPool = migrated.pool().clone();
    let store = PgEventStore::new(pool.clone(), group_commit);
    pool.execute("create table raw_insert (id bigserial primary key, payload jsonb not null)")
        .await?;

    // 1. Baseline: one single-row INSERT per transaction.
    let raw = run_phase("raw single-row INSERT (baseline)", writers, duration, {
        let pool = pool.clone();
        move |_, n| {
            let pool = pool.clone();
            async move {
                sqlx::query("insert into raw_insert (payload) values ($1)")
                    .bind(event(n).payload)
                    .execute(&pool)
                    .await?;
                Ok(true)
            }
        }
    })
    .await;

    // 2. Appends of one event each, every writer on streams of its own.
    let run = Uuid::now_v7().simple().to_string();
    let many = many_streams(
        "append, many streams",
        store.clone(),
        &run,
        writers,
        duration,
    )
    .await;

    let stats = store.group_commit().stats();
    let (batches, appends) = (
        stats.batches.load(Ordering::Relaxed),
        stats.appends.load(Ordering::Relaxed),
    );
    let batching = format!(
        "group commit: {appends} appends in {batches} batches ({:.1} per batch)",
        appends as f64 / batches.max(1) as f64
    );

    // 3. One hot stream: every writer reads the head and appends; conflicts retry.
    let hot = StreamId::new("payment", format!("hot_{run}"))?;
    let hot_phase = run_phase("append, one hot stream", writers, duration, {
        let store = store.clone();
        let hot = hot.clone();
        move |_, n| {
            let store = store.clone();
            let hot = hot.clone();
            async move {
                let head: i64 = sqlx::query_scalar(
                    "select coalesce((select version from event_streams where stream_id = $1), 0)",
                )
                .bind(hot.as_str())
                .fetch_one(store.pool())
                .await?;
                match store
                    .append(
                        &hot,
                        ExpectedVersion::from_version(head as u64),
                        vec![event(n)],
                        &EventMetadata::default(),
                    )
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(StoreError::Conflict { .. }) => Ok(false),
                    Err(error) => Err(error),
                }
            }
        }
    })
    .await;

    // 4. Global log read, 1000 events a page, from the start.
    let began = Instant::now();
    let mut after = Position::START;
    let mut read = 0u64;
    loop {
        let page = store.read_all(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        read += page.len() as u64;
    }
    let read_elapsed = began.elapsed();

    // 5. The in-memory backend, the same appends: the ceiling of what the
    // port's own code (checks, canonical bytes, hashes, the plan) costs.
    let memory = MemoryEventStore::new();
    let memory_many = many_streams(
        "memory: append, many streams",
        memory.clone(),
        &run,
        writers,
        duration,
    )
    .await;
    // The hot stream's head as a conflict reports it (no read per append).
    let memory_hot_head = Arc::new(AtomicU64::new(0));
    let memory_hot = run_phase("memory: append, one hot stream", writers, duration, {
        let memory = memory.clone();
        let hot = hot.clone();
        move |_, n| {
            let (memory, hot, head) = (memory.clone(), hot.clone(), memory_hot_head.clone());
            async move {
                let expected = head.load(Ordering::Relaxed);
                match memory
                    .append(
                        &hot,
                        ExpectedVersion::from_version(expected),
                        vec![event(n)],
                        &EventMetadata::default(),
                    )
                    .await
                {
                    Ok(appended) => {
                        head.fetch_max(appended.last_version, Ordering::Relaxed);
                        Ok(true)
                    }
                    Err(StoreError::Conflict { actual, .. }) => {
                        head.fetch_max(actual, Ordering::Relaxed);
                        Ok(false)
                    }
                    Err(error) => Err(error),
                }
            }
        }
    })
    .await;

    let baseline = raw.rate();
    println!(
        "\n{writers} concurrent writers, {seconds} s per phase, PostgreSQL at {}\n",
        url.rsplit('@').next().unwrap_or("")
    );
    println!("| phase | ops/s | p50 ms | p99 ms | p99.9 ms | vs baseline | conflicts |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for phase in [&raw, &many, &hot_phase, &memory_many, &memory_hot] {
        println!("{}", phase.row(baseline));
    }
    println!("\n{batching} during \"append, many streams\"");
    println!(
        "global log read: {read} events in {:.2} s = {:.0} events/s",
        read_elapsed.as_secs_f64(),
        read as f64 / read_elapsed.as_secs_f64()
    );
    drop((store, migrated));
    pool.close().await;
    admin_connection
        .execute(format!("drop database if exists {name} with (force)").as_str())
        .await?;
    Ok(())
}
