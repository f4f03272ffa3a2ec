//! The webhook commands over real HTTP, PostgreSQL and the event store:
//! endpoint configuration, secret regeneration, the test event, manual retry
//! and bulk recovery.
//!
//! Attempt outcomes that the dispatcher records in production are recorded
//! here through the same domain commands (`RecordWebhookAttempt`).

mod support;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use paystream_command_api::config::Profile;
use paystream_command_api::routes::webhooks::retry_intervals;
use paystream_domain::dev as seed;
use paystream_domain::merchant::{
    DisableWebhookEndpoint, Merchant as MerchantState, MerchantAggregate,
};
use paystream_domain::validation::SystemPorts;
use paystream_domain::webhook::{
    RecordWebhookAttempt, RetryWebhookDelivery, ScheduleWebhookDelivery, WebhookDelivery,
    WebhookDeliveryAggregate, WebhookDeliveryStatus, TEST_RETRY_INTERVALS_SECONDS,
};
use paystream_domain::{MerchantId, WebhookDeliveryId};
use paystream_store::runner;
use paystream_store::EventMetadata;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::app::{dev_merchant, spawn_app, spawn_app_in, spawn_app_with, Merchant, TestApp};
use uuid::Uuid;

/// What the dispatcher would write for `merchant`.
fn dispatcher_metadata(merchant: Uuid) -> EventMetadata {
    EventMetadata {
        merchant_id: Some(merchant),
        actor: "system:webhook-dispatcher".into(),
        ..EventMetadata::default()
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl TestApp {
    async fn send(
        &self,
        method: Method,
        path: &str,
        merchant: Option<&Merchant>,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(merchant) = merchant {
            request = request
                .header("X-Api-Key", &merchant.key)
                .header("X-Api-Secret", &merchant.secret);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body, headers)
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        merchant: &Merchant,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        self.send(
            method,
            path,
            Some(merchant),
            body.map(|body| body.to_string().into_bytes()),
        )
        .await
    }

    async fn event_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from events")
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    async fn merchant_state(&self, merchant: &Merchant) -> MerchantState {
        runner::load::<MerchantAggregate>(&self.store, MerchantId::from(merchant.id))
            .await
            .unwrap()
            .state
            .expect("merchant exists")
    }

    async fn delivery(&self, id: &WebhookDeliveryId) -> WebhookDelivery {
        runner::load::<WebhookDeliveryAggregate>(&self.store, id)
            .await
            .unwrap()
            .state
            .expect("delivery exists")
    }

    async fn configure(&self, merchant: &Merchant, url: &str) {
        let (status, body, _) = self
            .json(
                Method::PUT,
                "/api/v1/webhooks/config",
                merchant,
                Some(json!({ "url": url })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// A delivery scheduled the way the dispatcher does, on the test schedule.
    async fn schedule(&self, merchant: &Merchant) -> WebhookDeliveryId {
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
        runner::execute::<WebhookDeliveryAggregate, _>(
            &self.store,
            &id,
            &dispatcher_metadata(merchant.id),
            |_| Ok(command.clone().into()),
        )
        .await
        .unwrap();
        id
    }

    /// Records failed attempts (HTTP 500) until the schedule is exhausted.
    async fn fail(&self, id: &WebhookDeliveryId, merchant: &Merchant) {
        let metadata = dispatcher_metadata(merchant.id);
        for _ in 0..64 {
            let executed = runner::execute::<WebhookDeliveryAggregate, _>(
                &self.store,
                id,
                &metadata,
                |current| {
                    let attempts = current.as_ref().map_or(0, |delivery| delivery.attempts);
                    Ok(RecordWebhookAttempt {
                        attempt: attempts + 1,
                        at: Utc::now(),
                        status_code: Some(500),
                        response_body_excerpt: "boom".into(),
                        latency_ms: 3,
                        error: None,
                        retry_after_seconds: None,
                    }
                    .into())
                },
            )
            .await
            .unwrap();
            let delivery = executed.state.unwrap();
            if delivery.status == WebhookDeliveryStatus::Failed {
                assert_eq!(delivery.attempts, delivery.max_attempts());
                assert_eq!(delivery.failure_reason.as_deref(), Some("exhausted"));
                return;
            }
        }
        panic!("delivery {id} never failed");
    }

    /// Registers another merchant straight through the domain.
    async fn other_merchant(&self) -> Merchant {
        let registered = support::register_merchant(&self.store, false).await;
        Merchant {
            id: registered.id,
            key: registered.key,
            secret: registered.secret,
        }
    }
}

fn position(headers: &reqwest::header::HeaderMap) -> Option<i64> {
    headers
        .get("x-event-position")
        .map(|value| value.to_str().unwrap().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_the_endpoint_and_regenerate_the_secret() {
    let app = spawn_app().await;
    let merchant = dev_merchant();

    // Set URL and events (duplicates collapse).
    let (status, body, headers) = app
        .json(
            Method::PUT,
            "/api/v1/webhooks/config",
            &merchant,
            Some(json!({
                "url": "https://shop.example.com/hooks",
                "events": ["payment.success", "refund.processed", "payment.success"],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "url": "https://shop.example.com/hooks",
            "events": ["payment.success", "refund.processed"],
            "enabled": true,
        })
    );
    assert!(position(&headers).is_some());
    let webhook = app.merchant_state(&merchant).await.webhook;
    assert_eq!(
        webhook.url.as_deref(),
        Some("https://shop.example.com/hooks")
    );
    assert_eq!(webhook.events, ["payment.success", "refund.processed"]);
    assert!(webhook.enabled);

    // The same settings again: 200, nothing appended, no position.
    let before = app.event_count().await;
    let (status, same, headers) = app
        .json(
            Method::PUT,
            "/api/v1/webhooks/config",
            &merchant,
            Some(json!({
                "url": "https://shop.example.com/hooks",
                "events": ["payment.success", "refund.processed"],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same, body);
    assert_eq!(position(&headers), None);
    assert_eq!(app.event_count().await, before);

    // A new URL without `events` keeps the subscription.
    let (status, body, _) = app
        .json(
            Method::PUT,
            "/api/v1/webhooks/config",
            &merchant,
            Some(json!({"url": "http://localhost:4000/webhook"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["url"], "http://localhost:4000/webhook");
    assert_eq!(
        body["events"],
        json!(["payment.success", "refund.processed"])
    );

    // `[]` subscribes to every event.
    let (status, body, _) = app
        .json(
            Method::PUT,
            "/api/v1/webhooks/config",
            &merchant,
            Some(json!({"url": "http://localhost:4000/webhook", "events": []})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"], json!([]));
    let webhook = app.merchant_state(&merchant).await.webhook;
    assert_eq!(
        webhook.endpoint_for("payment.failed"),
        Some("http://localhost:4000/webhook")
    );

    // `null` clears the endpoint; so does an empty form field.
    let (status, body, headers) = app
        .json(
            Method::PUT,
            "/api/v1/webhooks/config",
            &merchant,
            Some(json!({"url": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"url": null, "events": [], "enabled": false}));
    assert!(position(&headers).is_some());
    let webhook = app.merchant_state(&merchant).await.webhook;
    assert_eq!(webhook.url, None);
    assert_eq!(webhook.endpoint_for("payment.success"), None);
    app.configure(&merchant, "https://a.example.com/h").await;
    let (status, body, _) = app
        .json(
            Method::PUT,
            "/api/v1/webhooks/config",
            &merchant,
            Some(json!({"url": "  "})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["url"], Value::Null);
    assert_eq!(app.merchant_state(&merchant).await.webhook.url, None);

    // Regenerate: a new secret, the seeded one keeps signing for 24 h.
    let (status, body, headers) = app
        .json(
            Method::POST,
            "/api/v1/webhooks/regenerate-secret",
            &merchant,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(position(&headers).is_some());
    assert_eq!(headers["cache-control"], "no-store");
    let secret = body["webhook_secret"].as_str().unwrap().to_owned();
    let random = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    // Base64 of 32 random bytes: the official Standard Webhooks libraries
    // take the secret as it is, and the answer says so.
    let key = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, random)
        .unwrap_or_else(|error| panic!("{secret}: {error}"));
    assert_eq!(key.len(), 32, "{secret}");
    assert_eq!(body["standard_webhooks_secret"], secret.as_str());
    let valid_until: DateTime<Utc> = body["previous_secret_valid_until"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let expected = Utc::now() + TimeDelta::hours(24);
    assert!(
        (valid_until - expected).abs() < TimeDelta::minutes(1),
        "{valid_until}"
    );
    let webhook = app.merchant_state(&merchant).await.webhook;
    assert_eq!(webhook.secret, secret);
    assert_eq!(
        webhook.previous_secret.as_deref(),
        Some(seed::DEV_WEBHOOK_SECRET)
    );
    assert_eq!(
        webhook.signing_secrets(Utc::now()),
        [secret.as_str(), seed::DEV_WEBHOOK_SECRET]
    );
    assert_eq!(
        webhook.signing_secrets(valid_until + TimeDelta::seconds(1)),
        [secret.as_str()]
    );

    // Again: another secret; the one just replaced is now the previous one.
    let (status, again, _) = app
        .json(
            Method::POST,
            "/api/v1/webhooks/regenerate-secret",
            &merchant,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_ne!(again["webhook_secret"], body["webhook_secret"]);
    let webhook = app.merchant_state(&merchant).await.webhook;
    assert_eq!(webhook.previous_secret.as_deref(), Some(secret.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_event_then_manual_retry_of_a_failed_delivery() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    app.configure(&merchant, "http://localhost:4000/webhook")
        .await;

    let before = Utc::now().timestamp();
    let (status, body, headers) = app
        .json(Method::POST, "/api/v1/webhooks/test", &merchant, None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(position(&headers).is_some());
    assert_eq!(body["event"], "webhook.test");
    assert_eq!(body["status"], "pending");
    let id: WebhookDeliveryId = body["id"].as_str().unwrap().parse().expect("whd_ id");

    let delivery = app.delivery(&id).await;
    assert_eq!(delivery.merchant_id, MerchantId::from(merchant.id));
    assert_eq!(delivery.status, WebhookDeliveryStatus::Pending);
    assert_eq!(delivery.attempts, 0);
    assert_eq!(delivery.event, "webhook.test");
    assert_eq!(delivery.url, "http://localhost:4000/webhook");
    assert_eq!(delivery.retry_intervals_seconds, retry_intervals());
    assert!(delivery
        .next_attempt_at
        .is_some_and(|due| due <= Utc::now()));
    assert_eq!(delivery.source_event_id.get_version_num(), 7);
    // The exact bytes every attempt sends: fields in contract order.
    assert!(
        delivery.body.starts_with(&format!(
            r#"{{"id":"{}","event":"webhook.test","#,
            delivery.source_event_id
        )),
        "{}",
        delivery.body
    );
    let sent: Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(sent["event"], "webhook.test");
    assert_eq!(sent["id"], json!(delivery.source_event_id));
    assert_eq!(
        sent["data"],
        json!({"message": "Test webhook from Paystream"})
    );
    let timestamp = sent["timestamp"].as_i64().unwrap();
    assert!((before..=Utc::now().timestamp()).contains(&timestamp));
    let stored_merchant: Option<Uuid> =
        sqlx::query_scalar("select merchant_id from events where stream_id = $1 and version = 1")
            .bind(format!("webhook-{id}"))
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(stored_merchant, Some(merchant.id));

    // A delivery driven to `failed`, then retried: pending again, attempts reset.
    let failing = app.schedule(&merchant).await;
    app.fail(&failing, &merchant).await;
    let (status, body, headers) = app
        .json(
            Method::POST,
            &format!("/api/v1/webhooks/{failing}/retry"),
            &merchant,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"id": failing.as_str(), "status": "pending", "message": "Webhook retry scheduled"})
    );
    assert!(position(&headers).is_some());
    let retried = app.delivery(&failing).await;
    assert_eq!(retried.status, WebhookDeliveryStatus::Pending);
    assert_eq!(retried.attempts, 0);
    assert_eq!(retried.failure_reason, None);
    assert!(retried.is_due(Utc::now()));
    // The dispatcher can start over at attempt 1.
    app.fail(&failing, &merchant).await;

    // The pending test delivery may be retried too (its schedule restarts).
    let (status, body, _) = app
        .json(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/retry"),
            &merchant,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.delivery(&id).await.body, delivery.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_re_sends_what_failed_since_a_time() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    let other = app.other_merchant().await;

    let early = app.schedule(&merchant).await;
    app.fail(&early, &merchant).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let late = app.schedule(&merchant).await;
    app.fail(&late, &merchant).await;
    let late_too = app.schedule(&merchant).await;
    app.fail(&late_too, &merchant).await;
    // Failed after `since` but already retried: no longer failed.
    let retried = app.schedule(&merchant).await;
    app.fail(&retried, &merchant).await;
    runner::execute::<WebhookDeliveryAggregate, _>(
        &app.store,
        &retried,
        &dispatcher_metadata(merchant.id),
        |_| Ok(RetryWebhookDelivery { at: Utc::now() }.into()),
    )
    .await
    .unwrap();
    // Still pending: nothing to recover.
    let pending = app.schedule(&merchant).await;
    // Another merchant's failure after `since`.
    let others = app.schedule(&other).await;
    app.fail(&others, &other).await;

    let (status, body, headers) = app
        .json(
            Method::POST,
            "/api/v1/webhooks/recover",
            &merchant,
            Some(json!({"since": rfc3339(since)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recovered"], 2, "{body}");
    assert_eq!(body["ids"], json!([late.as_str(), late_too.as_str()]));
    assert_eq!(body["has_more"], false);
    assert!(position(&headers).is_some());
    for id in [&late, &late_too] {
        let delivery = app.delivery(id).await;
        assert_eq!(delivery.status, WebhookDeliveryStatus::Pending, "{id}");
        assert_eq!(delivery.attempts, 0);
    }
    assert_eq!(
        app.delivery(&early).await.status,
        WebhookDeliveryStatus::Failed
    );
    assert_eq!(
        app.delivery(&others).await.status,
        WebhookDeliveryStatus::Failed
    );
    assert_eq!(app.delivery(&retried).await.attempts, 0);
    assert_eq!(app.delivery(&pending).await.attempts, 0);

    // Again: nothing left since then; no events, no position.
    let before = app.event_count().await;
    let (status, body, headers) = app
        .json(
            Method::POST,
            "/api/v1/webhooks/recover",
            &merchant,
            Some(json!({"since": rfc3339(since)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"recovered": 0, "ids": [], "has_more": false}));
    assert_eq!(position(&headers), None);
    assert_eq!(app.event_count().await, before);

    // From further back, the early failure too (any RFC 3339 offset works).
    let ist = (since - TimeDelta::hours(1))
        .with_timezone(&chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap())
        .to_rfc3339();
    let (status, body, _) = app
        .json(
            Method::POST,
            "/api/v1/webhooks/recover",
            &merchant,
            Some(json!({ "since": ist })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ids"], json!([early.as_str()]));

    // The other merchant recovers its own.
    let (status, body, _) = app
        .json(
            Method::POST,
            "/api/v1/webhooks/recover",
            &other,
            Some(json!({"since": rfc3339(since)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ids"], json!([others.as_str()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_a_4xx_and_append_nothing() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    let other = app.other_merchant().await;
    let wrong_secret = Merchant {
        secret: "nope".into(),
        ..dev_merchant()
    };
    // `other` has an endpoint and a failed delivery; the dev merchant has no URL.
    app.configure(&other, "https://other.example.com/hook")
        .await;
    let others_delivery = app.schedule(&other).await;
    app.fail(&others_delivery, &other).await;
    let unknown = WebhookDeliveryId::from_random_bytes(rand::random());
    let future = rfc3339(Utc::now() + TimeDelta::hours(1));

    struct Case {
        name: &'static str,
        method: Method,
        path: String,
        merchant: Option<Merchant>,
        body: Option<&'static str>,
        status: StatusCode,
        code: &'static str,
        field: Option<&'static str>,
        description: Option<&'static str>,
    }
    let case = |name, method, path: &str, body, status, code, field| Case {
        name,
        method,
        path: path.to_owned(),
        merchant: Some(merchant.clone()),
        body,
        status,
        code,
        field,
        description: None,
    };
    let bad = StatusCode::BAD_REQUEST;
    let config = "/api/v1/webhooks/config";
    let recover = "/api/v1/webhooks/recover";
    let future_body: &'static str =
        Box::leak(format!(r#"{{"since": "{future}"}}"#).into_boxed_str());
    let mut cases = vec![
        case(
            "ftp url",
            Method::PUT,
            config,
            Some(r#"{"url": "ftp://a.example.com/h"}"#),
            bad,
            "BAD_REQUEST_ERROR",
            Some("url"),
        ),
        case(
            "not a url",
            Method::PUT,
            config,
            Some(r#"{"url": "not a url"}"#),
            bad,
            "BAD_REQUEST_ERROR",
            Some("url"),
        ),
        case(
            "relative url",
            Method::PUT,
            config,
            Some(r#"{"url": "/hooks"}"#),
            bad,
            "BAD_REQUEST_ERROR",
            Some("url"),
        ),
        case(
            "url with spaces inside",
            Method::PUT,
            config,
            Some(r#"{"url": "https://a.example.com/a b"}"#),
            bad,
            "BAD_REQUEST_ERROR",
            Some("url"),
        ),
        case(
            "url not a string",
            Method::PUT,
            config,
            Some(r#"{"url": 42}"#),
            bad,
            "BAD_REQUEST_ERROR",
            Some("url"),
        ),
        case(
            "url missing",
            Method::PUT,
            config,
            Some(r#"{"events": []}"#),
            bad,
            "BAD_REQUEST_ERROR",
            Some("url"),
        ),
        case(
            "unknown event",
            Method::PUT,
            config,
            Some(
                r#"{"url": "https://a.example.com/h", "events": ["payment.success", "payment.refunded"]}"#,
            ),
            bad,
            "BAD_REQUEST_ERROR",
            Some("events"),
        ),
        case(
            "test event is not subscribable",
            Method::PUT,
            config,
            Some(r#"{"url": "https://a.example.com/h", "events": ["webhook.test"]}"#),
            bad,
            "BAD_REQUEST_ERROR",
            Some("events"),
        ),
        case(
            "events not a list",
            Method::PUT,
            config,
            Some(r#"{"url": "https://a.example.com/h", "events": "payment.success"}"#),
            bad,
            "BAD_REQUEST_ERROR",
            Some("events"),
        ),
        case(
            "config body not JSON",
            Method::PUT,
            config,
            Some("{"),
            bad,
            "BAD_REQUEST_ERROR",
            None,
        ),
        case(
            "config body empty",
            Method::PUT,
            config,
            None,
            bad,
            "BAD_REQUEST_ERROR",
            None,
        ),
        case(
            "retry unknown delivery",
            Method::POST,
            &format!("/api/v1/webhooks/{unknown}/retry"),
            None,
            StatusCode::NOT_FOUND,
            "NOT_FOUND_ERROR",
            None,
        ),
        case(
            "retry malformed id",
            Method::POST,
            "/api/v1/webhooks/nope/retry",
            None,
            StatusCode::NOT_FOUND,
            "NOT_FOUND_ERROR",
            None,
        ),
        case(
            "retry another kind of id",
            Method::POST,
            "/api/v1/webhooks/pay_H8sK3jD9s2L1pQr5/retry",
            None,
            StatusCode::NOT_FOUND,
            "NOT_FOUND_ERROR",
            None,
        ),
        case(
            "retry another merchant's delivery",
            Method::POST,
            &format!("/api/v1/webhooks/{others_delivery}/retry"),
            None,
            StatusCode::NOT_FOUND,
            "NOT_FOUND_ERROR",
            None,
        ),
        case(
            "since missing",
            Method::POST,
            recover,
            Some("{}"),
            bad,
            "BAD_REQUEST_ERROR",
            Some("since"),
        ),
        case(
            "since not a time",
            Method::POST,
            recover,
            Some(r#"{"since": "yesterday"}"#),
            bad,
            "BAD_REQUEST_ERROR",
            Some("since"),
        ),
        case(
            "since a date only",
            Method::POST,
            recover,
            Some(r#"{"since": "2024-01-31"}"#),
            bad,
            "BAD_REQUEST_ERROR",
            Some("since"),
        ),
        case(
            "since not a string",
            Method::POST,
            recover,
            Some(r#"{"since": 1700000000}"#),
            bad,
            "BAD_REQUEST_ERROR",
            Some("since"),
        ),
        case(
            "since in the future",
            Method::POST,
            recover,
            Some(future_body),
            bad,
            "BAD_REQUEST_ERROR",
            Some("since"),
        ),
        case(
            "recover body empty",
            Method::POST,
            recover,
            None,
            bad,
            "BAD_REQUEST_ERROR",
            None,
        ),
    ];
    cases.push(Case {
        description: Some("No webhook URL configured"),
        ..case(
            "test without a URL",
            Method::POST,
            "/api/v1/webhooks/test",
            None,
            bad,
            "BAD_REQUEST_ERROR",
            None,
        )
    });
    let others_retry = format!("/api/v1/webhooks/{others_delivery}/retry");
    for (path, method, body) in [
        (
            config,
            Method::PUT,
            Some(r#"{"url": "https://a.example.com/h"}"#),
        ),
        ("/api/v1/webhooks/regenerate-secret", Method::POST, None),
        ("/api/v1/webhooks/test", Method::POST, None),
        (others_retry.as_str(), Method::POST, None),
        (
            recover,
            Method::POST,
            Some(r#"{"since": "2024-01-31T00:00:00Z"}"#),
        ),
    ] {
        for (name, merchant) in [
            ("no credentials", None),
            ("wrong secret", Some(wrong_secret.clone())),
        ] {
            cases.push(Case {
                merchant,
                ..case(
                    name,
                    method.clone(),
                    path,
                    body,
                    StatusCode::UNAUTHORIZED,
                    "AUTHENTICATION_ERROR",
                    None,
                )
            });
        }
    }

    let before = app.event_count().await;
    for case in &cases {
        let (status, body, headers) = app
            .send(
                case.method.clone(),
                &case.path,
                case.merchant.as_ref(),
                case.body.map(|body| body.as_bytes().to_vec()),
            )
            .await;
        let label = format!("{} {} ({})", case.method, case.path, case.name);
        assert_eq!(status, case.status, "{label}: {body}");
        assert_eq!(body["error"]["code"], case.code, "{label}: {body}");
        assert!(body["error"]["description"].is_string(), "{label}: {body}");
        if let Some(field) = case.field {
            assert_eq!(body["error"]["field"], field, "{label}: {body}");
        }
        if let Some(description) = case.description {
            assert_eq!(body["error"]["description"], description, "{label}: {body}");
        }
        assert_eq!(position(&headers), None, "{label}");
        assert_eq!(app.event_count().await, before, "{label}: appended events");
    }

    // An endpoint disabled (after a 410) takes no test event until saved again.
    runner::execute::<MerchantAggregate, _>(
        &app.store,
        MerchantId::from(other.id),
        &dispatcher_metadata(other.id),
        |_| {
            Ok(DisableWebhookEndpoint {
                reason: "gone".into(),
            }
            .into())
        },
    )
    .await
    .unwrap();
    let before = app.event_count().await;
    let (status, body, _) = app
        .json(Method::POST, "/api/v1/webhooks/test", &other, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "BAD_REQUEST_ERROR");
    assert!(
        body["error"]["description"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{body}"
    );
    assert_eq!(app.event_count().await, before);
    app.configure(&other, "https://other.example.com/hook")
        .await;
    let (status, body, _) = app
        .json(Method::POST, "/api/v1/webhooks/test", &other, None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Nothing changed for the other merchant's delivery or the dev merchant.
    assert_eq!(
        app.delivery(&others_delivery).await.status,
        WebhookDeliveryStatus::Failed
    );
    let webhook = app.merchant_state(&merchant).await.webhook;
    assert_eq!(webhook.url, None);
    assert_eq!(webhook.secret, seed::DEV_WEBHOOK_SECRET);
}

/// `PUT /api/v1/webhooks/config` with `url`, which must be refused: 400
/// `BAD_REQUEST_ERROR` on `url`, nothing appended, the endpoint unchanged.
/// Returns the error's description.
async fn assert_url_refused(app: &TestApp, merchant: &Merchant, name: &str, url: &str) -> String {
    let before = app.event_count().await;
    let url_before = app.merchant_state(merchant).await.webhook.url;
    let (status, body, headers) = app
        .json(
            Method::PUT,
            "/api/v1/webhooks/config",
            merchant,
            Some(json!({ "url": url })),
        )
        .await;
    let label = format!("{name}: {url}");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{label}: {body}");
    assert_eq!(
        body["error"]["code"], "BAD_REQUEST_ERROR",
        "{label}: {body}"
    );
    assert_eq!(body["error"]["field"], "url", "{label}: {body}");
    assert!(body["error"]["description"].is_string(), "{label}: {body}");
    assert_eq!(position(&headers), None, "{label}");
    assert_eq!(app.event_count().await, before, "{label}: appended events");
    assert_eq!(
        app.merchant_state(merchant).await.webhook.url,
        url_before,
        "{label}"
    );
    body["error"]["description"].as_str().unwrap().to_owned()
}

/// Every form of a non-public target that production must refuse when the
/// URL is configured (the dispatcher refuses them again at delivery).
const PRODUCTION_REFUSED: &[(&str, &str)] = &[
    (
        "cloud metadata address",
        "http://169.254.169.254/latest/meta-data/",
    ),
    (
        "cloud metadata name",
        "http://metadata.google.internal/computeMetadata/v1/",
    ),
    ("private 10/8", "https://10.0.0.1/hooks"),
    ("private 172.16/12", "https://172.16.0.1/hooks"),
    ("private 192.168/16", "https://192.168.1.10/hooks"),
    ("CGNAT 100.64/10", "https://100.64.0.1/hooks"),
    ("CGNAT top of range", "https://100.127.255.254/hooks"),
    ("ULA fc00::/7", "https://[fc00::1]/hooks"),
    ("ULA fd00::/8", "https://[fd12:3456:789a::1]/hooks"),
    ("link-local IPv4", "http://169.254.1.1/hooks"),
    ("link-local IPv6", "http://[fe80::1]/hooks"),
    ("multicast IPv4", "http://224.0.0.1/hooks"),
    ("multicast IPv6", "http://[ff02::1]/hooks"),
    ("broadcast", "http://255.255.255.255/hooks"),
    ("unspecified", "http://0.0.0.0/hooks"),
    ("unspecified IPv6", "http://[::]/hooks"),
    ("zero", "http://0/hooks"),
    ("loopback", "http://127.0.0.1:4000/hooks"),
    ("loopback shorthand 127.1", "http://127.1/hooks"),
    ("loopback as a decimal number", "http://2130706433/hooks"),
    ("loopback as a hex number", "http://0x7f000001/hooks"),
    ("loopback in octal", "http://0177.0.0.1/hooks"),
    ("loopback IPv6", "http://[::1]:4000/hooks"),
    ("IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/hooks"),
    ("IPv4-mapped private", "http://[::ffff:10.0.0.1]/hooks"),
    ("localhost", "http://localhost:4000/hooks"),
    (
        "a name that does not resolve",
        "https://no-such-host.invalid/hooks",
    ),
    ("localhost with a final dot", "http://localhost.:8083/hooks"),
    (
        "a public name with a final dot",
        "https://example.com./hooks",
    ),
    (
        "single-label metadata",
        "http://metadata/computeMetadata/v1/",
    ),
    (
        "metadata with a final dot",
        "http://metadata./computeMetadata/v1/",
    ),
    ("credentials", "https://user:pass@93.184.216.34/hooks"),
    ("user name only", "https://user@93.184.216.34/hooks"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_non_public_webhook_urls_when_configured() {
    let app = spawn_app_in(Profile::Production).await;
    let merchant = app.other_merchant().await;
    for (name, url) in PRODUCTION_REFUSED {
        assert_url_refused(&app, &merchant, name, url).await;
    }
    assert_eq!(
        assert_url_refused(
            &app,
            &merchant,
            "a name that does not resolve",
            "https://does-not-resolve.invalid/hooks"
        )
        .await,
        "url host does-not-resolve.invalid could not be resolved"
    );
    // A public address is accepted, on any port.
    app.configure(&merchant, "https://93.184.216.34/hooks")
        .await;
    app.configure(&merchant, "http://93.184.216.34:8081/hooks")
        .await;
    assert_eq!(
        app.merchant_state(&merchant).await.webhook.url.as_deref(),
        Some("http://93.184.216.34:8081/hooks")
    );
    // Refusals leave the endpoint as it was.
    assert_url_refused(
        &app,
        &merchant,
        "private after public",
        "https://10.1.2.3/h",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_allows_loopback_but_not_private_addresses_or_the_services_ports() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    for (name, url) in [
        ("credentials", "http://user:pass@127.0.0.1:4000/hooks"),
        ("user name only", "https://user@shop.example.com/hooks"),
        ("empty credentials", "https://@shop.example.com/hooks"),
        ("private 10/8", "http://10.0.0.1/hooks"),
        ("private 172.16/12", "http://172.16.0.1/hooks"),
        ("private 192.168/16", "http://192.168.1.10:3000/hooks"),
        (
            "cloud metadata address",
            "http://169.254.169.254/latest/meta-data/",
        ),
        ("CGNAT 100.64/10", "http://100.64.0.1/hooks"),
        ("ULA", "http://[fd00::1]/hooks"),
        ("link-local IPv6", "http://[fe80::1]/hooks"),
        ("unspecified", "http://0.0.0.0:4000/hooks"),
        ("zero", "http://0:4000/hooks"),
        ("broadcast", "http://255.255.255.255/hooks"),
        ("IPv4-mapped private", "http://[::ffff:192.168.0.1]/hooks"),
        ("command-api port", "http://127.0.0.1:8081/api/v1/merchants"),
        ("query-api port", "http://127.0.0.1:8082/hooks"),
        ("projector port", "http://127.0.0.1:8083/hooks"),
        ("dispatcher port", "http://127.0.0.1:8084/hooks"),
        ("service port by name", "http://localhost:8081/hooks"),
        ("service port on IPv6 loopback", "http://[::1]:8082/hooks"),
        ("service port on 127.1", "http://127.1:8083/hooks"),
        (
            "service port on a decimal loopback",
            "http://2130706433:8084/hooks",
        ),
        (
            "service port on mapped loopback",
            "http://[::ffff:127.0.0.1]:8081/hooks",
        ),
    ] {
        assert_url_refused(&app, &merchant, name, url).await;
    }
    // Loopback on other ports is how dev and the tests receive webhooks.
    for url in [
        "http://127.0.0.1:4000/hooks",
        "http://localhost:4000/hooks",
        "http://[::1]:4000/hooks",
        "http://127.1:8080/hooks",
        "http://127.0.0.1:8086/hooks",
        "https://93.184.216.34/hooks",
    ] {
        app.configure(&merchant, url).await;
        assert_eq!(
            app.merchant_state(&merchant).await.webhook.url.as_deref(),
            Some(url)
        );
    }
}

/// The ports of a system moved as the smoke run moves it (edge 18000, APIs
/// 18081 and 18082, projector 18083, dispatcher 18084, example shop 18085,
/// legacy 13000 and 13001, NATS monitoring 8222), with a real listener
/// standing in for the edge.
async fn moved_system() -> (tokio::net::TcpListener, Vec<u16>) {
    let edge = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut ports = vec![edge.local_addr().unwrap().port()];
    ports.extend([18081, 18082, 18083, 18084, 18085, 13000, 13001, 8222]);
    (edge, ports)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_refuses_every_port_the_system_is_configured_to_listen_on() {
    let (edge, ports) = moved_system().await;
    let edge_port = ports[0];
    let app = spawn_app_with(Profile::Dev, SystemPorts::new(ports.iter().copied())).await;
    let own_port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let merchant = dev_merchant();

    let description = assert_url_refused(
        &app,
        &merchant,
        "the edge",
        &format!("http://127.0.0.1:{edge_port}/"),
    )
    .await;
    assert_eq!(
        description,
        format!(
            "url must not point to port {edge_port} on loopback: Paystream itself listens there"
        )
    );
    for &port in &ports {
        for host in ["127.0.0.1", "localhost", "[::1]", "127.1", "2130706433"] {
            assert_url_refused(
                &app,
                &merchant,
                "a configured system port",
                &format!("http://{host}:{port}/api/v1/merchants"),
            )
            .await;
        }
    }
    // The API's own port, though the list leaves it out.
    assert!(!ports.contains(&own_port));
    assert_url_refused(
        &app,
        &merchant,
        "the API's own port",
        &format!("http://127.0.0.1:{own_port}/api/v1/orders"),
    )
    .await;
    // A name that does not resolve is accepted offline, but not on a
    // system port (it might stand for loopback).
    let description = assert_url_refused(
        &app,
        &merchant,
        "an unresolvable name on a system port",
        "http://does-not-resolve.invalid:18083/",
    )
    .await;
    assert!(
        description.contains("could not be resolved"),
        "{description}"
    );

    // Ports outside the configured set are free, the default layout's too:
    // the set is the configuration, not a list in the code.
    let free = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let free_port = free.local_addr().unwrap().port();
    for url in [
        format!("http://127.0.0.1:{free_port}/hook"),
        "http://127.0.0.1:8081/hook".to_owned(),
        "http://localhost:8000/hook".to_owned(),
        "http://does-not-resolve.invalid:4000/hook".to_owned(),
    ] {
        app.configure(&merchant, &url).await;
        assert_eq!(
            app.merchant_state(&merchant).await.webhook.url.as_deref(),
            Some(url.as_str())
        );
    }
    drop((edge, free));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_no_endpoint_may_have_are_refused_in_dev_too() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    for (name, url, reason) in [
        (
            "localhost with a final dot",
            "http://localhost.:8083/",
            "url host localhost. ends with a dot; write it without the final dot (localhost)",
        ),
        (
            "a public name with a final dot",
            "https://example.com./hooks",
            "url host example.com. ends with a dot; write it without the final dot (example.com)",
        ),
        (
            "a moved loopback name with a final dot",
            "http://localtest.me.:8081/",
            "url host localtest.me. ends with a dot; write it without the final dot (localtest.me)",
        ),
        (
            "cloud metadata name",
            "http://metadata.google.internal/",
            "url host metadata.google.internal is an internal name (.internal); webhooks go to public names",
        ),
        (
            "Docker's host name",
            "http://host.docker.internal:4000/hooks",
            "url host host.docker.internal is an internal name (.internal); webhooks go to public names",
        ),
        (
            "single-label metadata",
            "http://metadata/",
            "url host metadata is a single-label name; use a fully qualified name such as \
             hooks.example.com (localhost is the only single-label name allowed)",
        ),
        (
            "metadata with a final dot",
            "http://metadata./computeMetadata/v1/",
            "url host metadata. ends with a dot; write it without the final dot (metadata)",
        ),
        (
            "another single-label name",
            "http://webhook-receiver:4000/hooks",
            "url host webhook-receiver is a single-label name; use a fully qualified name such as \
             hooks.example.com (localhost is the only single-label name allowed)",
        ),
    ] {
        assert_eq!(
            assert_url_refused(&app, &merchant, name, url).await,
            reason,
            "{name}"
        );
    }
    // localhost itself is how dev receives webhooks.
    app.configure(&merchant, "http://localhost:4000/hooks")
        .await;
}
