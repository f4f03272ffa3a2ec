//! `GET /api/v1/payments/{id}` (also `?as_of=`), `/public` and `/events`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use paystream_command_api::http::auth::AuthenticatedMerchant;
use paystream_command_api::http::error::ApiError;
use paystream_command_api::http::views::{ErrorBody, PaymentView};
use paystream_domain::payment::{Payment, PaymentAggregate};
use paystream_domain::{MerchantId, PaymentId};

use super::{payment_not_found, AsOf, ObjectId};
use crate::fold::{self, Folded};
use crate::startup::QueryState;
use crate::views::{History, PublicPaymentView};

pub fn router() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/payments/{id}", get(get_payment))
        .route("/api/v1/payments/{id}/public", get(get_public))
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

/// The merchant's own payment; another merchant's is "not found".
async fn own_payment(
    state: &QueryState,
    merchant: MerchantId,
    id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<(Payment, Folded<PaymentAggregate>), ApiError> {
    let folded = payment(state, id, as_of)
        .await?
        .ok_or_else(payment_not_found)?;
    let payment = folded
        .state
        .clone()
        .filter(|payment| payment.merchant_id == merchant)
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
        ("as_of" = Option<String>, Query, description = "RFC 3339: the payment as it was then, rebuilt from its events"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The payment", body = PaymentView),
        (status = 400, description = "Bad `as_of`", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown payment, another merchant's, or not created yet at `as_of`", body = ErrorBody),
    )
)]
pub async fn get_payment(
    State(state): State<QueryState>,
    merchant: AuthenticatedMerchant,
    ObjectId(id): ObjectId,
    as_of: AsOf,
) -> Result<Json<PaymentView>, ApiError> {
    let (payment, _) = own_payment(&state, merchant.merchant_id, &id, as_of.0).await?;
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
    )
)]
pub async fn get_public(
    State(state): State<QueryState>,
    ObjectId(id): ObjectId,
) -> Result<Json<PublicPaymentView>, ApiError> {
    let payment = payment(&state, &id, None)
        .await?
        .and_then(|folded| folded.state)
        .ok_or_else(payment_not_found)?;
    Ok(Json(PaymentView::from(&payment).into()))
}

/// A payment's history: every event of its stream (refunds included),
/// oldest first, with hashes.
#[utoipa::path(
    get,
    path = "/api/v1/payments/{id}/events",
    tag = "payments",
    params(("id" = String, Path, description = "pay_…")),
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The payment's events", body = History),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown payment, or another merchant's", body = ErrorBody),
    )
)]
pub async fn history(
    State(state): State<QueryState>,
    merchant: AuthenticatedMerchant,
    ObjectId(id): ObjectId,
) -> Result<Json<History>, ApiError> {
    let (payment, folded) = own_payment(&state, merchant.merchant_id, &id, None).await?;
    Ok(Json(History::new(
        payment.payment_id.as_str(),
        "payment",
        &folded.events,
        |_| true,
    )))
}
