//! `GET /api/v1/refunds` (the merchant's refunds, from the `payments`
//! projection's `rm_refunds`), `GET /api/v1/refunds/{id}` (also `?as_of=`)
//! and `/events`. A refund lives in its payment's stream; the stream is
//! found by the refund id's index.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use paystream_domain::api::{ErrorBody, RefundView};
use paystream_domain::payment::{Payment, PaymentAggregate, Refund};
use paystream_domain::{PaymentId, RefundId};
use paystream_kit::http::error::ApiError;
use sqlx::types::Json as Jsonb;
use sqlx::Row;

use super::{refund_not_found, AsOf, ObjectId};
use crate::auth::{HistoryReader, MerchantReader};
use crate::fold::{self, Folded};
use crate::freshness::MinPosition;
use crate::listing::{corrupt_row, ListPage, ListQuery, Params, OBJECT_LIST_DEFAULT_LIMIT};
use crate::startup::QueryState;
use crate::views::History;

pub fn router() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/refunds", get(list_refunds))
        .route("/api/v1/refunds/{id}", get(get_refund))
        .route("/api/v1/refunds/{id}/events", get(history))
}

/// A refund `reader` may see and its payment (folded up to `as_of`); a
/// malformed id, an unknown refund, another merchant's, or one not requested
/// yet at `as_of` is "not found".
async fn own_refund(
    state: &QueryState,
    reader: HistoryReader,
    id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<(Payment, Refund, Folded<PaymentAggregate>), ApiError> {
    let refund_id: RefundId = id.parse().map_err(|_| refund_not_found())?;
    let stream = fold::refund_stream(&state.store, &refund_id)
        .await?
        .ok_or_else(refund_not_found)?;
    let folded = fold::load_stream::<PaymentAggregate>(&state.store, &stream, as_of).await?;
    let payment = folded
        .state
        .clone()
        .filter(|payment| reader.may_read(payment.merchant_id))
        .ok_or_else(refund_not_found)?;
    let refund = payment
        .refunds
        .get(&refund_id)
        .cloned()
        .ok_or_else(refund_not_found)?;
    Ok((payment, refund, folded))
}

/// A refund, as of now (every acknowledged command included) or `as_of`.
#[utoipa::path(
    get,
    path = "/api/v1/refunds/{id}",
    tag = "refunds",
    params(
        ("id" = String, Path, description = "rfnd_…"),
        ("as_of" = Option<String>, Query, description = "RFC 3339: the refund as it was then, rebuilt from its payment's events (staff and auditor sessions may read any merchant's refund this way)"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The refund; `processed_at` once `processed`", body = RefundView),
        (status = 400, description = "Bad `as_of`", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown refund, another merchant's, or not requested yet at `as_of`", body = ErrorBody),
    )
)]
pub async fn get_refund(
    State(state): State<QueryState>,
    reader: HistoryReader,
    ObjectId(id): ObjectId,
    as_of: AsOf,
) -> Result<Json<RefundView>, ApiError> {
    let reader = super::plain_or_as_of(reader, as_of)?;
    let (payment, refund, _) = own_refund(&state, reader, &id, as_of.0).await?;
    Ok(Json(RefundView::new(&payment, &refund)))
}

/// A refund's history: the events of its payment's stream that concern it,
/// oldest first, with hashes (each with its predecessor's hash in the
/// stream, so every one can be checked).
#[utoipa::path(
    get,
    path = "/api/v1/refunds/{id}/events",
    tag = "refunds",
    params(("id" = String, Path, description = "rfnd_…")),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The refund's events (merchants: their own refunds; staff and auditors: any)", body = History),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown refund, or another merchant's", body = ErrorBody),
    )
)]
pub async fn history(
    State(state): State<QueryState>,
    reader: HistoryReader,
    ObjectId(id): ObjectId,
) -> Result<Json<History>, ApiError> {
    let (_, refund, folded) = own_refund(&state, reader, &id, None).await?;
    let refund_id = refund.refund_id.as_str();
    Ok(Json(crate::views::history(
        refund_id,
        "refund",
        &folded.events,
        |event| event.payload.get("refund_id").and_then(|id| id.as_str()) == Some(refund_id),
    )))
}

/// `status` values of a refund.
const REFUND_STATUSES: [&str; 2] = ["pending", "processed"];

/// The merchant's refunds, newest first, from the read model.
#[utoipa::path(
    get,
    path = "/api/v1/refunds",
    tag = "refunds",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 10"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page (the fast way to page; not with `offset`)"),
        ("offset" = Option<u32>, Query, description = "Refunds to skip, 0 to 2147483647, default 0 (the original gateway's paging; not with `cursor`)"),
        ("status" = Option<String>, Query, description = "`pending` or `processed`"),
        ("payment_id" = Option<String>, Query, description = "Only this payment's refunds"),
        ("created_from" = Option<String>, Query, description = "RFC 3339; refunds requested at or after it"),
        ("created_to" = Option<String>, Query, description = "RFC 3339; refunds requested before it"),
        ("X-Min-Position" = Option<i64>, Header, description = "An `X-Event-Position`: wait (at most 5 s) until the list reflects it"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of refunds, newest first; `total` counts every refund matching the filters (left out with `cursor`)", body = ListPage<RefundView>),
        (status = 400, description = "A bad parameter (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 503, description = "`PROJECTION_BEHIND`: the read model did not reach `X-Min-Position` in time", body = ErrorBody),
    )
)]
pub async fn list_refunds(
    State(state): State<QueryState>,
    merchant: MerchantReader,
    min_position: MinPosition,
    params: Params,
) -> Result<Json<ListPage<RefundView>>, ApiError> {
    let paging = params.paging("refunds", OBJECT_LIST_DEFAULT_LIMIT)?;
    let status = params.one_of("status", &REFUND_STATUSES)?;
    let payment_id = params
        .get("payment_id")
        .map(|id| {
            id.parse::<PaymentId>().map_err(|_| {
                ApiError::bad_request("payment_id must be a payment id (pay_ + 16 alphanumerics)")
                    .with_field("payment_id")
            })
        })
        .transpose()?;
    let created = params.created_range()?;
    let pool = state.store.pool();
    min_position.wait(&state.store, "payments").await?;
    let rows = ListQuery::new(
        "refund_id, payment_id, merchant_id, currency, created_at, state",
        "rm_refunds",
        "refund_id",
        merchant.merchant_id.into(),
    )
    .equals("status", status)
    .equals("payment_id", payment_id.as_ref().map(PaymentId::as_str))
    .created(created)
    .page(pool, &paging)
    .await?;
    let rows = rows
        .try_map(|row| {
            let id: String = row.try_get("refund_id")?;
            let created_at: DateTime<Utc> = row.try_get("created_at")?;
            let Jsonb(refund) = row.try_get::<Jsonb<Refund>, _>("state")?;
            let view = RefundView::of(
                &row.try_get::<String, _>("payment_id")?,
                row.try_get("merchant_id")?,
                &row.try_get::<String, _>("currency")?,
                &refund,
            );
            Ok((id, created_at, view))
        })
        .map_err(|error: sqlx::Error| corrupt_row("rm_refunds", error))?;
    let page = crate::listing::list_page(
        "refunds",
        rows,
        &paging,
        |(id, created_at, _)| (*created_at, id.as_str()),
        |(_, _, view)| Ok(view),
    )?;
    Ok(Json(page))
}
