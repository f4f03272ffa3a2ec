//! `POST /api/v1/orders`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use paystream_domain::order::{CreateOrder, OrderAggregate};
use paystream_domain::{Currency, DomainError, Money, OrderId};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::merchant_metadata;
use crate::aggregates;
use crate::http::auth::AuthenticatedMerchant;
use crate::http::error::ApiError;
use crate::http::json::ApiJson;
use crate::http::response::CommandResponse;
use crate::http::views::{self, ErrorBody, OrderView};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/orders", post(create))
}

/// A new order. Unknown fields are ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateOrderBody {
    /// Minor units, at least 100.
    #[schema(example = 50000)]
    amount: i64,
    /// ISO 4217, uppercase; default `INR`.
    #[serde(default)]
    #[schema(example = "INR")]
    currency: Option<String>,
    /// At most 40 characters.
    #[serde(default)]
    receipt: Option<String>,
    /// At most 15 keys; string, number or boolean values of at most 256 characters.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    notes: Option<Map<String, Value>>,
}

/// Create an order.
#[utoipa::path(
    post,
    path = "/api/v1/orders",
    tag = "orders",
    request_body = CreateOrderBody,
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 201, description = "Created; `X-Event-Position` names its last event", body = OrderView),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    ApiJson(body): ApiJson<CreateOrderBody>,
) -> Result<CommandResponse, ApiError> {
    let currency = match body.currency.as_deref() {
        None => Currency::default(),
        Some(code) => code
            .parse::<Currency>()
            .map_err(|_| DomainError::UnknownCurrency)?,
    };
    let order_id = OrderId::from_random_bytes(rand::random());
    let metadata = merchant_metadata(merchant.merchant_id);
    let command = CreateOrder {
        order_id: order_id.clone(),
        merchant_id: merchant.merchant_id,
        amount: Money::new(body.amount, currency),
        receipt: body.receipt,
        notes: body.notes,
        at: Utc::now(),
    };
    let executed =
        aggregates::create::<OrderAggregate, _>(&state.store, &order_id, &metadata, |_| {
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
