//! The I/O loop: the durable JetStream consumer over every event, handing
//! batches of messages to [`super::handle_batch`] and acknowledging each
//! message once its work is stored (a failed one is handed back with a
//! jittered back-off and retried for ever).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use futures::StreamExt;
use paystream_kit::consumer::{supervise, ConsumeError, Durable, Failures};
use paystream_store::relay::{HEADER_POSITION, HEADER_STREAM};
use paystream_store::{PgEventStore, Position, RecordedEvent};
use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use super::{handle_batch, Context, Handled, Handoff};
use crate::config::Settings;
use crate::merchants::{self, Merchants};
use crate::metrics::Metrics;

/// The subject the consumer filters on: every event (NATS 2.9 allows one
/// filter subject; other categories are acknowledged and ignored).
pub fn filter_subject(settings: &Settings) -> String {
    format!("{}.>", settings.relay.subject_prefix)
}

/// Batches handled at once; while they run, the next batch gathers.
const INTAKE_BATCHES: usize = 4;

/// Runs the consumer for ever, re-creating it after any error. Newly
/// scheduled deliveries are handed to the worker through `handoff` (when
/// given).
pub async fn run(
    store: PgEventStore,
    jetstream: jetstream::Context,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    merchants: Arc<Merchants>,
    handoff: Option<Handoff>,
) {
    let shared = Shared {
        store,
        settings: settings.clone(),
        metrics: metrics.clone(),
        merchants,
        handoff,
    };
    let slots = Arc::new(Semaphore::new(settings.intake_in_flight.max(1)));
    let batches = Arc::new(Semaphore::new(INTAKE_BATCHES));
    let durable = Durable {
        stream: settings.relay.stream_name.clone(),
        config: consumer::pull::Config {
            durable_name: Some(settings.consumer_name.clone()),
            description: Some("Paystream webhook dispatcher".into()),
            filter_subject: filter_subject(&settings),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: settings.ack_wait,
            max_ack_pending: i64::try_from(settings.intake_in_flight).unwrap_or(i64::MAX),
            ..Default::default()
        },
        recreate: None,
        batch: settings.intake_in_flight.clamp(1, 256),
        heartbeat: Duration::from_secs(5),
    };
    supervise(
        "webhook-dispatcher",
        settings.backoff_max,
        |failures| consume(&shared, &jetstream, &durable, (&slots, &batches), failures),
        |result| {
            if result.is_err() {
                metrics.errors.increment(1);
            }
        },
    )
    .await;
}

/// What the consumer's batches share.
#[derive(Debug, Clone)]
struct Shared {
    store: PgEventStore,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    merchants: Arc<Merchants>,
    handoff: Option<Handoff>,
}

async fn consume(
    shared: &Shared,
    jetstream: &jetstream::Context,
    durable: &Durable,
    (slots, batches): (&Arc<Semaphore>, &Arc<Semaphore>),
    failures: Failures,
) -> Result<(), ConsumeError> {
    let settings = &shared.settings;
    let mut messages = paystream_kit::consumer::open(jetstream, durable)
        .await?
        .ready_chunks(durable.batch);
    tracing::info!(consumer = %settings.consumer_name, "webhook intake consuming");
    loop {
        // While `INTAKE_BATCHES` batches run, arriving messages gather into
        // the next one (as group commit gathers appends).
        let batch_slot = batches
            .clone()
            .acquire_owned()
            .await
            .map_err(|error| error.to_string())?;
        let Some(chunk) = messages.next().await else {
            return Ok(());
        };
        let mut batch = Vec::with_capacity(chunk.len());
        let mut pull_error = None;
        for item in chunk {
            match item {
                Ok(message) => {
                    // In log order, before any later event is handed out.
                    note_merchant_event(&shared.merchants, &message);
                    batch.push(message);
                }
                Err(error) => pull_error = Some(format!("pull: {error}")),
            }
        }
        if !batch.is_empty() {
            failures.reset();
            // Never more than `intake_in_flight` (JetStream's max_ack_pending
            // bounds it too).
            let count = u32::try_from(batch.len()).unwrap_or(u32::MAX);
            let message_slots = slots
                .clone()
                .acquire_many_owned(count)
                .await
                .map_err(|error| error.to_string())?;
            tokio::spawn(handle_messages(
                shared.clone(),
                batch,
                (batch_slot, message_slots),
            ));
        }
        if let Some(error) = pull_error {
            return Err(ConsumeError::nats(error));
        }
    }
}

/// Tells `merchants` of a merchant event: from the relay's headers, or, for
/// a message without them, from the event itself.
fn note_merchant_event(merchants: &Merchants, message: &jetstream::Message) {
    let header = |name| {
        message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(name))
            .map(|value| value.as_str().to_owned())
    };
    let stream = header(HEADER_STREAM);
    if stream
        .as_deref()
        .is_some_and(|stream| merchants::merchant_of(stream).is_none())
    {
        return;
    }
    let position = header(HEADER_POSITION).and_then(|value| value.parse().ok());
    let (stream, position) = match (stream, position) {
        (Some(stream), Some(position)) => (stream, Position(position)),
        _ => match serde_json::from_slice::<RecordedEvent>(&message.payload) {
            Ok(event) => (event.stream_id.as_str().to_owned(), event.position),
            // Handled (and refused) with its batch.
            Err(_) => return,
        },
    };
    if let Some(merchant_id) = merchants::merchant_of(&stream) {
        merchants.seen(merchant_id, position);
    }
}

async fn handle_messages(
    shared: Shared,
    messages: Vec<jetstream::Message>,
    _slots: (OwnedSemaphorePermit, OwnedSemaphorePermit),
) {
    let Shared {
        store,
        settings,
        metrics,
        merchants,
        handoff,
    } = &shared;
    let mut readable = Vec::with_capacity(messages.len());
    let mut events = Vec::with_capacity(messages.len());
    for message in messages {
        let delivered = message.info().map_or(1, |info| info.delivered);
        match serde_json::from_slice::<RecordedEvent>(&message.payload) {
            Ok(event) => {
                events.push(event);
                readable.push((message, delivered));
            }
            Err(error) => {
                tracing::error!(subject = %message.subject, %error, "unreadable event message; will retry");
                metrics.errors.increment(1);
                nak(&message, delivered).await;
            }
        }
    }
    let context = Context {
        store,
        settings,
        metrics,
        merchants,
    };
    let span = tracing::info_span!(
        "batch",
        events = events.len(),
        first_position = events.first().map_or(0, |event| event.position.0),
        last_position = events.last().map_or(0, |event| event.position.0),
    );
    let work = handle_batch(&context, &events, handoff.as_ref()).instrument(span);
    // Bounded: a stuck database must not hold the messages past their ack wait.
    let outcomes = match tokio::time::timeout(settings.ack_wait.mul_f32(0.8), work).await {
        Ok(outcomes) => outcomes,
        Err(_) => {
            metrics.errors.increment(1);
            tracing::warn!(
                events = events.len(),
                "webhook intake timed out; will retry"
            );
            for (message, delivered) in &readable {
                nak(message, *delivered).await;
            }
            return;
        }
    };
    for (((message, delivered), event), outcome) in readable.iter().zip(&events).zip(outcomes) {
        match outcome {
            Ok(handled) => {
                if let Handled::Scheduled(count @ 1..) = handled {
                    tracing::info!(event_id = %event.event_id, stream = %event.stream_id, count, "webhook deliveries scheduled");
                }
                if let Err(error) = message.ack().await {
                    tracing::warn!(event_id = %event.event_id, %error, "ack failed; the event comes back and is found done");
                }
            }
            Err(error) => {
                metrics.errors.increment(1);
                tracing::warn!(event_id = %event.event_id, stream = %event.stream_id, %error, delivered, "webhook intake failed; will retry");
                nak(message, *delivered).await;
            }
        }
    }
}

async fn nak(message: &jetstream::Message, delivered: i64) {
    let doublings = u32::try_from(delivered.saturating_sub(1).clamp(0, 6)).unwrap_or(6);
    let delay = Duration::from_secs(1 << doublings)
        .min(Duration::from_secs(60))
        .mul_f64(rand::thread_rng().gen_range(0.5..1.5));
    if let Err(error) = message.ack_with(AckKind::Nak(Some(delay))).await {
        tracing::warn!(%error, "nak failed; the message comes back after ack_wait");
    }
}
