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

//!
//! * [`webhook`]: the pure mapping from an event to its webhooks;
//! * [`payments`]: the payments as of the events handled;
//! * `scheduling`: a batch's deliveries, in four set-based steps;
//! * [`consumer`]: the I/O loop.

mod consumer;
pub mod payments;
mod scheduling;
pub mod webhook;

use std::sync::Arc;

use paystream_domain::payment::{PaymentAggregate, PaymentEvent};
use paystream_domain::webhook::WebhookDeliveryAggregate;
use paystream_domain::{Aggregate, DomainEvent, WebhookDeliveryId};
use paystream_store::runner::{self, CommandError};
use paystream_store::{PgEventStore, RecordedEvent, StoreError};
use tokio::sync::mpsc;

pub use consumer::{filter_subject, run};
pub use payments::remembered_payments;
pub use webhook::{announcements, build_body, delivery_id, message_id, Announcement};

use crate::config::Settings;
use crate::merchants::Merchants;
use crate::metrics::Metrics;
use crate::worker::Job;
use crate::{recent, schedule};
use payments::PAYMENTS;

/// Who the dispatcher's events are recorded as.
pub const ACTOR: &str = "system:webhook-dispatcher";

/// What the intake shares with its dispatcher's worker.
#[derive(Debug, Clone)]
pub struct Handoff {
    /// Deliveries just scheduled, rows already leased, for the worker.
    pub queue: mpsc::Sender<Job>,
    /// Rows this dispatcher wrote, so that its own echoed events need no read.
    pub rows: Arc<recent::Rows>,
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
        let outcomes =
            scheduling::schedule_for_payment_events(context, events, &payments, handoff).await;
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
