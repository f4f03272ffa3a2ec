//! Who is calling. Merchants authenticate with `X-Api-Key` + `X-Api-Secret`
//! or HTTP Basic `key:secret`; the checkout's public endpoints with the key
//! alone. Secrets are stored as SHA-256 hex and compared in constant time.
//! A suspended merchant gets a 401 that says so.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use paystream_domain::merchant::Merchant;
use paystream_domain::MerchantId;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};

use super::error::ApiError;
use crate::startup::AppState;

/// A merchant that proved it holds its key and secret.
#[derive(Debug, Clone, Copy)]
pub struct AuthenticatedMerchant {
    pub merchant_id: MerchantId,
}

/// A merchant named by its (publishable) key alone: checkout endpoints.
#[derive(Debug, Clone, Copy)]
pub struct PublishableKey {
    pub merchant_id: MerchantId,
}

pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// (key, secret) from the headers or HTTP Basic.
fn credentials(parts: &Parts) -> Option<(String, Option<String>)> {
    if let Some(key) = header(parts, "x-api-key") {
        return Some((
            key.to_string(),
            header(parts, "x-api-secret").map(str::to_string),
        ));
    }
    let basic = header(parts, AUTHORIZATION.as_str())?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (key, secret) = text.split_once(':')?;
    Some((key.to_string(), Some(secret.to_string())))
}

struct Credential {
    merchant_id: MerchantId,
    secret_hash: String,
    active: bool,
}

async fn credential(pool: &PgPool, api_key: &str) -> Result<Option<Credential>, ApiError> {
    if api_key.len() > 200 {
        return Ok(None);
    }
    let row = sqlx::query(
        "select merchant_id, api_secret_hash, active from merchant_credentials where api_key = $1",
    )
    .bind(api_key)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(Credential {
            merchant_id: MerchantId::from(row.try_get::<uuid::Uuid, _>("merchant_id")?),
            secret_hash: row.try_get("api_secret_hash")?,
            active: row.try_get("active")?,
        })
    })
    .transpose()
    .map_err(|error: sqlx::Error| ApiError::from(error))
}

fn suspended() -> ApiError {
    ApiError::unauthorized("Merchant account is suspended")
}

impl FromRequestParts<AppState> for AuthenticatedMerchant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some((key, Some(secret))) = credentials(parts) else {
            return Err(ApiError::unauthorized(
                "Missing API credentials: send X-Api-Key and X-Api-Secret, or HTTP Basic key:secret",
            ));
        };
        let invalid = || ApiError::unauthorized("Invalid API credentials");
        let credential = credential(state.store.pool(), &key)
            .await?
            .ok_or_else(invalid)?;
        if !constant_time_eq(
            secret_hash(&secret).as_bytes(),
            credential.secret_hash.as_bytes(),
        ) {
            return Err(invalid());
        }
        if !credential.active {
            return Err(suspended());
        }
        Ok(Self {
            merchant_id: credential.merchant_id,
        })
    }
}

impl FromRequestParts<AppState> for PublishableKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some((key, _)) = credentials(parts) else {
            return Err(ApiError::unauthorized("Missing API key: send X-Api-Key"));
        };
        let credential = credential(state.store.pool(), &key)
            .await?
            .ok_or_else(|| ApiError::unauthorized("Invalid API key"))?;
        if !credential.active {
            return Err(suspended());
        }
        Ok(Self {
            merchant_id: credential.merchant_id,
        })
    }
}

/// Writes a merchant's credentials as its events left them. Idempotent: run
/// after every merchant command, and at start for seeded merchants.
pub async fn sync_credentials(pool: &PgPool, merchant: &Merchant) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into merchant_credentials (merchant_id, api_key, api_secret_hash, active, updated_at) \
         values ($1, $2, $3, $4, now()) \
         on conflict (merchant_id) do update set api_key = excluded.api_key, \
           api_secret_hash = excluded.api_secret_hash, active = excluded.active, updated_at = now()",
    )
    .bind(uuid::Uuid::from(merchant.merchant_id))
    .bind(&merchant.api_key)
    .bind(&merchant.api_secret_hash)
    .bind(merchant.is_active())
    .execute(pool)
    .await?;
    Ok(())
}
