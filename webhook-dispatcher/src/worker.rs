//! The sending side: claims due rows of `webhook_schedule` with a lease,
//! sends each delivery, records the attempt on the delivery aggregate, and
//! sets the row from the new state.
//!
//! * Bounded: at most `max_in_flight` attempts at once, at most
//!   `max_per_endpoint` per URL origin. A saturated endpoint's rows are not
//!   claimed (or are given back at once), so a slow endpoint never holds
//!   up another merchant's deliveries.
//! * Every wait is bounded: the claim (10 s), each attempt (request timeout
//!   plus recording, within the lease).
//! * A killed dispatcher's leases expire and its deliveries are sent again
//!   (at least once). The domain refuses a second record of the same
//!   attempt number, so a duplicate send is recorded once.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use paystream_domain::merchant::{DisableWebhookEndpoint, Merchant, MerchantAggregate};
use paystream_domain::webhook::{
    RecordWebhookAttempt, WebhookDeliveryAggregate, WebhookDeliveryStatus, FAILURE_REASON_GONE,
};
use paystream_domain::{DomainError, WebhookDeliveryId};
use paystream_store::runner::{self, CommandError, Loaded};
use paystream_store::{EventMetadata, PgEventStore};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};

use crate::config::Settings;
use crate::intake::ACTOR;
use crate::merchants::Merchants;
use crate::metrics::Metrics;
use crate::schedule::{self, Claimed};
use crate::send::{self, Sender};
use paystream_store::backoff::backoff;

/// Per-endpoint slots, created on demand and dropped when idle.
#[derive(Debug, Default)]
struct Endpoints {
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Holds one slot of an endpoint; frees the entry when it was the last.
struct EndpointSlot {
    endpoints: Arc<Endpoints>,
    endpoint: String,
    permit: Option<OwnedSemaphorePermit>,
    limit: usize,
}

impl Drop for EndpointSlot {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut slots = self
            .endpoints
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if slots
            .get(&self.endpoint)
            .is_some_and(|semaphore| semaphore.available_permits() == self.limit)
        {
            slots.remove(&self.endpoint);
        }
    }
}

impl Endpoints {
    fn try_acquire(self: &Arc<Self>, endpoint: &str, limit: usize) -> Option<EndpointSlot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let semaphore = slots
            .entry(endpoint.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(limit)))
            .clone();
        let permit = semaphore.try_acquire_owned().ok()?;
        Some(EndpointSlot {
            endpoints: self.clone(),
            endpoint: endpoint.to_owned(),
            permit: Some(permit),
            limit,
        })
    }

    fn saturated(&self) -> Vec<String> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .iter()
            .filter(|(_, semaphore)| semaphore.available_permits() == 0)
            .map(|(endpoint, _)| endpoint.clone())
            .collect()
    }
}

/// A delivery for the worker: a claimed row, or one the intake scheduled a
/// moment ago and inserted already leased by this dispatcher.
#[derive(Debug)]
pub struct Job {
    pub row: Claimed,
    /// The delivery as the intake just wrote it, which spares the attempt
    /// a load (if it is stale, recording the attempt conflicts and reloads).
    pub loaded: Option<Loaded<WebhookDeliveryAggregate>>,
    /// The merchant's settings as of the event that caused the delivery
    /// (from the intake); the current ones are used when `None`.
    pub merchant: Option<Box<Merchant>>,
    /// When its lease started.
    pub leased_at: Instant,
}

/// Runs the claim loop for ever. Deliveries come from `handoff` (scheduled
/// by this dispatcher's intake, already leased) and from claims of due rows
/// (retries, deliveries scheduled elsewhere, rows whose lease expired, and
/// those the intake could not hand over because this queue was full).
pub async fn run(
    store: PgEventStore,
    sender: Sender,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    merchants: Arc<Merchants>,
    mut handoff: mpsc::Receiver<Job>,
    rows: schedule::Writer,
) {
    let global = Arc::new(Semaphore::new(settings.max_in_flight.max(1)));
    let endpoints = Arc::new(Endpoints::default());
    // Signalled whenever an attempt finishes and frees its slots.
    let finished = Arc::new(Notify::new());
    // Jobs whose endpoint was busy: kept (still leased) and sent as soon as
    // the endpoint frees a slot, instead of being given back and claimed
    // again. Bounded by `max_in_flight`; a row held longer than half its
    // lease is given back so that its lease never runs out here.
    let mut held: VecDeque<Job> = VecDeque::new();
    let hold_limit = settings.lease / 2;
    let mut failures: u32 = 0;
    let mut next_claim = tokio::time::Instant::now();
    let mut handoff_open = true;
    loop {
        // 1. Jobs held go first, to endpoints that have a free slot.
        let mut expired = Vec::new();
        let mut still_held = VecDeque::with_capacity(held.len());
        while let Some(job) = held.pop_front() {
            if job.leased_at.elapsed() > hold_limit {
                expired.push(job.row.delivery_id);
                continue;
            }
            match start_attempt(&job.row, &global, &endpoints, &settings) {
                Some(slots) => spawn_attempt(
                    &store, &sender, &settings, &metrics, &merchants, &finished, &rows, job, slots,
                ),
                None => still_held.push_back(job),
            }
        }
        held = still_held;
        give_back(&store, &expired).await;

        // 2. Claim more when due, for endpoints with room, within the global
        // bound.
        let free = global.available_permits().saturating_sub(held.len());
        if free > 0 && tokio::time::Instant::now() >= next_claim {
            let mut skip = endpoints.saturated();
            skip.extend(held.iter().map(|job| job.row.endpoint.clone()));
            let limit = free.min(settings.claim_batch);
            let claimed = tokio::time::timeout(
                Duration::from_secs(10),
                schedule::claim(store.pool(), limit, &skip, settings.lease),
            )
            .await;
            match claimed {
                Ok(Ok(claimed)) => {
                    failures = 0;
                    // A full claim: more may be due at once.
                    next_claim = tokio::time::Instant::now()
                        + if claimed.len() == limit {
                            Duration::ZERO
                        } else {
                            settings.poll_interval
                        };
                    let leased_at = Instant::now();
                    for row in claimed {
                        let job = Job {
                            row,
                            loaded: None,
                            merchant: None,
                            leased_at,
                        };
                        match start_attempt(&job.row, &global, &endpoints, &settings) {
                            Some(slots) => spawn_attempt(
                                &store, &sender, &settings, &metrics, &merchants, &finished, &rows,
                                job, slots,
                            ),
                            None => {
                                metrics.endpoint_saturated.increment(1);
                                held.push_back(job);
                            }
                        }
                    }
                }
                Ok(Err(error)) => {
                    failures = failures.saturating_add(1);
                    metrics.errors.increment(1);
                    tracing::warn!(%error, failures, "claiming due webhooks failed");
                    next_claim =
                        tokio::time::Instant::now() + backoff(failures, settings.backoff_max);
                }
                Err(_) => {
                    failures = failures.saturating_add(1);
                    metrics.errors.increment(1);
                    tracing::warn!(failures, "claiming due webhooks timed out");
                }
            }
            continue;
        }

        // 3. Wait for a handed-over job (while the held queue has room), a
        // freed slot, or the next claim.
        let room = held.len() < settings.max_in_flight.max(1);
        // At the bound, claims wait for a freed slot; the poll still bounds
        // how long a held job waits to be looked at.
        let wake = if free > 0 {
            next_claim
        } else {
            tokio::time::Instant::now() + settings.poll_interval
        };
        tokio::select! {
            job = handoff.recv(), if room && handoff_open => match job {
                Some(job) => {
                    let mut job = Some(job);
                    // Take what else is queued, within the bound.
                    while let Some(next) = job.take() {
                        match start_attempt(&next.row, &global, &endpoints, &settings) {
                            Some(slots) => spawn_attempt(
                                &store, &sender, &settings, &metrics, &merchants, &finished, &rows, next,
                                slots,
                            ),
                            None => {
                                metrics.endpoint_saturated.increment(1);
                                held.push_back(next);
                            }
                        }
                        if held.len() < settings.max_in_flight.max(1) {
                            job = handoff.try_recv().ok();
                        }
                    }
                }
                None => handoff_open = false,
            },
            () = finished.notified() => {}
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// Both slots for `row`, or `None` when its endpoint (or the whole
/// dispatcher) is at its bound.
fn start_attempt(
    row: &Claimed,
    global: &Arc<Semaphore>,
    endpoints: &Arc<Endpoints>,
    settings: &Settings,
) -> Option<(OwnedSemaphorePermit, EndpointSlot)> {
    let endpoint_slot = endpoints.try_acquire(&row.endpoint, settings.max_per_endpoint)?;
    let global_slot = global.clone().try_acquire_owned().ok()?;
    Some((global_slot, endpoint_slot))
}

#[allow(clippy::too_many_arguments)]
fn spawn_attempt(
    store: &PgEventStore,
    sender: &Sender,
    settings: &Arc<Settings>,
    metrics: &Arc<Metrics>,
    merchants: &Arc<Merchants>,
    finished: &Arc<Notify>,
    rows: &schedule::Writer,
    job: Job,
    slots: (OwnedSemaphorePermit, EndpointSlot),
) {
    metrics.in_flight.increment(1.0);
    tokio::spawn(attempt_task(
        store.clone(),
        sender.clone(),
        settings.clone(),
        metrics.clone(),
        merchants.clone(),
        rows.clone(),
        job,
        slots,
        finished.clone(),
    ));
}

/// Releases rows this dispatcher will not send now; if that fails, their
/// leases expire by themselves.
async fn give_back(store: &PgEventStore, delivery_ids: &[String]) {
    if let Err(error) = schedule::release(store.pool(), delivery_ids).await {
        tracing::debug!(%error, "could not give back held rows");
    }
}

#[allow(clippy::too_many_arguments)]
async fn attempt_task(
    store: PgEventStore,
    sender: Sender,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    merchants: Arc<Merchants>,
    rows: schedule::Writer,
    job: Job,
    slots: (OwnedSemaphorePermit, EndpointSlot),
    finished: Arc<Notify>,
) {
    // Finish well inside the lease, so no other dispatcher takes it over
    // meanwhile.
    let limit = settings
        .lease
        .mul_f32(0.9)
        .saturating_sub(job.leased_at.elapsed());
    let Job {
        row,
        loaded,
        merchant,
        ..
    } = job;
    let (global_slot, endpoint_slot) = slots;
    // The endpoint's slot bounds requests to it, so it is freed as soon as
    // the response is in; the global slot bounds attempts, recording
    // included, and is held to the end.
    let endpoint_slot = Some((endpoint_slot, finished.clone()));
    let result = tokio::time::timeout(
        limit,
        attempt_with(
            &store,
            &sender,
            &metrics,
            &row,
            Preloaded {
                loaded,
                merchant: merchant.map_or(
                    MerchantSource::Current(&merchants),
                    MerchantSource::AsOfEvent,
                ),
                rows: Some(&rows),
                endpoint_slot,
            },
        ),
    )
    .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            metrics.errors.increment(1);
            tracing::warn!(delivery_id = %row.delivery_id, %error, "webhook attempt could not be completed; retried when its lease expires");
        }
        Err(_) => {
            metrics.errors.increment(1);
            tracing::warn!(delivery_id = %row.delivery_id, "webhook attempt timed out; retried when its lease expires");
        }
    }
    metrics.in_flight.decrement(1.0);
    drop(global_slot);
    finished.notify_one();
}

#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Other(String),
}

/// One attempt of one claimed delivery.
pub async fn attempt(
    store: &PgEventStore,
    sender: &Sender,
    metrics: &Metrics,
    row: &Claimed,
) -> Result<(), AttemptError> {
    attempt_with(
        store,
        sender,
        metrics,
        row,
        Preloaded {
            loaded: None,
            merchant: MerchantSource::Read,
            rows: None,
            endpoint_slot: None,
        },
    )
    .await
}

/// Where an attempt takes the merchant's settings from.
#[derive(Debug)]
enum MerchantSource<'a> {
    /// As of the event that caused the delivery (handed over by the intake).
    AsOfEvent(Box<Merchant>),
    /// The latest known: later than that event for any row that exists.
    Current(&'a Merchants),
    /// Read from the store now.
    Read,
}

/// What the worker hands an attempt besides the row.
struct Preloaded<'a> {
    /// The delivery as the intake just wrote it; loaded when `None`.
    loaded: Option<Loaded<WebhookDeliveryAggregate>>,
    merchant: MerchantSource<'a>,
    /// Writes the row batched with other attempts'; directly when `None`.
    rows: Option<&'a schedule::Writer>,
    /// The endpoint's slot, freed (and the worker told) once the response
    /// is in.
    endpoint_slot: Option<(EndpointSlot, Arc<Notify>)>,
}

/// One attempt of one delivery.
async fn attempt_with(
    store: &PgEventStore,
    sender: &Sender,
    metrics: &Metrics,
    row: &Claimed,
    preloaded: Preloaded<'_>,
) -> Result<(), AttemptError> {
    let Preloaded {
        loaded: preloaded,
        merchant,
        rows,
        endpoint_slot,
    } = preloaded;
    let delivery_id: WebhookDeliveryId = match row.delivery_id.parse() {
        Ok(id) => id,
        Err(_) => {
            sqlx::query("delete from webhook_schedule where delivery_id = $1")
                .bind(&row.delivery_id)
                .execute(store.pool())
                .await?;
            return Err(AttemptError::Other(format!(
                "schedule row with a bad delivery id {:?} dropped",
                row.delivery_id
            )));
        }
    };
    let loaded = match preloaded {
        Some(loaded) => loaded,
        None => runner::load::<WebhookDeliveryAggregate>(store, &delivery_id).await?,
    };
    let Some(delivery) = loaded.state.clone() else {
        sqlx::query("delete from webhook_schedule where delivery_id = $1")
            .bind(&row.delivery_id)
            .execute(store.pool())
            .await?;
        return Ok(());
    };
    let now = Utc::now();
    if !delivery.is_due(now) {
        // Delivered, failed or moved meanwhile: the row follows the state.
        schedule::sync(store.pool(), &loaded).await?;
        return Ok(());
    }
    let merchant = match merchant {
        MerchantSource::AsOfEvent(merchant) => Some(*merchant),
        MerchantSource::Current(merchants) => {
            merchants.current(store, delivery.merchant_id).await?
        }
        MerchantSource::Read => crate::merchants::read(store, delivery.merchant_id).await?,
    }
    .ok_or_else(|| AttemptError::Other(format!("merchant of {delivery_id} not found")))?;
    let secrets = merchant.webhook.signing_secrets(now);
    let message_id = send::message_id(&delivery.body, delivery.delivery_id.as_str());
    let signed = send::sign(&secrets, &message_id, now.timestamp(), &delivery.body);
    let outcome = sender
        .send(&delivery.url, signed, delivery.body.clone())
        .await;
    if let Some((slot, finished)) = endpoint_slot {
        drop(slot);
        finished.notify_one();
    }

    metrics.attempts.increment(1);
    metrics.observe_latency_ms(outcome.latency_ms);
    if outcome.succeeded() {
        metrics.successes.increment(1);
    } else {
        metrics.failures.increment(1);
    }
    let attempt_number = delivery.attempts + 1;
    let metadata = EventMetadata {
        merchant_id: Some(delivery.merchant_id.into()),
        causation_id: Some(delivery.source_event_id),
        correlation_id: None,
        actor: ACTOR.to_owned(),
        ..EventMetadata::default()
    };
    let command = RecordWebhookAttempt {
        attempt: attempt_number,
        at: outcome.at,
        status_code: outcome.status_code,
        response_body_excerpt: outcome.response_body_excerpt.clone(),
        latency_ms: outcome.latency_ms,
        error: outcome.error.clone(),
        retry_after_seconds: outcome.retry_after_seconds,
    };
    let recorded =
        runner::execute_loaded::<WebhookDeliveryAggregate, _>(store, loaded, &metadata, |_| {
            Ok(command.clone().into())
        })
        .await;
    let after = match recorded {
        Ok(executed) => Loaded {
            stream: executed.stream,
            state: executed.state,
            version: executed.version,
        },
        Err(CommandError::Rejected(
            DomainError::UnexpectedWebhookAttempt { .. } | DomainError::WebhookDeliveryNotPending,
        )) => {
            // Another dispatcher (or a manual retry) got there first.
            tracing::info!(%delivery_id, attempt = attempt_number, "attempt already recorded elsewhere; dropped");
            let fresh = runner::load::<WebhookDeliveryAggregate>(store, &delivery_id).await?;
            schedule::sync(store.pool(), &fresh).await?;
            return Ok(());
        }
        Err(error) => return Err(error.into()),
    };
    match rows {
        Some(rows) => rows.sync(&after).await.map_err(AttemptError::Other)?,
        None => schedule::sync(store.pool(), &after).await?,
    }
    let Some(state) = &after.state else {
        return Ok(());
    };
    tracing::info!(
        %delivery_id,
        attempt = attempt_number,
        status = ?outcome.status_code,
        latency_ms = outcome.latency_ms,
        delivery_status = ?state.status,
        "webhook attempt recorded"
    );
    if state.status == WebhookDeliveryStatus::Failed {
        metrics.deliveries_failed.increment(1);
        if state.failure_reason.as_deref() == Some(FAILURE_REASON_GONE) {
            disable_endpoint(store, metrics, &metadata, state.merchant_id, &state.url).await?;
        }
    }
    Ok(())
}

/// `410 Gone`: disables the merchant's endpoint, if it is still this URL.
async fn disable_endpoint(
    store: &PgEventStore,
    metrics: &Metrics,
    metadata: &EventMetadata,
    merchant_id: paystream_domain::MerchantId,
    url: &str,
) -> Result<(), AttemptError> {
    let executed =
        runner::execute::<MerchantAggregate, _>(store, merchant_id, metadata, |current| {
            match current {
                Some(merchant) if merchant.webhook.url.as_deref() == Some(url) => {
                    Ok(DisableWebhookEndpoint {
                        reason: "Endpoint answered 410 Gone".to_owned(),
                    }
                    .into())
                }
                // Re-configured meanwhile: leave the new endpoint alone.
                _ => Err(DomainError::WebhookDeliveryNotPending),
            }
        })
        .await;
    match executed {
        Ok(executed) => {
            if !executed.events.is_empty() {
                metrics.endpoints_disabled.increment(1);
                tracing::info!(%merchant_id, "webhook endpoint disabled after 410 Gone");
            }
            Ok(())
        }
        Err(CommandError::Rejected(_)) => Ok(()),
        Err(error) => Err(error.into()),
    }
}
