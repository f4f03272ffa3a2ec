//! The open-model load: payments start at a constant rate whatever the
//! system's answers (so a slow system shows as latency, not as a slower
//! client), each through the path a merchant takes: order, payment, outcome
//! (polled with `GET` until final), and on the full path capture and a
//! partial refund.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use paystream_store::{EventStore, PgEventStore, StoreError, StreamId};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::api::{Api, Auth, Merchant};

/// What each payment does after it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Order, payment, outcome.
    Settle,
    /// Also capture and a partial refund, once the payment succeeded.
    Full,
}

/// Most payments in flight at once in the generator; past it a start is
/// counted as `GENERATOR_SATURATED` instead of piling up.
const MAX_IN_FLIGHT: usize = 20_000;
/// Longest a payment is polled for its outcome.
const OUTCOME_WAIT: Duration = Duration::from_secs(60);
pub const AMOUNT: i64 = 50_000;
pub const REFUND: i64 = 10_000;

/// The stages, each a histogram of microseconds.
pub const STAGES: [&str; 6] = [
    "order",
    "create",
    "outcome visible on GET",
    "capture",
    "refund",
    "commit to outcome",
];

/// One payment the generator made.
#[derive(Debug, Clone)]
pub struct Made {
    pub merchant: usize,
    pub payment_id: String,
    /// When `POST /payments` answered 201.
    pub created_at: SystemTime,
    pub final_status: Option<String>,
    pub refund_id: Option<String>,
}

#[derive(Debug)]
pub struct Recorder {
    pub histograms: BTreeMap<&'static str, Histogram<u64>>,
    pub errors: BTreeMap<String, u64>,
    pub made: Vec<Made>,
    /// When each payment was first seen final, for the settled rate.
    pub settled_at: Vec<Instant>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            histograms: STAGES.iter().map(|stage| (*stage, histogram())).collect(),
            errors: BTreeMap::new(),
            made: Vec::new(),
            settled_at: Vec::new(),
        }
    }
}

pub fn histogram() -> Histogram<u64> {
    // 1 µs to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

impl Recorder {
    pub fn record(&mut self, stage: &'static str, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        if let Some(histogram) = self.histograms.get_mut(stage) {
            histogram.saturating_record(micros);
        }
    }

    pub fn error(&mut self, what: &str, code: String) {
        *self.errors.entry(format!("{what}: {code}")).or_default() += 1;
    }
}

type Shared = Arc<Mutex<Recorder>>;

fn lock(recorder: &Shared) -> std::sync::MutexGuard<'_, Recorder> {
    recorder
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One step: payments start at `rate` per second for `duration`, spread
/// round robin over `merchants`; returns once every started payment has
/// finished its path (or given up).
pub async fn step(
    api: &Api,
    merchants: &[Merchant],
    rate: f64,
    duration: Duration,
    path: Path,
) -> Recorder {
    let recorder: Shared = Arc::default();
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for n in 0..total {
        // The n-th start is due at start + n × period, whatever happened before.
        tokio::time::sleep_until(start + period.mul_f64(n as f64)).await;
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            lock(&recorder).error("start", "GENERATOR_SATURATED".into());
            continue;
        };
        let index = usize::try_from(n).unwrap_or_default() % merchants.len().max(1);
        let (api, merchant, recorder) = (api.clone(), merchants[index].clone(), recorder.clone());
        tasks.push(tokio::spawn(async move {
            one_payment(&api, index, &merchant, path, &recorder).await;
            drop(slot);
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    Arc::try_unwrap(recorder)
        .map(|mutex| {
            mutex
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        })
        .unwrap_or_else(|shared| std::mem::take(&mut *lock(&shared)))
}

async fn one_payment(api: &Api, index: usize, merchant: &Merchant, path: Path, recorder: &Shared) {
    let auth = Auth::Merchant(merchant);
    let started = Instant::now();
    let order = match api
        .post(
            "/api/v1/orders",
            auth,
            &json!({"amount": AMOUNT, "currency": "INR"}),
        )
        .await
    {
        Ok(answer) if answer.status == 201 => answer,
        Ok(answer) => return lock(recorder).error("order", answer.error_code()),
        Err(error) => return lock(recorder).error("order", transport(&error)),
    };
    lock(recorder).record("order", started.elapsed());
    let payment = match api
        .post(
            "/api/v1/payments",
            auth,
            &json!({"order_id": order.body["id"], "method": "upi", "vpa": "success@upi"}),
        )
        .await
    {
        Ok(answer) if answer.status == 201 => answer,
        Ok(answer) => return lock(recorder).error("payment", answer.error_code()),
        Err(error) => return lock(recorder).error("payment", transport(&error)),
    };
    let created = Instant::now();
    let payment_id = payment.body["id"].as_str().unwrap_or_default().to_owned();
    {
        let mut recorder = lock(recorder);
        recorder.record("create", created.duration_since(started));
        recorder.made.push(Made {
            merchant: index,
            payment_id: payment_id.clone(),
            created_at: SystemTime::now(),
            final_status: None,
            refund_id: None,
        });
    }

    // The outcome, as a client polling GET sees it.
    let mut wait = Duration::from_millis(5);
    let status = loop {
        if created.elapsed() > OUTCOME_WAIT {
            lock(recorder).error("outcome", "NOT_FINAL_WITHIN_60S".into());
            return;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(100));
        match api
            .get(&format!("/api/v1/payments/{payment_id}"), auth)
            .await
        {
            Ok(answer) if answer.status == 200 => match answer.body["status"].as_str() {
                Some(status @ ("success" | "failed")) => break status.to_owned(),
                _ => continue,
            },
            Ok(answer) => lock(recorder).error("get payment", answer.error_code()),
            Err(error) => lock(recorder).error("get payment", transport(&error)),
        }
    };
    {
        let mut recorder = lock(recorder);
        recorder.record("outcome visible on GET", created.elapsed());
        recorder.settled_at.push(Instant::now());
        if let Some(made) = recorder
            .made
            .iter_mut()
            .rev()
            .find(|made| made.payment_id == payment_id)
        {
            made.final_status = Some(status.clone());
        }
    }
    if path == Path::Settle || status != "success" {
        return;
    }

    let at = Instant::now();
    match api
        .post(
            &format!("/api/v1/payments/{payment_id}/capture"),
            auth,
            &json!({"amount": AMOUNT}),
        )
        .await
    {
        Ok(answer) if answer.status == 200 => lock(recorder).record("capture", at.elapsed()),
        Ok(answer) => return lock(recorder).error("capture", answer.error_code()),
        Err(error) => return lock(recorder).error("capture", transport(&error)),
    }
    let at = Instant::now();
    match api
        .post(
            &format!("/api/v1/payments/{payment_id}/refunds"),
            auth,
            &json!({"amount": REFUND, "reason": "load test"}),
        )
        .await
    {
        Ok(answer) if answer.status == 201 => {
            let mut recorder = lock(recorder);
            recorder.record("refund", at.elapsed());
            let refund_id = answer.body["id"].as_str().map(str::to_owned);
            if let Some(made) = recorder
                .made
                .iter_mut()
                .rev()
                .find(|made| made.payment_id == payment_id)
            {
                made.refund_id = refund_id;
            }
        }
        Ok(answer) => lock(recorder).error("refund", answer.error_code()),
        Err(error) => lock(recorder).error("refund", transport(&error)),
    }
}

fn transport(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "TIMEOUT".into()
    } else if error.is_connect() {
        "CONNECT".into()
    } else {
        "TRANSPORT".into()
    }
}

/// `p50 / p99 / p99.9` in milliseconds, with the count.
pub fn percentiles(histogram: &Histogram<u64>) -> String {
    if histogram.is_empty() {
        return "–".into();
    }
    let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    format!(
        "{:.1} / {:.1} / {:.1} (n={})",
        ms(0.5),
        ms(0.99),
        ms(0.999),
        histogram.len()
    )
}

/// Payments settled per second: those that became final, over the time
/// from the step's start to the last of them.
pub fn settled_rate(recorder: &Recorder, start: Instant) -> f64 {
    match recorder.settled_at.iter().max() {
        Some(last) => {
            recorder.settled_at.len() as f64 / last.duration_since(start).as_secs_f64().max(1e-9)
        }
        None => 0.0,
    }
}

/// The source event times of every payment, from the store: when it was
/// created, got its outcome, and when each refund was created and processed.
#[derive(Debug, Clone, Default)]
pub struct StoredTimes {
    pub created: Option<SystemTime>,
    pub outcome: Option<(String, SystemTime)>,
    pub refund_created: HashMap<String, SystemTime>,
    pub refund_processed: HashMap<String, SystemTime>,
}

/// Reads the payments' events, through the store's port like every reader
/// of the log.
pub async fn stored_times(
    store: &PgEventStore,
    payment_ids: &[String],
) -> anyhow::Result<HashMap<String, StoredTimes>> {
    let mut times: HashMap<String, StoredTimes> = HashMap::new();
    for chunk in payment_ids.chunks(5_000) {
        let streams = chunk
            .iter()
            .map(|id| Ok((StreamId::new("payment", id)?, u64::MAX)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let events = store.read_streams(&streams).await?;
        for event in events {
            let stream = event.stream_id.as_str();
            let event_type = event.event_type.as_str();
            let recorded_at = event.recorded_at;
            let refund_id = event
                .payload
                .get("refund_id")
                .and_then(|id| id.as_str())
                .map(str::to_owned);
            let payment_id = stream.trim_start_matches("payment-").to_owned();
            let at = SystemTime::from(recorded_at);
            let entry = times.entry(payment_id).or_default();
            match (event_type, refund_id) {
                ("PaymentCreated", _) => entry.created = Some(at),
                ("PaymentSucceeded", _) => entry.outcome = Some(("success".into(), at)),
                ("PaymentFailed", _) => entry.outcome = Some(("failed".into(), at)),
                ("RefundCreated", Some(refund)) => {
                    entry.refund_created.insert(refund, at);
                }
                ("RefundProcessed", Some(refund)) => {
                    entry.refund_processed.insert(refund, at);
                }
                _ => {}
            }
        }
    }
    Ok(times)
}
