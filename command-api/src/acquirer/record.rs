//! Recording outcomes as domain commands, so that each payment gets exactly
//! one outcome however often its message is delivered, and whenever the
//! acquirer dies.
//!
//! * The payment aggregate accepts one outcome; a second one is
//!   `PaymentAlreadyFinalized`, which here means "a previous delivery did it".
//! * A success first claims the order (`MarkOrderPaid`), then records
//!   `PaymentSucceeded`. The claim is a no-op when this payment already holds
//!   it, so a crash between the two steps is repaired by the redelivery. A
//!   claim refused because another payment holds the order
//!   (`OrderAlreadyPaid`) turns the outcome into a failure
//!   `ORDER_ALREADY_PAID`: an order is paid at most once (invariant 3).
//! * Refunds: `ProcessRefund`; `RefundAlreadyProcessed` means done.

use chrono::Utc;
use paystream_domain::order::{MarkOrderPaid, OrderAggregate};
use paystream_domain::payment::{
    PaymentAggregate, PaymentCreated, PaymentEvent, PaymentStatus, ProcessRefund,
    RecordPaymentFailure, RecordPaymentSuccess, RefundCreated, RefundStatus,
};
use paystream_domain::{DomainError, DomainEvent};

use super::outcome::{PaymentOutcome, ORDER_ALREADY_PAID};
use paystream_store::runner::{self, CommandError};
use paystream_store::{EventMetadata, PgEventStore, RecordedEvent};

/// Who the acquirer's events are recorded as.
pub const ACTOR: &str = "system:acquirer";

/// Work the acquirer does for one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    Payment(PaymentCreated),
    Refund(RefundCreated),
}

/// The job `event` asks for: `None` for every event but `PaymentCreated` and
/// `RefundCreated` on a payment stream.
pub fn job_of(event: &RecordedEvent) -> Result<Option<Job>, paystream_domain::UpcastError> {
    if event.stream_id.category() != "payment"
        || !matches!(
            event.event_type.as_str(),
            "PaymentCreated" | "RefundCreated"
        )
    {
        return Ok(None);
    }
    let parsed = PaymentEvent::from_stored(
        &event.event_type,
        event.schema_version,
        event.payload.clone(),
    )?;
    Ok(match parsed {
        PaymentEvent::PaymentCreated(created) => Some(Job::Payment(created)),
        PaymentEvent::RefundCreated(created) => Some(Job::Refund(created)),
        _ => None,
    })
}

/// The metadata of every event recorded because of `source`.
pub fn metadata_for(source: &RecordedEvent, job: &Job) -> EventMetadata {
    let merchant_from_payload = match job {
        Job::Payment(payment) => Some(*payment.merchant_id.as_uuid()),
        Job::Refund(_) => None,
    };
    EventMetadata {
        merchant_id: source.metadata.merchant_id.or(merchant_from_payload),
        causation_id: Some(source.event_id),
        // Keep the chain that started with the merchant's request; an event
        // recorded without one starts its own.
        correlation_id: source.metadata.correlation_id.or(Some(source.event_id)),
        actor: ACTOR.to_owned(),
        idempotency: None,
    }
}

/// What recording did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// This delivery recorded the payment's outcome.
    Payment(PaymentOutcome),
    /// This delivery processed the refund.
    RefundProcessed,
    /// An earlier delivery had already recorded the outcome: nothing written.
    AlreadyRecorded,
}

impl Recorded {
    pub fn label(&self) -> &str {
        match self {
            Self::Payment(outcome) => outcome.label(),
            Self::RefundProcessed => "refund_processed",
            Self::AlreadyRecorded => "already_recorded",
        }
    }
}

/// True when the job's outcome is already in the store (a redelivery).
pub async fn already_recorded(store: &PgEventStore, job: &Job) -> Result<bool, CommandError> {
    Ok(match job {
        Job::Payment(payment) => runner::load::<PaymentAggregate>(store, &payment.payment_id)
            .await?
            .state
            .is_some_and(|payment| payment.status != PaymentStatus::Pending),
        Job::Refund(refund) => {
            runner::load::<PaymentAggregate>(store, &refund.payment_id)
                .await?
                .state
                .and_then(|payment| payment.refunds.get(&refund.refund_id).map(|r| r.status))
                == Some(RefundStatus::Processed)
        }
    })
}

/// Records the bank's answer for `payment`: claims the order first on
/// success, and records exactly one outcome.
pub async fn record_payment(
    store: &PgEventStore,
    metadata: &EventMetadata,
    payment: &PaymentCreated,
    decided: PaymentOutcome,
) -> Result<Recorded, CommandError> {
    if already_recorded(store, &Job::Payment(payment.clone())).await? {
        return Ok(Recorded::AlreadyRecorded);
    }
    let outcome = match decided {
        PaymentOutcome::Success => {
            let claim =
                runner::execute::<OrderAggregate, _>(store, &payment.order_id, metadata, |_| {
                    Ok(MarkOrderPaid {
                        payment_id: payment.payment_id.clone(),
                        at: Utc::now(),
                    }
                    .into())
                })
                .await;
            match claim {
                Ok(_) => PaymentOutcome::Success,
                Err(CommandError::Rejected(DomainError::OrderAlreadyPaid)) => {
                    PaymentOutcome::failure(
                        ORDER_ALREADY_PAID,
                        "Order already paid by another payment",
                    )
                }
                Err(error) => return Err(error),
            }
        }
        failure @ PaymentOutcome::Failure { .. } => {
            // If this payment already holds the order (a crash after the
            // claim, then a restart with other settings), its outcome can
            // only be success: never leave an order paid by a failed payment.
            let order = runner::load::<OrderAggregate>(store, &payment.order_id).await?;
            let claimed = order
                .state
                .is_some_and(|order| order.paid_by.as_ref() == Some(&payment.payment_id));
            if claimed {
                PaymentOutcome::Success
            } else {
                failure
            }
        }
    };
    let recorded =
        runner::execute::<PaymentAggregate, _>(store, &payment.payment_id, metadata, |_| {
            Ok(match &outcome {
                PaymentOutcome::Success => RecordPaymentSuccess { at: Utc::now() }.into(),
                PaymentOutcome::Failure {
                    error_code,
                    error_description,
                } => RecordPaymentFailure {
                    error_code: error_code.clone(),
                    error_description: error_description.clone(),
                    at: Utc::now(),
                }
                .into(),
            })
        })
        .await;
    match recorded {
        Ok(_) => Ok(Recorded::Payment(outcome)),
        Err(CommandError::Rejected(DomainError::PaymentAlreadyFinalized)) => {
            Ok(Recorded::AlreadyRecorded)
        }
        Err(error) => Err(error),
    }
}

/// Marks `refund` processed (once).
pub async fn record_refund(
    store: &PgEventStore,
    metadata: &EventMetadata,
    refund: &RefundCreated,
) -> Result<Recorded, CommandError> {
    let processed =
        runner::execute::<PaymentAggregate, _>(store, &refund.payment_id, metadata, |_| {
            Ok(ProcessRefund {
                refund_id: refund.refund_id.clone(),
                at: Utc::now(),
            }
            .into())
        })
        .await;
    match processed {
        Ok(_) => Ok(Recorded::RefundProcessed),
        Err(CommandError::Rejected(DomainError::RefundAlreadyProcessed)) => {
            Ok(Recorded::AlreadyRecorded)
        }
        Err(error) => Err(error),
    }
}
