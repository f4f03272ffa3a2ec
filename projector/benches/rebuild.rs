//! Rebuild throughput: `projector rebuild` of every projection over a store
//! of `PAYSTREAM_BENCH_EVENTS` events (default 1,000,000), next to the rate
//! of merely reading the same global log (the same run, the same database).
//!
//! `cargo bench -p paystream-projector --bench rebuild`
//! Env: `PAYSTREAM_BENCH_DATABASE_URL` (a role that may create databases;
//! default `PAYSTREAM_TEST_DATABASE_URL`), `PAYSTREAM_BENCH_EVENTS`.
//!
//! The store holds realistic payment lives, 8 events each: an order
//! (created, attempted, paid) and its payment (created, succeeded, captured,
//! a refund requested and processed), for 50 merchants with fee rates.

use std::time::Instant;

use paystream_bench::seed::{self, EVENTS_PER_LIFE};
use paystream_projector::rebuild::rebuild;
use paystream_projector::Projection;
use paystream_store::{EventStore, PgEventStore, Position};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

const MERCHANTS: usize = 50;
const WRITERS: usize = 32;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(());
    }
    let admin = std::env::var("PAYSTREAM_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("PAYSTREAM_TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let events: usize = env_or("PAYSTREAM_BENCH_EVENTS", 1_000_000);
    let name = format!("ps_bench_{}", Uuid::now_v7().simple());
    PgConnection::connect(&admin)
        .await?
        .execute(format!("create database {name}").as_str())
        .await?;
    let url = format!("{}/{name}", admin.rsplit_once('/').map_or("", |(s, _)| s));
    PgEventStore::migrate(&url).await?;
    let store = PgEventStore::connect(&url, WRITERS as u32 + 2).await?;

    // ---- the store -------------------------------------------------------
    let started = Instant::now();
    let merchants = seed::merchants(&store, MERCHANTS).await?;
    let lives = events.div_ceil(EVENTS_PER_LIFE) as u64;
    seed::lives(&store, &merchants, lives, WRITERS, false).await?;
    store.pool().execute("vacuum analyze events").await?;
    let total: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(store.pool())
        .await?;
    eprintln!(
        "store: {total} events written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // ---- baseline: reading the global log --------------------------------
    let started = Instant::now();
    let mut after = Position::START;
    let mut read = 0u64;
    loop {
        let page = store
            .read_all(after, paystream_projector::rebuild::PAGE)
            .await?;
        read += page.len() as u64;
        match page.last() {
            Some(last) => after = last.position,
            None => break,
        }
    }
    let read_rate = read as f64 / started.elapsed().as_secs_f64();

    // ---- rebuilds --------------------------------------------------------
    let mut rows = Vec::new();
    for (label, projections) in [
        ("all four projections, one pass", Projection::ALL.to_vec()),
        ("payments", vec![Projection::Payments]),
        ("ledger", vec![Projection::Ledger]),
    ] {
        let report = rebuild(&store, &projections, false)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        rows.push((label, report));
    }

    println!("\n## Rebuild ({total} events, {lives} payment lives, {MERCHANTS} merchants)\n");
    println!("| what | events/s | time | vs. reading the log |");
    println!("|---|---|---|---|");
    println!(
        "| baseline: read the global log (`read_all`, pages of {}) | {read_rate:.0} | {:.1} s | 1.00 |",
        paystream_projector::rebuild::PAGE,
        read as f64 / read_rate
    );
    for (label, report) in rows {
        println!(
            "| rebuild: {label} | {:.0} | {:.1} s | {:.2} |",
            report.events_per_second(),
            report.elapsed.as_secs_f64(),
            report.events_per_second() / read_rate
        );
    }
    store.pool().close().await;
    PgConnection::connect(&admin)
        .await?
        .execute(format!("drop database {name} with (force)").as_str())
        .await?;
    Ok(())
}
