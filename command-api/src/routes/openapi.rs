//! `GET /api/v1/openapi.json`: the command API's OpenAPI document, generated
//! from the handlers' annotations.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{merchants, orders, payments, sessions, webhooks};
use crate::http::views::{ErrorBody, ErrorDetail, OrderView, PaymentView, RefundView};
use crate::startup::AppState;

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
        merchants::create,
        merchants::rotate_keys,
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
