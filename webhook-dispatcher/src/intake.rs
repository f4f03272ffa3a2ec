//! The intake: a durable JetStream consumer over every event, which
//!
//! * turns payment and refund events into scheduled deliveries, one per
//!   subscribed endpoint, with an id derived from (source event, webhook
//!   event, URL), so a redelivered event never schedules twice;
//! * keeps `webhook_schedule` in step with every delivery stream, so
//!   deliveries scheduled elsewhere (test event, manual retry, recover) are
//!   picked up, and the schedule can be rebuilt by replaying the stream.
//!
//! Acks are explicit and sent only once the work is stored; a failed message
//! is handed back with a jittered back-off and retried for ever.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use futures::StreamExt;
use paystream_command_api::aggregates::{self, CommandError};
use paystream_command_api::http::views::{PaymentView, RefundView};
use paystream_command_api::store::{
    EventMetadata, EventStore, PgEventStore, RecordedEvent, StoreError, StreamId,
};
use paystream_domain::payment::{Payment, PaymentAggregate, PaymentEvent};
use paystream_domain::webhook::{ScheduleWebhookDelivery, WebhookDeliveryAggregate};
use paystream_domain::{Aggregate, DomainError, DomainEvent, RefundId, WebhookDeliveryId};
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::{merchants, schedule};

/// Who the dispatcher's events are recorded as.
pub const ACTOR: &str = "system:webhook-dispatcher";

/// A webhook to announce because of one stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// Contract event name, e.g. `payment.success`.
    pub event: &'static str,
    /// The refund it is about, for `refund.*`.
    pub refund_id: Option<RefundId>,
}

/// The contract events a payment-stream event announces.
pub fn announcements(event: &PaymentEvent) -> Vec<Announcement> {
    let plain = |event| Announcement {
        event,
        refund_id: None,
    };
    match event {
        PaymentEvent::PaymentCreated(_) => vec![plain("payment.created"), plain("payment.pending")],
        PaymentEvent::PaymentSucceeded(_) => vec![plain("payment.success")],
        PaymentEvent::PaymentFailed(_) => vec![plain("payment.failed")],
        PaymentEvent::RefundCreated(created) => vec![Announcement {
            event: "refund.created",
            refund_id: Some(created.refund_id.clone()),
        }],
        PaymentEvent::RefundProcessed(processed) => vec![Announcement {
            event: "refund.processed",
            refund_id: Some(processed.refund_id.clone()),
        }],
        PaymentEvent::PaymentCaptured(_) => Vec::new(),
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The delivery of `event` (announced by stored event `source`) to `url`:
/// the same inputs always give the same id.
pub fn delivery_id(source: Uuid, event: &str, url: &str) -> WebhookDeliveryId {
    let digest = sha256(&[source.as_bytes(), event.as_bytes(), url.as_bytes()]);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    WebhookDeliveryId::from_random_bytes(bytes)
}

/// The body's `id`: the source event's id for the event's main
/// announcement; for a second announcement of the same source event
/// (`payment.pending` after `payment.created`) a UUID derived from both, so
/// receivers that de-duplicate by id do not drop it.
pub fn message_id(source: Uuid, event: &str, index: usize) -> Uuid {
    if index == 0 {
        return source;
    }
    let digest = sha256(&[source.as_bytes(), event.as_bytes()]);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // A version 8 (custom) RFC 9562 UUID.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

#[derive(Debug, Serialize)]
struct Body<'a, D: Serialize> {
    id: Uuid,
    event: &'a str,
    timestamp: i64,
    version: u64,
    data: D,
}

#[derive(Debug, Serialize)]
struct PaymentData {
    payment: PaymentView,
}

#[derive(Debug, Serialize)]
struct RefundData {
    refund: RefundView,
}

/// The exact body sent for `announcement`, from the payment as it was at the
/// source event (`payment` is folded up to `version`).
pub fn build_body(
    id: Uuid,
    announcement: &Announcement,
    timestamp: i64,
    version: u64,
    payment: &Payment,
) -> Result<Option<String>, serde_json::Error> {
    match &announcement.refund_id {
        None => serde_json::to_string(&Body {
            id,
            event: announcement.event,
            timestamp,
            version,
            data: PaymentData {
                payment: PaymentView::from(payment),
            },
        })
        .map(Some),
        Some(refund_id) => match payment.refunds.get(refund_id) {
            None => Ok(None),
            Some(refund) => serde_json::to_string(&Body {
                id,
                event: announcement.event,
                timestamp,
                version,
                data: RefundData {
                    refund: RefundView::new(payment, refund),
                },
            })
            .map(Some),
        },
    }
}

/// The payment as it was right after `version` of its stream.
async fn payment_at(
    store: &PgEventStore,
    stream: &StreamId,
    version: u64,
) -> Result<Option<Payment>, CommandError> {
    let mut state = None;
    let mut read = 0;
    while read < version {
        let page = store
            .read_stream(stream, read, (version - read).min(1000) as usize)
            .await?;
        if page.is_empty() {
            break;
        }
        for recorded in page {
            if recorded.version > version {
                break;
            }
            let event = PaymentEvent::from_stored(
                &recorded.event_type,
                recorded.schema_version,
                recorded.payload,
            )
            .map_err(|error| CommandError::Corrupt {
                stream: stream.clone(),
                reason: error.to_string(),
            })?;
            state = PaymentAggregate::evolve(state, &event);
            read = recorded.version;
        }
    }
    Ok(state)
}

/// What handling one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Not an event the dispatcher acts on.
    Ignored,
    /// This many deliveries were newly scheduled.
    Scheduled(usize),
    /// The schedule row of a delivery was brought up to date.
    Synced,
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("unreadable event: {0}")]
    Unreadable(String),
}

/// Handles one stored event (idempotent: any number of deliveries of the
/// same event end in the same state).
pub async fn handle_event(
    store: &PgEventStore,
    settings: &Settings,
    metrics: &Metrics,
    event: &RecordedEvent,
) -> Result<Handled, HandleError> {
    match event.stream_id.category() {
        "payment" => schedule_for_payment_event(store, settings, metrics, event).await,
        category if category == WebhookDeliveryAggregate::CATEGORY => {
            let id = event
                .stream_id
                .as_str()
                .split_once('-')
                .map(|(_, id)| id)
                .unwrap_or_default();
            let delivery_id: WebhookDeliveryId = id
                .parse()
                .map_err(|_| HandleError::Unreadable(format!("stream {}", event.stream_id)))?;
            // The dispatcher writes the row itself right after each of its
            // own appends, so for its own events one primary-key read
            // usually shows the row is already there; only a dispatcher that
            // stopped between its append and that write leaves a row behind
            // (still leased), and this brings it up to date at once.
            if event.metadata.actor == ACTOR
                && !schedule::behind(store.pool(), delivery_id.as_str(), event.version).await?
            {
                return Ok(Handled::Ignored);
            }
            let loaded = aggregates::load::<WebhookDeliveryAggregate>(store, &delivery_id).await?;
            schedule::sync(store.pool(), &loaded).await?;
            Ok(Handled::Synced)
        }
        _ => Ok(Handled::Ignored),
    }
}

async fn schedule_for_payment_event(
    store: &PgEventStore,
    settings: &Settings,
    metrics: &Metrics,
    event: &RecordedEvent,
) -> Result<Handled, HandleError> {
    let parsed = PaymentEvent::from_stored(
        &event.event_type,
        event.schema_version,
        event.payload.clone(),
    )
    .map_err(|error| HandleError::Unreadable(error.to_string()))?;
    let wanted = announcements(&parsed);
    if wanted.is_empty() {
        return Ok(Handled::Ignored);
    }
    let Some(payment) = payment_at(store, &event.stream_id, event.version).await? else {
        return Err(HandleError::Unreadable(format!(
            "{} has no payment at version {}",
            event.stream_id, event.version
        )));
    };
    let Some(merchant) = merchants::merchant(store, payment.merchant_id).await? else {
        return Ok(Handled::Ignored);
    };
    let metadata = EventMetadata {
        merchant_id: Some(payment.merchant_id.into()),
        causation_id: Some(event.event_id),
        correlation_id: event.metadata.correlation_id.or(Some(event.event_id)),
        actor: ACTOR.to_owned(),
    };
    let mut scheduled = 0;
    for (index, announcement) in wanted.iter().enumerate() {
        let Some(url) = merchant.webhook.endpoint_for(announcement.event) else {
            continue;
        };
        let id = message_id(event.event_id, announcement.event, index);
        let body = build_body(
            id,
            announcement,
            event.recorded_at.timestamp(),
            event.version,
            &payment,
        )
        .map_err(|error| HandleError::Unreadable(error.to_string()))?;
        let Some(body) = body else { continue };
        let delivery_id = delivery_id(event.event_id, announcement.event, url);
        let command = ScheduleWebhookDelivery {
            delivery_id: delivery_id.clone(),
            merchant_id: payment.merchant_id,
            event: announcement.event.to_owned(),
            source_event_id: event.event_id,
            url: url.to_owned(),
            body,
            retry_intervals_seconds: settings.retry_intervals.clone(),
            at: chrono::Utc::now(),
        };
        let executed = aggregates::create::<WebhookDeliveryAggregate, _>(
            store,
            &delivery_id,
            &metadata,
            |_| Ok(command.clone().into()),
        )
        .await;
        match executed {
            Ok(executed) => {
                schedule::sync(
                    store.pool(),
                    &aggregates::Loaded {
                        stream: executed.stream,
                        state: executed.state,
                        version: executed.version,
                    },
                )
                .await?;
                metrics.scheduled.fetch_add(1, Ordering::Relaxed);
                scheduled += 1;
            }
            Err(CommandError::Rejected(DomainError::WebhookDeliveryAlreadyScheduled)) => {
                // Scheduled by an earlier delivery of this event, which may
                // have stopped before its row was written: make sure it is.
                let loaded =
                    aggregates::load::<WebhookDeliveryAggregate>(store, &delivery_id).await?;
                schedule::sync(store.pool(), &loaded).await?;
            }
            Err(CommandError::Rejected(error)) => {
                // E.g. a URL the domain refuses: nothing can ever be sent.
                tracing::warn!(%delivery_id, %error, "delivery not scheduled");
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(Handled::Scheduled(scheduled))
}

// ---- The consumer ---------------------------------------------------------------

/// The subject the consumer filters on: every event (NATS 2.9 allows one
/// filter subject; other categories are acknowledged and ignored).
pub fn filter_subject(settings: &Settings) -> String {
    format!("{}.>", settings.relay.subject_prefix)
}

/// Runs the consumer for ever, re-creating it after any error.
pub async fn run(
    store: PgEventStore,
    jetstream: jetstream::Context,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(settings.intake_in_flight.max(1)));
    let mut failures: u32 = 0;
    loop {
        let result = consume(
            &store,
            &jetstream,
            &settings,
            &metrics,
            &slots,
            &mut failures,
        )
        .await;
        failures = failures.saturating_add(1);
        match result {
            Ok(()) => tracing::warn!(
                failures,
                "webhook intake message stream ended; reconnecting"
            ),
            Err(error) => {
                metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, failures, "webhook intake error; reconnecting");
            }
        }
        tokio::time::sleep(backoff(failures, settings.backoff_max)).await;
    }
}

async fn consume(
    store: &PgEventStore,
    jetstream: &jetstream::Context,
    settings: &Arc<Settings>,
    metrics: &Arc<Metrics>,
    slots: &Arc<Semaphore>,
    failures: &mut u32,
) -> Result<(), String> {
    let stream = jetstream
        .get_stream(&settings.relay.stream_name)
        .await
        .map_err(|error| format!("stream {}: {error}", settings.relay.stream_name))?;
    let wanted = consumer::pull::Config {
        durable_name: Some(settings.consumer_name.clone()),
        description: Some("Paystream webhook dispatcher".into()),
        filter_subject: filter_subject(settings),
        deliver_policy: consumer::DeliverPolicy::All,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: settings.ack_wait,
        max_ack_pending: i64::try_from(settings.intake_in_flight).unwrap_or(i64::MAX),
        ..Default::default()
    };
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(&settings.consumer_name, wanted)
        .await
        .map_err(|error| format!("consumer: {error}"))?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(settings.intake_in_flight.clamp(1, 256))
        .expires(Duration::from_secs(30))
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .map_err(|error| format!("messages: {error}"))?;
    tracing::info!(consumer = %settings.consumer_name, "webhook intake consuming");
    loop {
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|error| error.to_string())?;
        let message = match messages.next().await {
            None => return Ok(()),
            Some(Err(error)) => return Err(format!("pull: {error}")),
            Some(Ok(message)) => message,
        };
        *failures = 0;
        tokio::spawn(handle_message(
            store.clone(),
            settings.clone(),
            metrics.clone(),
            message,
            slot,
        ));
    }
}

async fn handle_message(
    store: PgEventStore,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    message: jetstream::Message,
    _slot: OwnedSemaphorePermit,
) {
    let delivered = message.info().map_or(1, |info| info.delivered);
    let event: RecordedEvent = match serde_json::from_slice(&message.payload) {
        Ok(event) => event,
        Err(error) => {
            tracing::error!(subject = %message.subject, %error, "unreadable event message; will retry");
            metrics.errors.fetch_add(1, Ordering::Relaxed);
            nak(&message, delivered).await;
            return;
        }
    };
    let work = handle_event(&store, &settings, &metrics, &event);
    // Bounded: a stuck database must not hold the message past its ack wait.
    match tokio::time::timeout(settings.ack_wait.mul_f32(0.8), work).await {
        Ok(Ok(handled)) => {
            if let Handled::Scheduled(count @ 1..) = handled {
                tracing::info!(event_id = %event.event_id, stream = %event.stream_id, count, "webhook deliveries scheduled");
            }
            if let Err(error) = message.ack().await {
                tracing::warn!(event_id = %event.event_id, %error, "ack failed; the event comes back and is found done");
            }
        }
        Ok(Err(error)) => {
            metrics.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(event_id = %event.event_id, stream = %event.stream_id, %error, delivered, "webhook intake failed; will retry");
            nak(&message, delivered).await;
        }
        Err(_) => {
            metrics.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(event_id = %event.event_id, delivered, "webhook intake timed out; will retry");
            nak(&message, delivered).await;
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

/// 100 ms doubling per failure up to `max`, with ±50 % jitter.
pub fn backoff(failures: u32, max: Duration) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(max)
        .mul_f64(rand::thread_rng().gen_range(0.5..1.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_derived_and_distinct() {
        let source = Uuid::from_u128(42);
        let a = delivery_id(source, "payment.success", "https://a.example/h");
        assert_eq!(
            a,
            delivery_id(source, "payment.success", "https://a.example/h")
        );
        assert_ne!(
            a,
            delivery_id(source, "payment.success", "https://b.example/h")
        );
        assert_ne!(
            a,
            delivery_id(source, "payment.failed", "https://a.example/h")
        );
        assert_ne!(
            a,
            delivery_id(
                Uuid::from_u128(43),
                "payment.success",
                "https://a.example/h"
            )
        );
        assert!(a.as_str().starts_with("whd_"));
    }

    #[test]
    fn the_second_announcement_gets_its_own_message_id() {
        let source = Uuid::now_v7();
        assert_eq!(message_id(source, "payment.created", 0), source);
        let pending = message_id(source, "payment.pending", 1);
        assert_ne!(pending, source);
        assert_eq!(pending, message_id(source, "payment.pending", 1));
        assert_eq!(pending.get_version_num(), 8);
    }
}
