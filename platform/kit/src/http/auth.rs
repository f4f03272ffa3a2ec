//! Who is calling. Merchants authenticate with `X-Api-Key` + `X-Api-Secret`
//! or HTTP Basic `key:secret`, or act through a merchant user's session (the
//! dashboard); the checkout's public endpoints need no credentials, and
//! check a publishable key when one is sent. Secrets are stored as SHA-256 hex and compared in constant time.
//! A suspended merchant gets a 401 that says so. Lookups are cached briefly
//! (see [`CREDENTIAL_TTL`]).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use paystream_domain::merchant::Merchant;
use paystream_domain::MerchantId;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};

use super::error::ApiError;
use super::limits::RateLimits;

/// A merchant that proved it holds its key and secret, or one of its
/// dashboard users' sessions.
#[derive(Debug, Clone, Copy)]
pub struct AuthenticatedMerchant {
    pub merchant_id: MerchantId,
}

/// The checkout's publishable key, when it sent one: its merchant. The
/// checkout's endpoints need none (the order names its merchant, and the
/// original design's checkout sends no key); a key that is sent must be
/// known and active, and the handler checks it is the order's merchant's.
#[derive(Debug, Clone, Copy)]
pub struct PublishableKey {
    pub merchant_id: Option<MerchantId>,
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

#[derive(Debug, Clone)]
struct Credential {
    merchant_id: MerchantId,
    secret_hash: String,
    active: bool,
}

/// Credentials looked up recently, so that a request costs no query for
/// them. A change made in this process (rotation, suspension) forgets that
/// merchant's entries at once; one made by another process is seen within
/// [`CREDENTIAL_TTL`]. Bounded by [`CREDENTIAL_CACHE_MAX`] entries.
pub const CREDENTIAL_TTL: Duration = Duration::from_secs(2);
const CREDENTIAL_CACHE_MAX: usize = 10_000;

type CredentialCache = Mutex<HashMap<String, (Credential, Instant)>>;

fn cache() -> &'static CredentialCache {
    static CACHE: LazyLock<CredentialCache> = LazyLock::new(Default::default);
    &CACHE
}

fn cached(api_key: &str) -> Option<Credential> {
    let cache = cache()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .get(api_key)
        .filter(|(_, at)| at.elapsed() < CREDENTIAL_TTL)
        .map(|(credential, _)| credential.clone())
}

fn remember(api_key: &str, credential: &Credential) {
    let mut cache = cache()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if cache.len() >= CREDENTIAL_CACHE_MAX {
        cache.clear();
    }
    cache.insert(api_key.to_string(), (credential.clone(), Instant::now()));
}

/// (credentials remembered, most it keeps), for `/metrics`.
pub fn credential_cache_size() -> (usize, usize) {
    let entries = cache()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .len();
    (entries, CREDENTIAL_CACHE_MAX)
}

/// Forgets every key remembered for `merchant` (its old key after a
/// rotation, its state after a suspension); other merchants' stay.
fn forget(merchant: MerchantId) {
    cache()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .retain(|_, (credential, _)| credential.merchant_id != merchant);
}

async fn credential(pool: &PgPool, api_key: &str) -> Result<Option<Credential>, ApiError> {
    if api_key.len() > 200 {
        return Ok(None);
    }
    if let Some(credential) = cached(api_key) {
        return Ok(Some(credential));
    }
    let row = sqlx::query(
        "select merchant_id, api_secret_hash, active from merchant_credentials where api_key = $1",
    )
    .bind(api_key)
    .fetch_optional(pool)
    .await?;
    let credential = row
        .map(|row| {
            Ok(Credential {
                merchant_id: MerchantId::from(row.try_get::<uuid::Uuid, _>("merchant_id")?),
                secret_hash: row.try_get("api_secret_hash")?,
                active: row.try_get("active")?,
            })
        })
        .transpose()
        .map_err(|error: sqlx::Error| ApiError::from(error))?;
    if let Some(credential) = &credential {
        remember(api_key, credential);
    }
    Ok(credential)
}

pub fn suspended() -> ApiError {
    ApiError::unauthorized("Merchant account is suspended")
}

/// Whether `merchant` is registered and not suspended.
pub async fn merchant_active(pool: &PgPool, merchant: MerchantId) -> Result<bool, ApiError> {
    let active: Option<bool> =
        sqlx::query_scalar("select active from merchant_credentials where merchant_id = $1")
            .bind(uuid::Uuid::from(merchant))
            .fetch_optional(pool)
            .await?;
    Ok(active == Some(true))
}

impl<S: Send + Sync> FromRequestParts<S> for AuthenticatedMerchant
where
    PgPool: FromRef<S>,
    RateLimits: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // No API credentials but a session (the dashboard's cookie, or a
        // bearer token): a merchant user acts for its merchant. The cookie is
        // SameSite=Strict and commands take JSON, so another site cannot
        // make a shopper's browser send one.
        if credentials(parts).is_none() {
            if let Some(token) = super::session::token_from(&parts.headers) {
                let session =
                    super::session::authenticate(&PgPool::from_ref(state), &token).await?;
                return match (session.role, session.merchant_id) {
                    (super::session::Role::Merchant, Some(merchant_id)) => {
                        RateLimits::from_ref(state).merchant_request(merchant_id)?;
                        Ok(Self { merchant_id })
                    }
                    _ => Err(ApiError::unauthorized(
                        "This endpoint acts for one merchant: use the merchant's API credentials or a merchant session",
                    )),
                };
            }
        }
        let Some((key, Some(secret))) = credentials(parts) else {
            return Err(ApiError::unauthorized(
                "Missing API credentials: send X-Api-Key and X-Api-Secret, or HTTP Basic key:secret",
            ));
        };
        let limits = RateLimits::from_ref(state);
        let address = limits.client_address(parts);
        limits.secret_allowed(&key, address)?;
        let invalid = || {
            limits.secret_failed(&key, address);
            ApiError::unauthorized("Invalid API credentials")
        };
        let Some(credential) = credential(&PgPool::from_ref(state), &key).await? else {
            return Err(invalid());
        };
        if !constant_time_eq(
            secret_hash(&secret).as_bytes(),
            credential.secret_hash.as_bytes(),
        ) {
            return Err(invalid());
        }
        if !credential.active {
            return Err(suspended());
        }
        limits.merchant_request(credential.merchant_id)?;
        Ok(Self {
            merchant_id: credential.merchant_id,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PublishableKey
where
    PgPool: FromRef<S>,
    RateLimits: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Some((key, _)) = credentials(parts) else {
            return Ok(Self { merchant_id: None });
        };
        // Unknown keys count as wrong secrets: keys are not to be guessed.
        let limits = RateLimits::from_ref(state);
        let address = limits.client_address(parts);
        limits.secret_allowed(&key, address)?;
        let Some(credential) = credential(&PgPool::from_ref(state), &key).await? else {
            limits.secret_failed(&key, address);
            return Err(ApiError::unauthorized("Invalid API key"));
        };
        if !credential.active {
            return Err(suspended());
        }
        Ok(Self {
            merchant_id: Some(credential.merchant_id),
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
    forget(merchant.merchant_id);
    Ok(())
}
