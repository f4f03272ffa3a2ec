//! `Idempotency-Key` (invariant 12). The key is claimed before any write:
//!
//! * same key, same request → the stored status and body, and no new events;
//! * same key, another request → `IDEMPOTENCY_ERROR`;
//! * concurrent duplicates → one runs; the others wait (bounded) for its
//!   answer and replay it.
//!
//! Keys are per merchant and live 24 hours in PostgreSQL, so they survive
//! restarts. A request that failed on our side (5xx) releases its key so the
//! client can retry; a 4xx answer is kept and replayed like a success.

use std::future::Future;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use paystream_domain::MerchantId;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};

use super::error::ApiError;
use super::response::CommandResponse;
use crate::store::Position;

pub const HEADER: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 255;
const LIFETIME_HOURS: i32 = 24;
/// How long a duplicate waits for the first request's answer.
const WAIT_FOR_ANSWER: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// The key from the headers, validated; `None` when absent.
pub fn key_from(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= MAX_KEY_LEN)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
            ))
            .with_field("Idempotency-Key")
        })?;
    Ok(Some(key.to_string()))
}

/// What makes two requests "the same": method, path and exact body bytes.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hasher.finalize().to_vec()
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
