//! Command API throughput and latency at 64 connections (wrk), next to a raw
//! single-row INSERT baseline and raw store appends at the same concurrency,
//! measured in the same run, plus the service's peak RSS.
//!
//! `cargo bench -p paystream-command-api --bench http_api`
//! Needs `wrk` (`apt-get install wrk`). Env: `PAYSTREAM_BENCH_DATABASE_URL`
//! (a role that may create databases), `PAYSTREAM_BENCH_SECONDS` (default 10),
//! `PAYSTREAM_TEST_NATS_URL`.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paystream_store::{
    EventMetadata, EventStore, ExpectedVersion, NewEvent, PgEventStore, StreamId,
};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

const CONNECTIONS: usize = 64;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `operation` from `CONNECTIONS` tasks for `duration`; returns ops/s.
async fn closed_loop<F, Fut>(duration: Duration, operation: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS as u64)
        .map(|worker| {
            let operation = operation.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    operation(worker * 1_000_000 + n).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("worker");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

struct WrkResult {
    requests_per_second: f64,
    p50: String,
    p99: String,
    non_2xx: u64,
}

fn wrk(url: &str, script: &std::path::Path, seconds: u64) -> WrkResult {
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let field = |prefix: &str| {
        text.lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix(prefix)
                    .map(|rest| rest.trim().to_string())
            })
            .unwrap_or_default()
    };
    WrkResult {
        requests_per_second: field("Requests/sec:").parse().unwrap_or(0.0),
        p50: field("50%"),
        p99: field("99%"),
        non_2xx: field("Non-2xx or 3xx responses:").parse().unwrap_or(0),
    }
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmHWM:").and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
            })
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(());
    }
    let admin = std::env::var("PAYSTREAM_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("PAYSTREAM_TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let nats =
        std::env::var("PAYSTREAM_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let seconds: u64 = env_or("PAYSTREAM_BENCH_SECONDS", 10);
    let duration = Duration::from_secs(seconds);

    let name = format!("ps_bench_{}", Uuid::now_v7().simple());
    let mut admin_connection = PgConnection::connect(&admin).await?;
    admin_connection
        .execute(format!("create database {name}").as_str())
        .await?;
    let url = format!("{}/{name}", admin.rsplit_once('/').map_or("", |(s, _)| s));
    PgEventStore::migrate(&url).await?;
    let store = PgEventStore::connect(&url, CONNECTIONS as u32 + 2).await?;
    store
        .pool()
        .execute("create table raw_insert (id bigserial primary key, payload jsonb not null)")
        .await?;

    // Baselines at the same concurrency.
    let payload = json!({"amount": 50000, "currency": "INR", "receipt": "bench"});
    let raw = closed_loop(duration, {
        let pool = store.pool().clone();
        let payload = payload.clone();
        move |_| {
            let pool = pool.clone();
            let payload = payload.clone();
            async move {
                sqlx::query("insert into raw_insert (payload) values ($1)")
                    .bind(payload)
                    .execute(&pool)
                    .await
                    .expect("insert");
            }
        }
    })
    .await;
    let appends = closed_loop(duration, {
        let store = store.clone();
        let payload = payload.clone();
        move |n| {
            let store = store.clone();
            let payload = payload.clone();
            async move {
                let stream = StreamId::new("order", format!("bench_{n}")).expect("stream");
                store
                    .append(
                        &stream,
                        ExpectedVersion::NoStream,
                        vec![NewEvent::new("OrderCreated", 1, payload)],
                        &EventMetadata::default(),
                    )
                    .await
                    .expect("append");
            }
        }
    })
    .await;
    drop(store);

    // The service, as released, with the dev seed (key_test_abc123).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let prefix = format!("bench{}", Uuid::now_v7().simple());
    let mut service = Command::new(env!("CARGO_BIN_EXE_command-api"))
        .env("PAYSTREAM_PROFILE", "dev")
        .env("PAYSTREAM_DATABASE_URL", &url)
        .env("PAYSTREAM_NATS_URL", &nats)
        .env("PAYSTREAM_COMMAND_API_ADDR", format!("127.0.0.1:{port}"))
        .env("PAYSTREAM_EVENTS_STREAM", prefix.to_uppercase())
        .env(
            "PAYSTREAM_EVENTS_SUBJECT_PREFIX",
            format!("{prefix}.events"),
        )
        .env("RUST_LOG", "warn")
        // Outcomes would pay the orders the payment run picks from; the
        // acquirer is measured on its own.
        .env("PAYSTREAM_ACQUIRER", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let ready = Instant::now();
    while client.get(format!("{base}/health")).send().await.is_err() {
        anyhow::ensure!(
            ready.elapsed() < Duration::from_secs(30),
            "command-api did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Orders for the payment run to pick from.
    let mut order_ids = Vec::new();
    for _ in 0..512 {
        let order: Value = client
            .post(format!("{base}/api/v1/orders"))
            .header("X-Api-Key", "key_test_abc123")
            .header("X-Api-Secret", "secret_test_xyz789")
            .json(&json!({"amount": 50000}))
            .send()
            .await?
            .json()
            .await?;
        order_ids.push(format!("\"{}\"", order["id"].as_str().unwrap_or_default()));
    }
    let scripts = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&scripts)?;
    let headers = r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Api-Key"] = "key_test_abc123"
wrk.headers["X-Api-Secret"] = "secret_test_xyz789"
"#;
    let orders_script = scripts.join("orders.lua");
    std::fs::write(
        &orders_script,
        format!("{headers}wrk.body = '{{\"amount\": 50000, \"currency\": \"INR\"}}'\n"),
    )?;
    let payments_script = scripts.join("payments.lua");
    std::fs::write(
        &payments_script,
        format!(
            "{headers}local orders = {{{}}}\nrequest = function()\n  local order = orders[math.random(#orders)]\n  return wrk.format(nil, nil, nil, '{{\"order_id\": \"' .. order .. '\", \"method\": \"upi\", \"vpa\": \"user@okbank\"}}')\nend\n",
            order_ids.join(", ")
        ),
    )?;

    let orders = wrk(&format!("{base}/api/v1/orders"), &orders_script, seconds);
    let payments = wrk(
        &format!("{base}/api/v1/payments"),
        &payments_script,
        seconds,
    );
    let rss = peak_rss_mib(service.id());
    service.kill()?;
    service.wait()?;

    println!("\n{CONNECTIONS} connections, {seconds} s per phase\n");
    println!("| what | ops/s | p50 | p99 | vs raw INSERT |");
    println!("|---|---:|---:|---:|---:|");
    println!("| raw single-row INSERT (baseline) | {raw:.0} | | | 100% |");
    println!(
        "| store append, one event, new stream | {appends:.0} | | | {:.0}% |",
        100.0 * appends / raw
    );
    for (label, result) in [
        ("POST /api/v1/orders", &orders),
        ("POST /api/v1/payments (UPI)", &payments),
    ] {
        println!(
            "| {label} | {:.0} | {} | {} | {:.0}% |{}",
            result.requests_per_second,
            result.p50,
            result.p99,
            100.0 * result.requests_per_second / raw,
            if result.non_2xx > 0 {
                format!(" {} non-2xx", result.non_2xx)
            } else {
                String::new()
            }
        );
    }
    println!("\ncommand-api peak RSS (VmHWM): {rss:.1} MiB");

    let _ = std::fs::remove_dir_all(&scripts);
    if let Ok(client) = async_nats::connect(&nats).await {
        let _ = async_nats::jetstream::new(client)
            .delete_stream(prefix.to_uppercase())
            .await;
    }
    admin_connection
        .execute(format!("drop database if exists {name} with (force)").as_str())
        .await?;
    Ok(())
}
