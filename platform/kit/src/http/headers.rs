//! Headers every API answer carries, whoever calls: the body is JSON and
//! never a page (`nosniff`, a CSP that allows nothing and no framing), the
//! referrer stays on our side, and nothing is cached anywhere (answers carry
//! API secrets, session tokens and payment data). A handler that sets one of
//! these itself keeps its own value.

use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The API's own Content-Security-Policy: it serves no page.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Middleware: adds the headers above to every response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (CONTENT_SECURITY_POLICY, API_CSP),
        (X_FRAME_OPTIONS, "DENY"),
        (REFERRER_POLICY, "strict-origin-when-cross-origin"),
        (CACHE_CONTROL, "no-store"),
    ] {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
    response
}
