//! `seed`: fills Paystream's database with history, so that the system can
//! be measured as it will be after years of use (issue 10: 5 million events
//! and over a million streams). `deploy/dev seed` runs it with the services
//! stopped, then rebuilds the read models from the store.
//!
//! The lives are appended through the real store (see
//! [`paystream_bench::seed`]). The relay's checkpoint is then moved past
//! them: they stand for history older than JetStream's retention, which the
//! relay never republishes, so nothing downstream (acquirer, dispatcher)
//! acts on them again. The read models get them from `projector rebuild`.
//!
//! Env: `PAYSTREAM_DATABASE_URL`, `PAYSTREAM_SEED_EVENTS` (default
//! 5,000,000), `PAYSTREAM_SEED_MERCHANTS` (50), `PAYSTREAM_SEED_WRITERS` (64).

use std::time::Instant;

use paystream_bench::seed::{self, EVENTS_PER_LIFE};
use paystream_store::{EventStore, LogSize, PgEventStore};
use sqlx::Executor;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={value} is not a valid number")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("PAYSTREAM_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://paystream:paystream@127.0.0.1:5432/paystream".into());
    let events: u64 = env_or("PAYSTREAM_SEED_EVENTS", 5_000_000)?;
    let merchants: usize = env_or("PAYSTREAM_SEED_MERCHANTS", 50)?;
    let writers: u32 = env_or("PAYSTREAM_SEED_WRITERS", 64)?;
    anyhow::ensure!(
        (1..=1_000).contains(&writers),
        "PAYSTREAM_SEED_WRITERS must be 1..=1000"
    );
    let store = PgEventStore::connect(&url, writers + 2).await?;
    let relay_leading: bool = sqlx::query_scalar(
        "select exists (select 1 from pg_locks where locktype = 'advisory' and granted \
         and database = (select oid from pg_database where datname = current_database()))",
    )
    .fetch_one(store.pool())
    .await?;
    anyhow::ensure!(
        !relay_leading,
        "a relay (or another advisory-lock holder) is running on this database: \
         stop the services first (deploy/dev down)"
    );

    let started = Instant::now();
    let lives = events.div_ceil(EVENTS_PER_LIFE as u64);
    eprintln!(
        "seed: {merchants} merchants, {lives} payment lives ({events} events), {writers} writers"
    );
    let merchants = seed::merchants(&store, merchants).await?;
    seed::lives(&store, &merchants, lives, writers as usize, true).await?;
    let elapsed = started.elapsed().as_secs_f64();
    for table in ["events", "event_streams"] {
        // One statement each: VACUUM cannot run in the implicit transaction
        // of a multi-statement query.
        store
            .pool()
            .execute(format!("vacuum analyze {table}").as_str())
            .await?;
    }
    // History older than JetStream's retention: never republished.
    // Every position below the horizon is final: the relay has nothing to
    // publish below it.
    let head: i64 = store.horizon().await?.0 - 1;
    sqlx::query(
        "insert into relay_checkpoints (name, position, updated_at) values ('relay', $1, now()) \
         on conflict (name) do update set position = greatest(relay_checkpoints.position, excluded.position), \
                                          updated_at = now()",
    )
    .bind(head)
    .execute(store.pool())
    .await?;
    let LogSize {
        events: total,
        streams,
    } = store.size().await?;
    eprintln!(
        "seed: wrote {} events in {elapsed:.0} s ({:.0} events/s); the store now holds {total} events \
         in {streams} streams; relay checkpoint moved to {head}",
        lives * EVENTS_PER_LIFE as u64 + 2 * merchants.len() as u64,
        (lives * EVENTS_PER_LIFE as u64) as f64 / elapsed,
    );
    Ok(())
}
