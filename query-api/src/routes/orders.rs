//! `GET /api/v1/orders/{id}` (also `?as_of=`), `/public` and `/events`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use paystream_command_api::http::auth::AuthenticatedMerchant;
use paystream_command_api::http::error::ApiError;
use paystream_command_api::http::views::{ErrorBody, OrderView};
use paystream_domain::order::{Order, OrderAggregate};
use paystream_domain::{MerchantId, OrderId};

use super::{order_not_found, AsOf, ObjectId};
use crate::fold::{self, Folded};
use crate::startup::QueryState;
use crate::views::{History, PublicOrderView};

pub fn router() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/orders/{id}", get(get_order))
        .route("/api/v1/orders/{id}/public", get(get_public))
        .route("/api/v1/orders/{id}/events", get(history))
}

/// The order folded from its stream (up to `as_of`); `None` when it does not
/// exist (yet), or the id is malformed.
async fn order(
    state: &QueryState,
    id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<Option<Folded<OrderAggregate>>, ApiError> {
    let Ok(order_id) = id.parse::<OrderId>() else {
        return Ok(None);
    };
    let folded = fold::load::<OrderAggregate>(&state.store, &order_id, as_of).await?;
    Ok(folded.state.is_some().then_some(folded))
}

/// The merchant's own order; another merchant's is "not found".
async fn own_order(
    state: &QueryState,
    merchant: MerchantId,
    id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<(Order, Folded<OrderAggregate>), ApiError> {
    let folded = order(state, id, as_of).await?.ok_or_else(order_not_found)?;
    let order = folded
        .state
        .clone()
        .filter(|order| order.merchant_id == merchant)
        .ok_or_else(order_not_found)?;
    Ok((order, folded))
}

/// An order, as of now (every acknowledged command included) or `as_of`.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    params(
        ("id" = String, Path, description = "order_…"),
        ("as_of" = Option<String>, Query, description = "RFC 3339: the order as it was then, rebuilt from its events"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 400, description = "Bad `as_of`", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown order, another merchant's, or not created yet at `as_of`", body = ErrorBody),
    )
)]
pub async fn get_order(
    State(state): State<QueryState>,
    merchant: AuthenticatedMerchant,
    ObjectId(id): ObjectId,
    as_of: AsOf,
) -> Result<Json<OrderView>, ApiError> {
    let (order, _) = own_order(&state, merchant.merchant_id, &id, as_of.0).await?;
    Ok(Json(OrderView::from(&order)))
}

/// What the checkout shows of an order. No authentication.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}/public",
    tag = "orders",
    params(("id" = String, Path, description = "order_…")),
    responses(
        (status = 200, description = "The order's public fields", body = PublicOrderView),
        (status = 404, description = "Unknown order", body = ErrorBody),
    )
)]
pub async fn get_public(
    State(state): State<QueryState>,
    ObjectId(id): ObjectId,
) -> Result<Json<PublicOrderView>, ApiError> {
    let order = order(&state, &id, None)
        .await?
        .and_then(|folded| folded.state)
        .ok_or_else(order_not_found)?;
    Ok(Json(OrderView::from(&order).into()))
}

/// An order's history: every event of its stream, oldest first, with hashes.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}/events",
    tag = "orders",
    params(("id" = String, Path, description = "order_…")),
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The order's events", body = History),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown order, or another merchant's", body = ErrorBody),
    )
)]
pub async fn history(
    State(state): State<QueryState>,
    merchant: AuthenticatedMerchant,
    ObjectId(id): ObjectId,
) -> Result<Json<History>, ApiError> {
    let (order, folded) = own_order(&state, merchant.merchant_id, &id, None).await?;
    Ok(Json(History::new(
        order.order_id.as_str(),
        "order",
        &folded.events,
        |_| true,
    )))
}
