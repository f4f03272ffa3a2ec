//! `ApiPath<T>`: the path parameter extractor of both APIs. A parameter
//! that cannot be read (percent-encoded bytes that are not UTF-8, as in
//! `/api/v1/payments/%ff/capture`, or text of the wrong type) is a 400
//! `BAD_REQUEST_ERROR` in our error format, naming the parameter and never
//! echoing its value, instead of axum's plain-text rejection. A route whose
//! template does not match its extractor is our bug: an opaque 500.

use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(rejected)
    }
}

/// Our answer to axum's rejection: a 400 naming the parameter when the
/// client is to blame, else a 500.
fn rejected(rejection: PathRejection) -> ApiError {
    if rejection.status().is_server_error() {
        return ApiError::internal(&rejection);
    }
    let PathRejection::FailedToDeserializePathParams(failed) = &rejection else {
        return ApiError::internal(&rejection);
    };
    match failed.kind() {
        ErrorKind::InvalidUtf8InPathParam { key } => ApiError::bad_request(format!(
            "{key} in the path is not valid UTF-8 once percent-decoded"
        ))
        .with_field(key.as_str()),
        ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::DeserializeError { key, .. } => {
            ApiError::bad_request(format!("{key} in the path has the wrong format"))
                .with_field(key.as_str())
        }
        _ => ApiError::bad_request("A path parameter has the wrong format"),
    }
}
