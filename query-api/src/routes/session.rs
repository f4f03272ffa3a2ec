//! `GET /api/v1/auth/session`: who the session cookie (or bearer token)
//! belongs to, so that the dashboard shows each role its own pages. The
//! server checks the role on every call anyway.

use axum::routing::get;
use axum::{Json, Router};
use paystream_domain::api::{ErrorBody, SessionView};
use paystream_kit::http::error::ApiError;
use paystream_kit::http::session::Session;

use crate::startup::QueryState;

pub fn router() -> Router<QueryState> {
    Router::new().route("/api/v1/auth/session", get(session))
}

/// The logged-in user: email, role and (for a merchant user) merchant.
#[utoipa::path(
    get,
    path = "/api/v1/auth/session",
    tag = "sessions",
    security(("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The session's user", body = SessionView),
        (status = 401, description = "No session, or an expired one", body = ErrorBody),
    )
)]
pub async fn session(session: Session) -> Result<Json<SessionView>, ApiError> {
    Ok(Json(SessionView {
        email: session.email,
        role: session.role.as_str().to_owned(),
        merchant_id: session.merchant_id.map(Into::into),
    }))
}
