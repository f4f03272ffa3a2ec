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

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, AckKind};
use futures::StreamExt;
use paystream_domain::api::{PaymentView, RefundView};
use paystream_domain::merchant::Merchant;
use paystream_domain::payment::{Payment, PaymentAggregate, PaymentEvent};
use paystream_domain::webhook::{ScheduleWebhookDelivery, WebhookDeliveryAggregate};
use paystream_domain::{Aggregate, DomainError, DomainEvent, RefundId, WebhookDeliveryId};
use paystream_store::backoff::backoff;
use paystream_store::relay::{HEADER_POSITION, HEADER_STREAM};
use paystream_store::runner::{self, CommandError};
use paystream_store::{EventMetadata, PgEventStore, Position, RecordedEvent, StoreError, StreamId};
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::config::Settings;
use crate::merchants::{self, Merchants};
use crate::metrics::Metrics;
use crate::schedule::Claimed;
use crate::worker::Job;
use crate::{recent, schedule};

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

/// Most payments remembered as folded (about a kilobyte each). A payment's
/// events mostly come within a second of each other; 4,096 cover several
/// seconds at the target rate, and a later event (a capture, a refund)
/// reads the stream. 20,000 made the dispatcher's RSS climb to 84 MiB over a
/// 10-minute soak (issue 10).
const REMEMBERED_PAYMENTS: usize = 4_096;

/// Payments as last folded by this process (the fold of a stream is the
/// same whoever computes it).
static PAYMENTS: std::sync::LazyLock<recent::Payments> =
    std::sync::LazyLock::new(|| recent::Payments::new(REMEMBERED_PAYMENTS));

/// (payments remembered, capacity), for `/metrics`.
pub fn remembered_payments() -> (usize, usize) {
    PAYMENTS.size()
}

/// What the intake shares with its dispatcher's worker.
#[derive(Debug, Clone)]
pub struct Handoff {
    /// Deliveries just scheduled, rows already leased, for the worker.
    pub queue: mpsc::Sender<Job>,
    /// Rows this dispatcher wrote, so that its own echoed events need no read.
    pub rows: Arc<recent::Rows>,
}

/// The payments as they were right after the given versions of their
/// streams, folded from one read of all the streams (one statement per
/// batch of events instead of one stream read per event).
async fn payments_at(
    store: &PgEventStore,
    wanted: &[(&StreamId, u64)],
) -> Result<HashMap<(String, u64), Payment>, HandleError> {
    let mut upto: HashMap<&str, u64> = HashMap::new();
    for (stream, version) in wanted {
        let entry = upto.entry(stream.as_str()).or_default();
        *entry = (*entry).max(*version);
    }
    let streams: Vec<&str> = upto.keys().copied().collect();
    let versions: Vec<i64> = streams
        .iter()
        .map(|stream| i64::try_from(upto[stream]).unwrap_or(i64::MAX))
        .collect();
    let rows: Vec<(String, i64, String, i16, serde_json::Value)> = sqlx::query_as(
        "select e.stream_id, e.version, e.event_type, e.schema_version, e.payload \
           from unnest($1::text[], $2::bigint[]) as w(stream_id, upto) \
           join events e on e.stream_id = w.stream_id and e.version <= w.upto \
          order by e.stream_id, e.version",
    )
    .bind(&streams)
    .bind(&versions)
    .fetch_all(store.pool())
    .await?;
    let mut needed: HashMap<&str, Vec<u64>> = HashMap::new();
    for (stream, version) in wanted {
        needed.entry(stream.as_str()).or_default().push(*version);
    }
    let mut states = HashMap::new();
    // The stream being folded: its name, state and last version.
    let mut folding: Option<String> = None;
    let mut state: Option<Payment> = None;
    let mut last = 0;
    for (stream, version, event_type, schema_version, payload) in rows {
        let version = u64::try_from(version).unwrap_or_default();
        if folding.as_deref() != Some(stream.as_str()) {
            folding = Some(stream.clone());
            state = None;
            last = 0;
        }
        if version != last + 1 {
            // A gap: this stream's events find no payment and are retried.
            continue;
        }
        let event = PaymentEvent::from_stored(
            &event_type,
            u16::try_from(schema_version).unwrap_or_default(),
            payload,
        )
        .map_err(|error| HandleError::Unreadable(format!("{stream}: {error}")))?;
        state = PaymentAggregate::evolve(state.take(), &event);
        last = version;
        if needed
            .get(stream.as_str())
            .is_some_and(|versions| versions.contains(&version))
        {
            if let Some(payment) = &state {
                states.insert((stream, version), payment.clone());
            }
        }
    }
    Ok(states)
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
    /// A step shared by a batch of events failed.
    #[error("{0}")]
    Batch(String),
}

/// Handles one stored event (idempotent: any number of deliveries of the
/// same event end in the same state), with merchants read afresh. The
/// consumer uses [`handle_batch`].
pub async fn handle_event(
    store: &PgEventStore,
    settings: &Settings,
    metrics: &Metrics,
    event: &RecordedEvent,
) -> Result<Handled, HandleError> {
    let merchants = Merchants::new(1);
    let context = Context {
        store,
        settings,
        metrics,
        merchants: &merchants,
    };
    handle_batch(&context, std::slice::from_ref(event), None)
        .await
        .pop()
        .unwrap_or(Ok(Handled::Ignored))
}

/// What handling events needs.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub store: &'a PgEventStore,
    pub settings: &'a Settings,
    pub metrics: &'a Metrics,
    /// Merchants' settings by log position; every merchant event of the log
    /// before the events handled must have been passed to
    /// [`Merchants::seen`].
    pub merchants: &'a Merchants,
}

/// Handles a batch of stored events, with one outcome per event, in order.
/// The batch shares its statements: one read folds every payment involved,
/// the deliveries' appends go through group commit together, one statement
/// writes all their rows, one reads the rows of the dispatcher's own
/// delivery events.
///
/// With `handoff`, a newly scheduled delivery that is due now is inserted
/// already leased and handed straight to the worker (no claim, no reload),
/// as long as the worker's queue has room; otherwise its row is left for a
/// claim.
pub async fn handle_batch(
    context: &Context<'_>,
    events: &[RecordedEvent],
    handoff: Option<&Handoff>,
) -> Vec<Result<Handled, HandleError>> {
    let store = context.store;
    let mut results: Vec<Option<Result<Handled, HandleError>>> =
        events.iter().map(|_| None).collect();
    let mut payments = Vec::new();
    let mut own = Vec::new();
    let mut others = Vec::new();
    for (index, event) in events.iter().enumerate() {
        match event.stream_id.category() {
            "payment" => {
                let parsed = PaymentEvent::from_stored(
                    &event.event_type,
                    event.schema_version,
                    event.payload.clone(),
                );
                match parsed {
                    Err(error) => {
                        results[index] = Some(Err(HandleError::Unreadable(error.to_string())))
                    }
                    Ok(parsed) => {
                        let wanted = announcements(&parsed);
                        if wanted.is_empty() {
                            // Nothing to send, but keep the folded payment current.
                            if let Some(previous) = PAYMENTS
                                .at(event.stream_id.as_str(), event.version.saturating_sub(1))
                            {
                                if let Some(payment) =
                                    PaymentAggregate::evolve(Some(previous), &parsed)
                                {
                                    PAYMENTS.remember(
                                        event.stream_id.as_str(),
                                        event.version,
                                        &payment,
                                    );
                                }
                            }
                            results[index] = Some(Ok(Handled::Ignored));
                        } else {
                            payments.push((index, parsed, wanted));
                        }
                    }
                }
            }
            category if category == WebhookDeliveryAggregate::CATEGORY => {
                let id = event
                    .stream_id
                    .as_str()
                    .split_once('-')
                    .map(|(_, id)| id)
                    .unwrap_or_default();
                match id.parse::<WebhookDeliveryId>() {
                    Err(_) => {
                        results[index] = Some(Err(HandleError::Unreadable(format!(
                            "stream {}",
                            event.stream_id
                        ))))
                    }
                    Ok(delivery_id) if event.metadata.actor == ACTOR => {
                        own.push((index, delivery_id))
                    }
                    Ok(delivery_id) => others.push((index, delivery_id)),
                }
            }
            _ => results[index] = Some(Ok(Handled::Ignored)),
        }
    }

    if !payments.is_empty() {
        let outcomes = schedule_for_payment_events(context, events, &payments, handoff).await;
        for ((index, _, _), outcome) in payments.iter().zip(outcomes) {
            results[*index] = Some(outcome);
        }
    }

    // The dispatcher writes the row itself right after each of its own
    // appends, so for its own events one read of their rows usually shows
    // them already there; only a dispatcher that stopped between its append
    // and that write leaves a row behind (still leased), and this brings it
    // up to date at once.
    if let Some(handoff) = handoff {
        // Rows this process wrote at the event's version or later need no read.
        own.retain(|(index, delivery_id)| {
            let version = i64::try_from(events[*index].version).unwrap_or(i64::MAX);
            let known = handoff.rows.up_to_date(delivery_id.as_str(), version);
            if known {
                results[*index] = Some(Ok(Handled::Ignored));
            }
            !known
        });
    }
    if !own.is_empty() {
        let ids: Vec<&str> = own.iter().map(|(_, id)| id.as_str()).collect();
        match schedule::versions(store.pool(), &ids).await {
            Ok(rows) => {
                for (index, delivery_id) in own {
                    let behind = rows.get(delivery_id.as_str()).is_some_and(|row| {
                        *row < i64::try_from(events[index].version).unwrap_or(i64::MAX)
                    });
                    if behind {
                        others.push((index, delivery_id));
                    } else {
                        results[index] = Some(Ok(Handled::Ignored));
                    }
                }
            }
            Err(error) => {
                let error = error.to_string();
                for (index, _) in own {
                    results[index] = Some(Err(HandleError::Batch(error.clone())));
                }
            }
        }
    }
    // Deliveries scheduled or changed elsewhere (API: test event, retry,
    // recover), and rows found behind: fold and sync each.
    let synced = futures::future::join_all(others.iter().map(|(_, delivery_id)| async move {
        let loaded = runner::load::<WebhookDeliveryAggregate>(store, delivery_id).await?;
        schedule::sync(store.pool(), &loaded).await?;
        Ok::<_, HandleError>(Handled::Synced)
    }))
    .await;
    for ((index, _), outcome) in others.iter().zip(synced) {
        results[*index] = Some(outcome);
    }

    results
        .into_iter()
        .map(|result| result.unwrap_or(Ok(Handled::Ignored)))
        .collect()
}

/// One delivery to schedule, for the event at `work` in the batch.
struct Planned {
    work: usize,
    delivery_id: WebhookDeliveryId,
    command: ScheduleWebhookDelivery,
    metadata: EventMetadata,
    /// The merchant's settings as of the source event.
    merchant: Merchant,
}

/// Schedules the deliveries of the payment events `work` (indexes into
/// `events`, with their announcements); one outcome per item of `work`.
async fn schedule_for_payment_events(
    context: &Context<'_>,
    events: &[RecordedEvent],
    work: &[(usize, PaymentEvent, Vec<Announcement>)],
    handoff: Option<&Handoff>,
) -> Vec<Result<Handled, HandleError>> {
    let Context {
        store,
        settings,
        metrics,
        merchants,
    } = *context;
    // The payments at their events' versions: folded from the remembered
    // previous version where possible, read (all at once) otherwise.
    let mut states: HashMap<(String, u64), Payment> = HashMap::new();
    let mut missing: Vec<(&StreamId, u64)> = Vec::new();
    for (index, parsed, _) in work {
        let event = &events[*index];
        let key = (event.stream_id.as_str().to_owned(), event.version);
        let folded = if event.version == 1 {
            PaymentAggregate::evolve(None, parsed)
        } else {
            PAYMENTS
                .at(event.stream_id.as_str(), event.version - 1)
                .and_then(|previous| PaymentAggregate::evolve(Some(previous), parsed))
        };
        match folded {
            Some(payment) => {
                states.insert(key, payment);
            }
            None => missing.push((&event.stream_id, event.version)),
        }
    }
    if !missing.is_empty() {
        match payments_at(store, &missing).await {
            Ok(read) => states.extend(read),
            Err(error) => {
                let error = error.to_string();
                return work
                    .iter()
                    .map(|_| Err(HandleError::Batch(error.clone())))
                    .collect();
            }
        }
    }
    for ((stream, version), payment) in &states {
        PAYMENTS.remember(stream, *version, payment);
    }
    let mut outcomes: Vec<Result<usize, HandleError>> = work.iter().map(|_| Ok(0)).collect();

    // 1. What to schedule.
    let mut planned = Vec::new();
    for (item, (index, _, wanted)) in work.iter().enumerate() {
        let event = &events[*index];
        let Some(payment) = states.get(&(event.stream_id.as_str().to_owned(), event.version))
        else {
            outcomes[item] = Err(HandleError::Unreadable(format!(
                "{} has no payment at version {}",
                event.stream_id, event.version
            )));
            continue;
        };
        // The endpoint configuration in force at this event (invariant 8).
        let merchant = match merchants
            .as_of(store, payment.merchant_id, event.position)
            .await
        {
            Ok(Some(merchant)) => merchant,
            Ok(None) => continue,
            Err(error) => {
                outcomes[item] = Err(error.into());
                continue;
            }
        };
        let metadata = EventMetadata {
            merchant_id: Some(payment.merchant_id.into()),
            causation_id: Some(event.event_id),
            correlation_id: event.metadata.correlation_id.or(Some(event.event_id)),
            actor: ACTOR.to_owned(),
            ..EventMetadata::default()
        };
        for (position, announcement) in wanted.iter().enumerate() {
            let Some(url) = merchant.webhook.endpoint_for(announcement.event) else {
                continue;
            };
            let id = message_id(event.event_id, announcement.event, position);
            let body = match build_body(
                id,
                announcement,
                event.recorded_at.timestamp(),
                event.version,
                payment,
            ) {
                Ok(Some(body)) => body,
                Ok(None) => continue,
                Err(error) => {
                    outcomes[item] = Err(HandleError::Unreadable(error.to_string()));
                    break;
                }
            };
            let delivery_id = delivery_id(event.event_id, announcement.event, url);
            planned.push(Planned {
                work: item,
                command: ScheduleWebhookDelivery {
                    delivery_id: delivery_id.clone(),
                    merchant_id: payment.merchant_id,
                    event: announcement.event.to_owned(),
                    source_event_id: event.event_id,
                    url: url.to_owned(),
                    body,
                    retry_intervals_seconds: settings.retry_intervals.clone(),
                    at: chrono::Utc::now(),
                },
                delivery_id,
                metadata: metadata.clone(),
                merchant: merchant.clone(),
            });
        }
    }

    // 2. Append them all at once: group commit writes them together.
    let executed = futures::future::join_all(planned.iter().map(|plan| {
        runner::create::<WebhookDeliveryAggregate, _>(
            store,
            &plan.delivery_id,
            &plan.metadata,
            |_| Ok(plan.command.clone().into()),
        )
    }))
    .await;

    // 3. One statement writes the new rows; those due now and with room in
    // the worker's queue are written leased and handed over.
    let now = chrono::Utc::now();
    let mut created: Vec<(usize, runner::Loaded<WebhookDeliveryAggregate>, &Merchant)> = Vec::new();
    let mut already = Vec::new();
    for (plan, executed) in planned.iter().zip(executed) {
        match executed {
            Ok(executed) => created.push((
                plan.work,
                runner::Loaded {
                    stream: executed.stream,
                    state: executed.state,
                    version: executed.version,
                },
                &plan.merchant,
            )),
            Err(CommandError::Rejected(DomainError::WebhookDeliveryAlreadyScheduled)) => {
                already.push((plan.work, &plan.delivery_id));
            }
            Err(CommandError::Rejected(error)) => {
                // E.g. a URL the domain refuses: nothing can ever be sent.
                tracing::warn!(delivery_id = %plan.delivery_id, %error, "delivery not scheduled");
            }
            Err(error) => outcomes[plan.work] = Err(error.into()),
        }
    }
    let mut permits = Vec::new();
    let rows: Vec<schedule::NewRow> = created
        .iter()
        .filter_map(|(_, loaded, _)| {
            let due = loaded
                .state
                .as_ref()
                .is_some_and(|delivery| delivery.is_due(now));
            let permit = if due {
                handoff.and_then(|handoff| handoff.queue.try_reserve().ok())
            } else {
                None
            };
            let row = schedule::NewRow::of(loaded, permit.is_some())?;
            if let Some(permit) = permit {
                permits.push((row.delivery_id.clone(), permit));
            }
            Some(row)
        })
        .collect();
    match schedule::insert_many(store.pool(), &rows, settings.lease).await {
        Ok(written) => {
            if let Some(handoff) = handoff {
                // Written, or already at this version or later.
                for row in &rows {
                    handoff.rows.wrote(&row.delivery_id, row.version);
                }
            }
            let leased_at = Instant::now();
            let written: std::collections::HashSet<String> = written.into_iter().collect();
            let mut loaded_by_id: HashMap<
                &str,
                (&runner::Loaded<WebhookDeliveryAggregate>, &Merchant),
            > = created
                .iter()
                .filter_map(|(_, loaded, merchant)| {
                    Some((
                        loaded.state.as_ref()?.delivery_id.as_str(),
                        (loaded, *merchant),
                    ))
                })
                .collect();
            for (delivery_id, permit) in permits {
                // A row already at this version or later is someone else's.
                if !written.contains(&delivery_id) {
                    continue;
                }
                let (Some((loaded, merchant)), Some(row)) = (
                    loaded_by_id.remove(delivery_id.as_str()),
                    rows.iter().find(|row| row.delivery_id == delivery_id),
                ) else {
                    continue;
                };
                permit.send(Job {
                    row: Claimed {
                        delivery_id,
                        endpoint: row.endpoint.clone(),
                        next_attempt_at: row.next_attempt_at,
                    },
                    loaded: Some(loaded.clone()),
                    merchant: Some(Box::new(merchant.clone())),
                    leased_at,
                });
            }
            for (work, _, _) in &created {
                if let Ok(count) = &mut outcomes[*work] {
                    *count += 1;
                }
                metrics.scheduled.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(error) => {
            // The events are handled again, find their deliveries scheduled,
            // and write the rows then.
            let error = error.to_string();
            for (work, _, _) in &created {
                outcomes[*work] = Err(HandleError::Batch(error.clone()));
            }
        }
    }

    // 4. Scheduled by an earlier delivery of the same event, which may have
    // stopped before its row was written: make sure it is.
    let synced = futures::future::join_all(already.iter().map(|(_, delivery_id)| async move {
        let loaded = runner::load::<WebhookDeliveryAggregate>(store, *delivery_id).await?;
        schedule::sync(store.pool(), &loaded).await?;
        Ok::<_, HandleError>(())
    }))
    .await;
    for ((work, _), result) in already.iter().zip(synced) {
        if let Err(error) = result {
            outcomes[*work] = Err(error);
        }
    }

    outcomes
        .into_iter()
        .map(|outcome| outcome.map(Handled::Scheduled))
        .collect()
}

// ---- The consumer ---------------------------------------------------------------

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
    let mut failures: u32 = 0;
    loop {
        let result = consume(&shared, &jetstream, (&slots, &batches), &mut failures).await;
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
    (slots, batches): (&Arc<Semaphore>, &Arc<Semaphore>),
    failures: &mut u32,
) -> Result<(), String> {
    let settings = &shared.settings;
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
    let most = settings.intake_in_flight.clamp(1, 256);
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(most)
        .expires(Duration::from_secs(30))
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .map_err(|error| format!("messages: {error}"))?
        .ready_chunks(most);
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
            *failures = 0;
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
            return Err(error);
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
                metrics.errors.fetch_add(1, Ordering::Relaxed);
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
    let work = handle_batch(&context, &events, handoff.as_ref());
    // Bounded: a stuck database must not hold the messages past their ack wait.
    let outcomes = match tokio::time::timeout(settings.ack_wait.mul_f32(0.8), work).await {
        Ok(outcomes) => outcomes,
        Err(_) => {
            metrics.errors.fetch_add(1, Ordering::Relaxed);
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
                metrics.errors.fetch_add(1, Ordering::Relaxed);
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
