//! The acquirer's I/O loop: the durable consumer, one task per message
//! (waiting out its delay, then recording the outcome decided by the pure
//! [`super::outcome`] through [`super::record`]), acks and naks.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use chrono::Utc;
use futures::StreamExt;
use paystream_kit::consumer::{supervise, ConsumeError, Durable, Failures};
use paystream_store::relay::RelayConfig;
use paystream_store::runner::CommandError;
use paystream_store::{PgEventStore, RecordedEvent};
use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::config::{AcquirerConfig, MAX_IN_FLIGHT};
use super::outcome::{self, ProcessingMode};
use super::record::{self, Job, Recorded};
use super::stats::{AcquirerStats, Gauge};
use crate::config::Config;

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
    tracing::info!(
        consumer = %config.consumer_name,
        stream = %relay.stream_name,
        mode = ?config.mode,
        max_in_flight = config.max_in_flight,
        "acquirer starting"
    );
    let durable = Durable {
        stream: relay.stream_name.clone(),
        config: consumer::pull::Config {
            durable_name: Some(config.consumer_name.clone()),
            description: Some("Paystream simulated acquirer".into()),
            filter_subject: AcquirerConfig::filter_subject(&relay),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: config.ack_wait,
            max_ack_pending: i64::try_from(config.max_in_flight).unwrap_or(i64::MAX),
            ..Default::default()
        },
        recreate: None,
        batch: config.max_in_flight.min(256),
        heartbeat: config.idle_heartbeat,
    };
    supervise(
        "acquirer",
        config.backoff_max,
        |failures| {
            consume(
                &store, &jetstream, &durable, &config, &stats, &slots, failures,
            )
        },
        |_| stats.running.store(false, Ordering::Relaxed),
    )
    .await;
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

/// One life of the consumer: until its message stream fails or ends.
async fn consume(
    store: &PgEventStore,
    jetstream: &jetstream::Context,
    durable: &Durable,
    config: &Arc<AcquirerConfig>,
    stats: &Arc<AcquirerStats>,
    slots: &Arc<Semaphore>,
    failures: Failures,
) -> Result<(), ConsumeError> {
    let mut messages = paystream_kit::consumer::open(jetstream, durable).await?;
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
            Some(Err(error)) => return Err(ConsumeError::nats(error)),
            Some(Ok(message)) => message,
        };
        failures.reset();
        tokio::spawn(handle(
            store.clone(),
            config.clone(),
            stats.clone(),
            message,
            slot,
        ));
    }
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
    let span = tracing::info_span!(
        "event",
        correlation_id = %event.metadata.correlation_id.unwrap_or(event.event_id),
        stream = %event.stream_id,
        position = event.position.0,
    );
    async {
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
    .instrument(span)
    .await;
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
    use super::*;

    #[test]
    fn back_offs_are_bounded() {
        use paystream_kit::backoff::backoff;

        for failures in 0..100 {
            assert!(backoff(failures, Duration::from_secs(5)) <= Duration::from_millis(7500));
        }
        for delivered in -1..100 {
            let delay = retry_delay(delivered);
            assert!(delay >= Duration::from_millis(500) && delay <= Duration::from_secs(90));
        }
    }
}
