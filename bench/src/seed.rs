//! History for benchmarks: realistic payment lives appended through the real
//! store (hash chains, heads, group commit), so that a database can hold
//! millions of events before a load runs on it.
//!
//! A life is 8 events on 2 streams: an order (created, attempted, paid) and
//! its payment (created, succeeded, captured, a refund requested and
//! processed), for merchants registered with fee rates and no webhook URL.
//! Used by the `seed` binary (issue 10: the system on a 5-million-event
//! database) and by the projector's rebuild benchmark.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::stream::{self, StreamExt, TryStreamExt};
use paystream_domain::merchant::{MerchantEvent, MerchantRegistered, WebhookEndpointConfigured};
use paystream_domain::order::{OrderAttempted, OrderCreated, OrderEvent, OrderPaid};
use paystream_domain::payment::{
    PaymentCaptured, PaymentCreated, PaymentEvent, PaymentMethod, PaymentSucceeded, RefundCreated,
    RefundProcessed,
};
use paystream_domain::{Currency, DomainEvent, MerchantId, OrderId, PaymentId, RefundId};
use paystream_store::{
    EventMetadata, EventStore, ExpectedVersion, NewEvent, PgEventStore, StreamId,
};
use uuid::Uuid;

/// Events in one payment life.
pub const EVENTS_PER_LIFE: usize = 8;

fn new_events<E: DomainEvent>(events: Vec<E>) -> Vec<NewEvent> {
    events
        .iter()
        .map(|e| NewEvent::new(e.event_type(), e.schema_version(), e.to_payload()))
        .collect()
}

async fn append(
    store: &PgEventStore,
    category: &str,
    id: &str,
    events: Vec<NewEvent>,
    merchant: MerchantId,
) -> anyhow::Result<()> {
    let stream = StreamId::new(category, id).map_err(|e| anyhow::anyhow!("stream id: {e}"))?;
    let metadata = EventMetadata {
        merchant_id: Some(*merchant.as_uuid()),
        actor: "seed".into(),
        ..EventMetadata::default()
    };
    store
        .append(&stream, ExpectedVersion::NoStream, events, &metadata)
        .await
        .map_err(|e| anyhow::anyhow!("append to {stream}: {e}"))?;
    Ok(())
}

/// Registers `count` merchants (fee rates 0, 0.10 %, 0.20 %, …; no webhook
/// URL, so their history sends no webhooks).
pub async fn merchants(store: &PgEventStore, count: usize) -> anyhow::Result<Vec<MerchantId>> {
    let mut merchants = Vec::with_capacity(count);
    for n in 0..count {
        let merchant = MerchantId::from_uuid(Uuid::now_v7());
        let registered = MerchantRegistered {
            merchant_id: merchant,
            name: format!("Seeded merchant {n}"),
            email: format!("seeded-{}@example.com", merchant.as_uuid().simple()),
            password_hash: None,
            api_key: format!("key_seed_{}", merchant.as_uuid().simple()),
            api_secret_hash: "0".repeat(64),
            webhook_secret: "whsec_seed".into(),
            fee_bps: u32::try_from(n % 50 * 10).unwrap_or(0),
            registered_at: Utc::now(),
        };
        let configured = WebhookEndpointConfigured {
            url: None,
            events: Vec::new(),
        };
        append(
            store,
            "merchant",
            &merchant.to_string(),
            new_events::<MerchantEvent>(vec![registered.into(), configured.into()]),
            merchant,
        )
        .await?;
        merchants.push(merchant);
    }
    Ok(merchants)
}

/// One payment life (number `n`) of `merchant`: two appends, 8 events.
pub async fn life(store: &PgEventStore, merchant: MerchantId, n: u64) -> anyhow::Result<()> {
    let now = Utc::now();
    let order_id = OrderId::from_random_bytes(rand::random());
    let payment_id = PaymentId::from_random_bytes(rand::random());
    let amount = 1_000 + i64::try_from(n % 100_000).unwrap_or(0);
    append(
        store,
        "order",
        order_id.as_str(),
        new_events::<OrderEvent>(vec![
            OrderCreated {
                order_id: order_id.clone(),
                merchant_id: merchant,
                amount,
                currency: Currency::INR,
                receipt: Some(format!("receipt-{n}")),
                notes: None,
                created_at: now,
            }
            .into(),
            OrderAttempted {
                payment_id: payment_id.clone(),
                attempted_at: now,
            }
            .into(),
            OrderPaid {
                payment_id: payment_id.clone(),
                paid_at: now,
            }
            .into(),
        ]),
        merchant,
    )
    .await?;
    let refund_id = RefundId::from_random_bytes(rand::random());
    append(
        store,
        "payment",
        payment_id.as_str(),
        new_events::<PaymentEvent>(vec![
            PaymentCreated {
                payment_id: payment_id.clone(),
                order_id,
                merchant_id: merchant,
                amount,
                currency: Currency::INR,
                method: PaymentMethod::Upi,
                vpa: Some("shopper@okbank".into()),
                card_network: None,
                card_last4: None,
                created_at: now,
            }
            .into(),
            PaymentSucceeded { succeeded_at: now }.into(),
            PaymentCaptured {
                amount,
                captured_at: now,
            }
            .into(),
            RefundCreated {
                refund_id: refund_id.clone(),
                payment_id: payment_id.clone(),
                amount: amount / 3,
                reason: Some("asked".into()),
                created_at: now,
            }
            .into(),
            RefundProcessed {
                refund_id,
                processed_at: now,
            }
            .into(),
        ]),
        merchant,
    )
    .await
}

/// Appends `lives` payment lives spread over `merchants`, `writers` at a
/// time (group commit batches them). With `progress`, prints a line to
/// stderr every 10 seconds.
pub async fn lives(
    store: &PgEventStore,
    merchants: &[MerchantId],
    lives: u64,
    writers: usize,
    progress: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(!merchants.is_empty(), "no merchant to seed lives for");
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let reporter = progress.then(|| {
        let done = done.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            loop {
                tick.tick().await;
                let done = done.load(Ordering::Relaxed);
                let rate = done as f64 / started.elapsed().as_secs_f64();
                eprintln!(
                    "seed: {done}/{lives} lives ({} events), {rate:.0} lives/s, {:.0} s left",
                    done * EVENTS_PER_LIFE as u64,
                    lives.saturating_sub(done) as f64 / rate.max(1.0)
                );
            }
        })
    });
    let result = stream::iter(0..lives)
        .map(Ok)
        .try_for_each_concurrent(writers.max(1), |n| {
            let merchant = merchants[usize::try_from(n).unwrap_or(0) % merchants.len()];
            let done = &done;
            async move {
                life(store, merchant, n).await?;
                done.fetch_add(1, Ordering::Relaxed);
                anyhow::Ok(())
            }
        })
        .await;
    if let Some(reporter) = reporter {
        reporter.abort();
    }
    result
}
