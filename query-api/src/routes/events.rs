//! `GET /api/v1/events?after=<position>&limit=`: the merchant's own event
//! feed, in global order.
//!
//! It reads the event store's `events` table (index `events_merchant_position`),
//! not a read model and not JetStream:
//!
//! * **complete**: every event tagged with the merchant, whatever its
//!   category (orders, payments, refunds, webhook deliveries, the merchant
//!   itself), with nothing a projection could have dropped or parked;
//! * **no lag**: an event is in the feed as soon as the log below the horizon
//!   includes it, with no projection in between;
//! * **no retention limit**: the store keeps everything (JetStream keeps 7
//!   days), so a merchant can catch up from position 0 at any time.
//!
//! Only positions below `events_horizon()` are returned: a transaction that
//! commits late holds the horizon back, so no event can ever appear behind a
//! position a client already read (the same rule the relay follows). A
//! client stores `next_after` and asks again with it; it never misses an
//! event and never sees one twice.
//!
//! Merchant events carry secrets (password and API secret hashes, webhook
//! signing secrets); in the feed those members are replaced by
//! `"[REDACTED]"`, exactly as in the audit export (one implementation:
//! [`super::audit::redact`]).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use paystream_domain::api::ErrorBody;
use paystream_kit::http::error::ApiError;
use paystream_store::{EventStore, Position};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::redact;
use crate::auth::MerchantReader;
use crate::listing::Params;
use crate::startup::QueryState;
use crate::views::recorded_at;

/// Default and largest `limit` of a feed page.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

pub fn router() -> Router<QueryState> {
    Router::new().route("/api/v1/events", get(feed))
}

/// One event of the feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedEvent {
    /// Place in the global log; grows, not dense.
    pub position: i64,
    /// The event's id (UUID v7): de-duplicates.
    pub event_id: Uuid,
    /// `order-order_…`, `payment-pay_…`, `webhook-whd_…`, `merchant-<uuid>`.
    #[schema(example = "payment-pay_H8sK3jD9s2L1pQr5")]
    pub stream_id: String,
    /// Place in its stream, from 1, gapless.
    pub version: i64,
    #[serde(rename = "type")]
    #[schema(example = "PaymentSucceeded")]
    pub event_type: String,
    pub schema_version: i16,
    /// RFC 3339 with microseconds.
    pub recorded_at: String,
    /// The stored payload (secrets of merchant events redacted).
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// One page of the feed, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Feed {
    pub data: Vec<FeedEvent>,
    /// True when more events are already there: ask again at once.
    pub has_more: bool,
    /// Send as `after` next time: the last event's position, or `after`
    /// itself when the page is empty.
    pub next_after: i64,
}

/// The merchant's events after a position, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(
        ("after" = Option<i64>, Query, description = "A position (`next_after` of the previous page); default 0: from the beginning"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "Events after `after`, in global order", body = Feed),
        (status = 400, description = "Bad `after` or `limit` (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
    )
)]
pub async fn feed(
    State(state): State<QueryState>,
    merchant: MerchantReader,
    params: Params,
) -> Result<Json<Feed>, ApiError> {
    let after = params.integer("after", 0, i64::MAX, 0)?;
    let limit = params.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let events = state
        .store
        .read_merchant(
            Uuid::from(merchant.merchant_id),
            Position(after),
            usize::try_from(limit + 1).unwrap_or(usize::MAX),
        )
        .await?;
    let mut data: Vec<FeedEvent> = events
        .into_iter()
        .map(|event| {
            let mut payload = event.payload;
            if event.stream_id.category() == "merchant" {
                redact(&mut payload);
            }
            FeedEvent {
                position: event.position.0,
                event_id: event.event_id,
                stream_id: event.stream_id.to_string(),
                version: i64::try_from(event.version).unwrap_or(i64::MAX),
                event_type: event.event_type,
                schema_version: i16::try_from(event.schema_version).unwrap_or(i16::MAX),
                recorded_at: recorded_at(event.recorded_at),
                payload,
            }
        })
        .collect();
    let has_more = data.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    data.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_after = data.last().map_or(after, |event| event.position);
    Ok(Json(Feed {
        data,
        has_more,
        next_after,
    }))
}
