//! The run: merchants, then for each endpoint mode the rate steps, each
//! with its budget, latencies, errors and lost work; the report as markdown.

use paystream_store::PgEventStore;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use hdrhistogram::Histogram;

use crate::api::Api;
use crate::budget::{self, Processes};
use crate::load::{self, Path, Recorder};
use crate::receiver::Receiver;
use crate::{baseline, load::StoredTimes};

#[derive(Debug, Clone)]
pub struct Options {
    /// The edge, e.g. `http://localhost:8000`.
    pub base_url: String,
    /// The system's database (for counters and the store's event times).
    pub database_url: String,
    pub nats_url: String,
    /// The events stream (`PAYSTREAM_EVENTS`).
    pub stream_name: String,
    /// `deploy/dev`'s pid files.
    pub pid_dir: PathBuf,
    /// Payments started per second, one step each, in order.
    pub rates: Vec<f64>,
    pub step: Duration,
    pub merchants: usize,
    /// Endpoints per merchant, one pass each (0 or 1).
    pub endpoint_modes: Vec<usize>,
    pub path: Path,
    /// Seconds of each baseline; 0 skips them.
    pub baseline_seconds: u64,
    /// Stop stepping once p99 create passes this.
    pub knee_p99: Duration,
    /// Longest wait, after a step, for outcomes, refunds and webhooks.
    pub drain: Duration,
}

/// What the run found.
#[derive(Debug, Default)]
pub struct Report {
    pub markdown: String,
    /// Accepted work that never completed (outcomes, refunds, webhooks).
    pub lost: u64,
    /// Errors by code, over every step.
    pub errors: BTreeMap<String, u64>,
    /// Webhooks whose signatures did not verify.
    pub bad_signatures: u64,
}

pub async fn run(options: Options) -> anyhow::Result<Report> {
    let api = Api::new(&options.base_url)?;
    let store = PgEventStore::connect(&options.database_url, 4)
        .await
        .context("connect to the system's database")?;
    let pool = store.pool().clone();
    let nats = async_nats::connect(&options.nats_url).await.ok();
    let jetstream = nats.map(async_nats::jetstream::new);
    let processes = Processes::new(options.pid_dir.clone());
    let mut report = Report::default();
    let out = &mut report.markdown;

    if options.baseline_seconds > 0 {
        let pgbench =
            baseline::pgbench_insert_tps(&options.database_url, options.baseline_seconds).await;
        let store =
            baseline::store_append_rate(&options.database_url, options.baseline_seconds).await;
        let show = |value: anyhow::Result<f64>| match value {
            Ok(rate) => format!("{rate:.0}/s"),
            Err(error) => format!("not measured ({error})"),
        };
        writeln!(out, "## Baselines (same run)\n")?;
        writeln!(out, "| baseline | rate |\n|---|---|")?;
        writeln!(
            out,
            "| pgbench single-row INSERT, 16 clients | {} |",
            show(pgbench)
        )?;
        writeln!(
            out,
            "| event store raw append, 16 writers | {} |\n",
            show(store)
        )?;
    }

    let token = api.staff_token("admin@example.com", "admin123").await?;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let mut merchants = Vec::with_capacity(options.merchants);
    for index in 0..options.merchants.max(1) {
        let email = format!("load-{}-{index}@example.com", &run_id[20..]);
        merchants.push(
            api.create_merchant(&token, &format!("Load {index}"), &email)
                .await?,
        );
    }
    let receiver = Receiver::start().await?;

    for &endpoints in &options.endpoint_modes {
        for (index, merchant) in merchants.iter().enumerate() {
            let url = (endpoints > 0).then(|| receiver.endpoint(index, &merchant.webhook_secret));
            api.configure_webhook(merchant, url.as_deref()).await?;
        }
        writeln!(
            out,
            "## {} endpoint{} per merchant ({} merchants, {:?} path, {} s steps)\n",
            endpoints,
            if endpoints == 1 { "" } else { "s" },
            merchants.len(),
            options.path,
            options.step.as_secs()
        )?;
        writeln!(
            out,
            "| offered/s | settled/s | create p50/p99/p99.9 ms | commit→outcome | outcome visible on GET | webhook received | capture | refund | errors | lost | RSS after the step, MiB |\n|---|---|---|---|---|---|---|---|---|---|---|"
        )?;
        let mut knee = None;
        let mut budgets = Vec::new();
        for &rate in &options.rates {
            let before =
                budget::snapshot(&pool, jetstream.as_ref(), &options.stream_name, &processes)
                    .await?;
            let started = Instant::now();
            let recorder = load::step(&api, &merchants, rate, options.step, options.path).await;
            let settled = load::settled_rate(&recorder, started);
            let after =
                budget::snapshot(&pool, jetstream.as_ref(), &options.stream_name, &processes)
                    .await?;
            let payments = recorder.made.len() as u64;
            budgets.push((rate, budget::budget(&before, &after, payments)));

            let checked = check(&store, &recorder, endpoints > 0, &receiver, options.drain).await?;
            report.lost += checked.lost;
            for (code, count) in &recorder.errors {
                *report.errors.entry(code.clone()).or_default() += count;
            }
            let create = &recorder.histograms["create"];
            let p99_create = Duration::from_micros(create.value_at_quantile(0.99));
            let errors: u64 = recorder.errors.values().sum();
            let rss: Vec<String> = processes
                .services()
                .into_iter()
                .filter_map(|(name, pid)| Some(format!("{name} {:.0}", budget::rss_mib(pid)?)))
                .collect();
            writeln!(
                out,
                "| {rate:.0} | {settled:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                load::percentiles(create),
                load::percentiles(&checked.commit_to_outcome),
                load::percentiles(&recorder.histograms["outcome visible on GET"]),
                if endpoints > 0 {
                    load::percentiles(&checked.webhook)
                } else {
                    "–".into()
                },
                load::percentiles(&recorder.histograms["capture"]),
                load::percentiles(&recorder.histograms["refund"]),
                errors,
                checked.lost,
                rss.join(", "),
            )?;
            if !recorder.errors.is_empty() {
                writeln!(out, "|   | errors: {:?} ||||||||||", recorder.errors)?;
            }
            if create.is_empty() || p99_create > options.knee_p99 {
                break;
            }
            knee = Some(rate);
        }
        writeln!(
            out,
            "\nKnee (highest rate with p99 create ≤ {} ms): {}\n",
            options.knee_p99.as_millis(),
            knee.map_or_else(
                || "below the first step".to_owned(),
                |rate| format!("{rate:.0} payments/s")
            )
        )?;
        for (rate, budget) in budgets {
            writeln!(
                out,
                "Budget at {rate:.0} payments/s offered, {}",
                budget.render()
            )?;
        }
    }
    let (bad, unreadable) = receiver.refused();
    report.bad_signatures = bad + unreadable;
    writeln!(
        out,
        "Webhooks refused by the receiver (bad signature or body): {}\n",
        report.bad_signatures
    )?;
    writeln!(out, "| service | peak RSS (VmHWM) |\n|---|---|")?;
    for (name, pid) in processes.services() {
        if let Some(mib) = budget::peak_rss_mib(pid) {
            writeln!(out, "| {name} | {mib:.1} MiB |")?;
        }
    }
    writeln!(out, "\nLost in total: {}", report.lost)?;
    Ok(report)
}

struct Checked {
    lost: u64,
    commit_to_outcome: Histogram<u64>,
    webhook: Histogram<u64>,
}

fn since(later: SystemTime, earlier: SystemTime) -> u64 {
    let micros = later
        .duration_since(earlier)
        .map_or(0, |elapsed| elapsed.as_micros());
    u64::try_from(micros).unwrap_or(u64::MAX).max(1)
}

/// Waits (bounded by `drain`) until every accepted payment has its outcome
/// and its refund processed in the store, and, with endpoints, every final
/// event has reached its endpoint; what is still missing then is lost.
async fn check(
    store: &PgEventStore,
    recorder: &Recorder,
    endpoints: bool,
    receiver: &Receiver,
    drain: Duration,
) -> anyhow::Result<Checked> {
    let ids: Vec<String> = recorder
        .made
        .iter()
        .map(|made| made.payment_id.clone())
        .collect();
    let deadline = Instant::now() + drain;
    loop {
        let times = load::stored_times(store, &ids).await?;
        let expected = expected_webhooks(recorder, &times);
        let arrivals = receiver.arrivals();
        let received: HashSet<(String, String, Option<String>)> = arrivals
            .iter()
            .map(|arrival| {
                (
                    arrival.payment_id.clone(),
                    arrival.event.clone(),
                    arrival.refund_id.clone(),
                )
            })
            .collect();
        let mut lost = 0;
        for made in &recorder.made {
            let stored = times.get(&made.payment_id);
            if stored.and_then(|stored| stored.outcome.as_ref()).is_none() {
                lost += 1;
            }
            if let Some(refund) = &made.refund_id {
                if !stored.is_some_and(|stored| stored.refund_processed.contains_key(refund)) {
                    lost += 1;
                }
            }
        }
        if endpoints {
            lost += expected
                .iter()
                .filter(|key| !received.contains(*key))
                .count() as u64;
        }
        if lost == 0 || Instant::now() >= deadline {
            let mut commit_to_outcome = load::histogram();
            let mut webhook = load::histogram();
            for stored in times.values() {
                if let (Some(created), Some((_, outcome))) = (stored.created, &stored.outcome) {
                    commit_to_outcome.saturating_record(since(*outcome, created));
                }
            }
            if endpoints {
                for arrival in &arrivals {
                    let Some(stored) = times.get(&arrival.payment_id) else {
                        continue;
                    };
                    let source = match arrival.event.as_str() {
                        "payment.created" | "payment.pending" => stored.created,
                        "payment.success" | "payment.failed" => {
                            stored.outcome.as_ref().map(|(_, at)| *at)
                        }
                        "refund.created" => arrival
                            .refund_id
                            .as_ref()
                            .and_then(|id| stored.refund_created.get(id).copied()),
                        "refund.processed" => arrival
                            .refund_id
                            .as_ref()
                            .and_then(|id| stored.refund_processed.get(id).copied()),
                        _ => None,
                    };
                    if let Some(source) = source {
                        webhook.saturating_record(since(arrival.at, source));
                    }
                }
            }
            return Ok(Checked {
                lost,
                commit_to_outcome,
                webhook,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `(payment, event, refund)` of every webhook the step's payments must
/// produce, from what the store says happened to them.
fn expected_webhooks(
    recorder: &Recorder,
    times: &std::collections::HashMap<String, StoredTimes>,
) -> Vec<(String, String, Option<String>)> {
    let mut expected = Vec::new();
    for made in &recorder.made {
        let Some(stored) = times.get(&made.payment_id) else {
            continue;
        };
        let payment = |event: &str| (made.payment_id.clone(), event.to_owned(), None);
        expected.push(payment("payment.created"));
        expected.push(payment("payment.pending"));
        if let Some((status, _)) = &stored.outcome {
            expected.push(payment(&format!("payment.{status}")));
        }
        for refund in stored.refund_created.keys() {
            expected.push((
                made.payment_id.clone(),
                "refund.created".into(),
                Some(refund.clone()),
            ));
        }
        for refund in stored.refund_processed.keys() {
            expected.push((
                made.payment_id.clone(),
                "refund.processed".into(),
                Some(refund.clone()),
            ));
        }
    }
    expected
}

/// Options from the environment (`PAYSTREAM_E2E_*`); `smoke` picks the
/// smoke mode's defaults (a few seconds at 20 payments/s, one endpoint per
/// merchant, no baselines).
pub fn options_from_env(smoke: bool) -> Options {
    fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    }
    fn list<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
        std::env::var(name)
            .unwrap_or_else(|_| default.to_owned())
            .split(',')
            .filter_map(|item| item.trim().parse().ok())
            .collect()
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    Options {
        base_url: var("PAYSTREAM_E2E_BASE_URL", "http://localhost:8000".to_owned()),
        database_url: var(
            "PAYSTREAM_E2E_DATABASE_URL",
            "postgres://paystream:paystream@127.0.0.1:5432/paystream".to_owned(),
        ),
        nats_url: var("PAYSTREAM_E2E_NATS_URL", "nats://127.0.0.1:4222".to_owned()),
        stream_name: var("PAYSTREAM_E2E_STREAM", "PAYSTREAM_EVENTS".to_owned()),
        pid_dir: var("PAYSTREAM_E2E_PID_DIR", repo.join(".run").join("pids")),
        rates: list(
            "PAYSTREAM_E2E_RATES",
            if smoke {
                "20"
            } else {
                "50,100,200,300,400,600,800,1000,1200"
            },
        ),
        step: Duration::from_secs(var(
            "PAYSTREAM_E2E_STEP_SECONDS",
            if smoke { 3 } else { 15 },
        )),
        merchants: var("PAYSTREAM_E2E_MERCHANTS", if smoke { 4 } else { 32 }),
        endpoint_modes: list("PAYSTREAM_E2E_ENDPOINTS", if smoke { "1" } else { "0,1" }),
        path: match std::env::var("PAYSTREAM_E2E_PATH").as_deref() {
            Ok("settle") => Path::Settle,
            _ => Path::Full,
        },
        baseline_seconds: var("PAYSTREAM_E2E_BASELINE_SECONDS", if smoke { 0 } else { 5 }),
        knee_p99: Duration::from_millis(var("PAYSTREAM_E2E_KNEE_P99_MS", 100)),
        drain: Duration::from_secs(var("PAYSTREAM_E2E_DRAIN_SECONDS", 60)),
    }
}
