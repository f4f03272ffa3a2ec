//! Scheduling the deliveries of a batch of payment events, in four steps
//! that each touch the database once for the whole batch: plan (pure, per
//! event), append (group commit), write the schedule rows (one statement,
//! handing due ones straight to the worker), and bring up to date the rows
//! of deliveries an earlier run scheduled.

use std::collections::HashMap;
use std::time::Instant;

use paystream_domain::merchant::Merchant;
use paystream_domain::payment::PaymentEvent;
use paystream_domain::webhook::{ScheduleWebhookDelivery, WebhookDeliveryAggregate};
use paystream_domain::{DomainError, WebhookDeliveryId};
use paystream_store::runner::{self, CommandError};
use paystream_store::{EventMetadata, RecordedEvent};

use super::{payments, webhook, Announcement, Context, HandleError, Handled, Handoff, ACTOR};
use crate::schedule::{self, Claimed};
use crate::worker::Job;

/// One delivery to schedule, for the event at `work` in the batch.
struct Planned {
    work: usize,
    command: ScheduleWebhookDelivery,
    metadata: EventMetadata,
    /// The merchant's settings as of the source event.
    merchant: Merchant,
}

/// Outcome so far of each event of the batch: deliveries scheduled.
type Outcomes = Vec<Result<usize, HandleError>>;

/// Schedules the deliveries of the payment events `work` (indexes into
/// `events`, with their announcements); one outcome per item of `work`.
pub(super) async fn schedule_for_payment_events(
    context: &Context<'_>,
    events: &[RecordedEvent],
    work: &[(usize, PaymentEvent, Vec<Announcement>)],
    handoff: Option<&Handoff>,
) -> Vec<Result<Handled, HandleError>> {
    let states = match payments::at_events(context.store, events, work).await {
        Ok(states) => states,
        Err(error) => {
            let error = error.to_string();
            return work
                .iter()
                .map(|_| Err(HandleError::Batch(error.clone())))
                .collect();
        }
    };
    let mut outcomes: Outcomes = work.iter().map(|_| Ok(0)).collect();
    let planned = plan(context, events, work, &states, &mut outcomes).await;
    let (created, already) = append(context, &planned, &mut outcomes).await;
    write_rows(context, &created, handoff, &mut outcomes).await;
    sync_already(context, &already, &mut outcomes).await;
    outcomes
        .into_iter()
        .map(|outcome| outcome.map(Handled::Scheduled))
        .collect()
}

/// Step 1, what to schedule: each event's deliveries under its merchant's
/// endpoint settings as of the event (invariant 8).
async fn plan(
    context: &Context<'_>,
    events: &[RecordedEvent],
    work: &[(usize, PaymentEvent, Vec<Announcement>)],
    states: &HashMap<(String, u64), paystream_domain::payment::Payment>,
    outcomes: &mut Outcomes,
) -> Vec<Planned> {
    let mut planned = Vec::new();
    let at = chrono::Utc::now();
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
        let merchant = match context
            .merchants
            .as_of(context.store, payment.merchant_id, event.position)
            .await
        {
            Ok(Some(merchant)) => merchant,
            Ok(None) => continue,
            Err(error) => {
                outcomes[item] = Err(error.into());
                continue;
            }
        };
        let commands = match webhook::plan_deliveries(
            event,
            payment,
            &merchant,
            wanted,
            &context.settings.retry_intervals,
            at,
        ) {
            Ok(commands) => commands,
            Err(error) => {
                outcomes[item] = Err(HandleError::Unreadable(error.to_string()));
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
        planned.extend(commands.into_iter().map(|command| Planned {
            work: item,
            command,
            metadata: metadata.clone(),
            merchant: merchant.clone(),
        }));
    }
    planned
}

/// A delivery just created: its stream as loaded, and its merchant.
type Created<'a> = (
    usize,
    runner::Loaded<WebhookDeliveryAggregate>,
    &'a Merchant,
);

/// Step 2: append them all at once: group commit writes them together. Returns
/// the deliveries created, and those an earlier run had created already.
async fn append<'a>(
    context: &Context<'_>,
    planned: &'a [Planned],
    outcomes: &mut Outcomes,
) -> (Vec<Created<'a>>, Vec<(usize, &'a WebhookDeliveryId)>) {
    let executed = futures::future::join_all(planned.iter().map(|plan| {
        runner::create::<WebhookDeliveryAggregate, _>(
            context.store,
            &plan.command.delivery_id,
            &plan.metadata,
            |_| Ok(plan.command.clone().into()),
        )
    }))
    .await;
    let mut created = Vec::new();
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
                already.push((plan.work, &plan.command.delivery_id));
            }
            Err(CommandError::Rejected(error)) => {
                // E.g. a URL the domain refuses: nothing can ever be sent.
                tracing::warn!(delivery_id = %plan.command.delivery_id, %error, "delivery not scheduled");
            }
            Err(error) => outcomes[plan.work] = Err(error.into()),
        }
    }
    (created, already)
}

/// Step 3: one statement writes the new rows; those due now and with room in
/// the worker's queue are written leased and handed over.
async fn write_rows(
    context: &Context<'_>,
    created: &[Created<'_>],
    handoff: Option<&Handoff>,
    outcomes: &mut Outcomes,
) {
    let now = chrono::Utc::now();
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
    let written =
        match schedule::insert_many(context.store.pool(), &rows, context.settings.lease).await {
            Ok(written) => written,
            Err(error) => {
                // The events are handled again, find their deliveries
                // scheduled, and write the rows then.
                let error = error.to_string();
                for (work, _, _) in created {
                    outcomes[*work] = Err(HandleError::Batch(error.clone()));
                }
                return;
            }
        };
    if let Some(handoff) = handoff {
        // Written, or already at this version or later.
        for row in &rows {
            handoff.rows.wrote(&row.delivery_id, row.version);
        }
    }
    let leased_at = Instant::now();
    let written: std::collections::HashSet<String> = written.into_iter().collect();
    let mut loaded_by_id: HashMap<&str, (&runner::Loaded<WebhookDeliveryAggregate>, &Merchant)> =
        created
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
    for (work, _, _) in created {
        if let Ok(count) = &mut outcomes[*work] {
            *count += 1;
        }
        context.metrics.scheduled.increment(1);
    }
}

/// Step 4: deliveries scheduled by an earlier delivery of the same event, which may have
/// stopped before its row was written: make sure it is.
async fn sync_already(
    context: &Context<'_>,
    already: &[(usize, &WebhookDeliveryId)],
    outcomes: &mut Outcomes,
) {
    let store = context.store;
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
}
