//! `GET /api/v1/openapi.json`: the command API's OpenAPI document, generated
//! from the handlers' annotations. It is also committed as
//! `docs/openapi/command-api.json`, which the query API merges into the one
//! document the edge serves; a test here keeps that file current.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{merchants, orders, payments, sessions, webhooks};
use crate::startup::AppState;
use paystream_domain::api::{ErrorBody, ErrorDetail, OrderView, PaymentView, RefundView};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Paystream command API",
        description = "The writing half of /api/v1. Amounts are integer minor units. Errors: {\"error\": {\"code\", \"description\", \"field\"?}}."
    ),
    paths(
        orders::create,
        payments::create,
        payments::create_public,
        payments::capture,
        payments::refund,
        webhooks::configure,
        webhooks::regenerate_secret,
        webhooks::send_test,
        webhooks::retry,
        webhooks::recover,
        sessions::login,
        sessions::logout,
        sessions::unlock,
        merchants::create,
        merchants::rotate_keys,
        merchants::rotate_own_keys,
        merchants::set_checkout_origins,
        merchants::suspend,
        merchants::reactivate,
    ),
    components(schemas(OrderView, PaymentView, RefundView, ErrorBody, ErrorDetail)),
    modifiers(&Security)
)]
pub struct CommandApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        );
        components.add_security_scheme(
            "api_secret",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Secret"))),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("paystream_session"))),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/openapi.json",
        get(|| async { Json(CommandApiDoc::openapi()) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `PAYSTREAM_BLESS=1 cargo test -p paystream-command-api openapi`
    /// rewrites the file after a change to the API.
    #[test]
    fn the_committed_document_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/openapi/command-api.json"
        );
        let generated = CommandApiDoc::openapi()
            .to_pretty_json()
            .expect("the document serializes")
            + "\n";
        if std::env::var_os("PAYSTREAM_BLESS").is_some() {
            std::fs::write(path, &generated).expect("write the document");
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi/command-api.json is stale: run \
             `PAYSTREAM_BLESS=1 cargo test -p paystream-command-api openapi` and commit it"
        );
    }
}
