//! What one payment costs, measured: counters read before and after a step
//! (events appended, SQL statements, commits and WAL bytes from PostgreSQL's
//! statistics views, JetStream messages, CPU per process), divided by the
//! payments the step made.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sqlx::PgPool;

/// The processes whose CPU and memory are reported.
#[derive(Debug, Clone)]
pub struct Processes {
    /// `deploy/dev`'s pid files (`.run/pids`).
    pid_dir: PathBuf,
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on
/// Linux everywhere this runs).
const TICKS_PER_SECOND: f64 = 100.0;

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `(comm, utime + stime ticks)` of one process.
fn stat(pid: u32) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // Fields 14 and 15 of the line; the slice starts at field 3.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((comm, ticks))
}

/// `VmHWM` of one process, in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    status_mib(pid, "VmHWM:")
}

/// `VmRSS` of one process (now), in MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    status_mib(pid, "VmRSS:")
}

fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

impl Processes {
    pub fn new(pid_dir: PathBuf) -> Self {
        Self { pid_dir }
    }

    /// The services `deploy/dev up` started: `(name, pid)`.
    pub fn services(&self) -> Vec<(String, u32)> {
        let Ok(entries) = std::fs::read_dir(&self.pid_dir) else {
            return Vec::new();
        };
        let mut services: Vec<(String, u32)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry
                    .file_name()
                    .to_string_lossy()
                    .strip_suffix(".pid")?
                    .to_owned();
                let pid = read_pid(&entry.path())?;
                Path::new(&format!("/proc/{pid}"))
                    .exists()
                    .then_some((name, pid))
            })
            .collect();
        services.sort();
        services
    }

    /// CPU seconds so far: each service, every `postgres`, `nats-server` and
    /// `nginx` process summed by name, and this load generator.
    pub fn cpu_seconds(&self) -> BTreeMap<String, f64> {
        let mut cpu = BTreeMap::new();
        let services = self.services();
        for (name, pid) in &services {
            if let Some((_, ticks)) = stat(*pid) {
                cpu.insert(name.clone(), ticks as f64 / TICKS_PER_SECOND);
            }
        }
        let service_pids: Vec<u32> = services.iter().map(|(_, pid)| *pid).collect();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.filter_map(Result::ok) {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|name| name.parse::<u32>().ok())
                else {
                    continue;
                };
                if service_pids.contains(&pid) {
                    continue;
                }
                let Some((comm, ticks)) = stat(pid) else {
                    continue;
                };
                let name = match comm.as_str() {
                    "postgres" => "postgresql",
                    "nats-server" => "nats-server",
                    "nginx" => "nginx",
                    _ if pid == std::process::id() => "load generator",
                    _ => continue,
                };
                *cpu.entry(name.to_owned()).or_default() += ticks as f64 / TICKS_PER_SECOND;
            }
        }
        cpu
    }
}

/// Counters at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: Instant,
    pub events: i64,
    pub statements: Option<i64>,
    pub commits: i64,
    pub wal_bytes: Option<i64>,
    pub nats_published: Option<u64>,
    pub nats_delivered: Option<u64>,
    pub cpu: BTreeMap<String, f64>,
    /// Per table of the system's database: sequential scans, rows they read.
    pub seq_scans: BTreeMap<String, (i64, i64)>,
}

/// Reads the counters. Statement counts need `pg_stat_statements` (loaded by
/// `shared_preload_libraries`); without it they are `None`.
pub async fn snapshot(
    pool: &PgPool,
    jetstream: Option<&async_nats::jetstream::Context>,
    stream_name: &str,
    processes: &Processes,
) -> anyhow::Result<Snapshot> {
    let events: i64 = sqlx::query_scalar("select coalesce(sum(n_tup_ins), 0)::bigint from pg_stat_user_tables where relname = 'events'")
        .fetch_one(pool)
        .await?;
    let statements: Option<i64> =
        sqlx::query_scalar("select sum(calls)::bigint from pg_stat_statements")
            .fetch_one(pool)
            .await
            .ok()
            .flatten();
    let commits: i64 = sqlx::query_scalar("select sum(xact_commit)::bigint from pg_stat_database")
        .fetch_one(pool)
        .await?;
    let wal_bytes: Option<i64> = sqlx::query_scalar("select wal_bytes::bigint from pg_stat_wal")
        .fetch_one(pool)
        .await
        .ok();
    let seq_scans: Vec<(String, i64, i64)> = sqlx::query_as(
        "select relname::text, coalesce(seq_scan, 0), coalesce(seq_tup_read, 0) \
         from pg_stat_user_tables",
    )
    .fetch_all(pool)
    .await?;
    let (nats_published, nats_delivered) = match jetstream {
        Some(jetstream) => nats_counts(jetstream, stream_name).await,
        None => (None, None),
    };
    Ok(Snapshot {
        at: Instant::now(),
        events,
        statements,
        commits,
        wal_bytes,
        nats_published,
        nats_delivered,
        cpu: processes.cpu_seconds(),
        seq_scans: seq_scans
            .into_iter()
            .map(|(table, scans, rows)| (table, (scans, rows)))
            .collect(),
    })
}

/// Messages published to the events stream, and delivered to its consumers
/// (first deliveries and redeliveries).
async fn nats_counts(
    jetstream: &async_nats::jetstream::Context,
    stream_name: &str,
) -> (Option<u64>, Option<u64>) {
    use futures::StreamExt;
    let Ok(mut stream) = jetstream.get_stream(stream_name).await else {
        return (None, None);
    };
    let published = stream
        .info()
        .await
        .ok()
        .map(|info| info.state.last_sequence);
    let mut delivered = 0;
    let mut consumers = stream.consumers();
    while let Some(Ok(info)) = consumers.next().await {
        delivered += info.delivered.consumer_sequence;
    }
    (published, Some(delivered))
}

/// The cost of one payment between two snapshots.
#[derive(Debug, Clone)]
pub struct Budget {
    pub payments: u64,
    pub seconds: f64,
    pub events: f64,
    pub statements: Option<f64>,
    pub commits: f64,
    pub wal_bytes: Option<f64>,
    pub nats_published: Option<f64>,
    pub nats_delivered: Option<f64>,
    /// Per process: cores used on average, and CPU milliseconds per payment.
    pub cpu: BTreeMap<String, (f64, f64)>,
    /// Tables sequentially scanned during the step: (table, scans, rows
    /// read), most rows first. On a hot path only small tables may appear.
    pub seq_scans: Vec<(String, i64, i64)>,
}

pub fn budget(before: &Snapshot, after: &Snapshot, payments: u64) -> Budget {
    let per = |delta: f64| delta / payments.max(1) as f64;
    let seconds = after.at.duration_since(before.at).as_secs_f64().max(1e-9);
    let delta = |a: Option<i64>, b: Option<i64>| Some(per((b? - a?) as f64));
    let delta_u = |a: Option<u64>, b: Option<u64>| Some(per(b?.saturating_sub(a?) as f64));
    let cpu = after
        .cpu
        .iter()
        .map(|(name, end)| {
            let used = end - before.cpu.get(name).copied().unwrap_or(*end);
            (name.clone(), (used / seconds, per(used * 1000.0)))
        })
        .collect();
    let mut seq_scans: Vec<(String, i64, i64)> = after
        .seq_scans
        .iter()
        .filter_map(|(table, (scans, rows))| {
            let (scans_before, rows_before) =
                before.seq_scans.get(table).copied().unwrap_or_default();
            let scans = scans - scans_before;
            (scans > 0).then(|| (table.clone(), scans, rows - rows_before))
        })
        .collect();
    seq_scans.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    Budget {
        payments,
        seq_scans,
        seconds,
        events: per((after.events - before.events) as f64),
        statements: delta(before.statements, after.statements),
        commits: per((after.commits - before.commits) as f64),
        wal_bytes: delta(before.wal_bytes, after.wal_bytes),
        nats_published: delta_u(before.nats_published, after.nats_published),
        nats_delivered: delta_u(before.nats_delivered, after.nats_delivered),
        cpu,
    }
}

impl Budget {
    /// A markdown table.
    pub fn render(&self) -> String {
        let optional = |value: Option<f64>, digits: usize| {
            value.map_or_else(|| "n/a".to_owned(), |value| format!("{value:.digits$}"))
        };
        let mut out = String::new();
        out.push_str(&format!(
            "per payment ({} payments in {:.1} s):\n\n| what | per payment |\n|---|---|\n",
            self.payments, self.seconds
        ));
        out.push_str(&format!("| events appended | {:.2} |\n", self.events));
        out.push_str(&format!(
            "| SQL statements (pg_stat_statements) | {} |\n",
            optional(self.statements, 1)
        ));
        out.push_str(&format!(
            "| commits (all databases) | {:.1} |\n",
            self.commits
        ));
        out.push_str(&format!(
            "| WAL bytes | {} |\n",
            optional(self.wal_bytes, 0)
        ));
        out.push_str(&format!(
            "| JetStream messages published | {} |\n",
            optional(self.nats_published, 2)
        ));
        out.push_str(&format!(
            "| JetStream deliveries to consumers | {} |\n",
            optional(self.nats_delivered, 2)
        ));
        out.push_str("\n| process | cores used | CPU ms per payment |\n|---|---|---|\n");
        for (name, (cores, ms)) in &self.cpu {
            out.push_str(&format!("| {name} | {cores:.2} | {ms:.2} |\n"));
        }
        if self.seq_scans.is_empty() {
            out.push_str("\nNo table was scanned sequentially.\n");
        } else {
            out.push_str("\n| table scanned sequentially | scans | rows read |\n|---|---|---|\n");
            for (table, scans, rows) in &self.seq_scans {
                out.push_str(&format!("| {table} | {scans} | {rows} |\n"));
            }
        }
        out
    }
}
