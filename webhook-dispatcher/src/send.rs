//! One HTTP attempt: sign the stored body, POST it, and describe what
//! happened in the terms of `RecordWebhookAttempt`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use paystream_domain::signature;
use paystream_domain::webhook::{RESPONSE_EXCERPT_MAX_BYTES, RETRY_AFTER_MAX_SECONDS};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};

use crate::ssrf::{Guard, GuardedResolver};

pub const HEADER_SIGNATURE: &str = "X-Webhook-Signature";
pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_STANDARD_SIGNATURE: &str = "webhook-signature";

/// What one attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub response_body_excerpt: String,
    pub latency_ms: u32,
    pub error: Option<String>,
    pub retry_after_seconds: Option<u32>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status_code
            .is_some_and(|code| (200..300).contains(&code))
    }
}

/// The signed request for one attempt.
#[derive(Debug, Clone)]
pub struct Signed {
    pub headers: HeaderMap,
}

/// Signs `body` for an attempt at `timestamp` with `secrets` (current first):
/// `X-Webhook-Signature` with the current secret string, `webhook-signature`
/// with every secret's Standard Webhooks key
/// ([`signature::standard_webhooks_key`]: the decoded base64 tail, or the
/// UTF-8 bytes of a legacy secret).
pub fn sign(secrets: &[&str], message_id: &str, timestamp: i64, body: &str) -> Signed {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static("Paystream-Webhooks/1.0"),
    );
    let insert = |headers: &mut HeaderMap, name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    if let Some(current) = secrets.first() {
        insert(
            &mut headers,
            HEADER_SIGNATURE,
            signature::sign_hex(current, body.as_bytes()),
        );
    }
    insert(&mut headers, HEADER_ID, message_id.to_owned());
    insert(&mut headers, HEADER_TIMESTAMP, timestamp.to_string());
    insert(
        &mut headers,
        HEADER_STANDARD_SIGNATURE,
        signature::sign_standard(secrets, message_id, timestamp, body.as_bytes()),
    );
    Signed { headers }
}

/// The body's `id` (the Standard Webhooks message id); the delivery id when
/// the body has none.
pub fn message_id(body: &str, fallback: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|value| {
            value
                .get("id")
                .and_then(|id| id.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| fallback.to_owned())
}

/// `Retry-After` as seconds: delta-seconds or an HTTP date; capped at 1 h.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<u32> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.min(u64::from(RETRY_AFTER_MAX_SECONDS)) as u32);
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    let seconds = (at - now).num_seconds().max(0);
    Some(seconds.min(i64::from(RETRY_AFTER_MAX_SECONDS)) as u32)
}

/// The HTTP side of the dispatcher.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    guard: Guard,
}

impl Sender {
    pub fn new(guard: Guard, timeout: Duration) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(GuardedResolver::shared(guard.clone()))
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(16)
            .build()?;
        Ok(Self { client, guard })
    }

    /// POSTs `body` to `url`; never fails: every problem is an attempt
    /// without a status code and with an error text (which never holds a
    /// secret or the URL).
    pub async fn send(&self, url: &str, signed: Signed, body: String) -> Attempt {
        let at = Utc::now();
        let started = Instant::now();
        let failed = |error: String, started: Instant| Attempt {
            at,
            status_code: None,
            response_body_excerpt: String::new(),
            latency_ms: elapsed_ms(started),
            error: Some(error),
            retry_after_seconds: None,
        };
        let parsed = match reqwest::Url::parse(url) {
            Ok(parsed) => parsed,
            Err(error) => return failed(format!("invalid URL: {error}"), started),
        };
        if let Err(error) = self.guard.check_url(&parsed).await {
            return failed(error.to_string(), started);
        }
        let response = self
            .client
            .post(parsed)
            .headers(signed.headers)
            .body(body)
            .send()
            .await;
        let mut response = match response {
            Ok(response) => response,
            Err(error) => return failed(describe(&error), started),
        };
        let latency_ms = elapsed_ms(started);
        let status = response.status().as_u16();
        let retry_after_seconds = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, Utc::now()));
        // Read at most the excerpt, then drop the connection's remainder.
        let mut excerpt = Vec::with_capacity(256);
        let mut error = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = RESPONSE_EXCERPT_MAX_BYTES + 4 - excerpt.len();
                    excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if excerpt.len() >= RESPONSE_EXCERPT_MAX_BYTES {
                        break;
                    }
                }
                Ok(None) => break,
                Err(read_error) => {
                    error = Some(format!("reading response: {}", describe(&read_error)));
                    break;
                }
            }
        }
        Attempt {
            at,
            status_code: Some(status),
            response_body_excerpt: String::from_utf8_lossy(&excerpt).into_owned(),
            latency_ms,
            error,
            retry_after_seconds,
        }
    }
}

fn elapsed_ms(started: Instant) -> u32 {
    u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX)
}

/// The error without its URL, with its causes (the SSRF guard's refusal
/// is one of them).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_redirect() {
        "redirect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates_are_capped() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("120", now), Some(120));
        assert_eq!(parse_retry_after(" 0 ", now), Some(0));
        assert_eq!(parse_retry_after("99999999", now), Some(3_600));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(120)
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn both_schemes_sign_the_exact_body() {
        let body = r#"{"id":"abc","event":"payment.success"}"#;
        // A generated (base64) secret and a legacy one, as during a rotation
        // away from the seeded secret.
        let new = signature::new_secret(&[42; signature::SECRET_RANDOM_BYTES]);
        let old = "whsec_test_abc123";
        let signed = sign(&[&new, old], "abc", 1_700_000_000, body);
        let header = |name: &str| signed.headers.get(name).unwrap().to_str().unwrap();
        assert!(signature::verify_hex(
            &new,
            body.as_bytes(),
            header(HEADER_SIGNATURE)
        ));
        assert!(!signature::verify_hex(
            old,
            body.as_bytes(),
            header(HEADER_SIGNATURE)
        ));
        assert_eq!(header(HEADER_ID), "abc");
        assert_eq!(header(HEADER_TIMESTAMP), "1700000000");
        assert_eq!(
            header(HEADER_STANDARD_SIGNATURE),
            signature::sign_standard(&[&new, old], "abc", 1_700_000_000, body.as_bytes())
        );
        for secret in [new.as_str(), old] {
            assert!(signature::verify_standard(
                secret,
                "abc",
                1_700_000_000,
                body.as_bytes(),
                header(HEADER_STANDARD_SIGNATURE)
            ));
        }
        assert_eq!(header("content-type"), "application/json");
        assert_eq!(message_id(body, "whd_x"), "abc");
        assert_eq!(message_id("{}", "whd_x"), "whd_x");
    }
}
