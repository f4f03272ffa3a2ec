//! The read side, end to end, with the real service binaries as child
//! processes (`command-api` with the relay on and the acquirer off,
//! `projector`, `query-api`), each next to a baseline measured in the same
//! run:
//!
//! 1. **Commit → visible at 1,000 commands/s.** `POST /api/v1/orders`, open
//!    loop, paced by a tokio interval for `PAYSTREAM_BENCH_SECONDS` (default
//!    20). For each answer: its `X-Event-Position` and the moment it arrived.
//!    A poller reads the `payments` projection's checkpoint every 1 ms; a
//!    command's latency is the first poll that saw the checkpoint at or past
//!    its position, minus its answer time. Baseline (the relay floor): a core
//!    NATS subscription to the run's subjects records when each event's
//!    message (`Paystream-Position`) arrived.
//! 2. **GET throughput at 64 connections** (`wrk -t2 -c64 -d10s`): a payment
//!    by id, an order by id (rotating over ~2,000 of each), and
//!    `GET /api/v1/payments?limit=20`. Baseline: the store read the by-id
//!    handler does (`PgEventStore::read_stream` of the payment's stream),
//!    in process, 64 tasks in a closed loop, on a pool the size of the
//!    service's.
//! 3. **Peak RSS** (`VmHWM`) of the three services after the load.
//!
//! `cargo bench -p paystream-query-api --bench read_side`
//! Needs `wrk`. Env: `PAYSTREAM_BENCH_DATABASE_URL` (a role that may create
//! databases), `PAYSTREAM_TEST_NATS_URL`, `PAYSTREAM_BENCH_SECONDS` (phase 1,
//! default 20), `PAYSTREAM_BENCH_RATE` (default 1000),
//! `PAYSTREAM_BENCH_PAYMENTS` (default 2000), `PAYSTREAM_BENCH_WRK_SECONDS`
//! (default 10).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use hdrhistogram::Histogram;
use paystream_domain::payment::PaymentAggregate;
use paystream_store::runner::stream_of;
use paystream_store::{EventStore, PgEventStore};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

const CONNECTIONS: usize = 64;
/// The query API's default pool (`PAYSTREAM_DATABASE_MAX_CONNECTIONS`).
const SERVICE_POOL: u32 = 16;
const API_KEY: &str = "key_test_abc123";
const API_SECRET: &str = "secret_test_xyz789";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ------------------------------------------------------------ the services

/// `<target>/<profile>`: the bench runs from `<target>/<profile>/deps/`.
fn profile_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow::anyhow!("no profile directory above {}", exe.display()))
}

/// Builds the three service binaries (release, the target directory cargo
/// uses for this bench: `CARGO_TARGET_DIR` is inherited) so they are current.
fn build_services() -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--release",
            "-p",
            "paystream-command-api",
            "-p",
            "paystream-projector",
            "-p",
            "paystream-query-api",
            "--bins",
        ])
        .status()?;
    anyhow::ensure!(status.success(), "building the service binaries failed");
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The child processes; killed and reaped when dropped (also on panic).
#[derive(Debug, Default)]
struct Services {
    children: Vec<(&'static str, Child, PathBuf)>,
}

impl Services {
    fn spawn(
        &mut self,
        name: &'static str,
        binary: &Path,
        env: &[(&str, String)],
        logs: &Path,
    ) -> anyhow::Result<u32> {
        let log = logs.join(format!("{name}.log"));
        let child = Command::new(binary)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .map_err(|error| anyhow::anyhow!("starting {}: {error}", binary.display()))?;
        let pid = child.id();
        self.children.push((name, child, log));
        Ok(pid)
    }

    fn log_tail(&self, name: &str) -> String {
        self.children
            .iter()
            .find(|(n, _, _)| *n == name)
            .and_then(|(_, _, log)| std::fs::read_to_string(log).ok())
            .map(|text| {
                let lines: Vec<_> = text.lines().collect();
                lines[lines.len().saturating_sub(20)..].join("\n")
            })
            .unwrap_or_default()
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn wait_healthy(
    client: &reqwest::Client,
    services: &Services,
    name: &str,
    base: &str,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if let Ok(response) = client.get(format!("{base}/health")).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(60),
            "{name} did not become healthy; its log ends:\n{}",
            services.log_tail(name)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ------------------------------------------------------------ measurements

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

/// CPU ticks (user + system) of one process.
fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the `(comm)`: state is field 3; utime 14, stime 15.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: u64 = fields.get(11)?.parse().ok()?;
            let system: u64 = fields.get(12)?.parse().ok()?;
            Some(user + system)
        })
        .unwrap_or(0)
}

/// CPU ticks of every `postgres` process (the whole cluster: other users'
/// work on the machine counts too).
fn postgres_ticks() -> u64 {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|comm| comm.trim() == "postgres")
                })
                .map(cpu_ticks)
                .sum()
        })
        .unwrap_or(0)
}

/// Busy and total ticks of the whole machine (`/proc/stat`).
fn machine_ticks() -> (u64, u64) {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            let line = stat.lines().next()?;
            let values: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            let total: u64 = values.iter().take(8).sum();
            let idle = values.get(3)? + values.get(4)?;
            Some((total - idle, total))
        })
        .unwrap_or((0, 0))
}

/// CPU used per process during a phase, in cores.
#[derive(Debug, Clone)]
struct CpuUse {
    services: Vec<(&'static str, f64)>,
    postgres: f64,
    machine: f64,
}

struct CpuMeter {
    pids: Vec<(&'static str, u32)>,
    start: Instant,
    services: Vec<u64>,
    postgres: u64,
    machine: (u64, u64),
}

impl CpuMeter {
    fn start(pids: &[(&'static str, u32)]) -> Self {
        Self {
            pids: pids.to_vec(),
            start: Instant::now(),
            services: pids.iter().map(|(_, pid)| cpu_ticks(*pid)).collect(),
            postgres: postgres_ticks(),
            machine: machine_ticks(),
        }
    }

    fn stop(self) -> CpuUse {
        const TICKS: f64 = 100.0; // USER_HZ on Linux
        let seconds = self.start.elapsed().as_secs_f64();
        let cores = |ticks: u64| ticks as f64 / TICKS / seconds;
        let (busy, total) = machine_ticks();
        CpuUse {
            services: self
                .pids
                .iter()
                .zip(&self.services)
                .map(|((name, pid), before)| {
                    (*name, cores(cpu_ticks(*pid).saturating_sub(*before)))
                })
                .collect(),
            postgres: cores(postgres_ticks().saturating_sub(self.postgres)),
            // Busy share of all cores, times the number of cores.
            machine: busy.saturating_sub(self.machine.0) as f64
                / total.saturating_sub(self.machine.1).max(1) as f64
                * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
        }
    }
}

impl CpuUse {
    fn line(&self) -> String {
        let services: Vec<String> = self
            .services
            .iter()
            .map(|(name, cores)| format!("{name} {cores:.2}"))
            .collect();
        format!(
            "{}, PostgreSQL {:.2}; whole machine {:.2} of {} cores",
            services.join(", "),
            self.postgres,
            self.machine,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        )
    }
}

struct WrkResult {
    requests_per_second: f64,
    p50: String,
    p99: String,
    non_2xx: u64,
    socket_errors: String,
    cpu: CpuUse,
}

fn wrk(
    url: &str,
    script: &Path,
    seconds: u64,
    pids: &[(&'static str, u32)],
) -> anyhow::Result<WrkResult> {
    let meter = CpuMeter::start(pids);
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
        .map_err(|error| anyhow::anyhow!("run wrk (apt-get install wrk): {error}"))?;
    let cpu = meter.stop();
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
    Ok(WrkResult {
        requests_per_second: field("Requests/sec:").parse().unwrap_or(0.0),
        p50: field("50%"),
        p99: field("99%"),
        non_2xx: field("Non-2xx or 3xx responses:").parse().unwrap_or(0),
        socket_errors: field("Socket errors:"),
        cpu,
    })
}

/// Runs `operation` from `CONNECTIONS` tasks for `duration`; returns ops/s
/// and a latency histogram (µs).
async fn closed_loop<F, Fut>(duration: Duration, operation: F) -> (f64, Histogram<u64>)
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
                let mut histogram =
                    Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("histogram");
                let mut n = 0;
                while Instant::now() < deadline {
                    let began = Instant::now();
                    operation(worker * 1_000_000 + n).await;
                    histogram.saturating_record(began.elapsed().as_micros() as u64);
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
                histogram
            })
        })
        .collect();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("histogram");
    for task in tasks {
        histogram
            .add(task.await.expect("worker"))
            .expect("same bounds");
    }
    (
        done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64(),
        histogram,
    )
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn header_position(response: &reqwest::Response) -> Option<i64> {
    response
        .headers()
        .get("x-event-position")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Polls the checkpoint of `projection` until it reaches `wanted`.
async fn wait_checkpoint(
    database: &mut PgConnection,
    projection: &str,
    wanted: i64,
    within: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let position: Option<i64> =
            sqlx::query_scalar("select position from projection_checkpoints where projection = $1")
                .bind(projection)
                .fetch_optional(&mut *database)
                .await?;
        if position.unwrap_or(0) >= wanted {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < within,
            "projection {projection} stuck at {position:?}, wanted {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ------------------------------------------------------------ the run

struct Setup {
    url: String,
    nats: String,
    prefix: String,
    scripts: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(());
    }
    build_services()?;
    let admin = std::env::var("PAYSTREAM_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("PAYSTREAM_TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let nats =
        std::env::var("PAYSTREAM_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());

    let name = format!("ps_bench_{}", Uuid::now_v7().simple());
    let mut admin_connection = PgConnection::connect(&admin).await?;
    admin_connection
        .execute(format!("create database {name}").as_str())
        .await?;
    let url = format!("{}/{name}", admin.rsplit_once('/').map_or("", |(s, _)| s));
    PgEventStore::migrate(&url).await?;
    let prefix = format!("bench{}", Uuid::now_v7().simple());
    let scripts = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&scripts)?;

    // The services live inside this task: a panic drops (kills) them before
    // the database is dropped below.
    let outcome = tokio::spawn(run(Setup {
        url,
        nats: nats.clone(),
        prefix: prefix.clone(),
        scripts: scripts.clone(),
    }))
    .await;

    let _ = std::fs::remove_dir_all(&scripts);
    if let Ok(client) = async_nats::connect(&nats).await {
        let _ = async_nats::jetstream::new(client)
            .delete_stream(prefix.to_uppercase())
            .await;
    }
    admin_connection
        .execute(format!("drop database if exists {name} with (force)").as_str())
        .await?;
    match outcome {
        Ok(result) => result,
        Err(error) => Err(anyhow::anyhow!("the benchmark panicked: {error}")),
    }
}

async fn run(setup: Setup) -> anyhow::Result<()> {
    let Setup {
        url,
        nats,
        prefix,
        scripts,
    } = setup;
    let seconds: u64 = env_or("PAYSTREAM_BENCH_SECONDS", 20);
    let rate: u64 = env_or("PAYSTREAM_BENCH_RATE", 1000);
    let payments_wanted: usize = env_or("PAYSTREAM_BENCH_PAYMENTS", 2000);
    let wrk_seconds: u64 = env_or("PAYSTREAM_BENCH_WRK_SECONDS", 10);
    let bin = profile_dir()?;
    let subject_prefix = format!("{prefix}.events");

    let command_port = free_port()?;
    let projector_port = free_port()?;
    let query_port = free_port()?;
    let common = [
        ("PAYSTREAM_PROFILE", "dev".to_string()),
        ("PAYSTREAM_DATABASE_URL", url.clone()),
        ("PAYSTREAM_NATS_URL", nats.clone()),
        ("PAYSTREAM_EVENTS_STREAM", prefix.to_uppercase()),
        ("PAYSTREAM_EVENTS_SUBJECT_PREFIX", subject_prefix.clone()),
        ("PAYSTREAM_ACQUIRER_CONSUMER", format!("{prefix}-acquirer")),
    ];
    let with = |extra: &[(&'static str, String)]| {
        let mut env: Vec<(&str, String)> = common.to_vec();
        env.extend(extra.iter().cloned());
        env
    };

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let mut services = Services::default();
    // One at a time: each applies the migrations at start.
    let command_pid = services.spawn(
        "command-api",
        &bin.join("command-api"),
        &with(&[
            (
                "PAYSTREAM_COMMAND_API_ADDR",
                format!("127.0.0.1:{command_port}"),
            ),
            ("PAYSTREAM_RELAY", "true".into()),
            // Outcomes would pay the orders; the acquirer is measured alone.
            ("PAYSTREAM_ACQUIRER", "false".into()),
        ]),
        &scripts,
    )?;
    let command = format!("http://127.0.0.1:{command_port}");
    wait_healthy(&client, &services, "command-api", &command).await?;
    let projector_pid = services.spawn(
        "projector",
        &bin.join("projector"),
        &with(&[
            (
                "PAYSTREAM_PROJECTOR_ADDR",
                format!("127.0.0.1:{projector_port}"),
            ),
            (
                "PAYSTREAM_PROJECTOR_CONSUMER",
                format!("{prefix}-projector"),
            ),
        ]),
        &scripts,
    )?;
    wait_healthy(
        &client,
        &services,
        "projector",
        &format!("http://127.0.0.1:{projector_port}"),
    )
    .await?;
    let query_pid = services.spawn(
        "query-api",
        &bin.join("query-api"),
        &with(&[(
            "PAYSTREAM_QUERY_API_ADDR",
            format!("127.0.0.1:{query_port}"),
        )]),
        &scripts,
    )?;
    let query = format!("http://127.0.0.1:{query_port}");
    wait_healthy(&client, &services, "query-api", &query).await?;
    let pids = [
        ("command-api", command_pid),
        ("projector", projector_pid),
        ("query-api", query_pid),
    ];

    let post = |path: &str, body: Value| {
        client
            .post(format!("{command}{path}"))
            .header("X-Api-Key", API_KEY)
            .header("X-Api-Secret", API_SECRET)
            .json(&body)
            .send()
    };

    // Warm-up: the pipeline is live once one command is visible.
    let mut poll_connection = PgConnection::connect(&url).await?;
    let mut warm_position = 0;
    for _ in 0..200 {
        let response = post("/api/v1/orders", json!({"amount": 50000})).await?;
        anyhow::ensure!(
            response.status().is_success(),
            "warm-up order: {}",
            response.status()
        );
        warm_position = header_position(&response).unwrap_or(0);
    }
    wait_checkpoint(
        &mut poll_connection,
        "payments",
        warm_position,
        Duration::from_secs(60),
    )
    .await?;

    // ---------------------------------------------- phase 1: commit → visible
    let nats_client = async_nats::connect(&nats).await?;
    let mut subscriber = nats_client.subscribe(format!("{subject_prefix}.>")).await?;
    let arrivals: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let listener = tokio::spawn({
        let arrivals = arrivals.clone();
        async move {
            while let Some(message) = subscriber.next().await {
                let at = Instant::now();
                if let Some(position) = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Paystream-Position"))
                    .and_then(|v| v.as_str().parse::<i64>().ok())
                {
                    arrivals.lock().expect("arrivals").insert(position, at);
                }
            }
        }
    });
    // Subscriptions are registered asynchronously; make sure this one is.
    nats_client.flush().await?;

    let polling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let latest = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let poller = tokio::spawn({
        let polling = polling.clone();
        let latest = latest.clone();
        async move {
            let mut samples: Vec<(Instant, i64)> = Vec::with_capacity(64 * 1024);
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while polling.load(Ordering::Relaxed) {
                tick.tick().await;
                let position: Option<i64> = sqlx::query_scalar(
                    "select position from projection_checkpoints where projection = 'payments'",
                )
                .fetch_optional(&mut poll_connection)
                .await
                .expect("poll the checkpoint");
                let position = position.unwrap_or(0);
                samples.push((Instant::now(), position));
                latest.store(position, Ordering::Relaxed);
            }
            (samples, poll_connection)
        }
    });

    let load_cpu = CpuMeter::start(&pids);
    let mut commands = Vec::with_capacity((seconds * rate) as usize);
    let failed = Arc::new(AtomicU64::new(0));
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let load_start = Instant::now();
    while load_start.elapsed() < Duration::from_secs(seconds) {
        pace.tick().await;
        let request = post("/api/v1/orders", json!({"amount": 50000}));
        let failed = failed.clone();
        commands.push(tokio::spawn(async move {
            match request.await {
                Ok(response) if response.status().is_success() => {
                    let at = Instant::now();
                    header_position(&response).map(|position| (position, at))
                }
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    None
                }
            }
        }));
    }
    let sent = commands.len();
    let offered = sent as f64 / load_start.elapsed().as_secs_f64();
    let mut answered = Vec::with_capacity(sent);
    for command in commands {
        if let Some(done) = command.await? {
            answered.push(done);
        }
    }
    let load_cpu = load_cpu.stop();
    let last = answered.iter().map(|(p, _)| *p).max().unwrap_or(0);
    // Keep polling until the last command is visible (or give up).
    let drain = Instant::now();
    while drain.elapsed() < Duration::from_secs(60)
        && (latest.load(Ordering::Relaxed) < last
            || !arrivals.lock().expect("arrivals").contains_key(&last))
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    polling.store(false, Ordering::Relaxed);
    let (samples, _) = poller.await?;
    listener.abort();
    let arrivals = std::mem::take(&mut *arrivals.lock().expect("arrivals"));

    let mut visible = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut relayed = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let (mut never_visible, mut never_relayed) = (0, 0);
    let (mut visible_before_answer, mut relayed_before_answer) = (0, 0);
    for (position, answered_at) in &answered {
        let index = samples.partition_point(|(_, seen)| seen < position);
        match samples.get(index) {
            Some((seen_at, _)) => {
                if seen_at < answered_at {
                    visible_before_answer += 1;
                }
                visible.saturating_record(
                    seen_at.saturating_duration_since(*answered_at).as_micros() as u64,
                );
            }
            None => never_visible += 1,
        }
        match arrivals.get(position) {
            Some(arrived_at) => {
                if arrived_at < answered_at {
                    relayed_before_answer += 1;
                }
                relayed.saturating_record(
                    arrived_at
                        .saturating_duration_since(*answered_at)
                        .as_micros() as u64,
                );
            }
            None => never_relayed += 1,
        }
    }
    let poll_gaps: Vec<Duration> = samples
        .windows(2)
        .map(|pair| pair[1].0 - pair[0].0)
        .collect();
    let mean_poll = poll_gaps.iter().sum::<Duration>() / poll_gaps.len().max(1) as u32;

    // ---------------------------------------------- phase 2: GET throughput
    // Orders, then a UPI payment for each, through the command API.
    let created: Vec<(String, String, i64)> = stream::iter(0..payments_wanted)
        .map(|_| {
            let post = &post;
            async move {
                let order: Value = post("/api/v1/orders", json!({"amount": 50000}))
                    .await?
                    .json()
                    .await?;
                let order_id = order["id"].as_str().unwrap_or_default().to_string();
                let response = post(
                    "/api/v1/payments",
                    json!({"order_id": order_id, "method": "upi", "vpa": "user@okbank"}),
                )
                .await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "create payment: {}",
                    response.status()
                );
                let position = header_position(&response).unwrap_or(0);
                let payment: Value = response.json().await?;
                Ok((
                    order_id,
                    payment["id"].as_str().unwrap_or_default().to_string(),
                    position,
                ))
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<anyhow::Result<_>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let last = created.iter().map(|(_, _, p)| *p).max().unwrap_or(0);
    let mut database = PgConnection::connect(&url).await?;
    wait_checkpoint(&mut database, "payments", last, Duration::from_secs(120)).await?;

    let quoted = |ids: Vec<&str>| {
        ids.iter()
            .map(|id| format!("\"{id}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let headers = format!(
        "wrk.headers[\"X-Api-Key\"] = \"{API_KEY}\"\nwrk.headers[\"X-Api-Secret\"] = \"{API_SECRET}\"\n"
    );
    // Each wrk thread starts at its own offset and rotates over the ids.
    let rotating = |ids: String, path: &str| {
        format!(
            "{headers}local ids = {{{ids}}}\nlocal threads = 0\nfunction setup(thread)\n  thread:set(\"offset\", threads * 997)\n  threads = threads + 1\nend\nlocal i = 0\nfunction init(args)\n  i = offset or 0\nend\nfunction request()\n  i = i + 1\n  return wrk.format(\"GET\", \"{path}\" .. ids[(i % #ids) + 1])\nend\n"
        )
    };
    let payments_script = scripts.join("payments.lua");
    std::fs::write(
        &payments_script,
        rotating(
            quoted(created.iter().map(|(_, p, _)| p.as_str()).collect()),
            "/api/v1/payments/",
        ),
    )?;
    let orders_script = scripts.join("orders.lua");
    std::fs::write(
        &orders_script,
        rotating(
            quoted(created.iter().map(|(o, _, _)| o.as_str()).collect()),
            "/api/v1/orders/",
        ),
    )?;
    let list_script = scripts.join("list.lua");
    std::fs::write(&list_script, &headers)?;

    // Sanity: each kind answers 200 once before it is measured.
    for path in [
        format!("/api/v1/payments/{}", created[0].1),
        format!("/api/v1/orders/{}", created[0].0),
        "/api/v1/payments?limit=20".to_string(),
    ] {
        let response = client
            .get(format!("{query}{path}"))
            .header("X-Api-Key", API_KEY)
            .header("X-Api-Secret", API_SECRET)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
    }

    let by_payment = wrk(&query, &payments_script, wrk_seconds, &pids)?;
    let by_order = wrk(&query, &orders_script, wrk_seconds, &pids)?;
    let list = wrk(
        &format!("{query}/api/v1/payments?limit=20"),
        &list_script,
        wrk_seconds,
        &pids,
    )?;

    // Baseline: the handler's store read, in process, same concurrency.
    let store = PgEventStore::connect(&url, SERVICE_POOL).await?;
    let streams = Arc::new(
        created
            .iter()
            .map(|(_, payment, _)| stream_of::<PaymentAggregate>(payment))
            .collect::<Result<Vec<_>, _>>()?,
    );
    let baseline_cpu = CpuMeter::start(&pids);
    let (raw_reads, raw_histogram) = closed_loop(Duration::from_secs(wrk_seconds), {
        let store = store.clone();
        let streams = streams.clone();
        move |n| {
            let store = store.clone();
            let streams = streams.clone();
            async move {
                let stream = &streams[(n as usize * 7919) % streams.len()];
                let events = store.read_stream(stream, 0, 1000).await.expect("read");
                assert!(!events.is_empty());
            }
        }
    })
    .await;
    let baseline_cpu = baseline_cpu.stop();
    drop(store);

    let rss: Vec<(&str, f64)> = pids
        .iter()
        .map(|(name, pid)| (*name, peak_rss_mib(*pid)))
        .collect();
    drop(services);

    // ---------------------------------------------- the report
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n### Read side: run of {}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    println!(
        "Load average at the end: {}. Cores: {}.\n",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "**Commit → visible**, `POST /api/v1/orders` open loop at {rate}/s for {seconds} s: \
         {sent} sent ({offered:.0}/s offered), {} answered with a position, {} failed.\n",
        answered.len(),
        failed.load(Ordering::Relaxed)
    );
    println!(
        "| from the answer to | p50 ms | p90 ms | p99 ms | max ms | before the answer | never |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (label, histogram, before, never) in [
        (
            "the event's NATS message (relay floor, baseline)",
            &relayed,
            relayed_before_answer,
            never_relayed,
        ),
        (
            "`payments` checkpoint ≥ position (visible)",
            &visible,
            visible_before_answer,
            never_visible,
        ),
    ] {
        println!(
            "| {label} | {:.1} | {:.1} | {:.1} | {:.1} | {before} | {never} |",
            ms(histogram.value_at_quantile(0.5)),
            ms(histogram.value_at_quantile(0.9)),
            ms(histogram.value_at_quantile(0.99)),
            ms(histogram.max()),
        );
    }
    println!(
        "\nCheckpoint polls: {} (one every {:.2} ms on average). \
         \"Before the answer\" counts commands seen there before their HTTP answer arrived (latency 0).",
        samples.len(),
        mean_poll.as_secs_f64() * 1000.0
    );
    println!("CPU during the load, in cores: {}.\n", load_cpu.line());

    println!(
        "**GET at {CONNECTIONS} connections** (`wrk -t2 -c{CONNECTIONS} -d{wrk_seconds}s`), \
         {} payments and orders:\n",
        created.len()
    );
    println!("| what | req/s | p50 | p99 | non-2xx | vs store read |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| store `read_stream` of a payment, in process, pool {SERVICE_POOL} (baseline) | {raw_reads:.0} | {:.2}ms | {:.2}ms | | 100% |",
        ms(raw_histogram.value_at_quantile(0.5)),
        ms(raw_histogram.value_at_quantile(0.99)),
    );
    for (label, result) in [
        ("GET /api/v1/payments/{id}", &by_payment),
        ("GET /api/v1/orders/{id}", &by_order),
        ("GET /api/v1/payments?limit=20", &list),
    ] {
        println!(
            "| {label} | {:.0} | {} | {} | {}{} | {:.0}% |",
            result.requests_per_second,
            result.p50,
            result.p99,
            result.non_2xx,
            if result.socket_errors.is_empty() {
                String::new()
            } else {
                format!(" (socket errors: {})", result.socket_errors)
            },
            100.0 * result.requests_per_second / raw_reads,
        );
    }
    println!("\nCPU in cores (PostgreSQL counts the whole cluster; wrk and the benchmark are the rest of the machine):\n");
    for (label, cpu) in [
        ("GET payment by id", &by_payment.cpu),
        ("GET order by id", &by_order.cpu),
        ("GET payments list", &list.cpu),
        ("store read baseline", &baseline_cpu),
    ] {
        println!("- {label}: {}", cpu.line());
    }
    println!("\n**Peak RSS (VmHWM) after the load:**\n");
    println!("| service | MiB |");
    println!("|---|---:|");
    for (name, mib) in &rss {
        println!("| {name} | {mib:.1} |");
    }
    Ok(())
}
