//! Dashboard sessions: passwords, tokens, the session cookie and the
//! [`Session`] / [`StaffSession`] extractors.
//!
//! * Passwords are argon2id PHC strings (`users.password_hash`). Hashing and
//!   verifying are CPU- and memory-heavy: they run on the blocking pool, at
//!   most one per core at a time, each in a reused buffer; a few more wait
//!   their turn, and the rest get a 429 `RATE_LIMITED` (see
//!   [`super::password`]).
//! * A session token is 32 random bytes from the OS, base64url without
//!   padding, shown once at login. Only its SHA-256 is stored
//!   (`sessions.token_hash`). Sessions last [`LIFETIME`]; an expired one is
//!   refused and its row deleted on the spot.
//! * A request names its session with `Authorization: Bearer <token>` or the
//!   [`COOKIE_NAME`] cookie (the header wins when both are sent).
//! * A merchant user's session stops working while its merchant is
//!   suspended ("Merchant account is suspended", as for API keys).
//! * The contract's error codes have no 403: a session without the needed
//!   role gets a 401 `AUTHENTICATION_ERROR` ("Staff access required").

use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use chrono::{DateTime, Utc};
use paystream_domain::MerchantId;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use utoipa::ToSchema;

use super::error::ApiError;
use super::password::{self, GATE};

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "paystream_session";

/// How long a session lasts from login.
pub const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// Tokens are 43 characters; anything much longer is not worth a query.
const TOKEN_MAX_LEN: usize = 128;

/// An argon2id hash (default parameters, like real ones) of a password no one
/// knows: verified against when the e-mail is unknown, so a wrong e-mail
/// costs the same time as a wrong password.
pub(crate) const DUMMY_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$aZden450jZuaXAc3qkdpbQ$cbl30VmP0bN121YvNOGPmc6lByhUHjZzv2Ho5/8H4w0";

/// What a user may do: `merchant` (its own merchant's data), `staff`
/// (merchants, audits) or `auditor` (read-only audits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Merchant,
    Staff,
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Merchant => "merchant",
            Self::Staff => "staff",
            Self::Auditor => "auditor",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "merchant" => Some(Self::Merchant),
            "staff" => Some(Self::Staff),
            "auditor" => Some(Self::Auditor),
            _ => None,
        }
    }
}

/// A logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub email: String,
    pub role: Role,
    /// Set for (and only for) merchant users.
    pub merchant_id: Option<MerchantId>,
}

/// A logged-in staff user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffSession(pub Session);

impl StaffSession {
    /// The actor recorded on the events this user's commands append.
    pub fn actor(&self) -> String {
        format!("staff:{}", self.0.email)
    }
}

/// E-mail addresses are compared trimmed and lowercased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A fresh session token: 32 random bytes from the OS, base64url, no padding.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a token: its SHA-256.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The session token a request carries: `Authorization: Bearer <token>`, else
/// the session cookie.
pub fn token_from(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    if let Some(token) = bearer.filter(|token| !token.is_empty()) {
        return Some(token.to_string());
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name.trim() == COOKIE_NAME).then(|| value.trim().trim_matches('"'))
        })
        .filter(|token| !token.is_empty())
        .map(str::to_string)
}

/// `Set-Cookie` for a new session.
pub fn session_cookie(token: &str, secure: bool) -> HeaderValue {
    cookie(token, LIFETIME.as_secs(), secure)
}

/// `Set-Cookie` that removes the session cookie.
pub fn expired_cookie(secure: bool) -> HeaderValue {
    cookie("", 0, secure)
}

fn cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    );
    // Tokens are base64url: always a valid header value.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The argon2id PHC string of `password`, with a fresh random salt (429
/// when too many hashes are already running or waiting).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    GATE.run(move |memory| password::hash_into(memory, password.as_bytes()))
        .await?
        .map_err(|error| ApiError::internal(&error))
}

/// Whether `password` matches `hash`. Without a hash (unknown user) it
/// verifies against a dummy hash anyway and answers false, so both failures
/// take the same time (429 when too many hashes are already running or
/// waiting).
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool, ApiError> {
    GATE.run(move |memory| {
        let known = hash.is_some();
        let stored = hash.as_deref().unwrap_or(DUMMY_PASSWORD_HASH);
        match password::verify_in(memory, password.as_bytes(), stored) {
            Ok(matches) => known && matches,
            Err(error) => {
                tracing::error!(%error, "a stored password hash cannot be checked");
                false
            }
        }
    })
    .await
}

/// Opens a session for a user; returns the token (to show once) and its expiry.
pub async fn start(
    pool: &PgPool,
    email: &str,
    role: Role,
    merchant_id: Option<MerchantId>,
) -> Result<(String, DateTime<Utc>), ApiError> {
    let token = new_token();
    let lifetime = chrono::Duration::from_std(LIFETIME).map_err(|e| ApiError::internal(&e))?;
    // Housekeeping: this user's expired sessions go now.
    sqlx::query("delete from sessions where email = $1 and expires_at <= now()")
        .bind(email)
        .execute(pool)
        .await?;
    let expires_at: DateTime<Utc> = sqlx::query_scalar(
        "insert into sessions (token_hash, email, role, merchant_id, created_at, expires_at) \
         values ($1, $2, $3, $4, now(), now() + $5) returning expires_at",
    )
    .bind(token_hash(&token))
    .bind(email)
    .bind(role.as_str())
    .bind(merchant_id.map(uuid::Uuid::from))
    .bind(lifetime)
    .fetch_one(pool)
    .await?;
    Ok((token, expires_at))
}

/// Ends the session; false when there was no live session with this token.
pub async fn end(pool: &PgPool, token: &str) -> Result<bool, ApiError> {
    if token.len() > TOKEN_MAX_LEN {
        return Ok(false);
    }
    let live: Option<bool> = sqlx::query_scalar(
        "delete from sessions where token_hash = $1 returning expires_at > now()",
    )
    .bind(token_hash(token))
    .fetch_optional(pool)
    .await?;
    Ok(live == Some(true))
}

/// Ends every session of a merchant's users (on suspension).
pub async fn end_all_of_merchant(pool: &PgPool, merchant: MerchantId) -> Result<(), ApiError> {
    sqlx::query("delete from sessions where merchant_id = $1")
        .bind(uuid::Uuid::from(merchant))
        .execute(pool)
        .await?;
    Ok(())
}

fn missing_session() -> ApiError {
    ApiError::unauthorized(
        "Missing session: log in, then send Authorization: Bearer <token> or the session cookie",
    )
}

fn invalid_session() -> ApiError {
    ApiError::unauthorized("Invalid or expired session")
}

/// The live session behind `token`.
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Session, ApiError> {
    if token.len() > TOKEN_MAX_LEN {
        return Err(invalid_session());
    }
    let hash = token_hash(token);
    let row = sqlx::query(
        "select s.email, s.role, s.merchant_id, s.expires_at > now() as live, c.active \
         from sessions s left join merchant_credentials c on c.merchant_id = s.merchant_id \
         where s.token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(pool)
    .await?
    .ok_or_else(invalid_session)?;
    if !row.try_get::<bool, _>("live")? {
        sqlx::query("delete from sessions where token_hash = $1 and expires_at <= now()")
            .bind(&hash)
            .execute(pool)
            .await?;
        return Err(invalid_session());
    }
    let role: String = row.try_get("role")?;
    let role = Role::parse(&role).ok_or_else(|| {
        ApiError::internal(&std::io::Error::other(format!(
            "session with unknown role {role:?}"
        )))
    })?;
    let merchant_id = row
        .try_get::<Option<uuid::Uuid>, _>("merchant_id")?
        .map(MerchantId::from);
    if role == Role::Merchant {
        match row.try_get::<Option<bool>, _>("active")? {
            Some(true) => {}
            Some(false) => return Err(ApiError::unauthorized("Merchant account is suspended")),
            None => return Err(invalid_session()),
        }
    }
    Ok(Session {
        email: row.try_get("email")?,
        role,
        merchant_id,
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Session
where
    PgPool: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let token = token_from(&parts.headers).ok_or_else(missing_session)?;
        authenticate(&PgPool::from_ref(state), &token).await
    }
}

impl<S: Send + Sync> FromRequestParts<S> for StaffSession
where
    PgPool: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let session = Session::from_request_parts(parts, state).await?;
        if session.role != Role::Staff {
            return Err(ApiError::unauthorized("Staff access required"));
        }
        Ok(Self(session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn tokens_are_32_random_bytes_in_base64url() {
        let token = new_token();
        assert_eq!(token.len(), 43);
        assert!(token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(token, new_token());
        assert_eq!(token_hash(&token).len(), 32);
    }

    #[test]
    fn token_from_bearer_then_cookie() {
        assert_eq!(
            token_from(&headers(&[("authorization", "Bearer abc")])).as_deref(),
            Some("abc")
        );
        assert_eq!(
            token_from(&headers(&[("authorization", "bearer  abc ")])).as_deref(),
            Some("abc")
        );
        assert_eq!(
            token_from(&headers(&[("cookie", "a=1; paystream_session=xyz; b=2")])).as_deref(),
            Some("xyz")
        );
        assert_eq!(
            token_from(&headers(&[
                ("authorization", "Bearer abc"),
                ("cookie", "paystream_session=xyz")
            ]))
            .as_deref(),
            Some("abc")
        );
        // HTTP Basic (API keys) is not a session; the cookie still counts.
        assert_eq!(
            token_from(&headers(&[
                ("authorization", "Basic a2V5OnNlY3JldA=="),
                ("cookie", "paystream_session=xyz")
            ]))
            .as_deref(),
            Some("xyz")
        );
        assert_eq!(token_from(&headers(&[("authorization", "Bearer ")])), None);
        assert_eq!(
            token_from(&headers(&[("cookie", "paystream_session=")])),
            None
        );
        assert_eq!(token_from(&headers(&[("cookie", "other=1")])), None);
    }

    #[test]
    fn cookies() {
        assert_eq!(
            session_cookie("tok", false),
            "paystream_session=tok; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200"
        );
        assert_eq!(
            session_cookie("tok", true),
            "paystream_session=tok; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200; Secure"
        );
        assert_eq!(
            expired_cookie(false),
            "paystream_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
        );
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::Merchant, Role::Staff, Role::Auditor] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
