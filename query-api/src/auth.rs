//! Who may read what.
//!
//! * [`MerchantReader`]: a merchant's own data. API key and secret (as on
//!   the command side), or the session of one of the merchant's dashboard
//!   users (`Authorization: Bearer <token>` or the session cookie).
//! * [`Overseer`]: the session of a staff user or an auditor (trial balance,
//!   audit, every merchant).
//! * [`HistoryReader`]: per-object history and `as_of` reads: a merchant (its
//!   own objects), or an auditor or staff user (any object).

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use paystream_domain::MerchantId;
use paystream_kit::http::auth::AuthenticatedMerchant;
use paystream_kit::http::error::ApiError;
use paystream_kit::http::limits::RateLimits;
use paystream_kit::http::session::{token_from, Role, Session};
use sqlx::PgPool;

/// A session token was sent (and API credentials were not).
fn sends_session(parts: &Parts) -> bool {
    !parts.headers.contains_key("x-api-key")
        && !basic_auth(parts)
        && token_from(&parts.headers).is_some()
}

fn basic_auth(parts: &Parts) -> bool {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .get(..6)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("basic "))
        })
}

/// A merchant reading its own data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MerchantReader {
    pub merchant_id: MerchantId,
}

impl<S: Send + Sync> FromRequestParts<S> for MerchantReader
where
    PgPool: FromRef<S>,
    RateLimits: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if sends_session(parts) {
            let session = Session::from_request_parts(parts, state).await?;
            return match (session.role, session.merchant_id) {
                (Role::Merchant, Some(merchant_id)) => Ok(Self { merchant_id }),
                _ => Err(ApiError::unauthorized(
                    "This endpoint reads one merchant's data: use the merchant's API credentials or a merchant session",
                )),
            };
        }
        let merchant = AuthenticatedMerchant::from_request_parts(parts, state).await?;
        Ok(Self {
            merchant_id: merchant.merchant_id,
        })
    }
}

/// A staff user or an auditor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overseer(pub Session);

impl<S: Send + Sync> FromRequestParts<S> for Overseer
where
    PgPool: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let session = Session::from_request_parts(parts, state).await?;
        match session.role {
            Role::Staff | Role::Auditor => Ok(Self(session)),
            Role::Merchant => Err(ApiError::unauthorized("Staff or auditor access required")),
        }
    }
}

/// Reads of object history: a merchant sees only its own objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryReader {
    Merchant(MerchantId),
    /// Staff or auditor: every merchant's objects.
    Overseer,
}

impl HistoryReader {
    /// Whether this reader may see an object of `owner`.
    pub fn may_read(&self, owner: MerchantId) -> bool {
        match self {
            HistoryReader::Merchant(merchant) => *merchant == owner,
            HistoryReader::Overseer => true,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for HistoryReader
where
    PgPool: FromRef<S>,
    RateLimits: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if sends_session(parts) {
            let session = Session::from_request_parts(parts, state).await?;
            return match (session.role, session.merchant_id) {
                (Role::Merchant, Some(merchant_id)) => Ok(Self::Merchant(merchant_id)),
                (Role::Staff | Role::Auditor, _) => Ok(Self::Overseer),
                (Role::Merchant, None) => Err(ApiError::unauthorized("Invalid session")),
            };
        }
        let merchant = AuthenticatedMerchant::from_request_parts(parts, state).await?;
        Ok(Self::Merchant(merchant.merchant_id))
    }
}
