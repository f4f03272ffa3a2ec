//! `ApiJson<T>`: the request body extractor. Malformed JSON, wrong types,
//! missing fields, unknown enum values and oversized bodies all become 400s
//! in our error format. Descriptions name the field, never echo the value
//! (a mistyped card number must not come back in an error or a log).
//!
//! Unknown fields are ignored, as in the original gateway: clients may send
//! extra data (and newer clients newer fields) without breaking.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use futures::StreamExt;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Largest request body accepted anywhere (a JSON command is a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A body over the limit is still read (and discarded) up to this size, so
/// the client gets its 400 instead of a connection reset mid-upload. Beyond
/// it the connection is simply closed.
pub const MAX_DRAIN_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// The raw body too, for idempotency hashing.
#[derive(Debug, Clone)]
pub struct ApiJsonWithBytes<T> {
    pub value: T,
    pub bytes: Bytes,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let with = ApiJsonWithBytes::<T>::from_request(request, state).await?;
        Ok(Self(with.value))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJsonWithBytes<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let _ = state;
        let bytes = read_body(request).await?;
        let value = parse(&bytes)?;
        Ok(Self { value, bytes })
    }
}

async fn read_body(request: Request) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::bad_request(format!(
            "Request body is too large (at most {MAX_BODY_BYTES} bytes)"
        ))
    };
    let unreadable = || ApiError::bad_request("Request body could not be read");
    let mut stream = request.into_body().into_data_stream();
    let mut body = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| unreadable())?;
        seen = seen.saturating_add(chunk.len());
        if seen <= MAX_BODY_BYTES {
            body.extend_from_slice(&chunk);
        } else if seen > MAX_DRAIN_BYTES {
            return Err(too_large());
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(Bytes::from(body))
}

/// Parses a JSON body into `T` with errors that name the field only.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "Request body is empty; a JSON object is expected",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|_| ApiError::bad_request("Request body is not valid JSON"))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("Request body must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        let description = if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            let field = if path == "." {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            return ApiError::bad_request(format!("{field} is required")).with_field(field);
        } else if message.starts_with("unknown variant") {
            format!("{path} has an unsupported value")
        } else if message.starts_with("invalid type") {
            format!("{path} has the wrong type")
        } else {
            format!("{path} is invalid")
        };
        ApiError::bad_request(description).with_field(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Card {
        number: String,
        cvv: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        amount: i64,
        card: Option<Card>,
    }

    #[test]
    fn errors_name_the_field_and_never_echo_values() {
        let error = parse::<Body>(
            br#"{"amount": 100, "card": {"number": 4111111111111111, "cvv": "123"}}"#,
        )
        .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("card.number"));
        assert!(!error.description.contains("4111"), "{}", error.description);
        let missing = parse::<Body>(br#"{"card": {"number": "4", "cvv": "1"}}"#).unwrap_err();
        assert_eq!(missing.description, "amount is required");
        let nested = parse::<Body>(br#"{"amount": 1, "card": {"number": "4"}}"#).unwrap_err();
        assert_eq!(nested.field.as_deref(), Some("card.cvv"));
        assert_eq!(
            parse::<Body>(b"").unwrap_err().description,
            "Request body is empty; a JSON object is expected"
        );
        assert_eq!(
            parse::<Body>(b"{").unwrap_err().description,
            "Request body is not valid JSON"
        );
        assert_eq!(
            parse::<Body>(b"[]").unwrap_err().description,
            "Request body must be a JSON object"
        );
        assert!(parse::<Body>(br#"{"amount": 1e400}"#).is_err());
        assert!(parse::<Body>(br#"{"amount": 9223372036854775808}"#).is_err());
        assert!(parse::<Body>(br#"{"amount": 100, "extra": true}"#).is_ok());
    }
}
