//! One error type for every response, in the contract's shape:
//! `{"error": {"code", "description", "field"?}}`. Mapped on purpose: a domain
//! rejection is a 4xx with its code; contention is a 409; an unreachable
//! database is a 503; a value the database refuses (a NUL character in
//! text) is a 400, never a 503; anything unexpected is an opaque 500, logged
//! once with its cause chain.

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
    /// Sent as `Retry-After` (whole seconds, at least 1).
    pub retry_after: Option<std::time::Duration>,
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

    /// Too many requests: `429 RATE_LIMITED`, with `Retry-After`.
    pub fn rate_limited(description: impl Into<String>, retry_after: std::time::Duration) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", description);
        error.retry_after = Some(retry_after);
        error
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
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
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
