//! The pure mapping from a stored payment event to the webhooks it
//! announces: which contract events, the ids (derived, so a redelivered
//! event schedules nothing twice), and the exact bodies. No I/O.

use paystream_domain::api::{PaymentView, RefundView};
use paystream_domain::merchant::Merchant;
use paystream_domain::payment::{Payment, PaymentEvent};
use paystream_domain::webhook::ScheduleWebhookDelivery;
use paystream_domain::{RefundId, WebhookDeliveryId};
use paystream_store::RecordedEvent;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

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

/// The deliveries `event` (folded into `payment`) calls for under the
/// merchant's endpoint settings as of that event (invariant 8): one per
/// announcement the merchant subscribes to.
pub fn plan_deliveries(
    event: &RecordedEvent,
    payment: &Payment,
    merchant: &Merchant,
    wanted: &[Announcement],
    retry_intervals_seconds: &[u32],
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<ScheduleWebhookDelivery>, serde_json::Error> {
    let mut planned = Vec::new();
    for (position, announcement) in wanted.iter().enumerate() {
        let Some(url) = merchant.webhook.endpoint_for(announcement.event) else {
            continue;
        };
        let id = message_id(event.event_id, announcement.event, position);
        let Some(body) = build_body(
            id,
            announcement,
            event.recorded_at.timestamp(),
            event.version,
            payment,
        )?
        else {
            continue;
        };
        planned.push(ScheduleWebhookDelivery {
            delivery_id: delivery_id(event.event_id, announcement.event, url),
            merchant_id: payment.merchant_id,
            event: announcement.event.to_owned(),
            source_event_id: event.event_id,
            url: url.to_owned(),
            body,
            retry_intervals_seconds: retry_intervals_seconds.to_vec(),
            at,
        });
    }
    Ok(planned)
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
