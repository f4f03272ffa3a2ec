//! `GET /api/v1/payments` (the merchant's payments, from the `payments`
//! projection's `rm_payments`), `GET /api/v1/payments/{id}` (also
//! `?as_of=`), `/public`, `/events` and `/refunds` (folded from the store).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use paystream_domain::api::{ErrorBody, PaymentView, RefundView};
use paystream_domain::payment::{Payment, PaymentAggregate};
use paystream_domain::{OrderId, PaymentId};
use paystream_kit::http::error::ApiError;
use paystream_kit::http::limits::Client;
use serde::Serialize;
use sqlx::types::Json as Jsonb;
use sqlx::Row;
use utoipa::ToSchema;

use super::{payment_not_found, AsOf, ObjectId};
use crate::auth::{HistoryReader, MerchantReader};
use crate::fold::{self, Folded};
use crate::freshness::MinPosition;
use crate::listing::{corrupt_row, ListPage, ListQuery, Params, OBJECT_LIST_DEFAULT_LIMIT};
use crate::startup::QueryState;
use crate::views::{History, PublicPaymentView};

pub fn router() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/payments", get(list_payments))
        .route("/api/v1/payments/{id}/refunds", get(payment_refunds))
        .route("/api/v1/payments/{id}", get(get_payment))
        .route("/api/v1/payments/{id}/public", get(get_public))
        .route("/api/v1/payments/public/{id}", get(get_public_original))
        .route("/api/v1/payments/{id}/events", get(history))
}

/// The payment folded from its stream (up to `as_of`); `None` when it does
/// not exist (yet), or the id is malformed.
async fn payment(
    state: &QueryState,
    id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<Option<Folded<PaymentAggregate>>, ApiError> {
    let Ok(payment_id) = id.parse::<PaymentId>() else {
        return Ok(None);
    };
    let folded = fold::load::<PaymentAggregate>(&state.store, &payment_id, as_of).await?;
    Ok(folded.state.is_some().then_some(folded))
}

/// A payment `reader` may see; another merchant's is "not found".
async fn own_payment(
    state: &QueryState,
    reader: HistoryReader,
    id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<(Payment, Folded<PaymentAggregate>), ApiError> {
    let folded = payment(state, id, as_of)
        .await?
        .ok_or_else(payment_not_found)?;
    let payment = folded
        .state
        .clone()
        .filter(|payment| reader.may_read(payment.merchant_id))
        .ok_or_else(payment_not_found)?;
    Ok((payment, folded))
}

/// A payment, as of now (every acknowledged command included) or `as_of`.
#[utoipa::path(
    get,
    path = "/api/v1/payments/{id}",
    tag = "payments",
    params(
        ("id" = String, Path, description = "pay_…"),
        ("as_of" = Option<String>, Query, description = "RFC 3339: the payment as it was then, rebuilt from its events (staff and auditor sessions may read any merchant's payment this way)"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The payment", body = PaymentView),
        (status = 400, description = "Bad `as_of`", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown payment, another merchant's, or not created yet at `as_of`", body = ErrorBody),
    )
)]
pub async fn get_payment(
    State(state): State<QueryState>,
    reader: HistoryReader,
    ObjectId(id): ObjectId,
    as_of: AsOf,
) -> Result<Json<PaymentView>, ApiError> {
    let reader = super::plain_or_as_of(reader, as_of)?;
    let (payment, _) = own_payment(&state, reader, &id, as_of.0).await?;
    Ok(Json(PaymentView::from(&payment)))
}

/// What the checkout polls of a payment. No authentication: payment ids
/// carry 95 random bits.
#[utoipa::path(
    get,
    path = "/api/v1/payments/{id}/public",
    tag = "payments",
    params(("id" = String, Path, description = "pay_…")),
    responses(
        (status = 200, description = "The payment's public fields", body = PublicPaymentView),
        (status = 404, description = "Unknown payment", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED: too many checkout requests from this address or for this payment (`Retry-After`)", body = ErrorBody),
    )
)]
pub async fn get_public(
    State(state): State<QueryState>,
    client: Client,
    ObjectId(id): ObjectId,
) -> Result<Json<PublicPaymentView>, ApiError> {
    client.limits.public_call(client.address, &id)?;
    let payment = payment(&state, &id, None)
        .await?
        .and_then(|folded| folded.state)
        .ok_or_else(payment_not_found)?;
    Ok(Json(PaymentView::from(&payment).into()))
}

/// The same public view at the original design's poll path, which
/// its checkout and SDK use.
#[utoipa::path(
    get,
    path = "/api/v1/payments/public/{id}",
    tag = "payments",
    params(("id" = String, Path, description = "pay_…")),
    responses(
        (status = 200, description = "The payment's public fields", body = PublicPaymentView),
        (status = 404, description = "Unknown payment", body = ErrorBody),
    )
)]
pub async fn get_public_original(
    state: State<QueryState>,
    client: Client,
    id: ObjectId,
) -> Result<Json<PublicPaymentView>, ApiError> {
    get_public(state, client, id).await
}

/// A payment's history: every event of its stream (refunds included),
/// oldest first, with hashes.
#[utoipa::path(
    get,
    path = "/api/v1/payments/{id}/events",
    tag = "payments",
    params(("id" = String, Path, description = "pay_…")),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The payment's events (merchants: their own payments; staff and auditors: any)", body = History),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown payment, or another merchant's", body = ErrorBody),
    )
)]
pub async fn history(
    State(state): State<QueryState>,
    reader: HistoryReader,
    ObjectId(id): ObjectId,
) -> Result<Json<History>, ApiError> {
    let (payment, folded) = own_payment(&state, reader, &id, None).await?;
    Ok(Json(crate::views::history(
        payment.payment_id.as_str(),
        "payment",
        &folded.events,
        |_| true,
    )))
}

/// A payment's refunds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentRefunds {
    #[schema(example = "pay_H8sK3jD9s2L1pQr5")]
    pub payment_id: String,
    /// Newest first.
    pub data: Vec<RefundView>,
    pub count: usize,
}

/// A payment's refunds, folded from the payment's stream (refunds live in
/// it), so a refund requested a moment ago is already there.
#[utoipa::path(
    get,
    path = "/api/v1/payments/{id}/refunds",
    tag = "payments",
    params(("id" = String, Path, description = "pay_…")),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "Every refund of the payment, newest first", body = PaymentRefunds),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown payment, or another merchant's", body = ErrorBody),
    )
)]
pub async fn payment_refunds(
    State(state): State<QueryState>,
    merchant: MerchantReader,
    ObjectId(id): ObjectId,
) -> Result<Json<PaymentRefunds>, ApiError> {
    let reader = HistoryReader::Merchant(merchant.merchant_id);
    let (payment, _) = own_payment(&state, reader, &id, None).await?;
    let mut refunds: Vec<_> = payment.refunds.values().collect();
    refunds.sort_by(|a, b| {
        (b.created_at, b.refund_id.as_str()).cmp(&(a.created_at, a.refund_id.as_str()))
    });
    let data: Vec<RefundView> = refunds
        .into_iter()
        .map(|refund| RefundView::new(&payment, refund))
        .collect();
    Ok(Json(PaymentRefunds {
        payment_id: payment.payment_id.to_string(),
        count: data.len(),
        data,
    }))
}

/// `status` and `method` values of a payment.
const PAYMENT_STATUSES: [&str; 3] = ["pending", "success", "failed"];
const PAYMENT_METHODS: [&str; 2] = ["upi", "card"];

/// The merchant's payments, newest first, from the read model.
#[utoipa::path(
    get,
    path = "/api/v1/payments",
    tag = "payments",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 10"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page (the fast way to page; not with `offset`)"),
        ("offset" = Option<u32>, Query, description = "Payments to skip, 0 to 2147483647, default 0 (the original gateway's paging; not with `cursor`)"),
        ("status" = Option<String>, Query, description = "`pending`, `success` or `failed`"),
        ("method" = Option<String>, Query, description = "`upi` or `card`"),
        ("order_id" = Option<String>, Query, description = "Only this order's payments"),
        ("created_from" = Option<String>, Query, description = "RFC 3339; payments created at or after it"),
        ("created_to" = Option<String>, Query, description = "RFC 3339; payments created before it"),
        ("X-Min-Position" = Option<i64>, Header, description = "An `X-Event-Position`: wait (at most 5 s) until the list reflects it"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of payments, newest first; `total` counts every payment matching the filters (left out with `cursor`)", body = ListPage<PaymentView>),
        (status = 400, description = "A bad parameter (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 503, description = "`PROJECTION_BEHIND`: the read model did not reach `X-Min-Position` in time", body = ErrorBody),
    )
)]
pub async fn list_payments(
    State(state): State<QueryState>,
    merchant: MerchantReader,
    min_position: MinPosition,
    params: Params,
) -> Result<Json<ListPage<PaymentView>>, ApiError> {
    let paging = params.paging("payments", OBJECT_LIST_DEFAULT_LIMIT)?;
    let status = params.one_of("status", &PAYMENT_STATUSES)?;
    let method = params.one_of("method", &PAYMENT_METHODS)?;
    let order_id = params
        .get("order_id")
        .map(|id| {
            id.parse::<OrderId>().map_err(|_| {
                ApiError::bad_request("order_id must be an order id (order_ + 16 alphanumerics)")
                    .with_field("order_id")
            })
        })
        .transpose()?;
    let created = params.created_range()?;
    let pool = state.store.pool();
    min_position.wait(&state.store, "payments").await?;
    let rows = ListQuery::new(
        "payment_id, created_at, state",
        "rm_payments",
        "payment_id",
        merchant.merchant_id.into(),
    )
    .equals("status", status)
    .equals("method", method)
    .equals("order_id", order_id.as_ref().map(OrderId::as_str))
    .created(created)
    .page(pool, &paging)
    .await?;
    let rows = rows
        .try_map(|row| {
            let id: String = row.try_get("payment_id")?;
            let created_at: DateTime<Utc> = row.try_get("created_at")?;
            let Jsonb(payment) = row.try_get::<Jsonb<Payment>, _>("state")?;
            Ok((id, created_at, payment))
        })
        .map_err(|error: sqlx::Error| corrupt_row("rm_payments", error))?;
    let page = crate::listing::list_page(
        "payments",
        rows,
        &paging,
        |(id, created_at, _)| (*created_at, id.as_str()),
        |(_, _, payment)| Ok(PaymentView::from(&payment)),
    )?;
    Ok(Json(page))
}
