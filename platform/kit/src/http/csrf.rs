//! Cross-site request forgery: a state-changing request that a browser
//! authenticates with the session cookie alone must come from one of the
//! dashboard's own origins.
//!
//! `SameSite=Strict` does not cover this: a page on another port of the same
//! host (`http://localhost:4995`) is the same *site*, so the browser sends
//! the cookie along. The rule, for every method but `GET`, `HEAD` and
//! `OPTIONS`, when the request carries the session cookie and neither API
//! credentials nor a bearer token (those are headers no other page can make
//! a browser send without a CORS preflight, which we never grant):
//! - an `Origin` header must be one of the configured dashboard origins;
//! - without `Origin`, `Sec-Fetch-Site` must be `same-origin`;
//! - anything else is a 403 `AUTHENTICATION_ERROR` that says so, before any
//!   handler runs, so nothing is appended.
//!
//! A body that is not `application/json` is a 415 for every caller; the
//! JSON extractors ([`super::json`]) enforce that.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, ORIGIN};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::session;

/// The origins the dashboard is served from (`scheme://host[:port]`,
/// lowercase, no path), where cookie-authenticated commands may come from.
#[derive(Debug, Clone, Default)]
pub struct DashboardOrigins(Arc<[String]>);

impl DashboardOrigins {
    pub fn new(origins: impl IntoIterator<Item = String>) -> Self {
        Self(
            origins
                .into_iter()
                .map(|origin| origin.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|origin| !origin.is_empty())
                .collect(),
        )
    }

    pub fn contains(&self, origin: &str) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        self.0.contains(&origin)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// Whether the request authenticates with the session cookie alone.
fn cookie_only(headers: &HeaderMap) -> bool {
    let has_api_credentials =
        headers.contains_key("x-api-key") || headers.contains_key(AUTHORIZATION);
    !has_api_credentials && session::token_from(headers).is_some()
}

/// Why a cookie-authenticated request is refused, if it is.
pub fn refusal(
    method: &Method,
    headers: &HeaderMap,
    origins: &DashboardOrigins,
) -> Option<ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || !cookie_only(headers) {
        return None;
    }
    let forbidden = |description: &str| {
        Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "AUTHENTICATION_ERROR",
            description,
        ))
    };
    match headers.get(ORIGIN).map(|value| value.to_str().unwrap_or("")) {
        Some(origin) if origins.contains(origin) => None,
        Some(_) => forbidden(
            "This request comes from a page outside the dashboard; a session cookie is accepted only from the dashboard's own origin",
        ),
        None => {
            let same_origin = headers
                .get("sec-fetch-site")
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"same-origin"));
            if same_origin {
                None
            } else {
                forbidden(
                    "A request with the session cookie must carry the dashboard's Origin (or use Authorization: Bearer)",
                )
            }
        }
    }
}

/// Middleware: applies [`refusal`] to every request.
pub async fn guard(
    State(origins): State<DashboardOrigins>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(error) = refusal(request.method(), request.headers(), &origins) {
        return error.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    const COOKIE: (&str, &str) = ("cookie", "paystream_session=abc");

    #[test]
    fn cookie_commands_need_a_dashboard_origin() {
        let origins = DashboardOrigins::new(["http://localhost:8000/".to_string()]);
        let post = Method::POST;
        // The dashboard itself.
        assert!(refusal(
            &post,
            &headers(&[COOKIE, ("origin", "http://localhost:8000")]),
            &origins
        )
        .is_none());
        assert!(refusal(
            &post,
            &headers(&[COOKIE, ("sec-fetch-site", "same-origin")]),
            &origins
        )
        .is_none());
        // Another port of the same host, another host, `null`, nothing.
        for bad in [
            headers(&[COOKIE, ("origin", "http://localhost:4995")]),
            headers(&[COOKIE, ("origin", "http://evil.test")]),
            headers(&[COOKIE, ("origin", "null")]),
            headers(&[COOKIE, ("sec-fetch-site", "same-site")]),
            headers(&[
                COOKIE,
                ("origin", "http://evil.test"),
                ("sec-fetch-site", "same-origin"),
            ]),
            headers(&[COOKIE]),
        ] {
            let error = refusal(&post, &bad, &origins).expect("refused");
            assert_eq!(error.status, StatusCode::FORBIDDEN, "{bad:?}");
        }
        // Reads, and callers with API credentials or a bearer token.
        assert!(refusal(&Method::GET, &headers(&[COOKIE]), &origins).is_none());
        assert!(refusal(&post, &headers(&[COOKIE, ("x-api-key", "k")]), &origins).is_none());
        assert!(refusal(
            &post,
            &headers(&[COOKIE, ("authorization", "Bearer t")]),
            &origins
        )
        .is_none());
        assert!(refusal(&post, &headers(&[]), &origins).is_none());
    }
}
