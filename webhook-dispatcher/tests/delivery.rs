//! The dispatcher end to end: real PostgreSQL, NATS JetStream, the real
//! relay and aggregates, and a receiver the test controls.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use paystream_domain::merchant::{MerchantAggregate, RegenerateWebhookSecret};
use paystream_domain::payment::PaymentAggregate;
use paystream_domain::signature;
use paystream_domain::webhook::{
    RetryWebhookDelivery, WebhookDelivery, WebhookDeliveryAggregate, WebhookDeliveryStatus,
};
use paystream_domain::MerchantId;
use paystream_store::runner;
use paystream_store::{EventStore, RecordedEvent, StreamId};
use paystream_webhook_dispatcher::{intake, metrics::Metrics, spawn, Settings};
use support::receiver::{Answer, Received, Receiver};
use support::verifiers::python_verifies;
use support::{metadata, wait_until, TestEnv};

const SECRET: &str = "whsec_test_abc123";

fn event_of(received: &Received) -> String {
    received.json()["event"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn delivery_for(env: &TestEnv, merchant: MerchantId, event: &str) -> WebhookDelivery {
    wait_until(Duration::from_secs(15), event, || async {
        env.deliveries(merchant)
            .await
            .into_iter()
            .find(|delivery| delivery.event == event)
    })
    .await
}

async fn final_delivery(
    env: &TestEnv,
    merchant: MerchantId,
    event: &str,
    timeout: Duration,
) -> WebhookDelivery {
    wait_until(timeout, &format!("{event} to be final"), || async {
        env.deliveries(merchant)
            .await
            .into_iter()
            .find(|d| d.event == event && d.status != WebhookDeliveryStatus::Pending)
    })
    .await
}

#[tokio::test]
async fn a_payment_success_is_delivered_once_signed_with_both_schemes() {
    let env = TestEnv::start().await;
    let _dispatcher = spawn(env.store.clone(), env.jetstream.clone(), env.settings()).unwrap();
    let receiver = Receiver::ok().await;
    let merchant = env.merchant(SECRET, Some(&receiver.url)).await;
    let payment = env.payment(merchant).await;
    let source_event = env.succeed(merchant, &payment).await;

    let delivery = final_delivery(&env, merchant, "payment.success", Duration::from_secs(15)).await;
    assert_eq!(delivery.status, WebhookDeliveryStatus::Success);
    assert_eq!(delivery.attempts, 1);
    assert_eq!(delivery.source_event_id, source_event);
    env.wait_consumed().await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let received: Vec<Received> = receiver
        .received()
        .into_iter()
        .filter(|r| event_of(r) == "payment.success")
        .collect();
    assert_eq!(received.len(), 1, "exactly one payment.success");
    let received = &received[0];
    // The bytes received are the bytes stored (and signed).
    assert_eq!(received.body.as_ref(), delivery.body.as_bytes());
    let body = received.json();
    assert_eq!(body["id"], source_event.to_string());
    assert_eq!(body["data"]["payment"]["id"], payment.to_string());
    assert_eq!(body["data"]["payment"]["status"], "success");
    assert_eq!(body["version"], 2);
    assert!(body["timestamp"].as_i64().unwrap() > 1_700_000_000);
    assert!(body["data"]["payment"].get("vpa").is_some());

    assert_eq!(received.header("content-type"), "application/json");
    assert!(signature::verify_hex(
        SECRET,
        &received.body,
        received.header("x-webhook-signature")
    ));
    assert_eq!(received.header("webhook-id"), source_event.to_string());
    let timestamp: i64 = received.header("webhook-timestamp").parse().unwrap();
    assert!((Utc::now().timestamp() - timestamp).abs() < 60);
    assert!(signature::verify_standard(
        SECRET,
        received.header("webhook-id"),
        timestamp,
        &received.body,
        received.header("webhook-signature"),
    ));
    assert!(
        python_verifies(&signature::standard_webhooks_secret(SECRET), received),
        "the official standardwebhooks verifier refused the webhook"
    );
    assert!(!python_verifies(
        &signature::standard_webhooks_secret("whsec_other_secret"),
        received
    ));

    // PaymentCreated announced payment.created and payment.pending, each once,
    // with distinct ids; the body is the payment at version 1.
    let created: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|r| event_of(r) == "payment.created" || event_of(r) == "payment.pending")
        .collect();
    assert_eq!(created.len(), 2);
    assert_ne!(created[0].json()["id"], created[1].json()["id"]);
    for r in &created {
        assert_eq!(r.json()["version"], 1);
        assert_eq!(r.json()["data"]["payment"]["status"], "pending");
    }

    // The delivery's events carry the dispatcher's metadata.
    let actor: String = sqlx::query_scalar(
        "select actor from events where stream_id = $1 and event_type = 'WebhookDelivered'",
    )
    .bind(format!("webhook-{}", delivery.delivery_id))
    .fetch_one(env.store.pool())
    .await
    .unwrap();
    assert_eq!(actor, "system:webhook-dispatcher");
    let remaining: i64 = sqlx::query_scalar("select count(*) from webhook_schedule")
        .fetch_one(env.store.pool())
        .await
        .unwrap();
    assert_eq!(remaining, 0, "delivered rows leave the schedule");
}

#[tokio::test]
async fn no_url_sends_nothing_and_a_redelivered_event_schedules_once() {
    let env = TestEnv::start().await;
    let _dispatcher = spawn(env.store.clone(), env.jetstream.clone(), env.settings()).unwrap();

    let quiet = env.merchant(SECRET, None).await;
    let payment = env.payment(quiet).await;
    env.succeed(quiet, &payment).await;
    env.wait_consumed().await;
    assert!(env.deliveries(quiet).await.is_empty());
    let status = runner::load::<PaymentAggregate>(&env.store, &payment)
        .await
        .unwrap()
        .state
        .unwrap()
        .status;
    assert_eq!(format!("{status:?}"), "Success");

    // The same source event handled again (as NATS redelivers it), even
    // concurrently: still one delivery per endpoint.
    let receiver = Receiver::ok().await;
    let merchant = env.merchant(SECRET, Some(&receiver.url)).await;
    let payment = env.payment(merchant).await;
    env.fail(merchant, &payment).await;
    let first = delivery_for(&env, merchant, "payment.failed").await;
    let stream = StreamId::new("payment", &payment).unwrap();
    let events: Vec<RecordedEvent> = env.store.read_stream(&stream, 0, 10).await.unwrap();
    let failed = events
        .iter()
        .find(|e| e.event_type == "PaymentFailed")
        .unwrap();
    let settings = env.settings();
    let metrics = Metrics::default();
    let (a, b) = tokio::join!(
        intake::handle_event(&env.store, &settings, &metrics, failed),
        intake::handle_event(&env.store, &settings, &metrics, failed),
    );
    assert_eq!(a.unwrap(), intake::Handled::Scheduled(0));
    assert_eq!(b.unwrap(), intake::Handled::Scheduled(0));
    env.wait_consumed().await;
    final_delivery(&env, merchant, "payment.failed", Duration::from_secs(10)).await;
    let failed_deliveries: Vec<_> = env
        .deliveries(merchant)
        .await
        .into_iter()
        .filter(|d| d.event == "payment.failed")
        .collect();
    assert_eq!(failed_deliveries.len(), 1);
    assert_eq!(failed_deliveries[0].delivery_id, first.delivery_id);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = receiver
        .received()
        .iter()
        .filter(|r| event_of(r) == "payment.failed")
        .count();
    assert_eq!(sent, 1);
}

#[tokio::test]
async fn failures_are_retried_on_the_test_schedule() {
    let env = TestEnv::start().await;
    let _dispatcher = spawn(env.store.clone(), env.jetstream.clone(), env.settings()).unwrap();
    // Only payment.success goes to this receiver's script; others get 200.
    let receiver = Receiver::start(|n| {
        if n < 2 {
            Answer::status(500)
        } else {
            Answer::status(200)
        }
    })
    .await;
    let merchant = env.merchant(SECRET, Some(&receiver.url)).await;
    configure_events(&env, merchant, &receiver.url, &["payment.success"]).await;
    let payment = env.payment(merchant).await;
    env.succeed(merchant, &payment).await;

    let delivery = final_delivery(&env, merchant, "payment.success", Duration::from_secs(30)).await;
    assert_eq!(delivery.status, WebhookDeliveryStatus::Success);
    assert_eq!(delivery.attempts, 3);
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    let gap1 = received[1].at - received[0].at;
    let gap2 = received[2].at - received[1].at;
    assert!(
        gap1 >= Duration::from_millis(4_500) && gap1 < Duration::from_secs(8),
        "{gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(9_500) && gap2 < Duration::from_secs(13),
        "{gap2:?}"
    );
    // Same body and id on every attempt.
    assert!(received.iter().all(|r| r.body == received[0].body));

    let events = env
        .stream_events(&format!("webhook-{}", delivery.delivery_id))
        .await;
    let attempts: Vec<_> = events
        .iter()
        .filter(|(t, _)| t == "WebhookAttemptRecorded")
        .map(|(_, p)| {
            (
                p["attempt"].as_u64().unwrap(),
                p["status_code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts, vec![(1, 500), (2, 500), (3, 200)]);
    let excerpts: Vec<_> = events
        .iter()
        .filter(|(t, _)| t == "WebhookAttemptRecorded")
        .map(|(_, p)| p["response_body_excerpt"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(excerpts, vec!["answer 0", "answer 1", "answer 2"]);
    // next_retry_at = the attempt + the schedule's interval.
    let recorded_at: Vec<_> = events
        .iter()
        .filter(|(t, _)| t == "WebhookAttemptRecorded")
        .map(|(_, p)| {
            p["attempted_at"]
                .as_str()
                .unwrap()
                .parse::<chrono::DateTime<Utc>>()
                .unwrap()
        })
        .collect();
    let next: Vec<_> = events
        .iter()
        .filter(|(t, _)| t == "WebhookRetryScheduled")
        .map(|(_, p)| {
            p["next_attempt_at"]
                .as_str()
                .unwrap()
                .parse::<chrono::DateTime<Utc>>()
                .unwrap()
        })
        .collect();
    assert_eq!(
        next,
        vec![
            recorded_at[0] + TimeDelta::seconds(5),
            recorded_at[1] + TimeDelta::seconds(10)
        ]
    );
}

async fn configure_events(env: &TestEnv, merchant: MerchantId, url: &str, events: &[&str]) {
    runner::execute::<MerchantAggregate, _>(&env.store, merchant, &metadata(merchant), |_| {
        Ok(paystream_domain::merchant::ConfigureWebhook {
            url: Some(url.to_owned()),
            events: events.iter().map(|e| e.to_string()).collect(),
        }
        .into())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn exhausted_deliveries_fail_and_a_manual_retry_delivers() {
    let env = TestEnv::start().await;
    // Five attempts like the test schedule, closer together to keep the suite short.
    let settings = Settings {
        retry_intervals: vec![0, 1, 1, 1, 1],
        ..env.settings()
    };
    let _dispatcher = spawn(env.store.clone(), env.jetstream.clone(), settings).unwrap();
    let receiver = Receiver::start(|n| {
        if n < 5 {
            Answer::status(503)
        } else {
            Answer::status(204)
        }
    })
    .await;
    let merchant = env.merchant(SECRET, Some(&receiver.url)).await;
    configure_events(&env, merchant, &receiver.url, &["payment.success"]).await;
    let payment = env.payment(merchant).await;
    env.succeed(merchant, &payment).await;

    let delivery = final_delivery(&env, merchant, "payment.success", Duration::from_secs(20)).await;
    assert_eq!(delivery.status, WebhookDeliveryStatus::Failed);
    assert_eq!(delivery.failure_reason.as_deref(), Some("exhausted"));
    assert_eq!(delivery.attempts, 5);
    assert_eq!(receiver.count(), 5);

    runner::execute::<WebhookDeliveryAggregate, _>(
        &env.store,
        &delivery.delivery_id,
        &metadata(merchant),
        |_| Ok(RetryWebhookDelivery { at: Utc::now() }.into()),
    )
    .await
    .unwrap();
    let delivered = wait_until(Duration::from_secs(15), "the retried delivery", || async {
        env.delivery(&delivery.delivery_id)
            .await
            .filter(|d| d.status == WebhookDeliveryStatus::Success)
    })
    .await;
    assert_eq!(delivered.attempts, 1);
    assert_eq!(receiver.count(), 6);
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_retry_after_is_honoured() {
    let env = TestEnv::start().await;
    let _dispatcher = spawn(env.store.clone(), env.jetstream.clone(), env.settings()).unwrap();

    let gone = Receiver::start(|_| Answer::status(410)).await;
    let merchant = env.merchant(SECRET, Some(&gone.url)).await;
    configure_events(&env, merchant, &gone.url, &["payment.success"]).await;
    let payment = env.payment(merchant).await;
    env.succeed(merchant, &payment).await;
    let delivery = final_delivery(&env, merchant, "payment.success", Duration::from_secs(15)).await;
    assert_eq!(delivery.status, WebhookDeliveryStatus::Failed);
    assert_eq!(delivery.failure_reason.as_deref(), Some("gone"));
    assert_eq!(delivery.attempts, 1);
    let disabled = wait_until(Duration::from_secs(5), "the endpoint disabled", || async {
        env.stream_events(&format!("merchant-{merchant}"))
            .await
            .into_iter()
            .find(|(t, _)| t == "WebhookEndpointDisabled")
    })
    .await;
    assert!(disabled.1["reason"].as_str().unwrap().contains("410"));
    let merchant_state = runner::load::<MerchantAggregate>(&env.store, merchant)
        .await
        .unwrap()
        .state
        .unwrap();
    assert!(!merchant_state.webhook.enabled);

    let busy = Receiver::start(|_| Answer {
        headers: vec![("retry-after", "30".into())],
        ..Answer::status(503)
    })
    .await;
    let other = env.merchant(SECRET, Some(&busy.url)).await;
    configure_events(&env, other, &busy.url, &["payment.success"]).await;
    let payment = env.payment(other).await;
    env.succeed(other, &payment).await;
    let delivery = wait_until(Duration::from_secs(15), "the first attempt", || async {
        env.deliveries(other)
            .await
            .into_iter()
            .find(|d| d.attempts == 1 && d.next_attempt_at.is_some())
    })
    .await;
    let attempted = delivery.last_attempt_at.unwrap();
    let next = delivery.next_attempt_at.unwrap();
    assert!(
        next >= attempted + TimeDelta::seconds(30),
        "{attempted} → {next}"
    );
    let events = env
        .stream_events(&format!("webhook-{}", delivery.delivery_id))
        .await;
    let recorded = events
        .iter()
        .find(|(t, _)| t == "WebhookAttemptRecorded")
        .unwrap();
    assert_eq!(recorded.1["retry_after_seconds"], 30);
    assert_eq!(recorded.1["status_code"], 503);
    // The row follows the recorded attempt (written batched, a moment
    // after the event): due no earlier than Retry-After says.
    let row_next: chrono::DateTime<Utc> = wait_until(
        Duration::from_secs(5),
        "the schedule row to follow the attempt",
        || async {
            let row: Option<chrono::DateTime<Utc>> = sqlx::query_scalar(
                "select next_attempt_at from webhook_schedule where delivery_id = $1",
            )
            .bind(delivery.delivery_id.as_str())
            .fetch_optional(env.store.pool())
            .await
            .unwrap();
            row.filter(|row| *row > attempted)
        },
    )
    .await;
    // (The row is stored in microseconds.)
    assert!(
        row_next >= attempted + TimeDelta::seconds(30) - TimeDelta::microseconds(1),
        "{attempted} → row {row_next}"
    );
    assert!(row_next > Utc::now(), "not due yet");
    assert_eq!(busy.count(), 1);
}

#[tokio::test]
async fn a_slow_endpoint_does_not_delay_other_merchants() {
    let env = TestEnv::start().await;
    let _dispatcher = spawn(env.store.clone(), env.jetstream.clone(), env.settings()).unwrap();
    let slow = Receiver::start(|_| Answer {
        delay: Duration::from_secs(30),
        ..Answer::status(200)
    })
    .await;
    let fast = Receiver::ok().await;
    let slow_merchant = env.merchant(SECRET, Some(&slow.url)).await;
    let fast_merchant = env.merchant(SECRET, Some(&fast.url)).await;
    configure_events(&env, fast_merchant, &fast.url, &["payment.success"]).await;
    // 20 payments: 40 deliveries due at once to the slow endpoint.
    for _ in 0..20 {
        env.payment(slow_merchant).await;
    }
    wait_until(
        Duration::from_secs(15),
        "the slow endpoint to be saturated",
        || async { (slow.count() >= 8).then_some(()) },
    )
    .await;
    for _ in 0..3 {
        let payment = env.payment(fast_merchant).await;
        let committed = Instant::now();
        env.succeed(fast_merchant, &payment).await;
        let before = fast.count();
        wait_until(
            Duration::from_secs(3),
            "the fast endpoint's webhook",
            || async { (fast.count() > before).then_some(()) },
        )
        .await;
        let latency = committed.elapsed();
        assert!(latency < Duration::from_secs(2), "{latency:?}");
    }
    // The slow endpoint never had more than 8 requests open at once.
    assert!(
        slow.max_open() <= 8,
        "{} requests open at once",
        slow.max_open()
    );
}

#[tokio::test]
async fn during_rotation_either_secret_verifies() {
    let env = TestEnv::start().await;
    let _dispatcher = spawn(env.store.clone(), env.jetstream.clone(), env.settings()).unwrap();
    let receiver = Receiver::ok().await;
    let merchant = env.merchant(SECRET, Some(&receiver.url)).await;
    configure_events(&env, merchant, &receiver.url, &["payment.success"]).await;
    let new_secret = "whsec_NewSecretAfterRotation0123456789";
    runner::execute::<MerchantAggregate, _>(&env.store, merchant, &metadata(merchant), |_| {
        Ok(RegenerateWebhookSecret {
            secret: new_secret.into(),
            previous_valid_until: Utc::now() + TimeDelta::hours(24),
        }
        .into())
    })
    .await
    .unwrap();
    let payment = env.payment(merchant).await;
    env.succeed(merchant, &payment).await;
    final_delivery(&env, merchant, "payment.success", Duration::from_secs(15)).await;
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    let standard = r.header("webhook-signature");
    assert_eq!(standard.split(' ').count(), 2, "{standard}");
    let timestamp: i64 = r.header("webhook-timestamp").parse().unwrap();
    for secret in [SECRET, new_secret] {
        assert!(signature::verify_standard(
            secret,
            r.header("webhook-id"),
            timestamp,
            &r.body,
            standard
        ));
        assert!(
            python_verifies(&signature::standard_webhooks_secret(secret), r),
            "python refused {secret}"
        );
    }
    // The legacy header is signed with the current secret.
    assert!(signature::verify_hex(
        new_secret,
        &r.body,
        r.header("x-webhook-signature")
    ));
}

#[tokio::test]
async fn production_mode_refuses_loopback_targets() {
    let env = TestEnv::start().await;
    let settings = Settings {
        allow_private: false,
        retry_intervals: vec![0],
        ..env.settings()
    };
    let _dispatcher = spawn(env.store.clone(), env.jetstream.clone(), settings).unwrap();
    let receiver = Receiver::ok().await;
    for url in [
        receiver.url.clone(),
        receiver.url.replace("127.0.0.1", "localhost"),
    ] {
        let merchant = env.merchant(SECRET, Some(&url)).await;
        configure_events(&env, merchant, &url, &["payment.success"]).await;
        let payment = env.payment(merchant).await;
        env.succeed(merchant, &payment).await;
        let delivery =
            final_delivery(&env, merchant, "payment.success", Duration::from_secs(15)).await;
        assert_eq!(delivery.status, WebhookDeliveryStatus::Failed);
        let error = delivery.last_error.unwrap();
        assert!(error.contains("forbidden address"), "{url}: {error}");
    }
    assert_eq!(receiver.count(), 0);
}

/// The dispatcher binary as a child process.
struct Binary(Child);

impl Binary {
    fn start(env: &TestEnv) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_webhook-dispatcher"))
            .env("PAYSTREAM_DATABASE_URL", &env.database_url)
            .env("PAYSTREAM_NATS_URL", support::nats_url())
            .env("PAYSTREAM_EVENTS_STREAM", &env.relay.stream_name)
            .env("PAYSTREAM_EVENTS_SUBJECT_PREFIX", &env.relay.subject_prefix)
            .env("PAYSTREAM_WEBHOOK_DISPATCHER_ADDR", "127.0.0.1:0")
            .env("PAYSTREAM_PROFILE", "dev")
            .env("WEBHOOK_RETRY_INTERVALS_TEST", "true")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the dispatcher binary");
        Self(child)
    }

    /// SIGKILL: no chance to clean up.
    fn kill9(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_schedule_survives_kill_9() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start(|n| {
        if n < 2 {
            Answer::status(500)
        } else {
            Answer::status(200)
        }
    })
    .await;
    let merchant = env.merchant(SECRET, Some(&receiver.url)).await;
    configure_events(&env, merchant, &receiver.url, &["payment.success"]).await;
    let mut dispatcher = Binary::start(&env);
    let payment = env.payment(merchant).await;
    env.succeed(merchant, &payment).await;
    let delivery = wait_until(Duration::from_secs(20), "attempt 1 recorded", || async {
        env.deliveries(merchant)
            .await
            .into_iter()
            .find(|d| d.attempts == 1 && d.next_attempt_at.is_some())
    })
    .await;
    dispatcher.kill9();
    // Attempt 2 falls due while no dispatcher runs.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(receiver.count(), 1);
    let _restarted = Binary::start(&env);
    let done = wait_until(
        Duration::from_secs(30),
        "the delivery to complete",
        || async {
            env.delivery(&delivery.delivery_id)
                .await
                .filter(|d| d.status == WebhookDeliveryStatus::Success)
        },
    )
    .await;
    assert_eq!(done.attempts, 3);
    assert_eq!(receiver.count(), 3);
}

#[tokio::test]
async fn health_and_metrics_are_served() {
    let env = TestEnv::start().await;
    let dispatcher = spawn(env.store.clone(), env.jetstream.clone(), env.settings()).unwrap();
    let receiver = Receiver::ok().await;
    let merchant = env.merchant(SECRET, Some(&receiver.url)).await;
    configure_events(&env, merchant, &receiver.url, &["payment.success"]).await;
    let payment = env.payment(merchant).await;
    env.succeed(merchant, &payment).await;
    final_delivery(&env, merchant, "payment.success", Duration::from_secs(15)).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = paystream_webhook_dispatcher::service::router(
        env.store.clone(),
        env.jetstream.client(),
        &dispatcher,
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let health: serde_json::Value = serde_json::from_str(&health.text().await.unwrap()).unwrap();
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(health["database"], "connected", "{health}");
    assert_eq!(health["nats"], "connected", "{health}");
    let expected = [
        "webhook_attempts_total 1\n",
        "webhook_successes_total 1\n",
        "webhook_failures_total 0\n",
        "webhook_attempt_latency_seconds_count 1\n",
        "webhook_queue_due 0\n",
        "webhook_schedule_lag_seconds 0\n",
        // Every cache shows its bound, and this dispatcher has seen one merchant.
        "webhook_cache_capacity{cache=\"payments\"} 4096\n",
        "webhook_cache_capacity{cache=\"schedule_rows\"} 16384\n",
        "webhook_cache_capacity{cache=\"merchants\"} 10000\n",
        "webhook_cache_entries{cache=\"merchants\"} 1\n",
    ];
    // The final row write is batched: the queue gauges settle within moments.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let missing: Vec<_> = expected
            .iter()
            .filter(|line| !text.contains(*line))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing:?} missing from\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
