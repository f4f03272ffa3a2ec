//! `ApiJson<T>`: the request body extractor. Malformed JSON, wrong types,
//! missing fields, unknown enum values and oversized bodies all become 400s
//! in our error format. Descriptions name the field, never echo the value
//! (a mistyped card number must not come back in an error or a log).
//!
//! Unknown fields are ignored, as in the original gateway: clients may send
//! extra data (and newer clients newer fields) without breaking.
//!
//! `OptionalJson<T>` is for a body that may be left out (suspend's
//! `{reason?}`), and `NoBody` for the POSTs that take none: an empty body is
//! accepted there with any or no `Content-Type`; a non-empty one must be a
//! JSON object as everywhere else.
//!
//! A body that is not empty must be sent as `Content-Type: application/json`
//! (parameters such as `charset=utf-8` allowed): anything else (`text/plain`,
//! a form, XML, no type at all) is a 415 before the body is read. A browser
//! page on another site can send those types without a CORS preflight; JSON
//! it cannot. A body over [`MAX_BODY_BYTES`] is a 413.
//!
//! No string anywhere in a body (a value or an object key, at any depth, in
//! known fields or not) may contain a NUL character (`\u0000`): PostgreSQL
//! `text` and `jsonb` cannot store one. The body is refused here, once for
//! every endpoint, with a 400 naming the field. (JSON text with a lone
//! surrogate escape such as `"\ud800"` is not valid JSON and is refused
//! as such.)

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

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
        let json = is_json(request.headers());
        let bytes = read_body(request).await?;
        // An empty body is a 400 whatever its type: there is nothing to read.
        if !json && !is_blank(&bytes) {
            return Err(unsupported_media_type());
        }
        let value = parse(&bytes)?;
        Ok(Self { value, bytes })
    }
}

/// A body that may be left out: an empty body (nothing, or only whitespace)
/// is `T::default()` whatever its `Content-Type`; any other body is read as
/// [`ApiJson`] reads it.
#[derive(Debug, Clone)]
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let _ = state;
        let json = is_json(request.headers());
        let bytes = read_body(request).await?;
        if is_blank(&bytes) {
            return Ok(Self(T::default()));
        }
        if !json {
            return Err(unsupported_media_type());
        }
        parse(&bytes).map(Self)
    }
}

/// The body of a POST that takes none (rotate-keys, reactivate,
/// regenerate-secret, webhook test and retry, logout). The rule, the same on
/// every such POST: an empty body is accepted with any or no `Content-Type`;
/// a non-empty body must be a JSON object, as on every other POST, and its
/// fields are ignored (`not json` or `[]` is a 400).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBody;

/// Any JSON object (serde ignores the unknown fields).
#[derive(Debug, Default, serde::Deserialize)]
struct AnyObject {}

impl<S: Send + Sync> FromRequest<S> for NoBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        OptionalJson::<AnyObject>::from_request(request, state).await?;
        Ok(Self)
    }
}

/// Whether the request says its body is JSON: `application/json`, with or
/// without parameters, in any case.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "BAD_REQUEST_ERROR",
        "Request body must be sent as Content-Type: application/json",
    )
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

async fn read_body(request: Request) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BAD_REQUEST_ERROR",
            format!("Request body is too large (at most {MAX_BODY_BYTES} bytes)"),
        )
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
    if is_blank(bytes) {
        return Err(ApiError::bad_request(
            "Request body is empty; a JSON object is expected",
        ));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|_| ApiError::bad_request("Request body is not valid JSON"))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("Request body must be a JSON object"));
    }
    // JSON text can only carry a NUL as the escape `\u0000` (a raw control
    // character is invalid JSON), so most bodies skip the walk.
    let may_hold_nul = bytes.windows(6).any(|window| window == br"\u0000");
    if let Some(field) = may_hold_nul.then(|| nul_at(&value, "")).flatten() {
        return Err(ApiError::bad_request(format!(
            "{field} must not contain a NUL character (\\u0000)"
        ))
        .with_field(field));
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

/// The path (`card.number`, `events[1]`, as the deserializer names fields)
/// of the first string holding a NUL, or of the object whose key does.
fn nul_at(value: &Value, path: &str) -> Option<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(text) if text.contains('\0') => Some(path.to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| nul_at(item, &format!("{path}[{index}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(if path.is_empty() { "body" } else { path }.to_string())
            } else {
                nul_at(item, &join(key))
            }
        }),
        _ => None,
    }
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

    #[test]
    fn only_json_content_types_are_json() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, value.parse().unwrap());
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
            "application/jsonp",
            "text/json",
        ] {
            assert!(!with(other), "{other}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn nul_characters_are_refused_wherever_they_are() {
        for (body, field) in [
            (
                r#"{"amount": 1, "card": {"number": "4\u0000", "cvv": "1"}}"#,
                "card.number",
            ),
            (r#"{"amount": 1, "notes": {"k\u0000": "v"}}"#, "notes"),
            (r#"{"amount": 1, "notes": {"k": "v\u0000"}}"#, "notes.k"),
            (r#"{"amount": 1, "events": ["a", "b\u0000"]}"#, "events[1]"),
            (
                r#"{"amount": 1, "a": {"b": [{"c": "\u0000"}]}}"#,
                "a.b[0].c",
            ),
            (r#"{"amount\u0000": 1}"#, "body"),
        ] {
            let error = parse::<Body>(body.as_bytes()).unwrap_err();
            assert_eq!(error.status, 400, "{body}");
            assert_eq!(error.field.as_deref(), Some(field), "{body}");
            assert_eq!(
                error.description,
                format!("{field} must not contain a NUL character (\\u0000)")
            );
        }
        // Other control characters and escapes are ordinary text.
        assert!(parse::<Body>(br#"{"amount": 1, "x": "\u0001\t\n\u00e9"}"#).is_ok());
        // A lone surrogate is not JSON at all.
        assert_eq!(
            parse::<Body>(br#"{"amount": 1, "x": "\ud800"}"#)
                .unwrap_err()
                .description,
            "Request body is not valid JSON"
        );
    }
}
