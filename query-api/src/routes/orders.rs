//! `GET /api/v1/orders` (the merchant's orders, from the `payments`
//! projection's `rm_orders`), `GET /api/v1/orders/{id}` (also `?as_of=`),
//! `/public` and `/events` (folded from the store), and the edge's
//! `frame-ancestors` of the checkout page.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use paystream_domain::api::{ErrorBody, OrderView};
use paystream_domain::merchant::MerchantAggregate;
use paystream_domain::order::{Order, OrderAggregate};
use paystream_domain::{MerchantId, OrderId};
use paystream_kit::http::error::ApiError;
use paystream_kit::http::limits::Client;
use serde::Deserialize;
use sqlx::types::Json as Jsonb;
use sqlx::Row;

use super::{order_not_found, AsOf, ObjectId};
use crate::auth::{HistoryReader, MerchantReader};
use crate::fold::{self, Folded};
use crate::freshness::MinPosition;
use crate::listing::{corrupt_row, ListPage, ListQuery, Params, OBJECT_LIST_DEFAULT_LIMIT};
use crate::startup::QueryState;
use crate::views::{History, PublicOrderView};

pub fn router() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/orders", get(list_orders))
        .route("/api/v1/orders/{id}", get(get_order))
        .route("/api/v1/orders/{id}/public", get(get_public))
        .route("/api/v1/orders/{id}/events", get(history))
        .route("/edge/checkout-frame-ancestors", get(frame_ancestors))
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

/// An order `reader` may see; another merchant's is "not found".
async fn own_order(
    state: &QueryState,
    reader: HistoryReader,
    id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<(Order, Folded<OrderAggregate>), ApiError> {
    let folded = order(state, id, as_of).await?.ok_or_else(order_not_found)?;
    let order = folded
        .state
        .clone()
        .filter(|order| reader.may_read(order.merchant_id))
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
        ("as_of" = Option<String>, Query, description = "RFC 3339: the order as it was then, rebuilt from its events (staff and auditor sessions may read any merchant's order this way)"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 400, description = "Bad `as_of`", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown order, another merchant's, or not created yet at `as_of`", body = ErrorBody),
    )
)]
pub async fn get_order(
    State(state): State<QueryState>,
    reader: HistoryReader,
    ObjectId(id): ObjectId,
    as_of: AsOf,
) -> Result<Json<OrderView>, ApiError> {
    let reader = super::plain_or_as_of(reader, as_of)?;
    let (order, _) = own_order(&state, reader, &id, as_of.0).await?;
    Ok(Json(OrderView::from(&order)))
}

/// What the checkout shows of an order, and where it may post its result
/// (the merchant's checkout origins). No authentication.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}/public",
    tag = "orders",
    params(("id" = String, Path, description = "order_…")),
    responses(
        (status = 200, description = "The order's public fields", body = PublicOrderView),
        (status = 404, description = "Unknown order", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED: too many checkout requests from this address or for this order (`Retry-After`)", body = ErrorBody),
    )
)]
pub async fn get_public(
    State(state): State<QueryState>,
    client: Client,
    ObjectId(id): ObjectId,
) -> Result<Json<PublicOrderView>, ApiError> {
    client.limits.public_call(client.address, &id)?;
    let order = order(&state, &id, None)
        .await?
        .and_then(|folded| folded.state)
        .ok_or_else(order_not_found)?;
    let mut view: PublicOrderView = OrderView::from(&order).into();
    view.checkout_origins = checkout_origins(&state, order.merchant_id).await?;
    Ok(Json(view))
}

/// The origins whose pages may embed `merchant`'s checkout.
pub async fn checkout_origins(
    state: &QueryState,
    merchant: MerchantId,
) -> Result<Vec<String>, ApiError> {
    let folded = fold::load::<MerchantAggregate>(&state.store, merchant, None).await?;
    Ok(folded
        .state
        .map(|merchant| merchant.checkout_origins)
        .unwrap_or_default())
}

/// The edge's question before it serves the checkout page (nginx
/// `auth_request`, never routed from outside): which origins may frame the
/// checkout of the order in `order_id`. Always 204, with
/// `X-Frame-Ancestors` holding the CSP source list: the merchant's checkout
/// origins, or `'none'` for an unknown order or a merchant with none.
pub async fn frame_ancestors(
    State(state): State<QueryState>,
    Query(query): Query<FrameAncestorsQuery>,
) -> Result<Response, ApiError> {
    let origins = match order(&state, query.order_id.as_deref().unwrap_or(""), None).await? {
        Some(Folded {
            state: Some(order), ..
        }) => checkout_origins(&state, order.merchant_id).await?,
        _ => Vec::new(),
    };
    let sources = if origins.is_empty() {
        "'none'".to_string()
    } else {
        origins.join(" ")
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&sources) {
        response.headers_mut().insert("x-frame-ancestors", value);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct FrameAncestorsQuery {
    order_id: Option<String>,
}

/// An order's history: every event of its stream, oldest first, with hashes.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}/events",
    tag = "orders",
    params(("id" = String, Path, description = "order_…")),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The order's events (merchants: their own orders; staff and auditors: any)", body = History),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown order, or another merchant's", body = ErrorBody),
    )
)]
pub async fn history(
    State(state): State<QueryState>,
    reader: HistoryReader,
    ObjectId(id): ObjectId,
) -> Result<Json<History>, ApiError> {
    let (order, folded) = own_order(&state, reader, &id, None).await?;
    Ok(Json(crate::views::history(
        order.order_id.as_str(),
        "order",
        &folded.events,
        |_| true,
    )))
}

/// `status` values of an order.
const ORDER_STATUSES: [&str; 3] = ["created", "attempted", "paid"];

/// The merchant's orders, newest first, from the read model.
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "orders",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 10"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page (the fast way to page; not with `offset`)"),
        ("offset" = Option<u32>, Query, description = "Orders to skip, 0 to 2147483647, default 0 (the original gateway's paging; not with `cursor`)"),
        ("status" = Option<String>, Query, description = "`created`, `attempted` or `paid`"),
        ("created_from" = Option<String>, Query, description = "RFC 3339; orders created at or after it"),
        ("created_to" = Option<String>, Query, description = "RFC 3339; orders created before it"),
        ("X-Min-Position" = Option<i64>, Header, description = "An `X-Event-Position`: wait (at most 5 s) until the list reflects it"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of orders, newest first; `total` counts every order matching the filters (left out with `cursor`)", body = ListPage<OrderView>),
        (status = 400, description = "A bad parameter (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 503, description = "`PROJECTION_BEHIND`: the read model did not reach `X-Min-Position` in time", body = ErrorBody),
    )
)]
pub async fn list_orders(
    State(state): State<QueryState>,
    merchant: MerchantReader,
    min_position: MinPosition,
    params: Params,
) -> Result<Json<ListPage<OrderView>>, ApiError> {
    let paging = params.paging("orders", OBJECT_LIST_DEFAULT_LIMIT)?;
    let status = params.one_of("status", &ORDER_STATUSES)?;
    let created = params.created_range()?;
    let pool = state.store.pool();
    min_position.wait(&state.store, "payments").await?;
    let rows = ListQuery::new(
        "order_id, created_at, state",
        "rm_orders",
        "order_id",
        merchant.merchant_id.into(),
    )
    .equals("status", status)
    .created(created)
    .page(pool, &paging)
    .await?;
    let rows = rows
        .try_map(|row| {
            let id: String = row.try_get("order_id")?;
            let created_at: DateTime<Utc> = row.try_get("created_at")?;
            let Jsonb(order) = row.try_get::<Jsonb<Order>, _>("state")?;
            Ok((id, created_at, order))
        })
        .map_err(|error: sqlx::Error| corrupt_row("rm_orders", error))?;
    let page = crate::listing::list_page(
        "orders",
        rows,
        &paging,
        |(id, created_at, _)| (*created_at, id.as_str()),
        |(_, _, order)| Ok(OrderView::from(&order)),
    )?;
    Ok(Json(page))
}
