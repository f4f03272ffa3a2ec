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

use super::merchant_metadata;
use crate::aggregates;
use crate::http::auth::AuthenticatedMerchant;
use crate::http::error::ApiError;
use crate::http::json::ApiJson;
use crate::http::response::CommandResponse;
use crate::http::views;
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/orders", post(create))
}

#[derive(Debug, Deserialize)]
struct CreateOrderBody {
    amount: i64,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    receipt: Option<String>,
    #[serde(default)]
    notes: Option<Map<String, Value>>,
}

async fn create(
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
        aggregates::execute::<OrderAggregate, _>(&state.store, &order_id, &metadata, |_| {
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
        views::order(order),
        executed.position,
    ))
}
