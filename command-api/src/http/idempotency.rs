//! `Idempotency-Key` (invariant 12). The key is claimed before any write:
//!
//! * same key, same request → the stored status and body, and no new events;
//! * same key, another request → `IDEMPOTENCY_ERROR`;
//! * concurrent duplicates → one runs; the others wait (bounded) for its
//!   answer and replay it.
//!
//! Keys are per merchant and live 24 hours in PostgreSQL, so they survive
//! restarts. A request that failed on our side (5xx) releases its key so the
//! client can retry; a 4xx answer is kept and replayed like a success. An
//! empty header counts as absent (clients of the original gateway send one).
//!
//! The merchant `POST`s that create or change something go through
//! [`Request`]: orders, payments (both), capture, refunds and webhook
//! retries. (Not yet the webhook test and recover; never the POSTs whose
//! answer holds a secret, which a replay would have to store.) The events an
//! accepted keyed request appends record it ([`record`]): the key's hash and
//! the request's hash, so the history shows which request caused them.

use std::future::Future;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use paystream_domain::MerchantId;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};

use super::response::CommandResponse;
use paystream_kit::http::error::ApiError;
use paystream_store::{EventMetadata, IdempotencyRecord, Position};

pub const HEADER: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 255;
const LIFETIME_HOURS: i32 = 24;
/// How long a duplicate waits for the first request's answer.
const WAIT_FOR_ANSWER: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// The key from the headers, validated; `None` when absent, empty or only
/// blanks.
pub fn key_from(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        ))
        .with_field("Idempotency-Key")
    };
    let key = value.to_str().map_err(|_| bad())?.trim();
    if key.is_empty() {
        return Ok(None);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(bad());
    }
    Ok(Some(key.to_string()))
}

/// What makes two requests "the same": method, path and body bytes, except
/// that a card's number counts only by its last 4 digits and its CVV not at
/// all ([`identifying_body`]). The fingerprint is kept for 24 hours and the
/// events' request hash for ever; a plain hash of a body holding a card
/// number and CVV could be reversed by trying the few billion candidates its
/// network, last 4 digits and the Luhn check leave (invariant 11). Two
/// cards with the same last 4 digits, expiry and holder under one key count
/// as the same request (the first answer is replayed, nothing is charged
/// twice); any other change of card is `IDEMPOTENCY_ERROR`.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    digest(method, path, &identifying_body(body)).to_vec()
}

fn digest(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hasher.finalize().into()
}

/// What the events of a request sent with `key` record of it; `None`
/// without a key.
///
/// * `key_hash`: SHA-256 of the key (trimmed, as compared).
/// * `request_hash`: the [`fingerprint`]: SHA-256 of `method`, NUL, `path`,
///   NUL, [`identifying_body`].
pub fn record(
    key: Option<&str>,
    method: &str,
    path: &str,
    body: &[u8],
) -> Option<IdempotencyRecord> {
    let key = key?;
    Some(IdempotencyRecord {
        key_hash: Sha256::digest(key.as_bytes()).into(),
        request_hash: digest(method, path, &identifying_body(body)),
    })
}

/// The body as a request is identified by: as sent, unless it has a `card`
/// object; then re-serialised as compact JSON with `card.number` replaced by
/// `card.last4` (its last 4 digits) and without `card.cvv`.
fn identifying_body(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let without_secrets = || {
        let mut value: Value = serde_json::from_slice(body).ok()?;
        let card = value.get_mut("card")?.as_object_mut()?;
        let last4 = card.remove("number").map(|number| {
            let digits: Vec<char> = number
                .as_str()
                .unwrap_or_default()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            digits[digits.len().saturating_sub(4)..]
                .iter()
                .collect::<String>()
        });
        card.remove("cvv");
        if let Some(last4) = last4 {
            card.insert("last4".into(), Value::String(last4));
        }
        serde_json::to_vec(&value).ok()
    };
    match without_secrets() {
        Some(body) => std::borrow::Cow::Owned(body),
        None => std::borrow::Cow::Borrowed(body),
    }
}

/// A writing request's `Idempotency-Key` (if any), what identifies the
/// request, and what its events record of it. Every keyed `POST` handler
/// builds one, stamps its events' metadata with it and runs through [`once`].
#[derive(Debug, Clone)]
pub struct Request {
    key: Option<String>,
    fingerprint: Vec<u8>,
    record: Option<IdempotencyRecord>,
}

impl Request {
    /// `POST path` with `body` (empty for body-less commands).
    pub fn post(headers: &HeaderMap, path: &str, body: &[u8]) -> Result<Self, ApiError> {
        let key = key_from(headers)?;
        Ok(Self {
            record: record(key.as_deref(), "POST", path, body),
            fingerprint: fingerprint("POST", path, body),
            key,
        })
    }

    /// `metadata`, recording this request when it carries a key.
    pub fn stamp(&self, metadata: EventMetadata) -> EventMetadata {
        EventMetadata {
            idempotency: self.record,
            ..metadata
        }
    }

    /// Runs `command` at most once per (merchant, key): see [`once`].
    pub async fn once<F, Fut>(
        self,
        pool: &PgPool,
        merchant: MerchantId,
        command: F,
    ) -> Result<CommandResponse, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CommandResponse, ApiError>>,
    {
        once(pool, merchant, self.key, self.fingerprint, command).await
    }
}

/// Runs `command` at most once per (merchant, key).
pub async fn once<F, Fut>(
    pool: &PgPool,
    merchant: MerchantId,
    key: Option<String>,
    fingerprint: Vec<u8>,
    command: F,
) -> Result<CommandResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<CommandResponse, ApiError>>,
{
    let Some(key) = key else {
        return command().await;
    };
    let merchant = uuid::Uuid::from(merchant);
    if !claim(pool, merchant, &key, &fingerprint).await? {
        return replay(pool, merchant, &key, &fingerprint).await;
    }
    let outcome = command().await;
    let stored = match &outcome {
        Ok(response) => Some((response.status, response.body.clone(), response.position)),
        Err(error) if error.status.is_client_error() => Some((error.status, error.body(), None)),
        Err(_) => None,
    };
    match stored {
        Some((status, body, position)) => {
            sqlx::query(
                "update idempotency_keys set status_code = $3, response_body = $4, event_position = $5 \
                 where merchant_id = $1 and key = $2",
            )
            .bind(merchant)
            .bind(&key)
            .bind(status.as_u16() as i16)
            .bind(body)
            .bind(position.map(|p| p.0))
            .execute(pool)
            .await?;
        }
        None => {
            sqlx::query("delete from idempotency_keys where merchant_id = $1 and key = $2")
                .bind(merchant)
                .bind(&key)
                .execute(pool)
                .await?;
        }
    }
    outcome
}

/// Inserts the key; false when it is already held (and not expired).
async fn claim(
    pool: &PgPool,
    merchant: uuid::Uuid,
    key: &str,
    fingerprint: &[u8],
) -> Result<bool, ApiError> {
    // An expired key is free again.
    sqlx::query(
        "delete from idempotency_keys where merchant_id = $1 and key = $2 and expires_at < now()",
    )
    .bind(merchant)
    .bind(key)
    .execute(pool)
    .await?;
    let inserted = sqlx::query(
        "insert into idempotency_keys (merchant_id, key, request_hash, expires_at) \
         values ($1, $2, $3, now() + make_interval(hours => $4)) \
         on conflict (merchant_id, key) do nothing",
    )
    .bind(merchant)
    .bind(key)
    .bind(fingerprint)
    .bind(LIFETIME_HOURS)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

async fn replay(
    pool: &PgPool,
    merchant: uuid::Uuid,
    key: &str,
    fingerprint: &[u8],
) -> Result<CommandResponse, ApiError> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_ANSWER;
    loop {
        let row = sqlx::query(
            "select request_hash, status_code, response_body, event_position \
             from idempotency_keys where merchant_id = $1 and key = $2",
        )
        .bind(merchant)
        .bind(key)
        .fetch_optional(pool)
        .await?;
        let Some(row) = row else {
            // The first request failed on our side and released the key.
            return Err(ApiError::conflict(
                "The first request with this Idempotency-Key failed; retry it",
            ));
        };
        let stored_hash: Vec<u8> = row.try_get("request_hash")?;
        if stored_hash != fingerprint {
            return Err(ApiError::idempotency(
                "This Idempotency-Key was already used with a different request",
            )
            .with_field("Idempotency-Key"));
        }
        let status: Option<i16> = row.try_get("status_code")?;
        if let Some(status) = status {
            let status =
                StatusCode::from_u16(status as u16).map_err(|error| ApiError::internal(&error))?;
            return Ok(CommandResponse {
                status,
                body: row.try_get("response_body")?,
                position: row
                    .try_get::<Option<i64>, _>("event_position")?
                    .map(Position),
                replayed: true,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::conflict(
                "A request with this Idempotency-Key is still in progress",
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn an_empty_key_counts_as_absent() {
        assert_eq!(key_from(&HeaderMap::new()).unwrap(), None);
        assert_eq!(key_from(&headers("")).unwrap(), None);
        assert_eq!(key_from(&headers("   ")).unwrap(), None);
        assert_eq!(key_from(&headers(" k-1 ")).unwrap().as_deref(), Some("k-1"));
        let long = "k".repeat(MAX_KEY_LEN + 1);
        let error = key_from(&headers(&long)).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("Idempotency-Key"));
        let mut opaque = HeaderMap::new();
        opaque.insert(HEADER, HeaderValue::from_bytes(b"k\xff").unwrap());
        assert!(key_from(&opaque).is_err());
    }

    #[test]
    fn the_record_hashes_the_key_and_the_request() {
        assert_eq!(record(None, "POST", "/api/v1/orders", b"{}"), None);
        let body = br#"{"amount": 5000}"#;
        let recorded = record(Some("k-1"), "POST", "/api/v1/orders", body).unwrap();
        assert_eq!(
            hex::encode(recorded.key_hash),
            // printf k-1 | sha256sum
            "7c35c5a1785d20704e44d5de4beb81c1fce91b6fe48ed7c3159af6f7f832078b"
        );
        // The request hash is the fingerprint.
        assert_eq!(
            recorded.request_hash.to_vec(),
            fingerprint("POST", "/api/v1/orders", body)
        );
        let other = record(
            Some("k-1"),
            "POST",
            "/api/v1/orders",
            br#"{"amount": 5001}"#,
        );
        assert_ne!(other.unwrap().request_hash, recorded.request_hash);
    }

    #[test]
    fn only_the_last_4_digits_of_a_card_identify_a_request() {
        let body = |number: &str, cvv: &str| {
            json!({"order_id": "order_A1b2C3d4E5f6G7h8", "method": "card",
                   "card": {"number": number, "cvv": cvv, "expiry_month": "12",
                            "expiry_year": "30", "holder_name": "A"}})
            .to_string()
        };
        let path = "/api/v1/payments";
        let hash = |number: &str, cvv: &str| {
            record(Some("k"), "POST", path, body(number, cvv).as_bytes())
                .unwrap()
                .request_hash
        };
        // Same last 4 digits, another number and CVV: nothing else counts.
        assert_eq!(
            hash("4111111111111111", "123"),
            hash("4000 0000-0000 1111", "999")
        );
        let identified = json!({"order_id": "order_A1b2C3d4E5f6G7h8", "method": "card",
                                "card": {"last4": "1111", "expiry_month": "12",
                                         "expiry_year": "30", "holder_name": "A"}});
        let expected = digest("POST", path, &serde_json::to_vec(&identified).unwrap());
        assert_eq!(hash("4111111111111111", "123"), expected);
        assert_eq!(
            fingerprint("POST", path, body("4111111111111111", "123").as_bytes()),
            expected.to_vec()
        );
        // Other last 4 digits: another request.
        assert_ne!(
            fingerprint("POST", path, body("4111111111111111", "123").as_bytes()),
            fingerprint("POST", path, body("4000000000000002", "123").as_bytes())
        );
    }
}
