//! Webhook configuration and operations, as commands that append events (the
//! dispatcher that actually sends deliveries is a separate service):
//!
//! * `PUT /api/v1/webhooks/config` `{url, events?}`: set or clear the endpoint.
//!   Names no endpoint may have are refused in every profile (a final dot,
//!   `.internal`, a single label other than `localhost`:
//!   [`paystream_domain::validation::check_target_name`]). The URL's host is
//!   resolved (bounded by [`URL_RESOLVE_TIMEOUT`]) and every address judged
//!   by the profile's [`AddressPolicy`]: production allows public addresses
//!   only, and a name that does not resolve is refused too; dev allows
//!   loopback as well, but not on the ports the system itself listens on
//!   (`PAYSTREAM_SYSTEM_PORTS` and this API's own port). In dev a name that
//!   does not resolve is accepted, for offline work, unless its port is one
//!   of those. The dispatcher checks again at every attempt, because DNS
//!   answers change.
//! * `POST /api/v1/webhooks/regenerate-secret`: a new signing secret
//!   ([`new_webhook_secret`]); the old one keeps signing for
//!   [`SECRET_OVERLAP_HOURS`]. The answer shows the secret and the string to
//!   give the official Standard Webhooks libraries
//!   ([`signature::standard_webhooks_secret`]).
//! * `POST /api/v1/webhooks/test`: schedules a `webhook.test` delivery.
//! * `POST /api/v1/webhooks/{id}/retry`: re-sends one delivery, attempts reset.
//! * `POST /api/v1/webhooks/recover` `{since}`: re-sends every delivery that
//!   failed at or after `since` and is still failed.
//!
//! Another merchant's delivery is a 404, like one that does not exist. The
//! POSTs without a body take [`NoBody`].

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{post, put};
use axum::Router;
use chrono::{DateTime, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt};
use paystream_domain::merchant::{
    ConfigureWebhook, Merchant, MerchantAggregate, RegenerateWebhookSecret, WebhookSettings,
};
use paystream_domain::signature::{self, SECRET_RANDOM_BYTES};
use paystream_domain::validation::{
    webhook_target, AddressPolicy, AddressRefusal, SystemPorts, TargetHost,
};
use paystream_domain::webhook::{
    RetryWebhookDelivery, ScheduleWebhookDelivery, WebhookDelivery, WebhookDeliveryAggregate,
    WebhookDeliveryStatus, RETRY_INTERVALS_SECONDS, TEST_RETRY_INTERVALS_SECONDS,
    WEBHOOK_TEST_EVENT,
};
use paystream_domain::{DomainError, MerchantId, WebhookDeliveryId};
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::merchant_metadata;
use crate::config::Profile;
use crate::http::idempotency;
use crate::http::response::CommandResponse;
use crate::startup::AppState;
use paystream_domain::api::{self as views, ErrorBody};
use paystream_kit::http::auth::AuthenticatedMerchant;
use paystream_kit::http::error::ApiError;
use paystream_kit::http::json::{ApiJson, NoBody};
use paystream_kit::http::path::ApiPath;
use paystream_store::runner::{self, CommandError};
use paystream_store::{EventMetadata, EventStore, Position, StoreError};

/// How long the previous signing secret keeps signing after a regeneration.
pub const SECRET_OVERLAP_HOURS: i64 = 24;

/// How long resolving a webhook URL's host may take at configuration time.
pub const URL_RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// The most deliveries one `recover` call re-schedules; the answer's
/// `has_more` says when another call would find more.
pub const RECOVER_LIMIT: i64 = 1000;

/// Deliveries `recover` re-schedules at the same time.
const RECOVER_CONCURRENCY: usize = 8;

/// The `data.message` of a test event.
pub const TEST_EVENT_MESSAGE: &str = "Test webhook from Paystream";

/// Env switch for the short retry schedule (contract: `=true`).
pub const TEST_INTERVALS_ENV: &str = "WEBHOOK_RETRY_INTERVALS_TEST";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/webhooks/config", put(configure))
        .route(
            "/api/v1/webhooks/regenerate-secret",
            post(regenerate_secret),
        )
        .route("/api/v1/webhooks/test", post(send_test))
        .route("/api/v1/webhooks/recover", post(recover))
        .route("/api/v1/webhooks/{id}/retry", post(retry))
}

/// The retry schedule of new deliveries: the test schedule when
/// `WEBHOOK_RETRY_INTERVALS_TEST=true` (read once per process), else production.
pub fn retry_intervals() -> &'static [u32] {
    static TEST: LazyLock<bool> = LazyLock::new(|| {
        std::env::var(TEST_INTERVALS_ENV)
            .is_ok_and(|value| value.trim().eq_ignore_ascii_case("true"))
    });
    if *TEST {
        &TEST_RETRY_INTERVALS_SECONDS
    } else {
        &RETRY_INTERVALS_SECONDS
    }
}

fn delivery_not_found() -> ApiError {
    ApiError::not_found("Webhook delivery not found")
}

fn merchant_state(merchant: &Option<Merchant>) -> Result<&Merchant, ApiError> {
    merchant
        .as_ref()
        .ok_or_else(|| ApiError::from(DomainError::MerchantNotFound))
}

// ---- PUT /api/v1/webhooks/config ---------------------------------------------

/// `url` must be present: a string sets the endpoint, `null` (or an empty
/// string, as a cleared form field sends) removes it. `events` omitted or
/// `null` keeps the current subscription; `[]` subscribes to every event.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WebhookConfigBody {
    /// Absolute http(s) URL, at most 2048 characters, without credentials
    /// (`user:password@`), whose host is not a name with a final dot, an
    /// `.internal` name or a single-label name other than `localhost`, to an
    /// address the profile allows (production: public addresses only, and
    /// the host must resolve; dev: loopback too, but not on the ports the
    /// system itself listens on); `null` or `""` removes the endpoint.
    /// Required.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, required = true, example = "https://shop.example.com/webhooks")]
    url: Option<Option<String>>,
    /// Subscribed events (`payment.created`, `payment.pending`,
    /// `payment.success`, `payment.failed`, `refund.created`,
    /// `refund.processed`); `[]` means all; omitted keeps the current list.
    #[serde(default)]
    events: Option<Vec<String>>,
}

/// The merchant's webhook endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookConfigView {
    pub url: Option<String>,
    /// Subscribed events; empty means all.
    pub events: Vec<String>,
    /// False when no URL is set, or after the endpoint answered `410 Gone`
    /// (saving the configuration again re-enables it).
    pub enabled: bool,
}

impl From<&WebhookSettings> for WebhookConfigView {
    fn from(webhook: &WebhookSettings) -> Self {
        Self {
            url: webhook.url.clone(),
            events: webhook.events.clone(),
            enabled: webhook.enabled,
        }
    }
}

/// Tells a field sent as `null` (`Some(None)`) from a missing one (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Set, change or remove the webhook endpoint.
#[utoipa::path(
    put,
    path = "/api/v1/webhooks/config",
    tag = "webhooks",
    request_body = WebhookConfigBody,
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The configuration now; `X-Event-Position` unless nothing changed", body = WebhookConfigView),
        (status = 400, description = "Bad URL (not absolute http(s), credentials in it, a host name with a final dot, an .internal or single-label name, an address the profile does not allow, a port the system listens on, or in production a host that does not resolve) or unknown event name; `field` says which", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
    )
)]
pub async fn configure(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    ApiJson(body): ApiJson<WebhookConfigBody>,
) -> Result<CommandResponse, ApiError> {
    let url = body.url.ok_or_else(|| {
        ApiError::bad_request("url is required (null removes the endpoint)").with_field("url")
    })?;
    let url = url
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty());
    if let Some(url) = &url {
        check_target(&state.webhook_targets, url).await?;
    }
    let metadata = merchant_metadata(merchant.merchant_id);
    let executed = runner::execute::<MerchantAggregate, _>(
        &state.store,
        merchant.merchant_id,
        &metadata,
        |current| {
            let events = match &body.events {
                Some(events) => events.clone(),
                None => current
                    .as_ref()
                    .map(|merchant| merchant.webhook.events.clone())
                    .unwrap_or_default(),
            };
            Ok(ConfigureWebhook {
                url: url.clone(),
                events,
            }
            .into())
        },
    )
    .await?;
    if executed.position.is_some() {
        state.relay_signal.notify();
    }
    let merchant = merchant_state(&executed.state)?;
    Ok(CommandResponse::new(
        StatusCode::OK,
        views::body(WebhookConfigView::from(&merchant.webhook)),
        executed.position,
    ))
}

/// The targets a profile allows (the dispatcher applies the same rule):
/// in dev, loopback too, but never on `system_ports`.
pub fn address_policy(profile: Profile, system_ports: SystemPorts) -> AddressPolicy {
    match profile {
        Profile::Production => AddressPolicy::PublicOnly,
        Profile::Dev => AddressPolicy::PublicAndLoopback { system_ports },
    }
}

fn bad_url(description: String) -> ApiError {
    ApiError::bad_request(description).with_field("url")
}

fn system_port(port: u16) -> ApiError {
    bad_url(format!(
        "url must not point to port {port} on loopback: Paystream itself listens there"
    ))
}

/// Refuses `url` (a 400 on `url`) unless its host is allowed by `policy`:
/// a name no endpoint may have is refused outright; an address literal is
/// judged as it is (`127.1`, `2130706433` and `0x7f000001` are 127.0.0.1),
/// a name by every address it resolves to. A name that does not resolve is
/// refused in production; in dev only when its port is a system port.
pub async fn check_target(policy: &AddressPolicy, url: &str) -> Result<(), ApiError> {
    let target = webhook_target(url)?;
    let port = target.port;
    let (name, addresses) = match target.host {
        TargetHost::Ip(address) => (None, vec![address]),
        TargetHost::Name(name) => match resolve(&name, port).await {
            Some(addresses) => {
                let addresses = addresses.iter().map(SocketAddr::ip).collect();
                (Some(name), addresses)
            }
            None => {
                return match policy {
                    AddressPolicy::PublicOnly => {
                        Err(bad_url(format!("url host {name} could not be resolved")))
                    }
                    // Dev: offline work is allowed; the dispatcher checks at
                    // delivery. But a name that may stand for loopback is no
                    // excuse to aim at the system's own ports.
                    AddressPolicy::PublicAndLoopback { system_ports } => {
                        if system_ports.contains(port) {
                            Err(bad_url(format!(
                                "url host {name} could not be resolved, and port {port} is \
                                 one Paystream itself listens on"
                            )))
                        } else {
                            Ok(())
                        }
                    }
                };
            }
        },
    };
    for address in addresses {
        match policy.check(address, Some(port)) {
            Ok(()) => {}
            Err(AddressRefusal::SystemPort(port)) => return Err(system_port(port)),
            Err(AddressRefusal::NotPublic(address)) => {
                let allowed = match policy {
                    AddressPolicy::PublicOnly => "a public address",
                    AddressPolicy::PublicAndLoopback { .. } => {
                        "a public or loopback address in the dev profile"
                    }
                };
                return Err(bad_url(match &name {
                    Some(name) => {
                        format!(
                            "url host {name} resolves to {address}; url must point to {allowed}"
                        )
                    }
                    None => format!("url must point to {allowed}, not {address}"),
                }));
            }
        }
    }
    Ok(())
}

/// Every address of `name`, or `None` when it does not resolve in
/// [`URL_RESOLVE_TIMEOUT`] (or resolves to nothing).
async fn resolve(name: &str, port: u16) -> Option<Vec<SocketAddr>> {
    let lookup = tokio::net::lookup_host((name, port));
    match tokio::time::timeout(URL_RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(addresses)) => Some(addresses.collect::<Vec<_>>()).filter(|a| !a.is_empty()),
        Ok(Err(_)) | Err(_) => None,
    }
}

// ---- POST /api/v1/webhooks/regenerate-secret ---------------------------------

/// A new webhook secret: `whsec_` + base64 of [`SECRET_RANDOM_BYTES`] bytes
/// from the operating system's CSPRNG ([`signature::new_secret`]).
pub fn new_webhook_secret() -> String {
    let mut random = [0u8; SECRET_RANDOM_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut random);
    signature::new_secret(&random)
}

/// The new signing secret and how long the previous one keeps signing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookSecretView {
    /// Keys `X-Webhook-Signature` (hex HMAC-SHA256 keyed with this whole
    /// string, `whsec_` included).
    #[schema(example = "whsec_yPaRKblRtfMog+dz8WHIATAAUDkkRkxWywde9HhJp68=")]
    pub webhook_secret: String,
    /// The string to give the official Standard Webhooks libraries
    /// (`webhook-signature`); the same as `webhook_secret` for every secret
    /// generated here.
    #[schema(example = "whsec_yPaRKblRtfMog+dz8WHIATAAUDkkRkxWywde9HhJp68=")]
    pub standard_webhooks_secret: String,
    /// RFC 3339; until then webhooks carry signatures with both secrets.
    pub previous_secret_valid_until: Option<String>,
}

/// Generate a new webhook signing secret (shown only in this answer).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/regenerate-secret",
    tag = "webhooks",
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The new secret, and the string to give the official Standard Webhooks libraries; the previous secret keeps signing for 24 h", body = WebhookSecretView),
        (status = 400, description = "A body that is not empty and not a JSON object", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
    )
)]
pub async fn regenerate_secret(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    _: NoBody,
) -> Result<impl IntoResponse, ApiError> {
    let metadata = merchant_metadata(merchant.merchant_id);
    let secret = new_webhook_secret();
    let previous_valid_until = Utc::now() + TimeDelta::hours(SECRET_OVERLAP_HOURS);
    let executed = runner::execute::<MerchantAggregate, _>(
        &state.store,
        merchant.merchant_id,
        &metadata,
        |_| {
            Ok(RegenerateWebhookSecret {
                secret: secret.clone(),
                previous_valid_until,
            }
            .into())
        },
    )
    .await?;
    state.relay_signal.notify();
    let webhook = &merchant_state(&executed.state)?.webhook;
    let response = CommandResponse::new(
        StatusCode::OK,
        views::body(WebhookSecretView {
            webhook_secret: webhook.secret.clone(),
            standard_webhooks_secret: signature::standard_webhooks_secret(&webhook.secret),
            previous_secret_valid_until: webhook.previous_secret_valid_until.map(views::timestamp),
        }),
        executed.position,
    );
    // The secret is in the body: no cache may keep it.
    Ok((
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        response,
    ))
}

// ---- POST /api/v1/webhooks/test -----------------------------------------------

/// The test event's body; fields in this order, serialized once.
#[derive(Debug, Serialize)]
struct TestEventBody<'a> {
    id: Uuid,
    event: &'a str,
    timestamp: i64,
    data: TestEventData<'a>,
}

#[derive(Debug, Serialize)]
struct TestEventData<'a> {
    message: &'a str,
}

/// A scheduled delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookTestView {
    /// `whd_` + 16 alphanumerics.
    #[schema(value_type = String, example = "whd_Q2w3E4r5T6y7U8i9")]
    pub id: WebhookDeliveryId,
    #[schema(example = "webhook.test")]
    pub event: String,
    #[schema(value_type = String, example = "pending")]
    pub status: WebhookDeliveryStatus,
}

/// Send a `webhook.test` event to the configured endpoint.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/test",
    tag = "webhooks",
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 201, description = "Delivery scheduled (sent by the dispatcher, retried on the usual schedule)", body = WebhookTestView),
        (status = 400, description = "No webhook URL configured, the endpoint is disabled, or a body that is not empty and not a JSON object", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
    )
)]
pub async fn send_test(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    _: NoBody,
) -> Result<CommandResponse, ApiError> {
    let loaded = runner::load::<MerchantAggregate>(&state.store, merchant.merchant_id).await?;
    let webhook = &merchant_state(&loaded.state)?.webhook;
    let url = match webhook.endpoint_for(WEBHOOK_TEST_EVENT) {
        Some(url) => url.to_owned(),
        None if webhook.url.is_some() => return Err(ApiError::bad_request(
            "Webhook endpoint is disabled; save the webhook configuration again to re-enable it",
        )),
        None => return Err(ApiError::bad_request("No webhook URL configured")),
    };
    let now = Utc::now();
    let event_id = Uuid::now_v7();
    let body = serde_json::to_string(&TestEventBody {
        id: event_id,
        event: WEBHOOK_TEST_EVENT,
        timestamp: now.timestamp(),
        data: TestEventData {
            message: TEST_EVENT_MESSAGE,
        },
    })
    .map_err(|error| ApiError::internal(&error))?;
    let delivery_id = WebhookDeliveryId::from_random_bytes(rand::random());
    let command = ScheduleWebhookDelivery {
        delivery_id: delivery_id.clone(),
        merchant_id: merchant.merchant_id,
        event: WEBHOOK_TEST_EVENT.to_owned(),
        source_event_id: event_id,
        url,
        body,
        retry_intervals_seconds: retry_intervals().to_vec(),
        at: now,
    };
    let metadata = merchant_metadata(merchant.merchant_id);
    let executed = runner::execute::<WebhookDeliveryAggregate, _>(
        &state.store,
        &delivery_id,
        &metadata,
        |_| Ok(command.clone().into()),
    )
    .await?;
    state.relay_signal.notify();
    let delivery = executed.state.as_ref().ok_or_else(delivery_not_found)?;
    Ok(CommandResponse::new(
        StatusCode::CREATED,
        views::body(WebhookTestView {
            id: delivery.delivery_id.clone(),
            event: delivery.event.clone(),
            status: delivery.status,
        }),
        executed.position,
    ))
}

// ---- POST /api/v1/webhooks/{id}/retry -------------------------------------------

fn own(delivery: &Option<WebhookDelivery>, merchant: MerchantId) -> Option<&WebhookDelivery> {
    delivery
        .as_ref()
        .filter(|delivery| delivery.merchant_id == merchant)
}

/// A re-scheduled delivery (the original gateway's shape).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookRetryView {
    #[schema(value_type = String, example = "whd_Q2w3E4r5T6y7U8i9")]
    pub id: WebhookDeliveryId,
    #[schema(value_type = String, example = "pending")]
    pub status: WebhookDeliveryStatus,
    #[schema(example = "Webhook retry scheduled")]
    pub message: String,
}

/// Send one delivery again now; its attempts start over. Honours
/// `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/retry",
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "whd_…"),
        ("Idempotency-Key" = Option<String>, Header, description = "Same key: the same answer, no second retry (24 h, per merchant); empty counts as absent"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Retry scheduled, attempts reset", body = WebhookRetryView),
        (status = 400, description = "A body that is not empty and not a JSON object", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 404, description = "Unknown delivery, or another merchant's", body = ErrorBody),
        (status = 409, description = "The same Idempotency-Key is still in progress", body = ErrorBody),
        (status = 422, description = "IDEMPOTENCY_ERROR: the key was used with another request", body = ErrorBody),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    _: NoBody,
) -> Result<CommandResponse, ApiError> {
    // No body: the method and path are the request.
    let path = format!("/api/v1/webhooks/{id}/retry");
    let request = idempotency::Request::post(&headers, &path, b"")?;
    let metadata = request.stamp(merchant_metadata(merchant.merchant_id));
    request
        .once(state.store.pool(), merchant.merchant_id, || {
            retry_delivery(&state, &merchant, &id, metadata)
        })
        .await
}

async fn retry_delivery(
    state: &AppState,
    merchant: &AuthenticatedMerchant,
    id: &str,
    metadata: EventMetadata,
) -> Result<CommandResponse, ApiError> {
    let delivery_id: WebhookDeliveryId = id.parse().map_err(|_| delivery_not_found())?;
    let at = Utc::now();
    // Ownership is checked on the state the command is decided on.
    let executed = runner::execute::<WebhookDeliveryAggregate, _>(
        &state.store,
        &delivery_id,
        &metadata,
        |current| match own(current, merchant.merchant_id) {
            Some(_) => Ok(RetryWebhookDelivery { at }.into()),
            None => Err(DomainError::WebhookDeliveryNotFound),
        },
    )
    .await
    .map_err(|error| match error {
        CommandError::Rejected(DomainError::WebhookDeliveryNotFound) => delivery_not_found(),
        other => other.into(),
    })?;
    state.relay_signal.notify();
    let delivery = executed.state.as_ref().ok_or_else(delivery_not_found)?;
    Ok(CommandResponse::new(
        StatusCode::OK,
        views::body(WebhookRetryView {
            id: delivery.delivery_id.clone(),
            status: delivery.status,
            message: "Webhook retry scheduled".to_owned(),
        }),
        executed.position,
    ))
}

// ---- POST /api/v1/webhooks/recover -----------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
pub struct RecoverBody {
    /// RFC 3339, not in the future: re-send what failed at or after it.
    #[schema(example = "2025-01-31T00:00:00Z")]
    since: String,
}

/// What `recover` re-scheduled.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecoverView {
    pub recovered: usize,
    /// The re-scheduled deliveries, oldest failure first.
    #[schema(value_type = Vec<String>)]
    pub ids: Vec<WebhookDeliveryId>,
    /// True when the limit (1000) was reached: call again for the rest.
    pub has_more: bool,
}

fn parse_since(since: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let since = DateTime::parse_from_rfc3339(since.trim())
        .map_err(|_| {
            ApiError::bad_request("since must be an RFC 3339 time, e.g. 2025-01-31T00:00:00Z")
                .with_field("since")
        })?
        .with_timezone(&Utc);
    if since > now {
        return Err(ApiError::bad_request("since must not be in the future").with_field("since"));
    }
    Ok(since)
}

/// Deliveries of `merchant` whose last event is a failure recorded at or
/// after `since`, oldest failure first. (There is no read model of deliveries
/// yet; this reads the event store, bounded.) A delivery re-scheduled since
/// its failure has a later event and is left out, so repeated calls progress.
async fn failed_since(
    state: &AppState,
    merchant: MerchantId,
    since: DateTime<Utc>,
) -> Result<Vec<WebhookDeliveryId>, ApiError> {
    let streams = state
        .store
        .streams_ending_with(
            "webhook",
            "WebhookDeliveryFailed",
            Uuid::from(merchant),
            since,
            usize::try_from(RECOVER_LIMIT).unwrap_or(usize::MAX),
        )
        .await?;
    streams
        .into_iter()
        .map(|stream| {
            stream
                .as_str()
                .strip_prefix("webhook-")
                .and_then(|id| id.parse::<WebhookDeliveryId>().ok())
                .ok_or_else(|| {
                    ApiError::internal(&StoreError::InvalidEvent(format!(
                        "unexpected webhook stream id {stream}"
                    )))
                })
        })
        .collect()
}

/// Re-send every delivery that failed at or after `since` and is still failed.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/recover",
    tag = "webhooks",
    request_body = RecoverBody,
    security(("api_key" = [], "api_secret" = []), ("basic" = [])),
    responses(
        (status = 200, description = "Deliveries re-scheduled (at most 1000 per call)", body = RecoverView),
        (status = 400, description = "`since` missing, not RFC 3339, or in the future", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
    )
)]
pub async fn recover(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    ApiJson(body): ApiJson<RecoverBody>,
) -> Result<CommandResponse, ApiError> {
    let now = Utc::now();
    let since = parse_since(&body.since, now)?;
    let candidates = failed_since(&state, merchant.merchant_id, since).await?;
    let has_more = candidates.len() as i64 >= RECOVER_LIMIT;
    let metadata = merchant_metadata(merchant.merchant_id);
    let outcomes: Vec<Option<(WebhookDeliveryId, Option<Position>)>> =
        futures::stream::iter(candidates)
            .map(|delivery_id| {
                let state = &state;
                let metadata = &metadata;
                async move {
                    let executed = runner::execute::<WebhookDeliveryAggregate, _>(
                        &state.store,
                        &delivery_id,
                        metadata,
                        |current| match own(current, merchant.merchant_id) {
                            Some(delivery) if delivery.status == WebhookDeliveryStatus::Failed => {
                                Ok(RetryWebhookDelivery { at: now }.into())
                            }
                            // Retried (or recovered by a concurrent call) meanwhile.
                            _ => Err(DomainError::WebhookDeliveryNotPending),
                        },
                    )
                    .await;
                    match executed {
                        Ok(executed) => Ok(Some((delivery_id, executed.position))),
                        Err(CommandError::Rejected(_)) => Ok(None),
                        Err(error) => Err(ApiError::from(error)),
                    }
                }
            })
            .buffered(RECOVER_CONCURRENCY)
            .try_collect()
            .await?;
    let recovered: Vec<(WebhookDeliveryId, Option<Position>)> =
        outcomes.into_iter().flatten().collect();
    let position = recovered.iter().filter_map(|(_, position)| *position).max();
    if position.is_some() {
        state.relay_signal.notify();
    }
    let ids: Vec<WebhookDeliveryId> = recovered.into_iter().map(|(id, _)| id).collect();
    Ok(CommandResponse::new(
        StatusCode::OK,
        views::body(RecoverView {
            recovered: ids.len(),
            ids,
            has_more,
        }),
        position,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_whsec_and_base64_of_32_random_bytes_and_differ() {
        use base64::Engine as _;

        let a = new_webhook_secret();
        let b = new_webhook_secret();
        assert_ne!(a, b);
        for secret in [a, b] {
            let tail = secret.strip_prefix("whsec_").unwrap();
            let key = base64::engine::general_purpose::STANDARD
                .decode(tail)
                .unwrap_or_else(|error| panic!("{secret}: {error}"));
            assert_eq!(key.len(), SECRET_RANDOM_BYTES);
            assert_ne!(key, [0; SECRET_RANDOM_BYTES]);
            // The official libraries can take the secret as it is.
            assert_eq!(signature::standard_webhooks_secret(&secret), secret);
            assert_eq!(&*signature::standard_webhooks_key(&secret), key.as_slice());
        }
    }

    #[tokio::test]
    async fn targets_are_judged_by_the_profile() {
        let production = address_policy(Profile::Production, SystemPorts::default());
        let dev = address_policy(Profile::Dev, SystemPorts::new([8000, 8081, 18084]));
        let (production, dev) = (&production, &dev);

        let field = |result: Result<(), ApiError>| result.unwrap_err().field;
        for url in [
            "http://127.0.0.1:4000/h",
            "http://localhost:4000/h",
            "http://10.0.0.1/h",
            "http://[::ffff:127.0.0.1]/h",
            "http://2130706433/h",
            "https://does-not-resolve.invalid/h",
            "http://metadata/h",
        ] {
            assert_eq!(
                field(check_target(production, url).await).as_deref(),
                Some("url"),
                "{url}"
            );
        }
        assert!(check_target(production, "https://93.184.216.34/h")
            .await
            .is_ok());
        assert!(check_target(dev, "http://127.0.0.1:4000/h").await.is_ok());
        assert!(check_target(dev, "http://localhost:4000/h").await.is_ok());
        assert!(check_target(dev, "http://127.0.0.1:8082/h").await.is_ok());
        assert!(check_target(dev, "https://does-not-resolve.invalid/h")
            .await
            .is_ok());
        for url in [
            "http://127.0.0.1:8000/h",
            "http://127.0.0.1:8081/h",
            "http://[::1]:18084/h",
        ] {
            assert_eq!(
                field(check_target(dev, url).await).as_deref(),
                Some("url"),
                "{url}"
            );
        }
        let error = check_target(dev, "http://127.0.0.1:8081/h")
            .await
            .unwrap_err();
        assert_eq!(
            error.description,
            "url must not point to port 8081 on loopback: Paystream itself listens there"
        );
        let error = check_target(dev, "http://does-not-resolve.invalid:8000/h")
            .await
            .unwrap_err();
        assert_eq!(
            error.description,
            "url host does-not-resolve.invalid could not be resolved, and port 8000 is one \
             Paystream itself listens on"
        );
        let error = check_target(dev, "http://192.168.1.10/h")
            .await
            .unwrap_err();
        assert_eq!(
            error.description,
            "url must point to a public or loopback address in the dev profile, not 192.168.1.10"
        );
        let error = check_target(production, "http://localhost:4000/h")
            .await
            .unwrap_err();
        assert!(
            error
                .description
                .starts_with("url host localhost resolves to "),
            "{}",
            error.description
        );
        let error = check_target(production, "https://does-not-resolve.invalid/h")
            .await
            .unwrap_err();
        assert_eq!(
            error.description,
            "url host does-not-resolve.invalid could not be resolved"
        );
    }

    #[test]
    fn since_is_rfc3339_and_not_in_the_future() {
        let now = Utc::now();
        assert!(parse_since("2024-01-31T10:00:00Z", now).is_ok());
        assert!(parse_since("2024-01-31T10:00:00.123+05:30", now).is_ok());
        for bad in ["", "yesterday", "2024-01-31", "2024-13-01T00:00:00Z"] {
            let error = parse_since(bad, now).unwrap_err();
            assert_eq!(error.field.as_deref(), Some("since"), "{bad:?}");
        }
        let future = (now + TimeDelta::minutes(5)).to_rfc3339();
        assert_eq!(
            parse_since(&future, now).unwrap_err().description,
            "since must not be in the future"
        );
    }

    #[test]
    fn the_handlers_document_themselves() {
        use utoipa::OpenApi;

        #[derive(OpenApi)]
        #[openapi(paths(configure, regenerate_secret, send_test, retry, recover))]
        struct Doc;

        let doc = serde_json::to_value(Doc::openapi()).unwrap();
        for (path, method) in [
            ("/api/v1/webhooks/config", "put"),
            ("/api/v1/webhooks/regenerate-secret", "post"),
            ("/api/v1/webhooks/test", "post"),
            ("/api/v1/webhooks/{id}/retry", "post"),
            ("/api/v1/webhooks/recover", "post"),
        ] {
            assert!(doc["paths"][path][method].is_object(), "{path} {method}");
        }
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["WebhookConfigBody"]["required"],
            serde_json::json!(["url"])
        );
        for schema in [
            "WebhookConfigView",
            "WebhookSecretView",
            "WebhookTestView",
            "WebhookRetryView",
            "RecoverBody",
            "RecoverView",
            "ErrorBody",
        ] {
            assert!(schemas[schema].is_object(), "{schema}: {schemas}");
        }
    }

    #[test]
    fn test_body_fields_are_in_contract_order() {
        let body = serde_json::to_string(&TestEventBody {
            id: Uuid::nil(),
            event: WEBHOOK_TEST_EVENT,
            timestamp: 1_700_000_000,
            data: TestEventData {
                message: TEST_EVENT_MESSAGE,
            },
        })
        .unwrap();
        assert_eq!(
            body,
            r#"{"id":"00000000-0000-0000-0000-000000000000","event":"webhook.test","timestamp":1700000000,"data":{"message":"Test webhook from Paystream"}}"#
        );
    }
}
