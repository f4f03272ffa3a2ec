//! `POST /api/v1/orders`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use paystream_domain::order::{CreateOrder, OrderAggregate};
use paystream_domain::{Currency, DomainError, Money, OrderId};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::merchant_metadata;
use crate::http::idempotency;
use crate::http::response::CommandResponse;
use crate::startup::AppState;
use paystream_domain::api::{self as views, ErrorBody, NoteValue, OrderView};
use paystream_kit::http::auth::AuthenticatedMerchant;
use paystream_kit::http::error::ApiError;
use paystream_kit::http::json::ApiJsonWithBytes;
use paystream_store::runner;
use paystream_store::EventMetadata;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/orders", post(create))
}

/// A new order. Unknown fields are ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateOrderBody {
    /// Minor units, at least 100 and at most 99999999 (8 digits, in every
    /// currency).
    #[schema(example = 50000, minimum = 100, maximum = 99_999_999)]
    amount: i64,
    /// ISO 4217, uppercase; default `INR`.
    #[serde(default)]
    #[schema(example = "INR")]
    currency: Option<String>,
    /// At most 40 characters.
    #[serde(default)]
    receipt: Option<String>,
    /// At most 15 keys of at most 256 characters. Values are strings,
    /// integers (64-bit signed) or booleans of at most 256 characters;
    /// decimals and larger numbers are refused (send them as strings). No
    /// string may contain a NUL character.
    #[serde(default)]
    #[schema(value_type = Option<HashMap<String, NoteValue>>)]
    notes: Option<Map<String, Value>>,
}

/// Create an order. Honours `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/api/v1/orders",
    tag = "orders",
    request_body = CreateOrderBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the same answer, no new order (24 h, per merchant); empty counts as absent")),
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 201, description = "Created; `X-Event-Position` names its last event", body = OrderView),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 409, description = "The same Idempotency-Key is still in progress", body = ErrorBody),
        (status = 422, description = "IDEMPOTENCY_ERROR: the key was used with another request", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    headers: HeaderMap,
    body: ApiJsonWithBytes<CreateOrderBody>,
) -> Result<CommandResponse, ApiError> {
    let request = idempotency::Request::post(&headers, "/api/v1/orders", &body.bytes)?;
    let metadata = request.stamp(merchant_metadata(merchant.merchant_id));
    request
        .once(state.store.pool(), merchant.merchant_id, || {
            create_order(&state, &merchant, body.value, metadata)
        })
        .await
}

async fn create_order(
    state: &AppState,
    merchant: &AuthenticatedMerchant,
    body: CreateOrderBody,
    metadata: EventMetadata,
) -> Result<CommandResponse, ApiError> {
    let currency = match body.currency.as_deref() {
        None => Currency::default(),
        Some(code) => code
            .parse::<Currency>()
            .map_err(|_| DomainError::UnknownCurrency)?,
    };
    let order_id = OrderId::from_random_bytes(rand::random());
    let command = CreateOrder {
        order_id: order_id.clone(),
        merchant_id: merchant.merchant_id,
        amount: Money::new(body.amount, currency),
        receipt: body.receipt,
        notes: body.notes,
        at: Utc::now(),
    };
    let executed = runner::create::<OrderAggregate, _>(&state.store, &order_id, &metadata, |_| {
        Ok(command.clone().into())
    })
    .await?;
    state.relay_signal.notify();
    let order = executed
        .state
        .as_ref()
        .ok_or_else(|| ApiError::internal(&DomainError::OrderNotFound))?;
    Ok(CommandResponse::new(
        StatusCode::CREATED,
        views::body(OrderView::from(order)),
        executed.position,
    ))
}
