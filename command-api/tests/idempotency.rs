//! `Idempotency-Key` on every writing POST (invariant 12), over real HTTP
//! and PostgreSQL: orders, capture, refunds and webhook retries (payments
//! have theirs in `api.rs`). For each:
//!
//! * same key, same request → the identical answer, marked replayed, and no
//!   new events;
//! * same key, another request → 422 `IDEMPOTENCY_ERROR`, nothing appended;
//! * 15 concurrent duplicates → one effect, one answer;
//! * an empty header counts as absent: two requests, two effects;
//! * the events of a keyed request record the key's hash and the request's
//!   hash in their metadata, read back through the store and covered by the
//!   stream's hash chain.
//!
//! Outcomes the acquirer records in production (a payment's success) are
//! recorded here through the same domain commands.

mod support;

use std::collections::HashSet;

use chrono::Utc;
use futures::future::join_all;
use paystream_domain::payment::{PaymentAggregate, RecordPaymentSuccess};
use paystream_domain::webhook::{
    ScheduleWebhookDelivery, WebhookDeliveryAggregate, TEST_RETRY_INTERVALS_SECONDS,
};
use paystream_domain::{MerchantId, PaymentId, WebhookDeliveryId};
use paystream_store::runner;
use paystream_store::{EventMetadata, EventStore, StreamId};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::app::{dev_merchant, spawn_app, Merchant, TestApp};
use uuid::Uuid;

/// Concurrent duplicates sent at once.
const DUPLICATES: usize = 15;

// ---- helpers -------------------------------------------------------------------

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    /// The body as sent, to compare answers byte for byte.
    text: String,
    body: Value,
    replayed: bool,
}

/// `POST path` as `merchant`, with `Idempotency-Key: key` when given.
async fn post(
    app: &TestApp,
    merchant: &Merchant,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> Reply {
    let mut request = app
        .client
        .request(Method::POST, format!("{}{path}", app.base))
        .header("X-Api-Key", &merchant.key)
        .header("X-Api-Secret", &merchant.secret);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|value| value == "true");
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        text,
        body,
        replayed,
    }
}

async fn event_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from events")
        .fetch_one(app.store.pool())
        .await
        .expect("count events")
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// What a request records as its hash: SHA-256 of method, NUL, path, NUL,
/// body (a card body with only the number's last 4 digits and no CVV).
fn request_hash(path: &str, body: Option<&str>) -> Vec<u8> {
    sha256(format!("POST\0{path}\0{}", body.unwrap_or("")).as_bytes())
}

/// Event types, streams and request hashes of the events recorded with `key`.
async fn keyed_events(app: &TestApp, key: &str) -> Vec<(String, String, Vec<u8>)> {
    sqlx::query_as(
        "select event_type, stream_id, idempotency_request_hash from events \
         where idempotency_key_hash = $1 order by position",
    )
    .bind(sha256(key.as_bytes()))
    .fetch_all(app.store.pool())
    .await
    .expect("keyed events")
}

async fn order(app: &TestApp, merchant: &Merchant) -> String {
    let reply = post(
        app,
        merchant,
        "/api/v1/orders",
        None,
        Some(r#"{"amount": 50000, "currency": "INR"}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body["id"].as_str().expect("order id").to_owned()
}

/// A payment the acquirer has recorded as successful.
async fn successful_payment(app: &TestApp, merchant: &Merchant) -> String {
    let order = order(app, merchant).await;
    let body = json!({"order_id": order, "method": "upi", "vpa": "user@okbank"}).to_string();
    let reply = post(app, merchant, "/api/v1/payments", None, Some(&body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let payment = reply.body["id"].as_str().expect("payment id").to_owned();
    let metadata = EventMetadata {
        actor: "system:acquirer".into(),
        ..EventMetadata::default()
    };
    let id: PaymentId = payment.parse().expect("payment id");
    runner::execute::<PaymentAggregate, _>(&app.store, &id, &metadata, |_| {
        Ok(RecordPaymentSuccess { at: Utc::now() }.into())
    })
    .await
    .expect("record the success");
    payment
}

/// A webhook delivery of `merchant`, scheduled the way the dispatcher does.
async fn delivery(app: &TestApp, merchant: &Merchant) -> WebhookDeliveryId {
    let id = WebhookDeliveryId::from_random_bytes(rand::random());
    let command = ScheduleWebhookDelivery {
        delivery_id: id.clone(),
        merchant_id: MerchantId::from(merchant.id),
        event: "payment.success".into(),
        source_event_id: Uuid::now_v7(),
        url: "http://127.0.0.1:9/hook".into(),
        body: r#"{"event":"payment.success"}"#.into(),
        retry_intervals_seconds: TEST_RETRY_INTERVALS_SECONDS.to_vec(),
        at: Utc::now(),
    };
    let metadata = EventMetadata {
        merchant_id: Some(merchant.id),
        actor: "system:webhook-dispatcher".into(),
        ..EventMetadata::default()
    };
    runner::execute::<WebhookDeliveryAggregate, _>(&app.store, &id, &metadata, |_| {
        Ok(command.clone().into())
    })
    .await
    .expect("schedule a delivery");
    id
}

// ---- the cases -------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Orders,
    Capture,
    Refunds,
    WebhookRetry,
}

/// One writing request on fresh objects, and another request to send with
/// the same key.
#[derive(Debug)]
struct Case {
    path: String,
    body: Option<String>,
    other_path: String,
    other_body: Option<String>,
    /// The answer of an accepted request.
    status: StatusCode,
    /// The event types one accepted request appends.
    effect: &'static [&'static str],
}

impl Case {
    async fn new(app: &TestApp, merchant: &Merchant, endpoint: Endpoint) -> Self {
        match endpoint {
            Endpoint::Orders => Self {
                path: "/api/v1/orders".into(),
                body: Some(r#"{"amount": 5000, "currency": "INR", "receipt": "r-1"}"#.into()),
                other_path: "/api/v1/orders".into(),
                other_body: Some(r#"{"amount": 5001, "currency": "INR", "receipt": "r-1"}"#.into()),
                status: StatusCode::CREATED,
                effect: &["OrderCreated"],
            },
            Endpoint::Capture => {
                let payment = successful_payment(app, merchant).await;
                let path = format!("/api/v1/payments/{payment}/capture");
                Self {
                    path: path.clone(),
                    body: Some(r#"{"amount": 50000}"#.into()),
                    other_path: path,
                    other_body: Some(r#"{"amount": 40000}"#.into()),
                    status: StatusCode::OK,
                    effect: &["PaymentCaptured"],
                }
            }
            Endpoint::Refunds => {
                let payment = successful_payment(app, merchant).await;
                let path = format!("/api/v1/payments/{payment}/refunds");
                Self {
                    path: path.clone(),
                    body: Some(r#"{"amount": 1000, "reason": "asked"}"#.into()),
                    other_path: path,
                    other_body: Some(r#"{"amount": 1001, "reason": "asked"}"#.into()),
                    status: StatusCode::CREATED,
                    effect: &["RefundCreated"],
                }
            }
            Endpoint::WebhookRetry => {
                // No body: another request is a retry of another delivery.
                let one = delivery(app, merchant).await;
                let two = delivery(app, merchant).await;
                Self {
                    path: format!("/api/v1/webhooks/{one}/retry"),
                    body: None,
                    other_path: format!("/api/v1/webhooks/{two}/retry"),
                    other_body: None,
                    status: StatusCode::OK,
                    effect: &["WebhookRetryRequested"],
                }
            }
        }
    }

    async fn send(&self, app: &TestApp, merchant: &Merchant, key: Option<&str>) -> Reply {
        post(app, merchant, &self.path, key, self.body.as_deref()).await
    }

    async fn send_other(&self, app: &TestApp, merchant: &Merchant, key: Option<&str>) -> Reply {
        post(
            app,
            merchant,
            &self.other_path,
            key,
            self.other_body.as_deref(),
        )
        .await
    }
}

/// Same key and request: the identical answer, no new events; same key and
/// another request: `IDEMPOTENCY_ERROR`; the key's and the request's hashes
/// are in the events' metadata.
async fn replays_and_refuses_another_request(app: &TestApp, endpoint: Endpoint) {
    let merchant = dev_merchant();
    let case = Case::new(app, &merchant, endpoint).await;
    let key = format!("{endpoint:?}-{}", Uuid::now_v7());

    let before = event_count(app).await;
    let first = case.send(app, &merchant, Some(&key)).await;
    assert_eq!(first.status, case.status, "{endpoint:?}: {}", first.text);
    assert!(!first.replayed);
    let after = event_count(app).await;
    assert!(after > before, "{endpoint:?}: nothing appended");

    // The events of the request record it; the store reads it back, and the
    // chain covers it.
    let keyed = keyed_events(app, &key).await;
    let types: Vec<&str> = keyed.iter().map(|(kind, _, _)| kind.as_str()).collect();
    assert_eq!(types, case.effect, "{endpoint:?}");
    assert_eq!(keyed.len() as i64, after - before, "{endpoint:?}");
    for (_, stream, hash) in &keyed {
        assert_eq!(
            hash,
            &request_hash(&case.path, case.body.as_deref()),
            "{endpoint:?}"
        );
        let stream = StreamId::parse(stream.clone()).expect("stream id");
        let events = app.store.read_stream(&stream, 0, 1000).await.expect("read");
        let recorded = events
            .iter()
            .filter_map(|event| event.metadata.idempotency)
            .collect::<Vec<_>>();
        assert_eq!(recorded.len(), 1, "{endpoint:?}: {stream}");
        assert_eq!(recorded[0].key_hash.to_vec(), sha256(key.as_bytes()));
        assert_eq!(recorded[0].request_hash.to_vec(), *hash);
        assert_eq!(
            app.store.verify_stream(&stream).await.expect("verify"),
            None
        );
    }

    let again = case.send(app, &merchant, Some(&key)).await;
    assert_eq!(again.status, first.status, "{endpoint:?}: {}", again.text);
    assert_eq!(again.text, first.text, "{endpoint:?}: the identical answer");
    assert!(again.replayed, "{endpoint:?}: marked as a replay");
    assert_eq!(event_count(app).await, after, "{endpoint:?}: no new events");

    let other = case.send_other(app, &merchant, Some(&key)).await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{endpoint:?}: {}",
        other.text
    );
    assert_eq!(other.body["error"]["code"], "IDEMPOTENCY_ERROR");
    assert_eq!(other.body["error"]["field"], "Idempotency-Key");
    assert_eq!(
        event_count(app).await,
        after,
        "{endpoint:?}: nothing appended"
    );

    // Without the key the other request goes through: the refusal was the key's.
    let unkeyed = case.send_other(app, &merchant, None).await;
    if endpoint != Endpoint::Capture {
        assert_eq!(
            unkeyed.status, case.status,
            "{endpoint:?}: {}",
            unkeyed.text
        );
    }
}

/// Concurrent duplicates: one effect, every one the identical answer.
async fn concurrent_duplicates_take_effect_once(app: &TestApp, endpoint: Endpoint) {
    let merchant = dev_merchant();
    let case = Case::new(app, &merchant, endpoint).await;
    let key = format!("{endpoint:?}-concurrent-{}", Uuid::now_v7());
    let replies = join_all((0..DUPLICATES).map(|_| case.send(app, &merchant, Some(&key)))).await;
    let answers: HashSet<(StatusCode, &str)> = replies
        .iter()
        .map(|reply| (reply.status, reply.text.as_str()))
        .collect();
    assert_eq!(answers.len(), 1, "{endpoint:?}: {answers:?}");
    assert_eq!(replies[0].status, case.status, "{}", replies[0].text);
    assert_eq!(
        replies.iter().filter(|reply| !reply.replayed).count(),
        1,
        "{endpoint:?}: one request ran, the others replayed it"
    );
    let keyed = keyed_events(app, &key).await;
    let types: Vec<&str> = keyed.iter().map(|(kind, _, _)| kind.as_str()).collect();
    assert_eq!(types, case.effect, "{endpoint:?}: one effect");
}

/// `Idempotency-Key: ` (empty) is no key: two requests, two attempts.
async fn an_empty_key_is_no_key(app: &TestApp, endpoint: Endpoint) {
    let merchant = dev_merchant();
    let case = Case::new(app, &merchant, endpoint).await;
    let first = case.send(app, &merchant, Some("")).await;
    assert_eq!(first.status, case.status, "{endpoint:?}: {}", first.text);
    let second = case.send(app, &merchant, Some("")).await;
    assert!(!first.replayed && !second.replayed, "{endpoint:?}");
    match endpoint {
        // A payment is captured once: the second attempt is refused, not replayed.
        Endpoint::Capture => {
            assert_eq!(second.status, StatusCode::BAD_REQUEST, "{}", second.text)
        }
        Endpoint::WebhookRetry => {
            assert_eq!(second.status, case.status, "{}", second.text);
            let retries: i64 = sqlx::query_scalar(
                "select count(*) from events where event_type = 'WebhookRetryRequested'",
            )
            .fetch_one(app.store.pool())
            .await
            .unwrap();
            assert_eq!(retries, 2);
        }
        Endpoint::Orders | Endpoint::Refunds => {
            assert_eq!(second.status, case.status, "{}", second.text);
            assert_ne!(first.body["id"], second.body["id"], "two objects");
        }
    }
    let recorded: i64 =
        sqlx::query_scalar("select count(*) from events where idempotency_key_hash is not null")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(recorded, 0, "{endpoint:?}: no key, nothing recorded");
}

async fn every_rule(endpoint: Endpoint) {
    // A database per rule: the counts each one checks are its own.
    an_empty_key_is_no_key(&spawn_app().await, endpoint).await;
    let app = spawn_app().await;
    replays_and_refuses_another_request(&app, endpoint).await;
    concurrent_duplicates_take_effect_once(&app, endpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_honour_idempotency_keys() {
    every_rule(Endpoint::Orders).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_honour_idempotency_keys() {
    every_rule(Endpoint::Capture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_honour_idempotency_keys() {
    every_rule(Endpoint::Refunds).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_honour_idempotency_keys() {
    every_rule(Endpoint::WebhookRetry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_per_merchant() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    let other = {
        let registered = support::register_merchant(&app.store, false).await;
        Merchant {
            id: registered.id,
            key: registered.key,
            secret: registered.secret,
        }
    };
    let body = r#"{"amount": 5000}"#;
    let mine = post(
        &app,
        &merchant,
        "/api/v1/orders",
        Some("shared"),
        Some(body),
    )
    .await;
    let theirs = post(&app, &other, "/api/v1/orders", Some("shared"), Some(body)).await;
    assert_eq!(mine.status, StatusCode::CREATED, "{}", mine.text);
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.text);
    assert!(!theirs.replayed);
    assert_ne!(mine.body["id"], theirs.body["id"]);
    assert_eq!(theirs.body["merchant_id"], other.id.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_data_is_not_in_the_recorded_request_hash() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    let order = order(&app, &merchant).await;
    let card = |number: &str, cvv: &str| {
        json!({"order_id": order, "method": "card", "card": {
            "number": number, "expiry_month": "12", "expiry_year": "30",
            "cvv": cvv, "holder_name": "A Person"}})
        .to_string()
    };
    let body = card("4111111111111111", "123");
    let reply = post(
        &app,
        &merchant,
        "/api/v1/payments",
        Some("card-1"),
        Some(&body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let keyed = keyed_events(&app, "card-1").await;
    let types: Vec<&str> = keyed.iter().map(|(kind, _, _)| kind.as_str()).collect();
    assert_eq!(types, ["PaymentCreated", "OrderAttempted"]);
    // Not the hash of the body as sent, but of the body with the number's
    // last 4 digits only, and without the CVV.
    let mut without: Value = serde_json::from_str(&body).unwrap();
    let card_object = without["card"].as_object_mut().unwrap();
    card_object.remove("number");
    card_object.remove("cvv");
    card_object.insert("last4".into(), json!("1111"));
    let expected = request_hash("/api/v1/payments", Some(&without.to_string()));
    for (_, _, hash) in &keyed {
        assert_ne!(hash, &request_hash("/api/v1/payments", Some(&body)));
        assert_eq!(hash, &expected);
    }
    // The idempotency itself still tells another card apart.
    let other = card("5555555555554444", "123");
    let reply = post(
        &app,
        &merchant,
        "/api/v1/payments",
        Some("card-1"),
        Some(&other),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
}
