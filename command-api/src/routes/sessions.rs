//! `POST /api/v1/auth/login` and `POST /api/v1/auth/logout`: dashboard
//! sessions for merchant users, staff and auditors (see [`paystream_kit::http::session`]).
//!
//! Login answers `{token, role, merchant_id?, expires_at}` and sets the
//! `paystream_session` cookie (HttpOnly, SameSite=Strict, 12 h; Secure in
//! production). A wrong e-mail and a wrong password get the same 401 after
//! the same argon2 work. A suspended merchant's user is refused, but only
//! once the password is right (suspension is not an oracle for strangers).
//! Password checks are bounded (one per core, a short queue): a login beyond
//! that gets a 429 `RATE_LIMITED` with `Retry-After`, not more memory.

use std::fmt;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use paystream_domain::MerchantId;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use crate::config::Profile;
use crate::startup::AppState;
use paystream_domain::api::{self as views, ErrorBody};
use paystream_kit::http::error::ApiError;
use paystream_kit::http::json::{ApiJson, NoBody};
use paystream_kit::http::limits::{Client, RateArgs};
use paystream_kit::http::session::{self, Role, StaffSession};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/unlock", post(unlock))
}

/// How failed logins lock an account: after `free_failures`, each failure
/// locks it for 1 s, 2 s, 4 s, … up to `max`. Kept in `login_failures`, so
/// every instance sees the same lock.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub enabled: bool,
    pub free_failures: u32,
    pub max: std::time::Duration,
}

impl From<&RateArgs> for LockoutPolicy {
    fn from(args: &RateArgs) -> Self {
        Self {
            enabled: args.rate_limits,
            free_failures: args.rate_login_free_failures,
            max: std::time::Duration::from_secs(args.rate_login_lockout_max),
        }
    }
}

impl LockoutPolicy {
    /// How long the `failures`-th failure locks the account.
    pub fn lock_for(&self, failures: u32) -> std::time::Duration {
        let Some(beyond) = failures.checked_sub(self.free_failures).filter(|n| *n > 0) else {
            return std::time::Duration::ZERO;
        };
        let seconds = 1u64.checked_shl(beyond - 1).unwrap_or(u64::MAX);
        std::time::Duration::from_secs(seconds).min(self.max)
    }

    /// A 429 while the account is locked (before any password is checked).
    async fn check(&self, pool: &sqlx::PgPool, email: &str) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let wait: Option<f64> = sqlx::query_scalar(
            "select extract(epoch from locked_until - now())::float8 from login_failures \
             where email = $1 and locked_until > now()",
        )
        .bind(email)
        .fetch_optional(pool)
        .await?;
        match wait {
            Some(seconds) => Err(ApiError::rate_limited(
                "Too many failed logins for this account; retry later, or ask staff to unlock it",
                std::time::Duration::from_secs_f64(seconds.max(0.0)),
            )),
            None => Ok(()),
        }
    }

    async fn failed(&self, pool: &sqlx::PgPool, email: &str) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let failures: i32 = sqlx::query_scalar(
            "insert into login_failures (email, failures, last_failure_at) values ($1, 1, now()) \
             on conflict (email) do update set failures = login_failures.failures + 1, \
               last_failure_at = now() \
             returning failures",
        )
        .bind(email)
        .fetch_one(pool)
        .await?;
        let lock = self.lock_for(u32::try_from(failures).unwrap_or(u32::MAX));
        if !lock.is_zero() {
            sqlx::query("update login_failures set locked_until = now() + $2 where email = $1")
                .bind(email)
                .bind(chrono::Duration::from_std(lock).unwrap_or(chrono::Duration::MAX))
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    async fn succeeded(&self, pool: &sqlx::PgPool, email: &str) -> Result<(), ApiError> {
        sqlx::query("delete from login_failures where email = $1")
            .bind(email)
            .execute(pool)
            .await?;
        Ok(())
    }
}

/// An account to unlock.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UnlockBody {
    #[schema(example = "test@example.com")]
    email: String,
}

/// What unlocking did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnlockView {
    pub email: String,
    /// Whether the account had failed logins on record (and was perhaps
    /// locked); false when there was nothing to lift.
    pub unlocked: bool,
}

/// Lift an account's login lock-out and forget its failed logins (staff).
#[utoipa::path(
    post,
    path = "/api/v1/auth/unlock",
    tag = "auth",
    request_body = UnlockBody,
    security(("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "Unlocked (or nothing to lift)", body = UnlockView),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No session, or not a staff session", body = ErrorBody),
    )
)]
pub async fn unlock(
    State(state): State<AppState>,
    _staff: StaffSession,
    ApiJson(body): ApiJson<UnlockBody>,
) -> Result<Json<UnlockView>, ApiError> {
    let email = session::normalize_email(&body.email);
    let lifted = sqlx::query("delete from login_failures where email = $1")
        .bind(&email)
        .execute(state.store.pool())
        .await?
        .rows_affected();
    Ok(Json(UnlockView {
        email,
        unlocked: lifted > 0,
    }))
}

/// A dashboard login. The e-mail is case-insensitive.
#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    #[schema(example = "test@example.com")]
    email: String,
    #[schema(example = "test123")]
    password: String,
}

impl fmt::Debug for LoginBody {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("LoginBody")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A new session. The token is shown only here; it is also set as the
/// `paystream_session` cookie.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LoginView {
    /// Send as `Authorization: Bearer <token>` (or rely on the cookie).
    #[schema(example = "q3Jx0bX2m5K9vYw1c8LzT4nR6dHs7fUa2eGp0iVo3kM")]
    pub token: String,
    pub role: Role,
    /// The user's merchant; only for role `merchant`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<uuid::Uuid>,
    /// RFC 3339; 12 hours after login.
    pub expires_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageView {
    #[schema(example = "Logged out")]
    pub message: String,
}

fn invalid_login() -> ApiError {
    ApiError::unauthorized("Invalid email or password")
}

/// Log in to the dashboard.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in; `Set-Cookie: paystream_session=…; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200` (plus `Secure` in production)", body = LoginView),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "\"Invalid email or password\", or \"Merchant account is suspended\"", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED`: too many attempts from this address, the account locked after failed logins, or too many password checks at once; retry after `Retry-After` seconds", body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let pool = state.store.pool();
    client.limits.login_attempt(client.address)?;
    let email = session::normalize_email(&body.email);
    let policy = &LockoutPolicy::from(client.limits.args());
    policy.check(pool, &email).await?;
    let user = sqlx::query("select password_hash, role, merchant_id from users where email = $1")
        .bind(&email)
        .fetch_optional(pool)
        .await?;
    let stored_hash = user
        .as_ref()
        .map(|row| row.try_get::<String, _>("password_hash"))
        .transpose()?;
    // Runs argon2 whether or not the user exists.
    let verified = session::verify_password(body.password, stored_hash).await?;
    let (Some(user), true) = (user, verified) else {
        policy.failed(pool, &email).await?;
        return Err(invalid_login());
    };
    policy.succeeded(pool, &email).await?;
    let role: String = user.try_get("role")?;
    let role = Role::parse(&role).ok_or_else(|| {
        ApiError::internal(&std::io::Error::other(format!(
            "user with unknown role {role:?}"
        )))
    })?;
    let merchant_id = user
        .try_get::<Option<uuid::Uuid>, _>("merchant_id")?
        .map(MerchantId::from);
    if let (Role::Merchant, Some(merchant)) = (role, merchant_id) {
        let active: Option<bool> =
            sqlx::query_scalar("select active from merchant_credentials where merchant_id = $1")
                .bind(uuid::Uuid::from(merchant))
                .fetch_optional(pool)
                .await?;
        match active {
            Some(true) => {}
            Some(false) => return Err(ApiError::unauthorized("Merchant account is suspended")),
            // Its merchant was never (or not yet) registered.
            None => return Err(invalid_login()),
        }
    }
    let (token, expires_at) = session::start(pool, &email, role, merchant_id).await?;
    let cookie = session::session_cookie(&token, state.profile == Profile::Production);
    let view = LoginView {
        token,
        role,
        merchant_id: merchant_id.map(uuid::Uuid::from),
        expires_at: views::timestamp(expires_at),
    };
    let mut response = (StatusCode::OK, Json(view)).into_response();
    let headers = response.headers_mut();
    headers.insert(SET_COOKIE, cookie);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// End the session (named by the bearer token or the cookie).
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    security(("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "Logged out; the cookie is cleared", body = MessageView),
        (status = 400, description = "A body that is not empty and not a JSON object", body = ErrorBody),
        (status = 401, description = "No session, or not a live one", body = ErrorBody),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    _: NoBody,
) -> Result<Response, ApiError> {
    let token = session::token_from(&headers).ok_or_else(|| {
        ApiError::unauthorized(
            "Missing session: send Authorization: Bearer <token> or the session cookie",
        )
    })?;
    if !session::end(state.store.pool(), &token).await? {
        return Err(ApiError::unauthorized("Invalid or expired session"));
    }
    let view = MessageView {
        message: "Logged out".into(),
    };
    let mut response = (StatusCode::OK, Json(view)).into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        session::expired_cookie(state.profile == Profile::Production),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handlers_document_themselves() {
        use utoipa::OpenApi;

        #[derive(OpenApi)]
        #[openapi(paths(login, logout))]
        struct Doc;

        let doc = serde_json::to_value(Doc::openapi()).unwrap();
        assert!(doc["paths"]["/api/v1/auth/login"]["post"].is_object());
        assert!(doc["paths"]["/api/v1/auth/logout"]["post"].is_object());
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["LoginBody"]["required"],
            serde_json::json!(["email", "password"])
        );
        for schema in ["LoginView", "MessageView", "Role", "ErrorBody"] {
            assert!(schemas[schema].is_object(), "{schema}: {schemas}");
        }
    }

    #[test]
    fn login_bodies_never_print_the_password() {
        let body: LoginBody =
            serde_json::from_str(r#"{"email": "a@example.com", "password": "hunter22"}"#).unwrap();
        assert!(!format!("{body:?}").contains("hunter22"));
    }
}
