//! Payments: create (merchant API and the checkout's public variant),
//! capture, and refunds.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Datelike, Utc};
use paystream_domain::order::{
    MarkOrderAttempted, Order, OrderAggregate, OrderCommand, OrderState,
};
use paystream_domain::payment::{
    CapturePayment, CreatePayment, Payment, PaymentAggregate, PaymentMethodInput, RequestRefund,
};
use paystream_domain::validation::CardInput;
use paystream_domain::{DomainError, MerchantId, OrderId, PaymentId, RefundId};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{actor_metadata, merchant_metadata};
use crate::http::idempotency;
use crate::http::response::CommandResponse;
use crate::startup::AppState;
use paystream_domain::api::{self as views, ErrorBody, PaymentView, RefundView};
use paystream_kit::http::auth::{self, AuthenticatedMerchant, PublishableKey};
use paystream_kit::http::error::ApiError;
use paystream_kit::http::json::ApiJsonWithBytes;
use paystream_kit::http::limits::Client;
use paystream_kit::http::path::ApiPath;
use paystream_store::runner::{self, CommandError, Executed, Loaded};
use paystream_store::{EventMetadata, PgEventStore};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/payments", post(create))
        .route("/api/v1/payments/public", post(create_public))
        .route("/api/v1/payments/{id}/capture", post(capture))
        .route("/api/v1/payments/{id}/refunds", post(refund))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Upi,
    Card,
}

/// A payment of an order, by UPI (`vpa`) or card (`card`). The card number
/// and CVV are validated and dropped: only the network and last 4 digits are kept.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreatePaymentBody {
    #[schema(example = "order_NXhj67fGH2jk9mPq")]
    order_id: String,
    method: Method,
    /// For UPI: `^[a-zA-Z0-9._-]+@[a-zA-Z0-9]+$`.
    #[serde(default)]
    #[schema(example = "user@okbank")]
    vpa: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<CardSchema>)]
    card: Option<CardInput>,
}

/// Card details (documentation of `CardInput`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CardSchema {
    /// 13–19 digits, spaces and dashes allowed, Luhn-valid.
    #[schema(example = "4111111111111111")]
    number: String,
    /// 1–12.
    #[schema(example = "12")]
    expiry_month: String,
    /// Two digits mean 20YY.
    #[schema(example = "30")]
    expiry_year: String,
    /// 3 or 4 digits.
    #[schema(example = "123")]
    cvv: String,
    holder_name: String,
}

/// Create a payment (merchant API). Honours `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/api/v1/payments",
    tag = "payments",
    request_body = CreatePaymentBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the same answer, no new payment (24 h, per merchant); empty counts as absent")),
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 201, description = "Created, `pending`", body = PaymentView),
        (status = 400, description = "Bad input: INVALID_VPA, INVALID_CARD, EXPIRED_CARD, BAD_REQUEST_ERROR", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown order, or another merchant's", body = ErrorBody),
        (status = 409, description = "The same Idempotency-Key is still in progress", body = ErrorBody),
        (status = 422, description = "IDEMPOTENCY_ERROR: the key was used with another request", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    headers: HeaderMap,
    body: ApiJsonWithBytes<CreatePaymentBody>,
) -> Result<CommandResponse, ApiError> {
    let request = idempotency::Request::post(&headers, "/api/v1/payments", &body.bytes)?;
    let metadata = request.stamp(merchant_metadata(merchant.merchant_id));
    request
        .once(state.store.pool(), merchant.merchant_id, || {
            create_payment(&state, merchant.merchant_id, body.value, metadata)
        })
        .await
}

/// Create a payment from the checkout. No secret, and no key needed: the
/// order names its merchant, as in the original design, whose checkout is
/// opened as `/checkout?order_id=…`. A publishable key, when sent, must be
/// the order's merchant's. Honours `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/api/v1/payments/public",
    tag = "payments",
    request_body = CreatePaymentBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the same answer, no new payment (24 h, per merchant); empty counts as absent")),
    security((), ("api_key" = [])),
    responses(
        (status = 201, description = "Created, `pending`", body = PaymentView),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "An unknown key, or the merchant is suspended", body = ErrorBody),
        (status = 404, description = "Unknown order, or a key of another merchant than the order's", body = ErrorBody),
        (status = 409, description = "The same Idempotency-Key is still in progress", body = ErrorBody),
        (status = 422, description = "IDEMPOTENCY_ERROR: the key was used with another request", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED: too many checkout requests from this address or for this order (`Retry-After`)", body = ErrorBody),
    )
)]
pub async fn create_public(
    State(state): State<AppState>,
    client: Client,
    key: PublishableKey,
    headers: HeaderMap,
    body: ApiJsonWithBytes<CreatePaymentBody>,
) -> Result<CommandResponse, ApiError> {
    client
        .limits
        .public_call(client.address, &body.value.order_id)?;
    let merchant = order_merchant(&state, &body.value.order_id).await?;
    if key
        .merchant_id
        .is_some_and(|key_merchant| key_merchant != merchant)
    {
        return Err(order_not_found());
    }
    if !auth::merchant_active(state.store.pool(), merchant).await? {
        return Err(auth::suspended());
    }
    let request = idempotency::Request::post(&headers, "/api/v1/payments/public", &body.bytes)?;
    let metadata = request.stamp(actor_metadata(merchant, "checkout".into()));
    request
        .once(state.store.pool(), merchant, || {
            create_payment(&state, merchant, body.value, metadata)
        })
        .await
}

/// The merchant whose order this is; an unknown order is "not found".
async fn order_merchant(state: &AppState, order_id: &str) -> Result<MerchantId, ApiError> {
    let order_id: OrderId = order_id.parse().map_err(|_| order_not_found())?;
    runner::load::<OrderAggregate>(&state.store, &order_id)
        .await?
        .state
        .map(|order| order.merchant_id)
        .ok_or_else(order_not_found)
}

fn order_not_found() -> ApiError {
    ApiError::not_found("Order not found").with_field("order_id")
}

fn payment_not_found() -> ApiError {
    ApiError::not_found("Payment not found")
}

/// The merchant's own order, as loaded; another merchant's is "not found".
async fn own_order(
    state: &AppState,
    merchant: MerchantId,
    order_id: &str,
) -> Result<(Order, Loaded<OrderAggregate>), ApiError> {
    let order_id: OrderId = order_id.parse().map_err(|_| order_not_found())?;
    let loaded = runner::load::<OrderAggregate>(&state.store, &order_id).await?;
    let order = loaded
        .state
        .clone()
        .filter(|order| order.merchant_id == merchant)
        .ok_or_else(order_not_found)?;
    Ok((order, loaded))
}

async fn own_payment(
    state: &AppState,
    merchant: MerchantId,
    payment_id: &str,
) -> Result<PaymentId, ApiError> {
    let payment_id: PaymentId = payment_id.parse().map_err(|_| payment_not_found())?;
    runner::load::<PaymentAggregate>(&state.store, &payment_id)
        .await?
        .state
        .filter(|payment| payment.merchant_id == merchant)
        .ok_or_else(payment_not_found)?;
    Ok(payment_id)
}

async fn create_payment(
    state: &AppState,
    merchant: MerchantId,
    body: CreatePaymentBody,
    metadata: EventMetadata,
) -> Result<CommandResponse, ApiError> {
    let method = match body.method {
        Method::Upi => PaymentMethodInput::Upi {
            vpa: body.vpa.ok_or_else(|| {
                ApiError::bad_request("vpa is required for UPI payments").with_field("vpa")
            })?,
        },
        Method::Card => PaymentMethodInput::Card(body.card.ok_or_else(|| {
            ApiError::bad_request("card is required for card payments").with_field("card")
        })?),
    };
    let (order, loaded_order) = own_order(state, merchant, &body.order_id).await?;
    let payment_id = PaymentId::from_random_bytes(rand::random());
    let now = Utc::now();
    let command = CreatePayment {
        payment_id: payment_id.clone(),
        merchant_id: merchant,
        order_id: order.order_id.clone(),
        amount: order.amount,
        order_paid: order.is_paid(),
        method,
        current_year: now.year(),
        current_month: now.month(),
        at: now,
    };
    // The payment, then the order's attempted mark, in a task of their own:
    // a client that hangs up in between cannot cancel the mark.
    let store = state.store.clone();
    let order_id = order.order_id.clone();
    let work = tokio::spawn(async move {
        let created = runner::create::<PaymentAggregate, _>(&store, &payment_id, &metadata, |_| {
            Ok(command.clone().into())
        })
        .await?;
        let attempted =
            mark_attempted(&store, loaded_order, &order_id, &payment_id, now, &metadata).await;
        Ok::<_, CommandError>((created, attempted))
    });
    let (created, attempted) = work.await.map_err(|error| ApiError::internal(&error))??;
    let mut position = created.position;
    match attempted {
        Ok(executed) => position = position.max(executed.position),
        // The payment stands; the order stays `created` until it is paid,
        // which implies attempted (`Order::payment_attempted`).
        Err(error) => {
            tracing::warn!(%error, order_id = %order.order_id, "order not marked attempted")
        }
    }
    state.relay_signal.notify();
    let payment = created.state.as_ref().ok_or_else(payment_not_found)?;
    Ok(CommandResponse::new(
        StatusCode::CREATED,
        views::body(PaymentView::from(payment)),
        position,
    ))
}

/// Tries at the order's attempted mark, in all (each one retrying version
/// conflicts itself, see `runner`).
const ATTEMPTED_MARK_TRIES: u32 = 3;

/// The order follows its payments: created → attempted, a no-op once
/// attempted or paid (the acquirer may have claimed it already). `loaded` is
/// the order as loaded before the payment was created: if it is stale, the
/// append conflicts and the runner decides again on a fresh load. A stream
/// that stays busy, or a store error, is tried again on a fresh load after
/// a short pause, [`ATTEMPTED_MARK_TRIES`] times in all.
async fn mark_attempted(
    store: &PgEventStore,
    loaded: Loaded<OrderAggregate>,
    order_id: &OrderId,
    payment_id: &PaymentId,
    at: DateTime<Utc>,
    metadata: &EventMetadata,
) -> Result<Executed<OrderAggregate>, CommandError> {
    let command = |_: &OrderState| -> Result<OrderCommand, DomainError> {
        Ok(MarkOrderAttempted {
            payment_id: payment_id.clone(),
            at,
        }
        .into())
    };
    let mut result =
        runner::execute_loaded::<OrderAggregate, _>(store, loaded, metadata, command).await;
    for attempt in 1..ATTEMPTED_MARK_TRIES {
        if !matches!(
            result,
            Err(CommandError::Contention(_) | CommandError::Store(_))
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25 * u64::from(attempt))).await;
        result = runner::execute::<OrderAggregate, _>(store, order_id, metadata, command).await;
    }
    result
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CaptureBody {
    /// Minor units, 1 up to the payment amount.
    amount: i64,
}

/// Capture a successful payment, once.
#[utoipa::path(
    post,
    path = "/api/v1/payments/{id}/capture",
    tag = "payments",
    params(
        ("id" = String, Path, description = "pay_…"),
        ("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the same answer, no second capture (24 h, per merchant); empty counts as absent"),
    ),
    request_body = CaptureBody,
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Captured", body = PaymentView),
        (status = 400, description = "Payment not in capturable state, or a bad amount", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown payment, or another merchant's", body = ErrorBody),
        (status = 409, description = "The same Idempotency-Key is still in progress", body = ErrorBody),
        (status = 422, description = "IDEMPOTENCY_ERROR: the key was used with another request", body = ErrorBody),
    )
)]
pub async fn capture(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    ApiPath(payment_id): ApiPath<String>,
    headers: HeaderMap,
    body: ApiJsonWithBytes<CaptureBody>,
) -> Result<CommandResponse, ApiError> {
    let path = format!("/api/v1/payments/{payment_id}/capture");
    let request = idempotency::Request::post(&headers, &path, &body.bytes)?;
    let metadata = request.stamp(merchant_metadata(merchant.merchant_id));
    request
        .once(state.store.pool(), merchant.merchant_id, || {
            capture_payment(&state, &merchant, &payment_id, body.value, metadata)
        })
        .await
}

async fn capture_payment(
    state: &AppState,
    merchant: &AuthenticatedMerchant,
    payment_id: &str,
    body: CaptureBody,
    metadata: EventMetadata,
) -> Result<CommandResponse, ApiError> {
    let payment_id = own_payment(state, merchant.merchant_id, payment_id).await?;
    let at = Utc::now();
    let executed =
        runner::execute::<PaymentAggregate, _>(&state.store, &payment_id, &metadata, |_| {
            Ok(CapturePayment {
                amount: body.amount,
                at,
            }
            .into())
        })
        .await?;
    state.relay_signal.notify();
    let payment: &Payment = executed.state.as_ref().ok_or_else(payment_not_found)?;
    Ok(CommandResponse::new(
        StatusCode::OK,
        views::body(PaymentView::from(payment)),
        executed.position,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefundBody {
    /// Minor units; pending and processed refunds never exceed the amount.
    amount: i64,
    /// At most 255 characters.
    #[serde(default)]
    reason: Option<String>,
}

/// Refund (part of) a successful payment.
#[utoipa::path(
    post,
    path = "/api/v1/payments/{id}/refunds",
    tag = "payments",
    params(
        ("id" = String, Path, description = "pay_…"),
        ("Idempotency-Key" = Option<String>, Header, description = "Same key and body: the same answer, no second refund (24 h, per merchant); empty counts as absent"),
    ),
    request_body = RefundBody,
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 201, description = "Created, `pending`", body = RefundView),
        (status = 400, description = "Refund amount exceeds available amount, payment not refundable, or bad input", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown payment, or another merchant's", body = ErrorBody),
        (status = 409, description = "The same Idempotency-Key is still in progress", body = ErrorBody),
        (status = 422, description = "IDEMPOTENCY_ERROR: the key was used with another request", body = ErrorBody),
    )
)]
pub async fn refund(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    ApiPath(payment_id): ApiPath<String>,
    headers: HeaderMap,
    body: ApiJsonWithBytes<RefundBody>,
) -> Result<CommandResponse, ApiError> {
    let path = format!("/api/v1/payments/{payment_id}/refunds");
    let request = idempotency::Request::post(&headers, &path, &body.bytes)?;
    let metadata = request.stamp(merchant_metadata(merchant.merchant_id));
    request
        .once(state.store.pool(), merchant.merchant_id, || {
            request_refund(&state, &merchant, &payment_id, body.value, metadata)
        })
        .await
}

async fn request_refund(
    state: &AppState,
    merchant: &AuthenticatedMerchant,
    payment_id: &str,
    body: RefundBody,
    metadata: EventMetadata,
) -> Result<CommandResponse, ApiError> {
    let payment_id = own_payment(state, merchant.merchant_id, payment_id).await?;
    let refund_id = RefundId::from_random_bytes(rand::random());
    let at = Utc::now();
    let executed =
        runner::execute::<PaymentAggregate, _>(&state.store, &payment_id, &metadata, |_| {
            Ok(RequestRefund {
                refund_id: refund_id.clone(),
                amount: body.amount,
                reason: body.reason.clone(),
                at,
            }
            .into())
        })
        .await?;
    state.relay_signal.notify();
    let payment: &Payment = executed.state.as_ref().ok_or_else(payment_not_found)?;
    let refund = payment
        .refunds
        .get(&refund_id)
        .ok_or_else(payment_not_found)?;
    Ok(CommandResponse::new(
        StatusCode::CREATED,
        views::body(RefundView::new(payment, refund)),
        executed.position,
    ))
}
