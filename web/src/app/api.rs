//! The API, as the browser calls it: same origin, JSON both ways, the
//! API's own error descriptions shown as they are.
//!
//! Read your writes: the page remembers the `X-Event-Position` of the last
//! command it sent, and sends it as `X-Min-Position` with every read, so a
//! list read right after a command (the read models follow the log a few
//! milliseconds behind) waits, bounded, until it shows that command.

use std::cell::RefCell;

use gloo_net::http::{Request, Response};
use paystream_domain::api::ErrorBody;
use serde::de::DeserializeOwned;

/// What went wrong, in words for the shopper: the API's description, or
/// the network's.
pub type Failure = String;

thread_local! {
    static LAST_POSITION: RefCell<Option<String>> = const { RefCell::new(None) };
}

async fn read<T: DeserializeOwned>(response: Response) -> Result<T, Failure> {
    if let Some(position) = response.headers().get("x-event-position") {
        LAST_POSITION.with(|last| *last.borrow_mut() = Some(position));
    }
    if response.ok() {
        return response
            .json::<T>()
            .await
            .map_err(|error| format!("Unexpected answer: {error}"));
    }
    match response.json::<ErrorBody>().await {
        Ok(body) => Err(body.error.description),
        Err(_) => Err(format!("The server answered {}", response.status())),
    }
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, Failure> {
    let mut request = Request::get(path);
    if let Some(position) = LAST_POSITION.with(|last| last.borrow().clone()) {
        request = request.header("X-Min-Position", &position);
    }
    let response = request
        .send()
        .await
        .map_err(|error| format!("Network error: {error}"))?;
    read(response).await
}

/// A POST: with the merchant's publishable key (`key`, the checkout), or
/// with the session cookie the browser sends itself (the dashboard).
pub async fn post<T: DeserializeOwned>(
    path: &str,
    key: Option<&str>,
    body: &serde_json::Value,
) -> Result<T, Failure> {
    send(Request::post(path), key, body).await
}

/// A PUT with the session cookie.
#[cfg(feature = "dashboard")]
pub async fn put<T: DeserializeOwned>(path: &str, body: &serde_json::Value) -> Result<T, Failure> {
    send(Request::put(path), None, body).await
}

async fn send<T: DeserializeOwned>(
    request: gloo_net::http::RequestBuilder,
    key: Option<&str>,
    body: &serde_json::Value,
) -> Result<T, Failure> {
    let mut request = request.header("Content-Type", "application/json");
    if let Some(key) = key {
        request = request.header("X-Api-Key", key);
    }
    let response = request
        .body(body.to_string())
        .map_err(|error| format!("Could not send: {error}"))?
        .send()
        .await
        .map_err(|error| format!("Network error: {error}"))?;
    read(response).await
}
