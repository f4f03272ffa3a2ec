//! Sessions (staff, auditor, merchant users) and raw requests, for the
//! ledger, audit and staff tests.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::apps::Apps;

pub const STAFF: (&str, &str) = ("admin@example.com", "admin123");
pub const AUDITOR: (&str, &str) = ("auditor@example.com", "auditor123");
pub const MERCHANT_USER: (&str, &str) = ("test@example.com", "test123");

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum As<'a> {
    Nobody,
    /// `Authorization: Bearer <token>`.
    Session(&'a str),
    /// API key and secret.
    Merchant(&'a super::apps::Merchant),
}

/// Logs in through the command API; the session token.
pub async fn login(apps: &Apps, (email, password): (&str, &str)) -> String {
    let response = apps
        .client
        .post(format!("{}/api/v1/auth/login", apps.command))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login request");
    let status = response.status();
    let body: Value = response.json().await.expect("login body");
    assert_eq!(status, StatusCode::OK, "login {email}: {body}");
    body["token"].as_str().expect("token").to_string()
}

fn authorize(request: reqwest::RequestBuilder, who: As<'_>) -> reqwest::RequestBuilder {
    match who {
        As::Nobody => request,
        As::Session(token) => request.bearer_auth(token),
        As::Merchant(merchant) => request
            .header("X-Api-Key", &merchant.key)
            .header("X-Api-Secret", &merchant.secret),
    }
}

/// `GET` from the query API: status, headers and the raw body.
pub async fn get_raw(
    apps: &Apps,
    path: &str,
    who: As<'_>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let request = authorize(apps.client.get(format!("{}{path}", apps.query)), who);
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    (status, headers, text)
}

/// `GET` from the query API, the body as JSON.
pub async fn get(apps: &Apps, path: &str, who: As<'_>) -> (StatusCode, Value) {
    let (status, _, text) = get_raw(apps, path, who).await;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// `GET` that must answer 200.
pub async fn get_ok(apps: &Apps, path: &str, who: As<'_>) -> Value {
    let (status, body) = get(apps, path, who).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

/// A request with a JSON body to the command API: status, the
/// `X-Event-Position` header and the body.
pub async fn command(
    apps: &Apps,
    method: Method,
    path: &str,
    who: As<'_>,
    body: Value,
) -> (StatusCode, Option<i64>, Value) {
    let request = authorize(
        apps.client
            .request(method, format!("{}{path}", apps.command))
            .json(&body),
        who,
    );
    let response = request.send().await.expect("request");
    let status = response.status();
    let position = response
        .headers()
        .get("x-event-position")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, position, body)
}

/// Asserts a 400 `BAD_REQUEST_ERROR` naming `field`.
pub async fn assert_bad(apps: &Apps, path: &str, who: As<'_>, field: &str) {
    let (status, body) = get(apps, path, who).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "GET {path}: {body}");
    assert_eq!(
        body["error"]["code"], "BAD_REQUEST_ERROR",
        "GET {path}: {body}"
    );
    assert_eq!(body["error"]["field"], field, "GET {path}: {body}");
}

/// Asserts a 401 `AUTHENTICATION_ERROR`.
pub async fn assert_unauthorized(apps: &Apps, path: &str, who: As<'_>) {
    let (status, body) = get(apps, path, who).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "GET {path} as {who:?}: {body}"
    );
    assert_eq!(
        body["error"]["code"], "AUTHENTICATION_ERROR",
        "GET {path}: {body}"
    );
}
