//! The POSTs that take no body (rotate-keys, reactivate, regenerate-secret,
//! webhook test and retry, logout) and suspend, whose body is optional, all
//! follow one rule (`paystream_kit::http::json::NoBody`): an empty
//! body is accepted with any or no `Content-Type`; a non-empty body must be a
//! JSON object (its unknown fields are ignored, as everywhere), else 400.

mod support;

use paystream_domain::dev as seed;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::app::{dev_merchant, spawn_app, TestApp};
use support::register_merchant;

/// How a body is sent: `Content-Type` (if any) and bytes (if any).
#[derive(Debug, Clone, Copy)]
struct Body {
    name: &'static str,
    content_type: Option<&'static str>,
    bytes: Option<&'static str>,
}

const fn body(
    name: &'static str,
    content_type: Option<&'static str>,
    bytes: Option<&'static str>,
) -> Body {
    Body {
        name,
        content_type,
        bytes,
    }
}

const JSON: Option<&str> = Some("application/json");

/// Accepted by every body-less POST.
const ACCEPTED: &[Body] = &[
    body("no body, no Content-Type", None, None),
    body("empty, JSON", JSON, Some("")),
    body("empty, text/plain", Some("text/plain"), Some("")),
    body(
        "empty, form",
        Some("application/x-www-form-urlencoded"),
        Some(""),
    ),
    body(
        "empty, multipart",
        Some("multipart/form-data; boundary=x"),
        Some(""),
    ),
    body("only whitespace, no Content-Type", None, Some(" \r\n\t")),
    body("empty object", JSON, Some("{}")),
    body(
        "object with fields",
        JSON,
        Some(r#"{"ignored": [1, 2], "x": null}"#),
    ),
];

const NOT_JSON_TYPE: &str = "Request body must be sent as Content-Type: application/json";

/// Refused by every body-less POST, with `BAD_REQUEST_ERROR`: a body that is
/// not empty must be JSON (415 for another type, 400 for bad JSON).
const REFUSED: &[(Body, u16, &str)] = &[
    (
        body("text", Some("text/plain"), Some("not json")),
        415,
        NOT_JSON_TYPE,
    ),
    (
        body("JSON as text", Some("text/plain"), Some("{}")),
        415,
        NOT_JSON_TYPE,
    ),
    (
        body(
            "a form",
            Some("application/x-www-form-urlencoded"),
            Some("a=b"),
        ),
        415,
        NOT_JSON_TYPE,
    ),
    (
        body("truncated JSON", JSON, Some("{")),
        400,
        "Request body is not valid JSON",
    ),
    (
        body("an array", JSON, Some("[]")),
        400,
        "Request body must be a JSON object",
    ),
    (
        body("a string", JSON, Some(r#""x""#)),
        400,
        "Request body must be a JSON object",
    ),
    (
        body("null", JSON, Some("null")),
        400,
        "Request body must be a JSON object",
    ),
];

#[derive(Debug, Clone, Copy)]
enum Auth<'a> {
    /// The dev merchant's API key and secret.
    Merchant,
    /// A session's bearer token.
    Session(&'a str),
}

impl TestApp {
    async fn post_with(&self, path: &str, auth: Auth<'_>, body: Body) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base));
        request = match auth {
            Auth::Merchant => {
                let merchant = dev_merchant();
                request
                    .header("X-Api-Key", merchant.key)
                    .header("X-Api-Secret", merchant.secret)
            }
            Auth::Session(token) => request.header("Authorization", format!("Bearer {token}")),
        };
        if let Some(content_type) = body.content_type {
            request = request.header("Content-Type", content_type);
        }
        if let Some(bytes) = body.bytes {
            request = request.body(bytes);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn session(&self, email: &str, password: &str) -> String {
        let response = self
            .client
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        answer["token"].as_str().unwrap().to_owned()
    }

    async fn events(&self) -> i64 {
        sqlx::query_scalar("select count(*) from events")
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_less_posts_take_an_empty_body_of_any_type_or_a_json_object() {
    let app = spawn_app().await;
    let staff = app
        .session(seed::DEV_STAFF_EMAIL, seed::DEV_STAFF_PASSWORD)
        .await;
    let other = register_merchant(&app.store, false).await;
    let merchant_path = |action: &str| format!("/api/v1/merchants/{}/{action}", other.id);
    let configured = app
        .client
        .put(format!("{}/api/v1/webhooks/config", app.base))
        .header("X-Api-Key", seed::DEV_API_KEY)
        .header("X-Api-Secret", seed::DEV_API_SECRET)
        .header("Content-Type", "application/json")
        .body(r#"{"url": "http://127.0.0.1:4000/hooks"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(configured.status(), StatusCode::OK);

    for &variant in ACCEPTED {
        let label = variant.name;
        // Each call appends exactly one event.
        let calls = [
            (
                "/api/v1/webhooks/regenerate-secret".to_owned(),
                Auth::Merchant,
                StatusCode::OK,
            ),
            (
                "/api/v1/webhooks/test".to_owned(),
                Auth::Merchant,
                StatusCode::CREATED,
            ),
            (
                merchant_path("rotate-keys"),
                Auth::Session(&staff),
                StatusCode::OK,
            ),
            (
                merchant_path("suspend"),
                Auth::Session(&staff),
                StatusCode::OK,
            ),
            (
                merchant_path("reactivate"),
                Auth::Session(&staff),
                StatusCode::OK,
            ),
        ];
        let mut delivery = None;
        for (path, auth, expected) in calls {
            let before = app.events().await;
            let (status, answer) = app.post_with(&path, auth, variant).await;
            assert_eq!(status, expected, "{label}: {path}: {answer}");
            assert_eq!(app.events().await, before + 1, "{label}: {path}");
            if path.ends_with("/test") {
                delivery = answer["id"].as_str().map(str::to_owned);
            }
            if path.ends_with("/suspend") {
                // No body: no reason.
                assert_eq!(answer["status"], "suspended", "{label}: {answer}");
                assert_eq!(answer["suspension_reason"], "", "{label}: {answer}");
            }
        }
        let retry = format!("/api/v1/webhooks/{}/retry", delivery.unwrap());
        let before = app.events().await;
        let (status, answer) = app.post_with(&retry, Auth::Merchant, variant).await;
        assert_eq!(status, StatusCode::OK, "{label}: retry: {answer}");
        assert_eq!(app.events().await, before + 1, "{label}: retry");
        // Logout ends the session it names (and appends nothing).
        let session = app
            .session(seed::DEV_MERCHANT_EMAIL, seed::DEV_MERCHANT_PASSWORD)
            .await;
        let (status, answer) = app
            .post_with("/api/v1/auth/logout", Auth::Session(&session), variant)
            .await;
        assert_eq!(status, StatusCode::OK, "{label}: logout: {answer}");
    }

    // Suspend's optional body still carries a reason when one is sent.
    let (status, answer) = app
        .post_with(
            &merchant_path("suspend"),
            Auth::Session(&staff),
            body("reason", JSON, Some(r#"{"reason": " fraud "}"#)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["suspension_reason"], "fraud");
    let (status, answer) = app
        .post_with(
            &merchant_path("reactivate"),
            Auth::Session(&staff),
            ACCEPTED[0],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let session = app
        .session(seed::DEV_MERCHANT_EMAIL, seed::DEV_MERCHANT_PASSWORD)
        .await;
    let delivery: String = sqlx::query_scalar(
        "select stream_id from events where event_type = 'WebhookDeliveryScheduled' limit 1",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    let retry = format!(
        "/api/v1/webhooks/{}/retry",
        delivery.strip_prefix("webhook-").unwrap()
    );
    for &(variant, wanted, description) in REFUSED {
        for (path, auth) in [
            (
                "/api/v1/webhooks/regenerate-secret".to_owned(),
                Auth::Merchant,
            ),
            ("/api/v1/webhooks/test".to_owned(), Auth::Merchant),
            (retry.clone(), Auth::Merchant),
            ("/api/v1/merchant/rotate-keys".to_owned(), Auth::Merchant),
            (merchant_path("rotate-keys"), Auth::Session(&staff)),
            (merchant_path("suspend"), Auth::Session(&staff)),
            (merchant_path("reactivate"), Auth::Session(&staff)),
            ("/api/v1/auth/logout".to_owned(), Auth::Session(&session)),
        ] {
            let label = format!("{}: {path}", variant.name);
            let before = app.events().await;
            let (status, answer) = app.post_with(&path, auth, variant).await;
            assert_eq!(status.as_u16(), wanted, "{label}: {answer}");
            assert_eq!(answer["error"]["code"], "BAD_REQUEST_ERROR", "{label}");
            assert_eq!(answer["error"]["description"], description, "{label}");
            assert_eq!(app.events().await, before, "{label}: appended events");
        }
    }
    // The refused logout left the session alive.
    let (status, answer) = app
        .post_with("/api/v1/auth/logout", Auth::Session(&session), ACCEPTED[0])
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}
