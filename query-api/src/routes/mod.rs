//! HTTP handlers, one module per resource.

pub mod audit;
pub mod events;
pub mod health;
pub mod jobs;
pub mod ledger;
pub mod merchants;
pub mod openapi;
pub mod orders;
pub mod payments;
pub mod refunds;
pub mod session;
pub mod stats;
pub mod test_merchant;
pub mod webhooks;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use paystream_kit::http::error::ApiError;
use paystream_kit::http::path::ApiPath;
use serde::Deserialize;

/// `?as_of=<RFC 3339>`: the moment to rebuild an object at (`None`: now).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AsOf(pub Option<DateTime<Utc>>);

#[derive(Debug, Deserialize)]
struct AsOfParams {
    as_of: Option<String>,
}

fn bad_as_of() -> ApiError {
    ApiError::bad_request(
        "as_of must be an RFC 3339 date-time with a time zone, e.g. 2025-01-31T10:15:30Z",
    )
    .with_field("as_of")
}

/// Parses an RFC 3339 moment. A `+` offset sent unencoded in a query string
/// arrives as a space; that is accepted too.
pub fn parse_as_of(text: &str) -> Result<DateTime<Utc>, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return Err(bad_as_of());
    }
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_rfc3339(&text.replace(' ', "+")))
        .map(|moment| moment.with_timezone(&Utc))
        .map_err(|_| bad_as_of())
}

impl<S: Send + Sync> FromRequestParts<S> for AsOf {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Query(params) =
            Query::<AsOfParams>::try_from_uri(&parts.uri).map_err(|_| bad_as_of())?;
        params
            .as_of
            .as_deref()
            .map(parse_as_of)
            .transpose()
            .map(AsOf)
    }
}

/// The `{id}` of a path, read with the shared [`ApiPath`] extractor: one
/// that cannot be decoded (percent-encoded bytes that are not UTF-8) is a
/// 400 `BAD_REQUEST_ERROR` with `field: "id"`, as on the command side; an id
/// that decodes but names nothing is the handler's 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ObjectId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        ApiPath::<String>::from_request_parts(parts, state)
            .await
            .map(|ApiPath(id)| Self(id))
    }
}

/// Who may read one object by id: a merchant its own objects (with or
/// without `as_of`); staff and auditors any object, but only as a
/// reconstruction (`as_of`) or a history, never as a plain read.
pub(crate) fn plain_or_as_of(
    reader: crate::auth::HistoryReader,
    as_of: AsOf,
) -> Result<crate::auth::HistoryReader, ApiError> {
    match (reader, as_of.0) {
        (crate::auth::HistoryReader::Overseer, None) => Err(ApiError::unauthorized(
            "Staff and auditors read an object with ?as_of= or its /events history",
        )),
        (reader, _) => Ok(reader),
    }
}

pub(crate) fn order_not_found() -> ApiError {
    ApiError::not_found("Order not found")
}

pub(crate) fn payment_not_found() -> ApiError {
    ApiError::not_found("Payment not found")
}

pub(crate) fn refund_not_found() -> ApiError {
    ApiError::not_found("Refund not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_is_rfc_3339_with_a_zone() {
        let utc = parse_as_of("2025-01-31T10:15:30Z").unwrap();
        assert_eq!(utc.to_rfc3339(), "2025-01-31T10:15:30+00:00");
        let offset = parse_as_of("2025-01-31T15:45:30.5+05:30").unwrap();
        assert_eq!(offset.timestamp_millis(), utc.timestamp_millis() + 500);
        // `+` decoded as a space in a query string.
        assert_eq!(parse_as_of("2025-01-31T15:45:30.5 05:30").unwrap(), offset);
        for bad in [
            "",
            "   ",
            "yesterday",
            "2025-01-31",
            "2025-01-31T10:15:30",
            "2025-13-01T00:00:00Z",
            "1738318530",
            &"9".repeat(100),
        ] {
            let error = parse_as_of(bad).unwrap_err();
            assert_eq!(error.field.as_deref(), Some("as_of"), "{bad}");
            assert_eq!(error.status, 400);
        }
    }
}
