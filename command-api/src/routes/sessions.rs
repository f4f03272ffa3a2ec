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
use paystream_kit::http::session::{self, Role};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
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
        (status = 429, description = "`RATE_LIMITED`: too many password checks at once; retry after `Retry-After` seconds", body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let pool = state.store.pool();
    let email = session::normalize_email(&body.email);
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
        return Err(invalid_login());
    };
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
