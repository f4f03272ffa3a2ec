//! One error type for every response, in the contract's shape:
//! `{"error": {"code", "description", "field"?}}`. Mapped on purpose: a domain
//! rejection is a 4xx with its code; contention is a 409; an unreachable
//! database is a 503; a value the database refuses (a NUL character in
//! text) is a 400, never a 503; too much work at once is a 429 with
//! `Retry-After`; anything unexpected is an opaque 500, logged once with its
//! cause chain.

use std::time::Duration;

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use paystream_domain::DomainError;
use serde_json::json;

use paystream_store::runner::CommandError;
use paystream_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
    pub field: Option<String>,
    /// Sent as `Retry-After` (whole seconds, rounded up).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR", description)
    }

    pub fn unauthorized(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_ERROR",
            description,
        )
    }

    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND_ERROR", description)
    }

    pub fn conflict(description: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT_ERROR", description)
    }

    pub fn idempotency(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_ERROR",
            description,
        )
    }

    /// Too many requests of this kind at once: a 429 `RATE_LIMITED` that
    /// tells the client to retry after `retry_after`.
    pub fn rate_limited(description: impl Into<String>, retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", description)
        }
    }

    /// Something broke on our side: the client learns nothing of it, the log does.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(cause = %cause_chain(cause), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SERVER_ERROR",
            "The server could not complete the request",
        )
    }

    /// The service cannot serve right now (database down, …): retry later.
    pub fn unavailable(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::warn!(cause = %cause_chain(cause), "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "The service is temporarily unavailable; retry later",
        )
    }

    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({ "code": self.code, "description": self.description });
        if let Some(field) = &self.field {
            error["field"] = json!(field);
        }
        json!({ "error": error })
    }
}

/// `error: its source: its source …`, for the log.
fn cause_chain(cause: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = cause.to_string();
    let mut source = cause.source();
    while let Some(next) = source {
        chain.push_str(": ");
        chain.push_str(&next.to_string());
        source = next.source();
    }
    chain
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(retry_after) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, retry_after_seconds(retry_after));
        }
        response
    }
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
fn retry_after_seconds(after: Duration) -> HeaderValue {
    let whole = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    HeaderValue::from(whole.max(1))
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let status = match error.code() {
            "NOT_FOUND_ERROR" => StatusCode::NOT_FOUND,
            "CONFLICT_ERROR" => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut api = Self::new(status, error.code(), error.to_string());
        api.field = error.field().map(str::to_string);
        api
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::Unavailable(_) => Self::unavailable(&error),
            StoreError::Conflict { .. } => {
                Self::conflict("The object was changed concurrently; retry the request")
            }
            // Inputs are validated before they reach SQL; one that slipped
            // through is still the client's bad input, and a gap to close.
            StoreError::InvalidValue(_) => {
                tracing::warn!(cause = %cause_chain(&error), "the database refused a request value");
                Self::bad_request(
                    "The request holds a value that cannot be stored or looked up (such as a NUL character)",
                )
            }
            _ => Self::internal(&error),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Rejected(domain) => domain.into(),
            CommandError::Contention(_) => {
                Self::conflict("The object is being changed by other requests; retry the request")
            }
            CommandError::Store(store) => store.into(),
            corrupt @ CommandError::Corrupt { .. } => Self::internal(&corrupt),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from(error).into()
    }
}

/// Our JSON answers for an unknown path (404) and a known path with another
/// method (405), instead of axum's empty bodies. Every service ends its
/// router with this.
pub fn with_fallbacks<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
) -> axum::Router<S> {
    router
        .fallback(|| async { ApiError::not_found("No such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "BAD_REQUEST_ERROR",
                "This endpoint does not accept that method",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_is_a_429_with_retry_after() {
        let error = ApiError::rate_limited("Slow down", Duration::from_millis(1200));
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            error.body(),
            json!({"error": {"code": "RATE_LIMITED", "description": "Slow down"}})
        );
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "2");

        let soon = ApiError::rate_limited("Slow down", Duration::ZERO).into_response();
        assert_eq!(soon.headers()[RETRY_AFTER], "1");
        let later = ApiError::rate_limited("Slow down", Duration::from_secs(30)).into_response();
        assert_eq!(later.headers()[RETRY_AFTER], "30");
    }

    #[test]
    fn other_errors_have_no_retry_after() {
        let response = ApiError::unauthorized("No").into_response();
        assert!(response.headers().get(RETRY_AFTER).is_none());
    }
}
