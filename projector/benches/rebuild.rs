//! Rebuild throughput: `projector rebuild` of every projection over a store
//! of `PAYSTREAM_BENCH_EVENTS` events (default 1,000,000), next to the rate
//! of merely reading the same global log (the same run, the same database).
//!
//! `cargo bench -p paystream-projector --bench rebuild`
//! Env: `PAYSTREAM_BENCH_DATABASE_URL` (a role that may create databases;
//! default `PAYSTREAM_TEST_DATABASE_URL`), `PAYSTREAM_BENCH_EVENTS`.
//!
//! The store holds realistic payment lives, 8 events each: an order
//! (created, attempted, paid) and its payment (created, succeeded, captured,
//! a refund requested and processed), for 50 merchants with fee rates.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures::stream::{self, StreamExt};
use paystream_command_api::store::{
    EventMetadata, EventStore, ExpectedVersion, NewEvent, PgEventStore, Position, StreamId,
};
use paystream_domain::merchant::{MerchantEvent, MerchantRegistered, WebhookEndpointConfigured};
use paystream_domain::order::{OrderAttempted, OrderCreated, OrderEvent, OrderPaid};
use paystream_domain::payment::{
    PaymentCaptured, PaymentCreated, PaymentEvent, PaymentMethod, PaymentSucceeded, RefundCreated,
    RefundProcessed,
};
use paystream_domain::{Currency, DomainEvent, MerchantId, OrderId, PaymentId, RefundId};
use paystream_projector::rebuild::rebuild;
use paystream_projector::Projection;
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

const EVENTS_PER_LIFE: usize = 8;
const MERCHANTS: usize = 50;
const WRITERS: usize = 32;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn new_events<E: DomainEvent>(events: Vec<E>) -> Vec<NewEvent> {
    events
        .iter()
        .map(|e| NewEvent::new(e.event_type(), e.schema_version(), e.to_payload()))
        .collect()
}

fn metadata(merchant: MerchantId) -> EventMetadata {
    EventMetadata {
        merchant_id: Some(*merchant.as_uuid()),
        actor: "bench".into(),
        ..EventMetadata::default()
    }
}

async fn append(
    store: &PgEventStore,
    category: &str,
    id: &str,
    events: Vec<NewEvent>,
    merchant: MerchantId,
) {
    let stream = StreamId::new(category, id).expect("stream id");
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            events,
            &metadata(merchant),
        )
        .await
        .expect("append");
}

/// One payment life: an order stream and a payment stream, 8 events.
async fn life(store: &PgEventStore, merchant: MerchantId, n: u64) {
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
    .await;
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
    .await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(());
    }
    let admin = std::env::var("PAYSTREAM_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("PAYSTREAM_TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let events: usize = env_or("PAYSTREAM_BENCH_EVENTS", 1_000_000);
    let name = format!("ps_bench_{}", Uuid::now_v7().simple());
    PgConnection::connect(&admin)
        .await?
        .execute(format!("create database {name}").as_str())
        .await?;
    let url = format!("{}/{name}", admin.rsplit_once('/').map_or("", |(s, _)| s));
    let store = PgEventStore::connect(&url, WRITERS as u32 + 2).await?;

    // ---- the store -------------------------------------------------------
    let started = Instant::now();
    let merchants: Vec<MerchantId> = (0..MERCHANTS)
        .map(|_| MerchantId::from_uuid(Uuid::now_v7()))
        .collect();
    for (n, merchant) in merchants.iter().enumerate() {
        let registered = MerchantRegistered {
            merchant_id: *merchant,
            name: format!("Merchant {n}"),
            email: format!("m{n}@example.com"),
            password_hash: None,
            api_key: format!("key_{n}"),
            api_secret_hash: "0".repeat(64),
            webhook_secret: "whsec_bench".into(),
            fee_bps: u32::try_from(n * 10).unwrap_or(0),
            registered_at: Utc::now(),
        };
        let configured = WebhookEndpointConfigured {
            url: None,
            events: Vec::new(),
        };
        append(
            &store,
            "merchant",
            &merchant.to_string(),
            new_events::<MerchantEvent>(vec![registered.into(), configured.into()]),
            *merchant,
        )
        .await;
    }
    let lives = events.div_ceil(EVENTS_PER_LIFE) as u64;
    let store = Arc::new(store);
    let merchants = Arc::new(merchants);
    stream::iter(0..lives)
        .for_each_concurrent(WRITERS, |n| {
            let store = store.clone();
            let merchants = merchants.clone();
            async move {
                let merchant = merchants[usize::try_from(n).unwrap_or(0) % MERCHANTS];
                life(&store, merchant, n).await;
            }
        })
        .await;
    store.pool().execute("vacuum analyze events").await?;
    let total: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(store.pool())
        .await?;
    eprintln!(
        "store: {total} events written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // ---- baseline: reading the global log --------------------------------
    let started = Instant::now();
    let mut after = Position::START;
    let mut read = 0u64;
    loop {
        let page = store
            .read_all(after, paystream_projector::rebuild::PAGE)
            .await?;
        read += page.len() as u64;
        match page.last() {
            Some(last) => after = last.position,
            None => break,
        }
    }
    let read_rate = read as f64 / started.elapsed().as_secs_f64();

    // ---- rebuilds --------------------------------------------------------
    let mut rows = Vec::new();
    for (label, projections) in [
        ("all four projections, one pass", Projection::ALL.to_vec()),
        ("payments", vec![Projection::Payments]),
        ("ledger", vec![Projection::Ledger]),
    ] {
        let report = rebuild(&store, &projections, false)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        rows.push((label, report));
    }

    println!("\n## Rebuild ({total} events, {lives} payment lives, {MERCHANTS} merchants)\n");
    println!("| what | events/s | time | vs. reading the log |");
    println!("|---|---|---|---|");
    println!(
        "| baseline: read the global log (`read_all`, pages of {}) | {read_rate:.0} | {:.1} s | 1.00 |",
        paystream_projector::rebuild::PAGE,
        read as f64 / read_rate
    );
    for (label, report) in rows {
        println!(
            "| rebuild: {label} | {:.0} | {:.1} s | {:.2} |",
            report.events_per_second(),
            report.elapsed.as_secs_f64(),
            report.events_per_second() / read_rate
        );
    }
    let store = Arc::try_unwrap(store).map_err(|_| anyhow::anyhow!("store still shared"))?;
    store.pool().close().await;
    PgConnection::connect(&admin)
        .await?
        .execute(format!("drop database {name} with (force)").as_str())
        .await?;
    Ok(())
}
