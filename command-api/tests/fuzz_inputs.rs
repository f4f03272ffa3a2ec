//! Every string field of every command body, sent hostile values: a NUL
//! character, a lone surrogate escape (`"\ud800"`, not valid JSON), 1 MiB of
//! text, 60 000 bytes of text (under the body limit, so it reaches the
//! handler) and a number instead of the string. Each answer must be a 4xx in the
//! contract's error format, never a 5xx, and no event may be appended. Path
//! ids get the same treatment: NUL, bytes that are not UTF-8, an encoded
//! surrogate and a very long id.

mod support;

use chrono::Utc;
use paystream_domain::payment::{PaymentAggregate, RecordPaymentSuccess};
use paystream_domain::PaymentId;
use paystream_store::runner;
use paystream_store::EventMetadata;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::app::{dev_merchant, spawn_app, TestApp};

/// Stands for the field under test in a body; replaced by the hostile value.
const PLACEHOLDER: &str = "__fuzzed_value__";

/// The hostile values, as JSON text.
fn mutations() -> Vec<(&'static str, String)> {
    vec![
        ("a NUL", r#""ab\u0000cd""#.to_string()),
        ("a lone surrogate", r#""\ud800""#.to_string()),
        ("1 MiB of text", format!("\"{}\"", "x".repeat(1024 * 1024))),
        (
            "60 000 bytes of text",
            format!("\"{}\"", "é".repeat(30_000)),
        ),
        ("a number", "12345".to_string()),
    ]
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Keys(&'a str, &'a str),
    PublicKey(&'a str),
    Bearer(&'a str),
}

/// One endpoint and a valid-looking body; `fields` are the JSON paths
/// (`card.number`, `events[0]`, `notes.<key>`) of its string fields.
struct Target<'a> {
    name: &'static str,
    method: Method,
    path: String,
    auth: Auth<'a>,
    body: Value,
    fields: Vec<&'static str>,
    /// Fields where a number is a valid value (skipped for "a number").
    numbers_valid_at: Vec<&'static str>,
}

/// `body` with the value at `field` (dots for objects, `[n]` for arrays)
/// replaced by the placeholder; `notes.<key>` replaces the key itself.
fn with_placeholder(body: &Value, field: &str) -> Value {
    let mut body = body.clone();
    if let Some(key) = field.strip_prefix("notes.<key>") {
        assert!(key.is_empty());
        body["notes"] = json!({ PLACEHOLDER: "v" });
        return body;
    }
    let mut slot = &mut body;
    for part in field.split('.') {
        match part.split_once('[') {
            Some((name, index)) => {
                let index: usize = index.trim_end_matches(']').parse().unwrap();
                slot = &mut slot[name][index];
            }
            None => slot = &mut slot[part],
        }
    }
    *slot = json!(PLACEHOLDER);
    body
}

impl TestApp {
    async fn event_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from events")
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        request = match auth {
            Auth::None => request,
            Auth::Keys(key, secret) => request
                .header("X-Api-Key", key)
                .header("X-Api-Secret", secret),
            Auth::PublicKey(key) => request.header("X-Api-Key", key),
            Auth::Bearer(token) => request.header("Authorization", format!("Bearer {token}")),
        };
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Sends one hostile request; returns what was wrong with the answer.
    async fn probe(
        &self,
        what: String,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<String>,
    ) -> Option<String> {
        let before = self.event_count().await;
        let (status, answer) = self.call(method, path, auth, body).await;
        let appended = self.event_count().await - before;
        let error = &answer["error"];
        let in_format = error["code"].as_str().is_some_and(|code| !code.is_empty())
            && error["description"]
                .as_str()
                .is_some_and(|text| !text.is_empty());
        let shown = answer.to_string().chars().take(300).collect::<String>();
        if !status.is_client_error() || !in_format || appended != 0 {
            Some(format!(
                "{what}: got {status}, {appended} events appended, body {shown}"
            ))
        } else {
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_in_every_command_body_are_4xx_and_append_nothing() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    let keys = Auth::Keys(&merchant.key, &merchant.secret);

    // What the bodies refer to: an order, a payment that succeeded, a staff
    // session.
    let (status, order) = app
        .call(
            Method::POST,
            "/api/v1/orders",
            keys,
            Some(json!({"amount": 50_000}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["id"].as_str().unwrap().to_string();
    let (status, payment) = app
        .call(
            Method::POST,
            "/api/v1/payments",
            keys,
            Some(json!({"order_id": order_id, "method": "upi", "vpa": "success@bank"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    let payment_id = payment["id"].as_str().unwrap().to_string();
    // It succeeded (as the acquirer would record), so captures and refunds
    // reach their amount and reason rules.
    let metadata = EventMetadata {
        actor: "system:acquirer".into(),
        ..EventMetadata::default()
    };
    let id: PaymentId = payment_id.parse().unwrap();
    runner::execute::<PaymentAggregate, _>(&app.store, &id, &metadata, |_| {
        Ok(RecordPaymentSuccess { at: Utc::now() }.into())
    })
    .await
    .unwrap();
    let (status, login) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Auth::None,
            Some(json!({"email": "admin@example.com", "password": "admin123"}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let staff = login["token"].as_str().unwrap().to_string();
    let dev = merchant.id;

    let upi = json!({"order_id": order_id, "method": "upi", "vpa": "user@bank"});
    let card = json!({"order_id": order_id, "method": "card", "card": {
        "number": "4111111111111111", "expiry_month": "12", "expiry_year": "30",
        "cvv": "123", "holder_name": "Asha Rao"}});
    let card_fields = vec![
        "order_id",
        "method",
        "card.number",
        "card.expiry_month",
        "card.expiry_year",
        "card.cvv",
        "card.holder_name",
    ];
    let targets = vec![
        Target {
            name: "order",
            method: Method::POST,
            path: "/api/v1/orders".into(),
            auth: keys,
            body: json!({"amount": 50_000, "currency": "INR", "receipt": "r1",
                         "notes": {"k": "v"}}),
            fields: vec!["currency", "receipt", "notes.k", "notes.<key>"],
            numbers_valid_at: vec!["notes.k"],
        },
        Target {
            name: "UPI payment",
            method: Method::POST,
            path: "/api/v1/payments".into(),
            auth: keys,
            body: upi.clone(),
            fields: vec!["order_id", "method", "vpa"],
            numbers_valid_at: vec![],
        },
        Target {
            name: "card payment",
            method: Method::POST,
            path: "/api/v1/payments".into(),
            auth: keys,
            body: card.clone(),
            fields: card_fields.clone(),
            numbers_valid_at: vec![],
        },
        Target {
            name: "public UPI payment",
            method: Method::POST,
            path: "/api/v1/payments/public".into(),
            auth: Auth::PublicKey(&merchant.key),
            body: upi,
            fields: vec!["order_id", "method", "vpa"],
            numbers_valid_at: vec![],
        },
        Target {
            name: "public card payment",
            method: Method::POST,
            path: "/api/v1/payments/public".into(),
            auth: Auth::PublicKey(&merchant.key),
            body: card,
            fields: card_fields,
            numbers_valid_at: vec![],
        },
        Target {
            // No string field: the amount gets the hostile strings instead.
            name: "capture",
            method: Method::POST,
            path: format!("/api/v1/payments/{payment_id}/capture"),
            auth: keys,
            body: json!({"amount": 50_000}),
            fields: vec!["amount"],
            numbers_valid_at: vec!["amount"],
        },
        Target {
            name: "refund",
            method: Method::POST,
            path: format!("/api/v1/payments/{payment_id}/refunds"),
            auth: keys,
            body: json!({"amount": 100, "reason": "customer request"}),
            fields: vec!["reason", "amount"],
            numbers_valid_at: vec!["amount"],
        },
        Target {
            name: "webhook configuration",
            method: Method::PUT,
            path: "/api/v1/webhooks/config".into(),
            auth: keys,
            body: json!({"url": "https://shop.example.com/hooks",
                         "events": ["payment.success"]}),
            fields: vec!["url", "events[0]"],
            numbers_valid_at: vec![],
        },
        Target {
            name: "webhook recovery",
            method: Method::POST,
            path: "/api/v1/webhooks/recover".into(),
            auth: keys,
            body: json!({"since": "2025-01-31T00:00:00Z"}),
            fields: vec!["since"],
            numbers_valid_at: vec![],
        },
        Target {
            name: "login",
            method: Method::POST,
            path: "/api/v1/auth/login".into(),
            auth: Auth::None,
            body: json!({"email": "admin@example.com", "password": "admin123"}),
            fields: vec!["email", "password"],
            numbers_valid_at: vec![],
        },
        Target {
            name: "merchant creation",
            method: Method::POST,
            path: "/api/v1/merchants".into(),
            auth: Auth::Bearer(&staff),
            body: json!({"name": "Acme", "email": "owner@acme.example",
                         "password": "long enough"}),
            fields: vec!["name", "email", "password"],
            numbers_valid_at: vec![],
        },
        Target {
            name: "suspension",
            method: Method::POST,
            path: format!("/api/v1/merchants/{dev}/suspend"),
            auth: Auth::Bearer(&staff),
            body: json!({"reason": "chargebacks"}),
            fields: vec!["reason"],
            numbers_valid_at: vec![],
        },
    ];

    let mut failures = Vec::new();
    let mut probes = 0;
    for target in &targets {
        for field in &target.fields {
            let template = with_placeholder(&target.body, field).to_string();
            for (mutation, text) in mutations() {
                if mutation == "a number" && target.numbers_valid_at.contains(field) {
                    continue;
                }
                let body = template.replace(&format!("\"{PLACEHOLDER}\""), &text);
                assert_ne!(body, template, "{} {field}", target.name);
                probes += 1;
                failures.extend(
                    app.probe(
                        format!("{} / {field} / {mutation}", target.name),
                        target.method.clone(),
                        &target.path,
                        target.auth,
                        Some(body),
                    )
                    .await,
                );
            }
        }
    }

    // Path ids.
    let ids = [
        ("a NUL", "%00".to_string()),
        ("bytes that are not UTF-8", "%ff%fe".to_string()),
        ("an encoded surrogate", "%ed%a0%80".to_string()),
        ("a truncated UTF-8 sequence", "pay_%c3".to_string()),
        ("a 4 000-character id", "x".repeat(4_000)),
    ];
    for (what, id) in &ids {
        let paths: [(&str, String, Auth<'_>, Option<String>); 6] = [
            (
                "capture",
                format!("/api/v1/payments/{id}/capture"),
                keys,
                Some(r#"{"amount": 100}"#.into()),
            ),
            (
                "refund",
                format!("/api/v1/payments/{id}/refunds"),
                keys,
                Some(r#"{"amount": 100}"#.into()),
            ),
            (
                "webhook retry",
                format!("/api/v1/webhooks/{id}/retry"),
                keys,
                None,
            ),
            (
                "key rotation",
                format!("/api/v1/merchants/{id}/rotate-keys"),
                Auth::Bearer(&staff),
                None,
            ),
            (
                "suspension",
                format!("/api/v1/merchants/{id}/suspend"),
                Auth::Bearer(&staff),
                Some(r#"{"reason": "r"}"#.into()),
            ),
            (
                "reactivation",
                format!("/api/v1/merchants/{id}/reactivate"),
                Auth::Bearer(&staff),
                None,
            ),
        ];
        for (name, path, auth, body) in paths {
            probes += 1;
            failures.extend(
                app.probe(format!("{name} of {what}"), Method::POST, &path, auth, body)
                    .await,
            );
        }
    }

    assert!(probes >= 150, "{probes} probes");
    assert!(
        failures.is_empty(),
        "{} of {probes} hostile requests were not a clean 4xx:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
