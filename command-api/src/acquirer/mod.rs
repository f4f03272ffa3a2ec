//! The simulated acquirer: a durable JetStream consumer that turns
//! `PaymentCreated` and `RefundCreated` events into outcomes, recorded as
//! domain commands.
//!
//! # Processing (contract)
//!
//! * A payment waits a random 5–10 s, then succeeds with probability 0.90
//!   (UPI) or 0.95 (card); a random failure is `PAYMENT_FAILED`, "Payment
//!   declined by the bank".
//! * A refund waits a random 3–5 s, then is processed.
//! * `TEST_MODE=true`: every delay is `TEST_PROCESSING_DELAY` ms (default
//!   1000) and a payment's outcome is `TEST_PAYMENT_SUCCESS` (default true).
//! * Delays count from when the event was recorded, so a message redelivered
//!   after a crash does not wait all over again; they are never longer than
//!   the chosen delay, whatever the clocks say.
//! * The random choices are a hash of the payment (or refund) id: a
//!   redelivered message gets the same delay and the same outcome.
//!
//! # Magic test inputs (every mode, including the random one)
//!
//! | input | outcome |
//! |---|---|
//! | VPA whose local part is `fail` (e.g. `fail@upi`) | failed: `PAYMENT_FAILED`, "Payment declined by the bank (test VPA)" |
//! | VPA whose local part is `success` (e.g. `success@upi`) | success |
//! | card ending in `0002` (e.g. `4000 0000 0000 0002`) | failed: `CARD_DECLINED`, "Card declined by the issuer (test card)" |
//!
//! The local part is compared ignoring ASCII case. There are no others.
//!
//! A payment the bank accepted for an order another payment already paid is
//! recorded failed with `ORDER_ALREADY_PAID` (an order is paid at most once).
//!
//! # Delivery
//!
//! * Durable pull consumer (default name `acquirer`) on the relay's stream,
//!   filter `{prefix}.payment.>` (one filter subject: NATS 2.9). Events other
//!   than `PaymentCreated`/`RefundCreated` are acknowledged and ignored.
//! * Explicit acks, sent only once the outcome is recorded or found already
//!   recorded. While a message is being worked on, an in-progress ack is sent
//!   every third of `ack_wait`, so a slow database does not cause redelivery
//!   to a live acquirer; a dead one's messages come back after `ack_wait`.
//! * At most `max_in_flight` messages at once (a semaphore, and the
//!   consumer's `max_ack_pending`). The delay is a timer: no database
//!   connection is held while waiting.
//! * Exactly one outcome per payment, even with duplicate deliveries or a kill
//!   between steps: see [`record`].
//! * A failed job is handed back (`nak`) with a jittered back-off of 1 s
//!   doubling to 60 s, and retried for ever: no event is ever skipped.
//! * NATS or PostgreSQL restarts: the consumer and its message stream are
//!   re-created after any error, with a jittered back-off (100 ms doubling to
//!   `backoff_max`). Until the relay has created the stream, the acquirer
//!   waits the same way.
//!
//! Nothing logged carries card data or VPAs: payment id, outcome, rule.

pub mod outcome;
pub mod record;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use chrono::Utc;
use futures::StreamExt;
use rand::Rng;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use self::outcome::ProcessingMode;
use self::record::{Job, Recorded};
use crate::config::Config;
use paystream_store::backoff::backoff;
use paystream_store::relay::RelayConfig;
use paystream_store::runner::CommandError;
use paystream_store::{PgEventStore, RecordedEvent};

/// Environment variables read by [`AcquirerConfig::from_env`].
pub mod env {
    pub const TEST_MODE: &str = "TEST_MODE";
    pub const TEST_PROCESSING_DELAY: &str = "TEST_PROCESSING_DELAY";
    pub const TEST_PAYMENT_SUCCESS: &str = "TEST_PAYMENT_SUCCESS";
    pub const CONSUMER: &str = "PAYSTREAM_ACQUIRER_CONSUMER";
    pub const MAX_IN_FLIGHT: &str = "PAYSTREAM_ACQUIRER_MAX_IN_FLIGHT";
    pub const ACK_WAIT_MS: &str = "PAYSTREAM_ACQUIRER_ACK_WAIT_MS";
}

/// Longest `TEST_PROCESSING_DELAY`, in milliseconds.
pub const MAX_TEST_DELAY_MS: u64 = 300_000;
/// Most messages in flight at once.
pub const MAX_IN_FLIGHT: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquirerConfig {
    /// Durable consumer name (`PAYSTREAM_ACQUIRER_CONSUMER`, default `acquirer`).
    pub consumer_name: String,
    /// `TEST_MODE`, `TEST_PROCESSING_DELAY`, `TEST_PAYMENT_SUCCESS`.
    pub mode: ProcessingMode,
    /// Messages processed at once, and the consumer's `max_ack_pending`
    /// (`PAYSTREAM_ACQUIRER_MAX_IN_FLIGHT`, default 1024).
    pub max_in_flight: usize,
    /// How long JetStream waits for an ack before redelivering
    /// (`PAYSTREAM_ACQUIRER_ACK_WAIT_MS`, default 30 000); longer than the
    /// longest delay.
    pub ack_wait: Duration,
    /// Longest back-off between attempts to (re)connect the consumer.
    pub backoff_max: Duration,
    /// The server sends a heartbeat this often while idle; two missed ones
    /// make the acquirer re-create its message stream.
    pub idle_heartbeat: Duration,
}

impl Default for AcquirerConfig {
    fn default() -> Self {
        Self {
            consumer_name: "acquirer".into(),
            mode: ProcessingMode::Simulated,
            max_in_flight: 1024,
            ack_wait: Duration::from_secs(30),
            backoff_max: Duration::from_secs(5),
            idle_heartbeat: Duration::from_secs(5),
        }
    }
}

/// A setting that cannot be used; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("acquirer configuration: {0}")]
pub struct AcquirerConfigError(String);

impl AcquirerConfig {
    /// Reads the process environment (see [`env`]) over the defaults.
    pub fn from_env() -> Result<Self, AcquirerConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env) with any source of variables (an
    /// empty value counts as unset).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, AcquirerConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let mut config = Self::default();
        let test_mode = get(env::TEST_MODE)
            .map(|value| parse_bool(env::TEST_MODE, &value))
            .transpose()?
            .unwrap_or(false);
        let delay = get(env::TEST_PROCESSING_DELAY)
            .map(|value| parse_u64(env::TEST_PROCESSING_DELAY, &value, 0..=MAX_TEST_DELAY_MS))
            .transpose()?
            .unwrap_or(1000);
        let payment_success = get(env::TEST_PAYMENT_SUCCESS)
            .map(|value| parse_bool(env::TEST_PAYMENT_SUCCESS, &value))
            .transpose()?
            .unwrap_or(true);
        if test_mode {
            config.mode = ProcessingMode::Test {
                delay: Duration::from_millis(delay),
                payment_success,
            };
        }
        if let Some(name) = get(env::CONSUMER) {
            config.consumer_name = name;
        }
        if let Some(value) = get(env::MAX_IN_FLIGHT) {
            config.max_in_flight =
                parse_u64(env::MAX_IN_FLIGHT, &value, 1..=MAX_IN_FLIGHT as u64)? as usize;
        }
        if let Some(value) = get(env::ACK_WAIT_MS) {
            config.ack_wait =
                Duration::from_millis(parse_u64(env::ACK_WAIT_MS, &value, 1..=24 * 3600 * 1000)?);
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings together.
    pub fn validate(&self) -> Result<(), AcquirerConfigError> {
        let name = &self.consumer_name;
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(AcquirerConfigError(format!(
                "{} must be 1 to 64 letters, digits, '-' or '_', got {name:?}",
                env::CONSUMER
            )));
        }
        if !(1..=MAX_IN_FLIGHT).contains(&self.max_in_flight) {
            return Err(AcquirerConfigError(format!(
                "{} must be between 1 and {MAX_IN_FLIGHT}, got {}",
                env::MAX_IN_FLIGHT,
                self.max_in_flight
            )));
        }
        let longest = self.mode.longest_delay();
        if self.ack_wait <= longest {
            return Err(AcquirerConfigError(format!(
                "{} ({} ms) must be longer than the longest processing delay ({} ms)",
                env::ACK_WAIT_MS,
                self.ack_wait.as_millis(),
                longest.as_millis()
            )));
        }
        if self.backoff_max.is_zero() || self.idle_heartbeat.is_zero() {
            return Err(AcquirerConfigError(
                "backoff_max and idle_heartbeat must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The subject the consumer filters on.
    pub fn filter_subject(relay: &RelayConfig) -> String {
        format!("{}.payment.>", relay.subject_prefix)
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, AcquirerConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(AcquirerConfigError(format!(
            "{name} must be true or false, got {value:?}"
        ))),
    }
}

fn parse_u64(
    name: &str,
    value: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, AcquirerConfigError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|number| range.contains(number))
        .ok_or_else(|| {
            AcquirerConfigError(format!(
                "{name} must be a whole number from {} to {}, got {value:?}",
                range.start(),
                range.end()
            ))
        })
}

/// Live counters, for `/api/v1/test/jobs/status` and metrics.
#[derive(Debug, Default)]
pub struct AcquirerStats {
    pending: AtomicU64,
    processing: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    running: AtomicBool,
}

/// One reading of [`AcquirerStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AcquirerStatsSnapshot {
    /// Jobs waiting out their processing delay.
    pub pending: u64,
    /// Jobs recording their outcome.
    pub processing: u64,
    /// Jobs done since start: outcome recorded, or found already recorded.
    pub completed: u64,
    /// Attempts that failed since start (each is retried later).
    pub failed: u64,
    /// The consumer is connected and pulling.
    pub running: bool,
}

impl AcquirerStats {
    pub fn snapshot(&self) -> AcquirerStatsSnapshot {
        AcquirerStatsSnapshot {
            pending: self.pending.load(Ordering::Relaxed),
            processing: self.processing.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
        }
    }

    /// `"running"` or `"stopped"`, as in the contract's job status.
    pub fn worker_status(&self) -> &'static str {
        if self.running.load(Ordering::Relaxed) {
            "running"
        } else {
            "stopped"
        }
    }
}

impl AcquirerStatsSnapshot {
    pub fn worker_status(&self) -> &'static str {
        if self.running {
            "running"
        } else {
            "stopped"
        }
    }
}

/// Counts one job in a gauge for as long as it lives (also on cancellation).
struct Gauge<'a>(&'a AtomicU64);

impl<'a> Gauge<'a> {
    fn enter(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A running acquirer task and its counters.
#[derive(Debug)]
pub struct AcquirerHandle {
    stats: Arc<AcquirerStats>,
    task: JoinHandle<()>,
}

impl AcquirerHandle {
    pub fn stats(&self) -> Arc<AcquirerStats> {
        self.stats.clone()
    }

    /// Stops pulling. Jobs already started finish on their own tasks.
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Starts [`run_with_stats`] on a task of its own.
pub fn spawn(
    store: PgEventStore,
    jetstream: jetstream::Context,
    relay: RelayConfig,
    config: AcquirerConfig,
) -> AcquirerHandle {
    let stats = Arc::new(AcquirerStats::default());
    let task = tokio::spawn(run_with_stats(
        store,
        jetstream,
        relay,
        config,
        stats.clone(),
    ));
    AcquirerHandle { stats, task }
}

/// Runs the acquirer for ever, recovering from every error.
pub async fn run(
    store: PgEventStore,
    jetstream: jetstream::Context,
    relay: RelayConfig,
    config: AcquirerConfig,
) {
    run_with_stats(store, jetstream, relay, config, Arc::default()).await;
}

/// [`run`], counting into `stats`.
pub async fn run_with_stats(
    store: PgEventStore,
    jetstream: jetstream::Context,
    relay: RelayConfig,
    config: AcquirerConfig,
    stats: Arc<AcquirerStats>,
) {
    if let Err(error) = config.validate() {
        // `from_env` refuses such settings; a hand-built config still runs.
        tracing::error!(%error, "acquirer started with invalid settings");
    }
    let config = Arc::new(AcquirerConfig {
        max_in_flight: config.max_in_flight.clamp(1, MAX_IN_FLIGHT),
        ..config
    });
    let slots = Arc::new(Semaphore::new(config.max_in_flight));
    let mut failures: u32 = 0;
    tracing::info!(
        consumer = %config.consumer_name,
        stream = %relay.stream_name,
        mode = ?config.mode,
        max_in_flight = config.max_in_flight,
        "acquirer starting"
    );
    loop {
        let result = consume(
            &store,
            &jetstream,
            &relay,
            &config,
            &stats,
            &slots,
            &mut failures,
        )
        .await;
        stats.running.store(false, Ordering::Relaxed);
        failures = failures.saturating_add(1);
        match result {
            Err(ConsumeError::NoStream(error)) => {
                tracing::info!(stream = %relay.stream_name, %error, "acquirer waiting for the relay to create the stream");
            }
            Err(error) => tracing::warn!(%error, failures, "acquirer error; reconnecting"),
            Ok(()) => tracing::warn!(failures, "acquirer message stream ended; reconnecting"),
        }
        tokio::time::sleep(backoff(failures, config.backoff_max)).await;
    }
}

/// Connects store and NATS from the command API's configuration, and runs
/// the acquirer for ever (`command-api acquirer`).
pub async fn run_standalone(config: Config) -> anyhow::Result<()> {
    let acquirer = AcquirerConfig::from_env()?;
    let store = PgEventStore::connect(
        config.database.database_url.expose(),
        config.database.database_max_connections,
    )
    .await?;
    let nats = paystream_kit::nats::connect(&config.nats, "paystream-acquirer").await?;
    run(
        store,
        paystream_kit::nats::jetstream(&nats),
        config.relay(),
        acquirer,
    )
    .await;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum ConsumeError {
    #[error("{0}")]
    NoStream(String),
    #[error("NATS: {0}")]
    Nats(String),
}

fn nats_error(error: impl std::fmt::Display) -> ConsumeError {
    ConsumeError::Nats(error.to_string())
}

/// One life of the consumer: until its message stream fails or ends.
async fn consume(
    store: &PgEventStore,
    jetstream: &jetstream::Context,
    relay: &RelayConfig,
    config: &Arc<AcquirerConfig>,
    stats: &Arc<AcquirerStats>,
    slots: &Arc<Semaphore>,
    failures: &mut u32,
) -> Result<(), ConsumeError> {
    let stream = match jetstream.get_stream(&relay.stream_name).await {
        Ok(stream) => stream,
        Err(error) => {
            if let jetstream::context::GetStreamErrorKind::JetStream(inner) = error.kind() {
                if inner.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND {
                    return Err(ConsumeError::NoStream(error.to_string()));
                }
            }
            return Err(nats_error(error));
        }
    };
    let consumer = ensure_consumer(&stream, relay, config).await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(config.max_in_flight.min(256))
        .expires(Duration::from_secs(30))
        .heartbeat(config.idle_heartbeat)
        .messages()
        .await
        .map_err(nats_error)?;
    stats.running.store(true, Ordering::Relaxed);
    tracing::info!(consumer = %config.consumer_name, "acquirer consuming");
    loop {
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let message = match messages.next().await {
            None => return Ok(()),
            Some(Err(error)) => return Err(nats_error(error)),
            Some(Ok(message)) => message,
        };
        *failures = 0;
        tokio::spawn(handle(
            store.clone(),
            config.clone(),
            stats.clone(),
            message,
            slot,
        ));
    }
}

/// Gets the durable consumer, creating it when missing; brings its settings
/// up to date when they changed (if the server allows it).
async fn ensure_consumer(
    stream: &jetstream::stream::Stream,
    relay: &RelayConfig,
    config: &AcquirerConfig,
) -> Result<consumer::PullConsumer, ConsumeError> {
    let wanted = consumer::pull::Config {
        durable_name: Some(config.consumer_name.clone()),
        description: Some("Paystream simulated acquirer".into()),
        filter_subject: AcquirerConfig::filter_subject(relay),
        deliver_policy: consumer::DeliverPolicy::All,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: config.ack_wait,
        max_ack_pending: i64::try_from(config.max_in_flight).unwrap_or(i64::MAX),
        ..Default::default()
    };
    let consumer = stream
        .get_or_create_consumer(&config.consumer_name, wanted.clone())
        .await
        .map_err(nats_error)?;
    let current = &consumer.cached_info().config;
    if current.filter_subject != wanted.filter_subject
        || current.ack_wait != wanted.ack_wait
        || current.max_ack_pending != wanted.max_ack_pending
    {
        match stream.create_consumer(wanted).await {
            Ok(updated) => {
                tracing::info!(consumer = %config.consumer_name, "acquirer consumer settings updated");
                return Ok(updated);
            }
            Err(error) => {
                tracing::warn!(consumer = %config.consumer_name, %error, "could not update the acquirer consumer's settings; using them as they are");
            }
        }
    }
    Ok(consumer)
}

/// One message, on its own task, holding one of the in-flight slots.
async fn handle(
    store: PgEventStore,
    config: Arc<AcquirerConfig>,
    stats: Arc<AcquirerStats>,
    message: jetstream::Message,
    _slot: OwnedSemaphorePermit,
) {
    let delivered = message.info().map_or(1, |info| info.delivered);
    let event: RecordedEvent = match serde_json::from_slice(&message.payload) {
        Ok(event) => event,
        Err(error) => {
            tracing::error!(subject = %message.subject, %error, delivered, "unreadable event message; will retry");
            stats.failed.fetch_add(1, Ordering::Relaxed);
            nak(&message, delivered).await;
            return;
        }
    };
    let job = match record::job_of(&event) {
        Ok(Some(job)) => job,
        Ok(None) => {
            ack(&message, &event).await;
            return;
        }
        Err(error) => {
            tracing::error!(event_id = %event.event_id, stream = %event.stream_id, %error, delivered, "unreadable event; will retry");
            stats.failed.fetch_add(1, Ordering::Relaxed);
            nak(&message, delivered).await;
            return;
        }
    };
    let work = process(&store, config.mode, &stats, &event, job);
    match with_progress(&message, config.ack_wait / 3, work).await {
        Ok((object, recorded)) => {
            stats.completed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(id = %object.id, decided_by = object.decided_by, outcome = recorded.label(), delivered, "acquirer recorded");
            ack(&message, &event).await;
        }
        Err((object, error)) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(id = %object.id, %error, delivered, "acquirer could not record an outcome; will retry");
            nak(&message, delivered).await;
        }
    }
}

/// What a job was about, for logs.
struct Object {
    id: String,
    decided_by: &'static str,
}

/// Waits the delay (no connection held), then records the outcome.
async fn process(
    store: &PgEventStore,
    mode: ProcessingMode,
    stats: &AcquirerStats,
    event: &RecordedEvent,
    job: Job,
) -> Result<(Object, Recorded), (Object, CommandError)> {
    let metadata = record::metadata_for(event, &job);
    let (object, delay) = match &job {
        Job::Payment(payment) => {
            let decision = outcome::decide_payment(payment, mode);
            let object = Object {
                id: payment.payment_id.to_string(),
                decided_by: decision.decided_by.as_str(),
            };
            (object, decision.delay)
        }
        Job::Refund(refund) => (
            Object {
                id: refund.refund_id.to_string(),
                decided_by: "refund",
            },
            outcome::refund_delay(&refund.refund_id, mode),
        ),
    };
    let elapsed = (Utc::now() - event.recorded_at).to_std().ok();
    {
        let _pending = Gauge::enter(&stats.pending);
        tokio::time::sleep(outcome::remaining(delay, elapsed)).await;
    }
    let _processing = Gauge::enter(&stats.processing);
    let result = match &job {
        Job::Payment(payment) => {
            let decided = outcome::decide_payment(payment, mode).outcome;
            record::record_payment(store, &metadata, payment, decided).await
        }
        Job::Refund(refund) => record::record_refund(store, &metadata, refund).await,
    };
    match result {
        Ok(recorded) => Ok((object, recorded)),
        Err(error) => Err((object, error)),
    }
}

/// Runs `work`, telling JetStream every `every` that the message is still
/// being worked on, so a live acquirer never gets it redelivered.
async fn with_progress<F: Future>(
    message: &jetstream::Message,
    every: Duration,
    work: F,
) -> F::Output {
    tokio::pin!(work);
    let every = every.max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = ticks.tick() => {
                if let Err(error) = message.ack_with(AckKind::Progress).await {
                    tracing::debug!(%error, "in-progress ack failed");
                }
            }
        }
    }
}

async fn ack(message: &jetstream::Message, event: &RecordedEvent) {
    if let Err(error) = message.ack().await {
        // The message comes back after ack_wait and is found already recorded.
        tracing::warn!(event_id = %event.event_id, %error, "ack failed");
    }
}

async fn nak(message: &jetstream::Message, delivered: i64) {
    let delay = retry_delay(delivered);
    if let Err(error) = message.ack_with(AckKind::Nak(Some(delay))).await {
        tracing::warn!(%error, "nak failed; the message comes back after ack_wait");
    }
}

/// 1 s doubling per delivery up to 60 s, with ±50 % jitter.
fn retry_delay(delivered: i64) -> Duration {
    let doublings = u32::try_from(delivered.saturating_sub(1).clamp(0, 6)).unwrap_or(6);
    let base = Duration::from_secs(1 << doublings).min(Duration::from_secs(60));
    base.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<AcquirerConfig, AcquirerConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        AcquirerConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_are_the_contract_simulation() {
        let config = config(&[]).unwrap();
        assert_eq!(config, AcquirerConfig::default());
        assert_eq!(config.mode, ProcessingMode::Simulated);
        assert_eq!(config.consumer_name, "acquirer");
        assert_eq!(config.max_in_flight, 1024);
        assert_eq!(config.ack_wait, Duration::from_secs(30));
        // Test settings without TEST_MODE are checked but not used.
        assert_eq!(
            self::config(&[("TEST_PROCESSING_DELAY", "5")])
                .unwrap()
                .mode,
            ProcessingMode::Simulated
        );
    }

    #[test]
    fn test_mode_reads_delay_and_success() {
        assert_eq!(
            config(&[("TEST_MODE", "true")]).unwrap().mode,
            ProcessingMode::Test {
                delay: Duration::from_millis(1000),
                payment_success: true
            }
        );
        let config = config(&[
            ("TEST_MODE", " TRUE "),
            ("TEST_PROCESSING_DELAY", "3000"),
            ("TEST_PAYMENT_SUCCESS", "false"),
            ("PAYSTREAM_ACQUIRER_ACK_WAIT_MS", "4000"),
            ("PAYSTREAM_ACQUIRER_MAX_IN_FLIGHT", "8"),
            ("PAYSTREAM_ACQUIRER_CONSUMER", "acquirer-2"),
        ])
        .unwrap();
        assert_eq!(
            config.mode,
            ProcessingMode::Test {
                delay: Duration::from_millis(3000),
                payment_success: false
            }
        );
        assert_eq!(config.ack_wait, Duration::from_millis(4000));
        assert_eq!(config.max_in_flight, 8);
        assert_eq!(config.consumer_name, "acquirer-2");
    }

    #[test]
    fn bad_values_are_clear_errors() {
        for (vars, names) in [
            (vec![("TEST_MODE", "maybe")], "TEST_MODE"),
            (
                vec![("TEST_MODE", "true"), ("TEST_PROCESSING_DELAY", "-1")],
                "TEST_PROCESSING_DELAY",
            ),
            (
                vec![("TEST_PROCESSING_DELAY", "1s")],
                "TEST_PROCESSING_DELAY",
            ),
            (
                vec![("TEST_PAYMENT_SUCCESS", "yes please")],
                "TEST_PAYMENT_SUCCESS",
            ),
            (
                vec![("PAYSTREAM_ACQUIRER_MAX_IN_FLIGHT", "0")],
                "MAX_IN_FLIGHT",
            ),
            (vec![("PAYSTREAM_ACQUIRER_CONSUMER", "a.b")], "CONSUMER"),
            // The ack wait must outlast the longest delay (10 s simulated).
            (
                vec![("PAYSTREAM_ACQUIRER_ACK_WAIT_MS", "10000")],
                "ACK_WAIT",
            ),
            (
                vec![
                    ("TEST_MODE", "1"),
                    ("TEST_PROCESSING_DELAY", "3000"),
                    ("PAYSTREAM_ACQUIRER_ACK_WAIT_MS", "2000"),
                ],
                "ACK_WAIT",
            ),
        ] {
            let error = config(&vars).unwrap_err().to_string();
            assert!(error.contains(names), "{vars:?}: {error}");
        }
    }

    #[test]
    fn back_offs_are_bounded() {
        for failures in 0..100 {
            assert!(backoff(failures, Duration::from_secs(5)) <= Duration::from_millis(7500));
        }
        for delivered in -1..100 {
            let delay = retry_delay(delivered);
            assert!(delay >= Duration::from_millis(500) && delay <= Duration::from_secs(90));
        }
    }
}
