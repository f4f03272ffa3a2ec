//! The simulated acquirer against real PostgreSQL and NATS JetStream.
//!
//! Each test has its own database and its own JetStream stream and subject
//! prefix; the acquirer's settings come from its config struct (never the
//! process environment), so tests run in parallel with each other and with
//! other test files. Every wait is bounded.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use chrono::{Datelike, Utc};
use futures::future::join_all;
use paystream_command_api::acquirer::outcome::{
    self, PaymentOutcome, ProcessingMode, CARD_DECLINED, ORDER_ALREADY_PAID, PAYMENT_FAILED,
};
use paystream_command_api::acquirer::{self, AcquirerConfig, AcquirerHandle};
use paystream_domain::order::{CreateOrder, MarkOrderAttempted, Order, OrderAggregate};
use paystream_domain::payment::{
    CreatePayment, Payment, PaymentAggregate, PaymentCreated, PaymentMethod, PaymentMethodInput,
    PaymentStatus, RefundStatus, RequestRefund,
};
use paystream_domain::validation::CardInput;
use paystream_domain::{Aggregate, Currency, MerchantId, Money, OrderId, PaymentId, RefundId};
use paystream_store::relay::{self, RelayConfig, RelaySignal};
use paystream_store::runner::{self, execute};
use paystream_store::{EventMetadata, EventStore, PgEventStore, StreamId};
use support::{jetstream_at, unique_name, wait_until, NatsServer, TestDatabase};
use tokio::task::JoinHandle;
use uuid::Uuid;

const CONSUMER: &str = "acquirer";

// ---- set-up ----------------------------------------------------------------

fn relay_config() -> RelayConfig {
    let name = unique_name("acq");
    RelayConfig {
        stream_name: name.to_uppercase(),
        subject_prefix: format!("{name}.events"),
        ..RelayConfig::default()
    }
}

fn test_mode(delay_ms: u64, payment_success: bool) -> AcquirerConfig {
    AcquirerConfig {
        mode: ProcessingMode::Test {
            delay: Duration::from_millis(delay_ms),
            payment_success,
        },
        ack_wait: Duration::from_secs(10),
        ..AcquirerConfig::default()
    }
}

/// A database, a JetStream stream of this test's own, and the tasks running
/// on them (stopped when the test ends, even when it fails).
struct Harness {
    database: TestDatabase,
    jetstream: jetstream::Context,
    relay: RelayConfig,
    tasks: Vec<JoinHandle<()>>,
    acquirer: Option<AcquirerHandle>,
}

impl Harness {
    async fn new() -> Self {
        Self::at(&support::nats_url()).await
    }

    async fn at(nats_url: &str) -> Self {
        Self {
            database: TestDatabase::create().await,
            jetstream: jetstream_at(nats_url).await,
            relay: relay_config(),
            tasks: Vec::new(),
            acquirer: None,
        }
    }

    /// Relay and in-process acquirer.
    async fn start(config: AcquirerConfig) -> Self {
        let mut harness = Self::new().await;
        harness.start_relay();
        harness.start_acquirer(config);
        harness
    }

    fn store(&self) -> &PgEventStore {
        &self.database.store
    }

    fn start_relay(&mut self) {
        self.tasks.push(tokio::spawn(relay::run(
            self.store().clone(),
            self.jetstream.clone(),
            self.relay.clone(),
            RelaySignal::default(),
        )));
    }

    fn start_acquirer(&mut self, config: AcquirerConfig) {
        self.acquirer = Some(acquirer::spawn(
            self.store().clone(),
            self.jetstream.clone(),
            self.relay.clone(),
            config,
        ));
    }

    fn stats(&self) -> acquirer::AcquirerStatsSnapshot {
        self.acquirer.as_ref().expect("acquirer").stats().snapshot()
    }

    async fn consumer_info(&self) -> Option<consumer::Info> {
        let stream = self
            .jetstream
            .get_stream(&self.relay.stream_name)
            .await
            .ok()?;
        stream.consumer_info(CONSUMER).await.ok()
    }

    /// Waits until the consumer has every message of the stream acknowledged.
    async fn wait_until_drained(&self) {
        wait_until(
            Duration::from_secs(20),
            "the acquirer to acknowledge everything",
            || async {
                let mut stream = self
                    .jetstream
                    .get_stream(&self.relay.stream_name)
                    .await
                    .ok()?;
                let last = stream.info().await.ok()?.state.last_sequence;
                let info = stream.consumer_info(CONSUMER).await.ok()?;
                (info.num_ack_pending == 0
                    && info.num_pending == 0
                    && info.ack_floor.stream_sequence == last)
                    .then_some(())
            },
        )
        .await;
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(acquirer) = &self.acquirer {
            acquirer.abort();
        }
    }
}

// ---- commands, as a future HTTP API will issue them --------------------------

fn merchant_metadata(merchant_id: MerchantId) -> EventMetadata {
    EventMetadata {
        merchant_id: Some(*merchant_id.as_uuid()),
        causation_id: None,
        correlation_id: Some(Uuid::now_v7()),
        actor: format!("merchant:{merchant_id}"),
        idempotency: None,
    }
}

async fn create_order(store: &PgEventStore) -> OrderId {
    let merchant_id = MerchantId::from_uuid(Uuid::now_v7());
    let order_id = OrderId::from_random_bytes(rand::random());
    execute::<OrderAggregate, _>(store, &order_id, &merchant_metadata(merchant_id), |_| {
        Ok(CreateOrder {
            order_id: order_id.clone(),
            merchant_id,
            amount: Money::new(50_000, Currency::INR),
            receipt: None,
            notes: None,
            at: Utc::now(),
        }
        .into())
    })
    .await
    .expect("create order");
    order_id
}

fn upi(vpa: &str) -> PaymentMethodInput {
    PaymentMethodInput::Upi { vpa: vpa.into() }
}

fn card(number: &str) -> PaymentMethodInput {
    PaymentMethodInput::Card(CardInput {
        number: number.into(),
        expiry_month: "12".into(),
        expiry_year: (Utc::now().year() + 3).to_string(),
        cvv: "123".into(),
        holder_name: "Test Shopper".into(),
    })
}

/// Creates a payment for `order_id` and marks the order attempted.
async fn create_payment(
    store: &PgEventStore,
    order_id: &OrderId,
    method: PaymentMethodInput,
) -> PaymentId {
    let order = order(store, order_id).await;
    let metadata = merchant_metadata(order.merchant_id);
    let payment_id = PaymentId::from_random_bytes(rand::random());
    let now = Utc::now();
    execute::<PaymentAggregate, _>(store, &payment_id, &metadata, |_| {
        Ok(CreatePayment {
            payment_id: payment_id.clone(),
            merchant_id: order.merchant_id,
            order_id: order_id.clone(),
            amount: order.amount,
            order_paid: order.is_paid(),
            method: method.clone(),
            current_year: now.year(),
            current_month: now.month(),
            at: now,
        }
        .into())
    })
    .await
    .expect("create payment");
    execute::<OrderAggregate, _>(store, order_id, &metadata, |_| {
        Ok(MarkOrderAttempted {
            payment_id: payment_id.clone(),
            at: now,
        }
        .into())
    })
    .await
    .expect("mark order attempted");
    payment_id
}

async fn request_refund(store: &PgEventStore, payment: &Payment, amount: i64) -> RefundId {
    let refund_id = RefundId::from_random_bytes(rand::random());
    execute::<PaymentAggregate, _>(
        store,
        &payment.payment_id,
        &merchant_metadata(payment.merchant_id),
        |_| {
            Ok(RequestRefund {
                refund_id: refund_id.clone(),
                amount,
                reason: Some("customer request".into()),
                at: Utc::now(),
            }
            .into())
        },
    )
    .await
    .expect("request refund");
    refund_id
}

// ---- reading back ------------------------------------------------------------

async fn order(store: &PgEventStore, order_id: &OrderId) -> Order {
    runner::load::<OrderAggregate>(store, order_id)
        .await
        .unwrap()
        .state
        .expect("order exists")
}

async fn payment(store: &PgEventStore, payment_id: &PaymentId) -> Payment {
    runner::load::<PaymentAggregate>(store, payment_id)
        .await
        .unwrap()
        .state
        .expect("payment exists")
}

async fn wait_final(store: &PgEventStore, payment_id: &PaymentId, timeout: Duration) -> Payment {
    wait_until(timeout, "the payment's outcome", || async {
        let payment = payment(store, payment_id).await;
        payment.is_final().then_some(payment)
    })
    .await
}

/// How many events of each of `types` the stream holds, summed.
async fn count<A: Aggregate>(
    store: &PgEventStore,
    id: impl std::fmt::Display,
    types: &[&str],
) -> usize {
    let stream = StreamId::new(A::CATEGORY, id).unwrap();
    store
        .read_stream(&stream, 0, 10_000)
        .await
        .unwrap()
        .iter()
        .filter(|event| types.contains(&event.event_type.as_str()))
        .count()
}

async fn outcomes(store: &PgEventStore, payment_id: &PaymentId) -> usize {
    count::<PaymentAggregate>(store, payment_id, &["PaymentSucceeded", "PaymentFailed"]).await
}

async fn order_paid_events(store: &PgEventStore, order_id: &OrderId) -> usize {
    count::<OrderAggregate>(store, order_id, &["OrderPaid"]).await
}

// ---- tests -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upi_and_card_payments_succeed_and_pay_their_orders() {
    let harness = Harness::start(test_mode(300, true)).await;
    let store = harness.store();
    let upi_order = create_order(store).await;
    let card_order = create_order(store).await;
    let by_upi = create_payment(store, &upi_order, upi("shopper@okaxis")).await;
    let by_card = create_payment(store, &card_order, card("4111 1111 1111 1111")).await;

    for (payment_id, order_id) in [(&by_upi, &upi_order), (&by_card, &card_order)] {
        let payment = wait_final(store, payment_id, Duration::from_secs(15)).await;
        assert_eq!(payment.status, PaymentStatus::Success, "{payment:?}");
        assert_eq!(payment.error_code, None);
        let order = order(store, order_id).await;
        assert!(order.is_paid());
        assert_eq!(order.paid_by.as_ref(), Some(payment_id));
        assert_eq!(outcomes(store, payment_id).await, 1);
        assert_eq!(order_paid_events(store, order_id).await, 1);
    }
    assert_eq!(payment(store, &by_card).await.method, PaymentMethod::Card);

    // The outcome is recorded by the acquirer, caused by PaymentCreated, in
    // the merchant's correlation.
    let events = store
        .read_stream(&StreamId::new("payment", &by_upi).unwrap(), 0, 100)
        .await
        .unwrap();
    let created = &events[0];
    let succeeded = events
        .iter()
        .find(|event| event.event_type == "PaymentSucceeded")
        .unwrap();
    assert_eq!(succeeded.metadata.actor, "system:acquirer");
    assert_eq!(succeeded.metadata.causation_id, Some(created.event_id));
    assert_eq!(
        succeeded.metadata.correlation_id,
        created.metadata.correlation_id
    );
    assert_eq!(succeeded.metadata.merchant_id, created.metadata.merchant_id);
    // The bank took at least the test delay.
    assert!(succeeded.recorded_at - created.recorded_at >= chrono::Duration::milliseconds(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magic_inputs_decide_whatever_the_mode_says() {
    // Test mode says "fail": only the magic success VPA succeeds.
    let harness = Harness::start(test_mode(200, false)).await;
    let store = harness.store();
    let mut cases = Vec::new();
    for (method, status, code) in [
        (upi("fail@upi"), PaymentStatus::Failed, Some(PAYMENT_FAILED)),
        (
            card("4000-0000-0000-0002"),
            PaymentStatus::Failed,
            Some(CARD_DECLINED),
        ),
        (upi("success@upi"), PaymentStatus::Success, None),
        (
            upi("shopper@okaxis"),
            PaymentStatus::Failed,
            Some(PAYMENT_FAILED),
        ),
    ] {
        let order_id = create_order(store).await;
        let payment_id = create_payment(store, &order_id, method).await;
        cases.push((order_id, payment_id, status, code));
    }
    for (order_id, payment_id, status, code) in &cases {
        let payment = wait_final(store, payment_id, Duration::from_secs(15)).await;
        assert_eq!(payment.status, *status, "{payment:?}");
        assert_eq!(payment.error_code.as_deref(), *code);
        let order = order(store, order_id).await;
        assert_eq!(order.is_paid(), *status == PaymentStatus::Success);
        assert_eq!(outcomes(store, payment_id).await, 1);
    }
    let fail_vpa = payment(store, &cases[0].1).await;
    assert_eq!(
        fail_vpa.error_description.as_deref(),
        Some("Payment declined by the bank (test VPA)")
    );
    let declined = payment(store, &cases[1].1).await;
    assert_eq!(declined.card_last4.as_deref(), Some("0002"));
    assert_eq!(
        declined.error_description.as_deref(),
        Some("Card declined by the issuer (test card)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_is_processed_after_the_test_delay() {
    let harness = Harness::start(test_mode(500, true)).await;
    let store = harness.store();
    let order_id = create_order(store).await;
    let payment_id = create_payment(store, &order_id, upi("shopper@okaxis")).await;
    let paid = wait_final(store, &payment_id, Duration::from_secs(15)).await;
    assert_eq!(paid.status, PaymentStatus::Success);

    let refund_id = request_refund(store, &paid, 20_000).await;
    let refund = &payment(store, &payment_id).await.refunds[&refund_id];
    assert_eq!(refund.status, RefundStatus::Pending);
    let processed = wait_until(
        Duration::from_secs(15),
        "the refund to be processed",
        || async {
            let refund = payment(store, &payment_id).await.refunds[&refund_id].clone();
            (refund.status == RefundStatus::Processed).then_some(refund)
        },
    )
    .await;
    let took = processed.processed_at.unwrap() - processed.created_at;
    assert!(
        took >= chrono::Duration::milliseconds(500),
        "processed after {took}"
    );
    let payment = payment(store, &payment_id).await;
    assert_eq!(payment.amount_refunded, 20_000);
    assert_eq!(payment.amount_refund_pending, 0);
    assert_eq!(
        count::<PaymentAggregate>(store, &payment_id, &["RefundProcessed"]).await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_payments_for_one_order_one_wins_the_other_fails_order_already_paid() {
    let harness = Harness::start(test_mode(500, true)).await;
    let store = harness.store();
    let mut orders = Vec::new();
    for _ in 0..4 {
        let order_id = create_order(store).await;
        // Both payments are pending when the bank answers: created together,
        // processed concurrently.
        let (first, second) = tokio::join!(
            create_payment(store, &order_id, upi("shopper@okaxis")),
            create_payment(store, &order_id, card("5555 5555 5555 4444")),
        );
        orders.push((order_id, [first, second]));
    }
    for (order_id, payments) in &orders {
        let mut winners = Vec::new();
        for payment_id in payments {
            let payment = wait_final(store, payment_id, Duration::from_secs(15)).await;
            assert_eq!(outcomes(store, payment_id).await, 1);
            match payment.status {
                PaymentStatus::Success => winners.push(payment_id.clone()),
                PaymentStatus::Failed => {
                    assert_eq!(payment.error_code.as_deref(), Some(ORDER_ALREADY_PAID))
                }
                PaymentStatus::Pending => unreachable!(),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one payment wins {order_id}");
        let order = order(store, order_id).await;
        assert_eq!(order.paid_by.as_ref(), Some(&winners[0]));
        assert_eq!(order_paid_events(store, order_id).await, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_deliveries_record_one_outcome() {
    // No relay: the test publishes the events itself, each more than once.
    let mut harness = Harness::new().await;
    // The acquirer starts before the stream exists and waits for it.
    harness.start_acquirer(test_mode(400, true));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!harness.stats().running);
    harness
        .jetstream
        .create_stream(stream::Config {
            name: harness.relay.stream_name.clone(),
            subjects: vec![format!("{}.>", harness.relay.subject_prefix)],
            ..Default::default()
        })
        .await
        .expect("create stream");
    let store = harness.store().clone();
    let publish = |event: paystream_store::RecordedEvent| {
        let jetstream = harness.jetstream.clone();
        let subject = harness.relay.subject(&event);
        async move {
            jetstream
                .publish(subject, serde_json::to_vec(&event).unwrap().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };

    let order_id = create_order(&store).await;
    let payment_id = create_payment(&store, &order_id, upi("success@upi")).await;
    let stream_id = StreamId::new("payment", &payment_id).unwrap();
    let created = store.read_stream(&stream_id, 0, 1).await.unwrap().remove(0);
    assert_eq!(created.event_type, "PaymentCreated");
    // Twice at once: both deliveries are in flight together.
    tokio::join!(publish(created.clone()), publish(created.clone()));
    let paid = wait_final(&store, &payment_id, Duration::from_secs(15)).await;
    assert_eq!(paid.status, PaymentStatus::Success);
    // A replay long after the outcome.
    publish(created.clone()).await;

    let refund_id = request_refund(&store, &paid, 10_000).await;
    let refund_created = store
        .read_stream(&stream_id, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|event| event.event_type == "RefundCreated")
        .unwrap();
    tokio::join!(
        publish(refund_created.clone()),
        publish(refund_created.clone())
    );

    wait_until(
        Duration::from_secs(15),
        "five deliveries handled",
        || async { (harness.stats().completed == 5).then_some(()) },
    )
    .await;
    harness.wait_until_drained().await;
    assert_eq!(outcomes(&store, &payment_id).await, 1);
    assert_eq!(order_paid_events(&store, &order_id).await, 1);
    assert_eq!(
        count::<PaymentAggregate>(&store, &payment_id, &["RefundProcessed"]).await,
        1
    );
    assert_eq!(
        payment(&store, &payment_id).await.refunds[&refund_id].status,
        RefundStatus::Processed
    );
    let stats = harness.stats();
    assert_eq!((stats.pending, stats.processing), (0, 0));
    assert!(stats.running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_payments_wait_their_delays_concurrently() {
    const PAYMENTS: usize = 50;
    let harness = Harness::start(test_mode(1000, true)).await;
    let store = harness.store();
    let stats = harness.acquirer.as_ref().unwrap().stats();
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn({
        let peak = peak.clone();
        async move {
            loop {
                peak.fetch_max(stats.snapshot().pending, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });

    let created: Vec<(OrderId, PaymentId)> = join_all((0..PAYMENTS).map(|n| async move {
        let order_id = create_order(store).await;
        let method = if n % 2 == 0 {
            upi("shopper@okaxis")
        } else {
            card("4111111111111111")
        };
        let payment_id = create_payment(store, &order_id, method).await;
        (order_id, payment_id)
    }))
    .await;
    // One at a time, 50 payments of 1 s would take 50 s.
    wait_until(
        Duration::from_secs(20),
        "every payment's outcome",
        || async {
            let finals = join_all(created.iter().map(|(_, id)| payment(store, id))).await;
            finals.iter().all(Payment::is_final).then_some(())
        },
    )
    .await;
    sampler.abort();
    for (order_id, payment_id) in &created {
        assert_eq!(
            payment(store, payment_id).await.status,
            PaymentStatus::Success
        );
        assert_eq!(
            order(store, order_id).await.paid_by.as_ref(),
            Some(payment_id)
        );
    }
    let peak = peak.load(Ordering::Relaxed);
    assert!(
        peak >= 10,
        "payments should wait their delays side by side; at most {peak} did"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acquirer_carries_on_after_nats_restarts() {
    let mut nats = NatsServer::start().await;
    let mut harness = Harness::at(&nats.url()).await;
    harness.start_relay();
    harness.start_acquirer(test_mode(300, true));
    let store = harness.store().clone();
    let before = create_order(&store).await;
    let first = create_payment(&store, &before, upi("shopper@okaxis")).await;
    let paid = wait_final(&store, &first, Duration::from_secs(15)).await;
    assert_eq!(paid.status, PaymentStatus::Success);

    nats.stop();
    // Commands keep working while NATS is down; the outcome waits for it.
    let during = create_order(&store).await;
    let second = create_payment(&store, &during, card("4111111111111111")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        payment(&store, &second).await.status,
        PaymentStatus::Pending
    );
    nats.restart().await;

    let paid = wait_final(&store, &second, Duration::from_secs(30)).await;
    assert_eq!(paid.status, PaymentStatus::Success);
    assert_eq!(outcomes(&store, &second).await, 1);
    assert_eq!(order(&store, &during).await.paid_by, Some(second));
}

/// The acquirer process, killed when the test ends.
struct AcquirerProcess(Child);

impl AcquirerProcess {
    fn start(database_url: &str, relay: &RelayConfig) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_command-api"))
            .arg("acquirer")
            .env("PAYSTREAM_DATABASE_URL", database_url)
            .env("PAYSTREAM_DATABASE_MAX_CONNECTIONS", "4")
            .env("PAYSTREAM_NATS_URL", support::nats_url())
            .env("PAYSTREAM_EVENTS_STREAM", &relay.stream_name)
            .env("PAYSTREAM_EVENTS_SUBJECT_PREFIX", &relay.subject_prefix)
            .env("PAYSTREAM_ACQUIRER_CONSUMER", CONSUMER)
            .env("TEST_MODE", "true")
            .env("TEST_PROCESSING_DELAY", "3000")
            .env("TEST_PAYMENT_SUCCESS", "true")
            .env("PAYSTREAM_ACQUIRER_ACK_WAIT_MS", "4000")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start command-api acquirer");
        Self(child)
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for AcquirerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_acquirer_leaves_no_outcome_and_its_successor_records_exactly_one() {
    let mut harness = Harness::new().await;
    harness.start_relay();
    let store = harness.store().clone();
    wait_until(
        Duration::from_secs(15),
        "the relay to create its stream",
        || async {
            harness
                .jetstream
                .get_stream(&harness.relay.stream_name)
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await;

    let mut process = AcquirerProcess::start(&harness.database.url, &harness.relay);
    wait_until(
        Duration::from_secs(20),
        "the acquirer's consumer",
        || async { harness.consumer_info().await.map(|_| ()) },
    )
    .await;

    let order_id = create_order(&store).await;
    let payment_id = create_payment(&store, &order_id, upi("shopper@okaxis")).await;
    let created_at = tokio::time::Instant::now();
    wait_until(
        Duration::from_secs(10),
        "the acquirer to take the payment",
        || async {
            let info = harness.consumer_info().await?;
            (info.num_ack_pending == 1).then_some(())
        },
    )
    .await;
    assert!(
        created_at.elapsed() < Duration::from_millis(2500),
        "the payment should be taken well within its 3 s delay"
    );
    process.kill();

    assert_eq!(
        payment(&store, &payment_id).await.status,
        PaymentStatus::Pending
    );
    // Past the delay, nothing was recorded by the dead process.
    tokio::time::sleep_until(created_at + Duration::from_millis(3500)).await;
    assert_eq!(
        payment(&store, &payment_id).await.status,
        PaymentStatus::Pending
    );
    assert_eq!(outcomes(&store, &payment_id).await, 0);
    assert_eq!(order_paid_events(&store, &order_id).await, 0);

    // A new acquirer gets the message again after the ack wait (4 s).
    let _successor = AcquirerProcess::start(&harness.database.url, &harness.relay);
    let paid = wait_final(&store, &payment_id, Duration::from_secs(20)).await;
    assert_eq!(paid.status, PaymentStatus::Success);
    harness.wait_until_drained().await;
    assert_eq!(outcomes(&store, &payment_id).await, 1);
    assert_eq!(order_paid_events(&store, &order_id).await, 1);
    assert_eq!(order(&store, &order_id).await.paid_by, Some(payment_id));
}

/// The random mode's odds, over many payment ids (pure: no services).
#[test]
fn simulated_success_rates_are_90_percent_for_upi_and_95_for_cards() {
    const PAYMENTS: u32 = 10_000;
    let base = PaymentCreated {
        payment_id: PaymentId::from_random_bytes([0; 16]),
        order_id: OrderId::from_random_bytes([1; 16]),
        merchant_id: MerchantId::from_uuid(Uuid::nil()),
        amount: 50_000,
        currency: Currency::INR,
        method: PaymentMethod::Upi,
        vpa: Some("shopper@okaxis".into()),
        card_network: None,
        card_last4: None,
        created_at: Utc::now(),
    };
    let card_payment = PaymentCreated {
        method: PaymentMethod::Card,
        vpa: None,
        card_network: Some(paystream_domain::validation::CardNetwork::Visa),
        card_last4: Some("1111".into()),
        ..base.clone()
    };
    for (template, expected) in [(base, 0.90), (card_payment, 0.95)] {
        let mut successes = 0u32;
        for _ in 0..PAYMENTS {
            let payment = PaymentCreated {
                payment_id: PaymentId::from_random_bytes(rand::random()),
                ..template.clone()
            };
            let decision = outcome::decide_payment(&payment, ProcessingMode::Simulated);
            assert!(outcome::PAYMENT_DELAY_MS.contains(&(decision.delay.as_millis() as u64)));
            match decision.outcome {
                PaymentOutcome::Success => successes += 1,
                PaymentOutcome::Failure { error_code, .. } => {
                    assert_eq!(error_code, PAYMENT_FAILED)
                }
            }
        }
        let share = f64::from(successes) / f64::from(PAYMENTS);
        // 5 standard deviations at p = 0.90 is 0.015.
        assert!(
            (share - expected).abs() < 0.015,
            "{:?}: success share {share}, expected {expected}",
            template.method
        );
    }
}
