//! `GET /api/v1/refunds/{id}` (also `?as_of=`) and `/events`. A refund lives
//! in its payment's stream; the stream is found by the refund id's index.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use paystream_command_api::http::auth::AuthenticatedMerchant;
use paystream_command_api::http::error::ApiError;
use paystream_command_api::http::views::{ErrorBody, RefundView};
use paystream_domain::payment::{Payment, PaymentAggregate, Refund};
use paystream_domain::{MerchantId, RefundId};

use super::{refund_not_found, AsOf, ObjectId};
use crate::fold::{self, Folded};
use crate::startup::QueryState;
use crate::views::History;

pub fn router() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/refunds/{id}", get(get_refund))
        .route("/api/v1/refunds/{id}/events", get(history))
}

/// The merchant's own refund and its payment (folded up to `as_of`); a
/// malformed id, an unknown refund, another merchant's, or one not requested
/// yet at `as_of` is "not found".
async fn own_refund(
    state: &QueryState,
    merchant: MerchantId,
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
        .filter(|payment| payment.merchant_id == merchant)
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
        ("as_of" = Option<String>, Query, description = "RFC 3339: the refund as it was then, rebuilt from its payment's events"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The refund; `processed_at` once `processed`", body = RefundView),
        (status = 400, description = "Bad `as_of`", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown refund, another merchant's, or not requested yet at `as_of`", body = ErrorBody),
    )
)]
pub async fn get_refund(
    State(state): State<QueryState>,
    merchant: AuthenticatedMerchant,
    ObjectId(id): ObjectId,
    as_of: AsOf,
) -> Result<Json<RefundView>, ApiError> {
    let (payment, refund, _) = own_refund(&state, merchant.merchant_id, &id, as_of.0).await?;
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
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The refund's events", body = History),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown refund, or another merchant's", body = ErrorBody),
    )
)]
pub async fn history(
    State(state): State<QueryState>,
    merchant: AuthenticatedMerchant,
    ObjectId(id): ObjectId,
) -> Result<Json<History>, ApiError> {
    let (_, refund, folded) = own_refund(&state, merchant.merchant_id, &id, None).await?;
    let refund_id = refund.refund_id.as_str();
    Ok(Json(History::new(
        refund_id,
        "refund",
        &folded.events,
        |event| event.payload.get("refund_id").and_then(|id| id.as_str()) == Some(refund_id),
    )))
}
