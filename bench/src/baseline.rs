//! Baselines measured in the same run as the system: what the machine's
//! PostgreSQL does with single-row inserts (pgbench), and what the event
//! store alone appends.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use paystream_store::{
    EventMetadata, EventStore, ExpectedVersion, NewEvent, PgEventStore, StreamId,
};
use sqlx::{Connection, Executor, PgConnection};

/// Writers in both baselines, as in the component benchmarks.
const WRITERS: usize = 16;

/// `postgres://…/<database>` with the database replaced.
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let (server, _) = url
        .rsplit_once('/')
        .context("the database URL must end in /<database>")?;
    Ok(format!("{server}/{database}"))
}

/// A scratch database, dropped by [`drop_database`].
async fn create_database(url: &str, name: &str) -> anyhow::Result<String> {
    let mut admin = PgConnection::connect(url).await?;
    admin
        .execute(format!("drop database if exists {name} with (force)").as_str())
        .await?;
    admin
        .execute(format!("create database {name}").as_str())
        .await?;
    let scratch = with_database(url, name)?;
    PgEventStore::migrate(&scratch).await?;
    Ok(scratch)
}

async fn drop_database(url: &str, name: &str) {
    if let Ok(mut admin) = PgConnection::connect(url).await {
        let _ = admin
            .execute(format!("drop database if exists {name} with (force)").as_str())
            .await;
    }
}

/// pgbench: single-row `INSERT`s (one transaction each) by 16 clients.
pub async fn pgbench_insert_tps(url: &str, seconds: u64) -> anyhow::Result<f64> {
    let name = "paystream_bench_pgbench";
    let scratch = create_database(url, name).await?;
    let mut connection = PgConnection::connect(&scratch).await?;
    connection
        .execute("create table rows (id bigserial primary key, payload text not null)")
        .await?;
    drop(connection);
    let script = std::env::temp_dir().join("paystream-pgbench-insert.sql");
    std::fs::write(&script, "insert into rows (payload) values ('x');\n")?;
    let clients = WRITERS.to_string();
    let duration = seconds.to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("pgbench")
            .args(["-n", "-c", &clients, "-j", "2", "-T", &duration, "-f"])
            .arg(&script)
            .arg(&scratch)
            .output()
    })
    .await??;
    drop_database(url, name).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .context("no tps in pgbench's output")
}

/// The event store alone: 16 writers appending one event to new streams.
pub async fn store_append_rate(url: &str, seconds: u64) -> anyhow::Result<f64> {
    let name = "paystream_bench_store";
    let scratch = create_database(url, name).await?;
    let rate = async {
        let store = PgEventStore::connect(&scratch, WRITERS as u32).await?;
        let appended = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(seconds);
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let (store, appended) = (store.clone(), appended.clone());
                tokio::spawn(async move {
                    while Instant::now() < until {
                        let stream = StreamId::new("bench", uuid::Uuid::now_v7().simple())?;
                        let event =
                            NewEvent::new("Appended", 1, serde_json::json!({"amount": 50_000}));
                        store
                            .append(
                                &stream,
                                ExpectedVersion::NoStream,
                                vec![event],
                                &EventMetadata::default(),
                            )
                            .await?;
                        appended.fetch_add(1, Ordering::Relaxed);
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        let started = Instant::now();
        for writer in writers {
            writer.await??;
        }
        anyhow::Ok(appended.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
    }
    .await;
    drop_database(url, name).await;
    rate
}
