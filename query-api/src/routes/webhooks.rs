//! The merchant's webhooks, read side:
//!
//! * `GET /api/v1/webhooks?limit=&offset=`: the delivery log in the original
//!   gateway's shape, from the `webhooks` projection (`rm_webhook_deliveries`).
//! * `GET /api/v1/webhooks/{id}`: one delivery with every attempt, folded
//!   from the delivery's stream (read your writes: a test event or a retry
//!   just acknowledged is already there).
//! * `GET /api/v1/webhooks/config`: the endpoint and the signing secret,
//!   folded from the merchant's stream (read your writes after `PUT`), with
//!   the string to give the official Standard Webhooks libraries
//!   ([`signature::standard_webhooks_secret`]).
//!
//! Another merchant's delivery is a 404, like one that does not exist.

use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use paystream_domain::api::{timestamp, ErrorBody};
pub use paystream_domain::api::{
    WebhookAttemptView, WebhookDeliveryView, WebhookLog, WebhookLogItem, WebhookSettingsView,
};
use paystream_domain::merchant::MerchantAggregate;
use paystream_domain::signature;
use paystream_domain::webhook::{
    WebhookDelivery, WebhookDeliveryAggregate, WebhookDeliveryEvent, WebhookDeliveryStatus,
};
use paystream_domain::{DomainEvent, WebhookDeliveryId};
use paystream_kit::http::error::ApiError;
use paystream_store::RecordedEvent;
use sqlx::Row;

use super::ObjectId;
use crate::auth::MerchantReader;
use crate::fold;
use crate::freshness::MinPosition;
use crate::listing::{corrupt_row, Params};
use crate::startup::QueryState;

/// Default and largest `limit` of the delivery log (the original gateway's).
pub const DEFAULT_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 100;

pub fn router() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/webhooks", get(list_deliveries))
        .route("/api/v1/webhooks/config", get(get_config))
        .route("/api/v1/webhooks/{id}", get(get_delivery))
}

fn delivery_not_found() -> ApiError {
    ApiError::not_found("Webhook delivery not found")
}

fn status_text(status: WebhookDeliveryStatus) -> &'static str {
    match status {
        WebhookDeliveryStatus::Pending => "pending",
        WebhookDeliveryStatus::Success => "success",
        WebhookDeliveryStatus::Failed => "failed",
    }
}

// ---- GET /api/v1/webhooks ------------------------------------------------------

/// The merchant's webhook deliveries, newest first (from the read model).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 10"),
        ("offset" = Option<u32>, Query, description = "Deliveries to skip, default 0"),
        ("X-Min-Position" = Option<i64>, Header, description = "An `X-Event-Position`: wait (at most 5 s) until the log reflects it"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of the delivery log", body = WebhookLog),
        (status = 400, description = "Bad `limit` or `offset` (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 503, description = "`PROJECTION_BEHIND`: the read model did not reach `X-Min-Position` in time", body = ErrorBody),
    )
)]
pub async fn list_deliveries(
    State(state): State<QueryState>,
    merchant: MerchantReader,
    min_position: MinPosition,
    params: Params,
) -> Result<Json<WebhookLog>, ApiError> {
    let limit = params.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let offset = params.integer("offset", 0, i64::from(i32::MAX), 0)?;
    let pool = state.store.pool();
    min_position.wait(&state.store, "webhooks").await?;
    let merchant_id: uuid::Uuid = merchant.merchant_id.into();
    // One snapshot for the page and the total.
    let mut transaction = pool.begin().await?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *transaction)
        .await?;
    let total: i64 =
        sqlx::query_scalar("select count(*) from rm_webhook_deliveries where merchant_id = $1")
            .bind(merchant_id)
            .fetch_one(&mut *transaction)
            .await?;
    let rows = sqlx::query(
        "select delivery_id, event, status, attempts, created_at, last_attempt_at, response_code \
         from rm_webhook_deliveries where merchant_id = $1 \
         order by created_at desc, delivery_id desc limit $2 offset $3",
    )
    .bind(merchant_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *transaction)
    .await?;
    transaction.commit().await?;
    let data = rows
        .iter()
        .map(|row| {
            Ok(WebhookLogItem {
                id: row.try_get("delivery_id")?,
                event: row.try_get("event")?,
                status: row.try_get("status")?,
                attempts: row.try_get("attempts")?,
                created_at: timestamp(row.try_get("created_at")?),
                last_attempt_at: row
                    .try_get::<Option<DateTime<Utc>>, _>("last_attempt_at")?
                    .map(timestamp),
                response_code: row.try_get("response_code")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(|error| corrupt_row("rm_webhook_deliveries", error))?;
    Ok(Json(WebhookLog {
        data,
        total,
        limit,
        offset,
    }))
}

// ---- GET /api/v1/webhooks/{id} ---------------------------------------------------

/// The delivery and its attempts, from the delivery's events.
pub fn delivery_view(
    delivery: &WebhookDelivery,
    events: &[RecordedEvent],
) -> Result<WebhookDeliveryView, ApiError> {
    let mut round = 1;
    let mut attempt_log = Vec::new();
    for recorded in events {
        let event = WebhookDeliveryEvent::from_stored(
            &recorded.event_type,
            recorded.schema_version,
            recorded.payload.clone(),
        )
        .map_err(|error| corrupt_row("webhook delivery stream", error))?;
        match event {
            WebhookDeliveryEvent::WebhookRetryRequested(_) => round += 1,
            WebhookDeliveryEvent::WebhookAttemptRecorded(attempt) => {
                attempt_log.push(WebhookAttemptView {
                    attempt: attempt.attempt,
                    round,
                    version: recorded.version,
                    attempted_at: timestamp(attempt.attempted_at),
                    status_code: attempt.status_code,
                    latency_ms: attempt.latency_ms,
                    error: attempt.error,
                    response_body_excerpt: attempt.response_body_excerpt,
                    retry_after_seconds: attempt.retry_after_seconds,
                });
            }
            _ => {}
        }
    }
    Ok(WebhookDeliveryView {
        id: delivery.delivery_id.to_string(),
        event: delivery.event.clone(),
        url: delivery.url.clone(),
        status: status_text(delivery.status).to_owned(),
        attempts: delivery.attempts,
        max_attempts: delivery.max_attempts(),
        next_retry_at: delivery.next_attempt_at.map(timestamp),
        last_attempt_at: delivery.last_attempt_at.map(timestamp),
        response_code: delivery.last_status_code,
        delivered_at: delivery.delivered_at.map(timestamp),
        failure_reason: delivery.failure_reason.clone(),
        created_at: timestamp(delivery.created_at),
        updated_at: timestamp(delivery.updated_at),
        body: delivery.body.clone(),
        attempt_log,
    })
}

/// One delivery with every attempt, folded from its stream.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "whd_…")),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The delivery and its attempts", body = WebhookDeliveryView),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown delivery, or another merchant's", body = ErrorBody),
    )
)]
pub async fn get_delivery(
    State(state): State<QueryState>,
    merchant: MerchantReader,
    ObjectId(id): ObjectId,
) -> Result<Json<WebhookDeliveryView>, ApiError> {
    let delivery_id: WebhookDeliveryId = id.parse().map_err(|_| delivery_not_found())?;
    let folded = fold::load::<WebhookDeliveryAggregate>(&state.store, &delivery_id, None).await?;
    let delivery = folded
        .state
        .as_ref()
        .filter(|delivery| delivery.merchant_id == merchant.merchant_id)
        .ok_or_else(delivery_not_found)?;
    Ok(Json(delivery_view(delivery, &folded.events)?))
}

// ---- GET /api/v1/webhooks/config ----------------------------------------------------

/// The webhook configuration, folded from the merchant's stream.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/config",
    tag = "webhooks",
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The configuration, the secret and the string to give the official Standard Webhooks libraries (`Cache-Control: no-store`)", body = WebhookSettingsView),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
    )
)]
pub async fn get_config(
    State(state): State<QueryState>,
    merchant: MerchantReader,
) -> Result<impl IntoResponse, ApiError> {
    let folded = fold::load::<MerchantAggregate>(&state.store, merchant.merchant_id, None).await?;
    let webhook = &folded
        .state
        .as_ref()
        .ok_or_else(|| ApiError::not_found("Merchant not found"))?
        .webhook;
    let view = WebhookSettingsView {
        url: webhook.url.clone(),
        events: webhook.events.clone(),
        enabled: webhook.enabled,
        disabled_reason: webhook.disabled_reason.clone(),
        secret: webhook.secret.clone(),
        standard_webhooks_secret: signature::standard_webhooks_secret(&webhook.secret),
        previous_secret_valid_until: webhook
            .previous_secret
            .as_ref()
            .and(webhook.previous_secret_valid_until)
            .map(timestamp),
    };
    // The secret is in the body: no cache may keep it.
    Ok((
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(view),
    ))
}
