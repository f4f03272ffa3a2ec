//! Staff endpoints on merchants (a staff session is required; see
//! [`paystream_kit::http::session::StaffSession`]):
//!
//! * `POST /api/v1/merchants` `{name, email, password?, fee_bps?}` → 201
//!   `{id, name, email, api_key, api_secret, webhook_secret,
//!   standard_webhooks_secret, fee_bps, status, created_at}`. The API secret is shown only here; only its SHA-256 is
//!   stored. With a password the merchant also gets a dashboard login.
//! * `POST /api/v1/merchants/{id}/rotate-keys` → 200 with the new `api_key`
//!   and `api_secret` (shown once); the old pair stops working at once.
//! * `POST /api/v1/merchant/rotate-keys`: the same for the caller's own
//!   account (the merchant, by its API credentials or a merchant user's
//!   session), so a merchant can have a new secret whenever it needs one:
//!   the old one is stored only as a hash and cannot be shown again.
//! * `POST /api/v1/merchants/{id}/suspend` `{reason?}` → 200; the merchant's
//!   API calls, logins and sessions get 401 "Merchant account is suspended".
//! * `POST /api/v1/merchants/{id}/reactivate` → 200.
//! * `PUT /api/v1/merchant/checkout-origins` `{origins}` (the merchant, by
//!   its API credentials or a merchant user's session): the origins whose
//!   pages may embed the checkout and receive its result.
//!
//! Rotate-keys and reactivate take no body, and suspend's is optional: an
//! empty body is accepted with any or no `Content-Type`; a non-empty one must
//! be a JSON object ([`NoBody`], [`OptionalJson`]). The webhook secret is
//! made by [`super::webhooks::new_webhook_secret`], and shown with the string
//! to give the official Standard Webhooks libraries.
//!
//! Each appends one merchant event (`X-Event-Position` on the answer) and then
//! brings `merchant_credentials` in line with the merchant's new state. The
//! commands on one merchant take turns (a PostgreSQL advisory lock, across
//! replicas too), so credentials are always written in event order.
//!
//! Password hashes are kept in `users`, never in the events
//! (`MerchantRegistered.password_hash` stays `None`): the event log is
//! relayed, projected and exported, and cannot forget.

use std::fmt;
use std::future::Future;

use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::Router;
use chrono::Utc;
use paystream_domain::merchant::{
    Merchant, MerchantAggregate, MerchantCommand, ReactivateMerchant, RegisterMerchant,
    RotateApiKeys, SetCheckoutOrigins, SuspendMerchant, FEE_BPS_MAX,
};
use paystream_domain::signature;
use paystream_domain::validation::{required_text, validate_email};
use paystream_domain::{DomainError, MerchantId};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::actor_metadata;
use crate::http::response::CommandResponse;
use crate::startup::AppState;
use paystream_domain::api::{self as views, ErrorBody};
use paystream_kit::http::auth::{secret_hash, sync_credentials, AuthenticatedMerchant};
use paystream_kit::http::error::ApiError;
use paystream_kit::http::json::{ApiJson, NoBody, OptionalJson};
use paystream_kit::http::path::ApiPath;
use paystream_kit::http::session::{self, Role, StaffSession};
use paystream_store::runner::{self, CommandError};
use paystream_store::Position;

/// Fee of a merchant created without `fee_bps`: 2 % per capture.
pub const DEFAULT_FEE_BPS: u32 = 200;
const NAME_MAX_CHARS: usize = 255;
const PASSWORD_MIN_CHARS: usize = 8;
const PASSWORD_MAX_CHARS: usize = 256;
/// `pg_advisory_xact_lock(class, key)` class of merchant command locks ("PSMC").
const MERCHANT_LOCK_CLASS: i32 = 0x5053_4d43;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/merchants", post(create))
        .route("/api/v1/merchants/{id}/rotate-keys", post(rotate_keys))
        .route("/api/v1/merchant/rotate-keys", post(rotate_own_keys))
        .route("/api/v1/merchants/{id}/suspend", post(suspend))
        .route("/api/v1/merchants/{id}/reactivate", post(reactivate))
        .route(
            "/api/v1/merchant/checkout-origins",
            put(set_checkout_origins),
        )
}

/// A new merchant. The e-mail is stored lowercased and must not belong to
/// another merchant or user.
#[derive(Deserialize, ToSchema)]
pub struct CreateMerchantBody {
    /// At most 255 characters.
    #[schema(example = "Acme Stores")]
    name: String,
    #[schema(example = "owner@acme.example")]
    email: String,
    /// A dashboard login for the merchant (8 to 256 characters); none if omitted.
    #[serde(default)]
    password: Option<String>,
    /// Fee per capture in basis points, 0 to 10 000; default 200 (2 %).
    #[serde(default)]
    #[schema(example = 200)]
    fee_bps: Option<u32>,
}

impl fmt::Debug for CreateMerchantBody {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("CreateMerchantBody")
            .field("name", &self.name)
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("fee_bps", &self.fee_bps)
            .finish()
    }
}

/// Optional: an empty body (with any or no `Content-Type`) means no reason.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SuspendBody {
    /// Why; at most 255 characters. Default empty.
    #[serde(default)]
    #[schema(example = "Excessive chargebacks")]
    reason: String,
}

/// A merchant, as staff see it. Never the API secret or its hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MerchantView {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    /// The (publishable) API key.
    #[schema(example = "key_Xb3kP9qLm2Zt7RwY4nVc8JhD")]
    pub api_key: String,
    pub fee_bps: u32,
    /// `active` or `suspended`.
    #[schema(example = "active")]
    pub status: String,
    /// Set while suspended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspension_reason: Option<String>,
    /// Origins whose pages may embed the checkout and receive its result.
    #[schema(example = json!(["https://shop.example"]))]
    pub checkout_origins: Vec<String>,
    pub created_at: String,
}

impl From<&Merchant> for MerchantView {
    fn from(merchant: &Merchant) -> Self {
        Self {
            id: merchant.merchant_id.into(),
            name: merchant.name.clone(),
            email: merchant.email.clone(),
            api_key: merchant.api_key.clone(),
            fee_bps: merchant.fee_bps,
            status: if merchant.is_active() {
                "active"
            } else {
                "suspended"
            }
            .into(),
            suspension_reason: merchant.suspension_reason.clone(),
            checkout_origins: merchant.checkout_origins.clone(),
            created_at: views::timestamp(merchant.registered_at),
        }
    }
}

/// A new merchant with its secrets, shown only in this answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedMerchantView {
    #[serde(flatten)]
    pub merchant: MerchantView,
    #[schema(example = "secret_4fGh7JkL2mNp9QrS3tUv6WxY8zAb1CdE")]
    pub api_secret: String,
    /// Signs the merchant's webhooks; keys `X-Webhook-Signature` (hex
    /// HMAC-SHA256 keyed with this whole string).
    #[schema(example = "whsec_AD2SsFh6Y9rsOXQxziVD4aHXqjE8dtaUmmbnHGNFvU4=")]
    pub webhook_secret: String,
    /// The string to give the official Standard Webhooks libraries
    /// (`webhook-signature`); the same as `webhook_secret` for a generated
    /// secret.
    #[schema(example = "whsec_AD2SsFh6Y9rsOXQxziVD4aHXqjE8dtaUmmbnHGNFvU4=")]
    pub standard_webhooks_secret: String,
}

/// The merchant with its new key pair; the secret is shown only here.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RotatedKeysView {
    #[serde(flatten)]
    pub merchant: MerchantView,
    #[schema(example = "secret_4fGh7JkL2mNp9QrS3tUv6WxY8zAb1CdE")]
    pub api_secret: String,
}

fn random_alphanumeric(length: usize) -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

fn new_api_key() -> String {
    format!("key_{}", random_alphanumeric(24))
}

fn new_api_secret() -> String {
    format!("secret_{}", random_alphanumeric(32))
}

fn merchant_not_found() -> ApiError {
    ApiError::not_found("Merchant not found")
}

fn parse_merchant_id(id: &str) -> Result<MerchantId, ApiError> {
    id.parse().map_err(|_| merchant_not_found())
}

fn email_taken() -> ApiError {
    ApiError::conflict("A merchant or user with this email already exists").with_field("email")
}

/// The answer carries a secret shown once: never cached.
fn no_store(response: CommandResponse) -> Response {
    let mut response = response.into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn validate_password(password: &str) -> Result<(), ApiError> {
    let length = password.chars().count();
    if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&length) {
        return Err(ApiError::bad_request(format!(
            "password must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"
        ))
        .with_field("password"));
    }
    Ok(())
}

/// Register a merchant (staff). The API secret is shown only in this answer.
#[utoipa::path(
    post,
    path = "/api/v1/merchants",
    tag = "merchants",
    request_body = CreateMerchantBody,
    security(("session" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "Created; `X-Event-Position` names its event", body = CreatedMerchantView),
        (status = 400, description = "Bad input (`field` says which)", body = ErrorBody),
        (status = 401, description = "No session, or not a staff session", body = ErrorBody),
        (status = 409, description = "The e-mail belongs to another merchant or user", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED`: too many password hashes at once; retry after `Retry-After` seconds", body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    staff: StaffSession,
    ApiJson(body): ApiJson<CreateMerchantBody>,
) -> Result<Response, ApiError> {
    let pool = state.store.pool();
    // Everything the domain would refuse is refused before the e-mail is claimed.
    let name = body.name.trim().to_string();
    required_text("name", &name, NAME_MAX_CHARS)?;
    let email = session::normalize_email(&body.email);
    validate_email(&email)?;
    let fee_bps = body.fee_bps.unwrap_or(DEFAULT_FEE_BPS);
    if fee_bps > FEE_BPS_MAX {
        return Err(DomainError::invalid(
            "fee_bps",
            format!("fee_bps must be at most {FEE_BPS_MAX}"),
        )
        .into());
    }
    let password_hash = match body.password {
        Some(password) => {
            validate_password(&password)?;
            Some(session::hash_password(password).await?)
        }
        None => None,
    };

    let merchant_id = MerchantId::from(Uuid::now_v7());
    let api_key = new_api_key();
    let api_secret = new_api_secret();
    let webhook_secret = super::webhooks::new_webhook_secret();
    claim_email(pool, &email, merchant_id, password_hash.as_deref()).await?;

    let metadata = actor_metadata(merchant_id, staff.actor());
    let command = RegisterMerchant {
        merchant_id,
        name,
        email: email.clone(),
        password_hash: None,
        api_key,
        api_secret_hash: secret_hash(&api_secret),
        webhook_secret: webhook_secret.clone(),
        fee_bps,
        at: Utc::now(),
    };
    let executed =
        match runner::execute::<MerchantAggregate, _>(&state.store, merchant_id, &metadata, |_| {
            Ok(command.clone().into())
        })
        .await
        {
            Ok(executed) => executed,
            Err(error) => {
                // Release the claim unless the registration may have been appended
                // after all (a store error can come after the commit).
                let appended = match &error {
                    CommandError::Rejected(_) | CommandError::Contention(_) => Some(false),
                    _ => runner::load::<MerchantAggregate>(&state.store, merchant_id)
                        .await
                        .ok()
                        .map(|loaded| loaded.state.is_some()),
                };
                if appended == Some(false) {
                    release_email(pool, &email, merchant_id).await;
                }
                return Err(error.into());
            }
        };
    state.relay_signal.notify();
    let merchant = executed.state.as_ref().ok_or_else(merchant_not_found)?;
    sync_credentials(pool, merchant).await?;
    let view = CreatedMerchantView {
        merchant: MerchantView::from(merchant),
        api_secret,
        standard_webhooks_secret: signature::standard_webhooks_secret(&webhook_secret),
        webhook_secret,
    };
    Ok(no_store(CommandResponse::new(
        StatusCode::CREATED,
        views::body(view),
        executed.position,
    )))
}

/// Claims `email` for the merchant, and creates its login when it has a
/// password: a 409 when a merchant or a user already has the address.
async fn claim_email(
    pool: &PgPool,
    email: &str,
    merchant: MerchantId,
    password_hash: Option<&str>,
) -> Result<(), ApiError> {
    let mut transaction = pool.begin().await?;
    let claimed = sqlx::query(
        "insert into merchant_emails (email, merchant_id) values ($1, $2) on conflict do nothing",
    )
    .bind(email)
    .bind(Uuid::from(merchant))
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    if claimed != 1 {
        return Err(email_taken());
    }
    let user_exists: bool =
        sqlx::query_scalar("select exists (select 1 from users where email = $1)")
            .bind(email)
            .fetch_one(&mut *transaction)
            .await?;
    if user_exists {
        return Err(email_taken());
    }
    if let Some(password_hash) = password_hash {
        let created = sqlx::query(
            "insert into users (email, password_hash, role, merchant_id) values ($1, $2, $3, $4) \
             on conflict do nothing",
        )
        .bind(email)
        .bind(password_hash)
        .bind(Role::Merchant.as_str())
        .bind(Uuid::from(merchant))
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if created != 1 {
            return Err(email_taken());
        }
    }
    transaction.commit().await?;
    Ok(())
}

/// Undoes [`claim_email`] when the registration was not appended.
async fn release_email(pool: &PgPool, email: &str, merchant: MerchantId) {
    let released = async {
        let mut transaction = pool.begin().await?;
        sqlx::query("delete from users where email = $1 and merchant_id = $2")
            .bind(email)
            .bind(Uuid::from(merchant))
            .execute(&mut *transaction)
            .await?;
        sqlx::query("delete from merchant_emails where email = $1 and merchant_id = $2")
            .bind(email)
            .bind(Uuid::from(merchant))
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await
    };
    if let Err(error) = released.await {
        tracing::warn!(%error, %merchant, "could not release a merchant e-mail claim");
    }
}

/// Runs `work` while holding this merchant's command lock.
async fn with_merchant_lock<T, Fut>(
    pool: &PgPool,
    merchant: MerchantId,
    work: Fut,
) -> Result<T, ApiError>
where
    Fut: Future<Output = Result<T, ApiError>>,
{
    let bytes = Uuid::from(merchant).as_u128().to_le_bytes();
    let key = bytes.chunks_exact(4).fold(0i32, |key, chunk| {
        key ^ i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])
    });
    // A transaction-level lock: released on commit, and on rollback when the
    // request is dropped half-way.
    let mut transaction = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock($1, $2)")
        .bind(MERCHANT_LOCK_CLASS)
        .bind(key)
        .execute(&mut *transaction)
        .await?;
    let outcome = work.await;
    // The command's outcome stands either way: a lost connection released the lock too.
    if let Err(error) = transaction.commit().await {
        tracing::warn!(%error, %merchant, "could not release a merchant command lock cleanly");
    }
    outcome
}

/// Appends `command` to an existing merchant, as `actor`, and syncs its
/// credentials.
async fn command(
    state: &AppState,
    actor: String,
    merchant_id: MerchantId,
    command: MerchantCommand,
) -> Result<(Merchant, Option<Position>), ApiError> {
    let pool = state.store.pool();
    let metadata = actor_metadata(merchant_id, actor);
    with_merchant_lock(pool, merchant_id, async {
        let executed =
            runner::execute::<MerchantAggregate, _>(&state.store, merchant_id, &metadata, |_| {
                Ok(command.clone())
            })
            .await
            .map_err(|error| match error {
                CommandError::Rejected(DomainError::MerchantNotFound) => merchant_not_found(),
                other => other.into(),
            })?;
        state.relay_signal.notify();
        let merchant = executed.state.ok_or_else(merchant_not_found)?;
        sync_credentials(pool, &merchant).await?;
        Ok((merchant, executed.position))
    })
    .await
}

/// The origins whose pages may embed the checkout.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CheckoutOriginsBody {
    /// `scheme://host[:port]` with `http` or `https`, no path; at most 20.
    /// Empty: no page may embed the checkout (its direct link still works).
    #[schema(example = json!(["https://shop.example", "http://localhost:8000"]), max_items = 20)]
    origins: Vec<String>,
}

/// Set the origins whose pages may embed your checkout (the merchant, by
/// its API credentials or a merchant user's session). The embedded
/// checkout posts its result only to the page that embeds it, and only
/// when that page's origin is on this list; the checkout answers with
/// `Content-Security-Policy: frame-ancestors` naming the same origins. The
/// same list again appends nothing.
#[utoipa::path(
    put,
    path = "/api/v1/merchant/checkout-origins",
    tag = "merchants",
    request_body = CheckoutOriginsBody,
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The merchant, with its origins (normalised: lowercase, no default port)", body = MerchantView),
        (status = 400, description = "Not an origin, or more than 20; `field` is `checkout_origins`", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials, or a staff or auditor session", body = ErrorBody),
    )
)]
pub async fn set_checkout_origins(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    ApiJson(body): ApiJson<CheckoutOriginsBody>,
) -> Result<Response, ApiError> {
    let id = merchant.merchant_id;
    let set = SetCheckoutOrigins {
        origins: body.origins,
    };
    let (merchant, position) = command(&state, format!("merchant:{id}"), id, set.into()).await?;
    Ok(CommandResponse::new(
        StatusCode::OK,
        views::body(MerchantView::from(&merchant)),
        position,
    )
    .into_response())
}

/// Replace the merchant's API key and secret (staff); the old pair stops
/// working at once.
#[utoipa::path(
    post,
    path = "/api/v1/merchants/{id}/rotate-keys",
    tag = "merchants",
    params(("id" = Uuid, Path, description = "Merchant id")),
    security(("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The new pair, shown only here; `X-Event-Position` names the event", body = RotatedKeysView),
        (status = 400, description = "A body that is not empty and not a JSON object", body = ErrorBody),
        (status = 401, description = "No session, or not a staff session", body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody),
    )
)]
pub async fn rotate_keys(
    State(state): State<AppState>,
    staff: StaffSession,
    ApiPath(id): ApiPath<String>,
    _: NoBody,
) -> Result<Response, ApiError> {
    rotate(&state, staff.actor(), parse_merchant_id(&id)?).await
}

/// Replace your own API key and secret (the merchant, by its API
/// credentials or a merchant user's session): the new secret is shown only
/// here, and the old pair stops working at once. Without `Idempotency-Key`,
/// like every key rotation: a retry issues another pair, and the last one
/// answered is the one in force.
#[utoipa::path(
    post,
    path = "/api/v1/merchant/rotate-keys",
    tag = "merchants",
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The new pair, shown only here; `X-Event-Position` names the event", body = RotatedKeysView),
        (status = 400, description = "A body that is not empty and not a JSON object", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials, or a staff or auditor session", body = ErrorBody),
    )
)]
pub async fn rotate_own_keys(
    State(state): State<AppState>,
    merchant: AuthenticatedMerchant,
    _: NoBody,
) -> Result<Response, ApiError> {
    let id = merchant.merchant_id;
    rotate(&state, format!("merchant:{id}"), id).await
}

/// A new API key and secret for `merchant_id`, as `actor`.
async fn rotate(
    state: &AppState,
    actor: String,
    merchant_id: MerchantId,
) -> Result<Response, ApiError> {
    let api_key = new_api_key();
    let api_secret = new_api_secret();
    let rotate = RotateApiKeys {
        api_key,
        api_secret_hash: secret_hash(&api_secret),
    };
    let (merchant, position) = command(state, actor, merchant_id, rotate.into()).await?;
    let view = RotatedKeysView {
        merchant: MerchantView::from(&merchant),
        api_secret,
    };
    Ok(no_store(CommandResponse::new(
        StatusCode::OK,
        views::body(view),
        position,
    )))
}

/// Suspend the merchant (staff): its API calls, logins and sessions get 401
/// "Merchant account is suspended".
#[utoipa::path(
    post,
    path = "/api/v1/merchants/{id}/suspend",
    tag = "merchants",
    params(("id" = Uuid, Path, description = "Merchant id")),
    request_body(content = Option<SuspendBody>, description = "Optional: an empty body means no reason"),
    security(("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "Suspended; `X-Event-Position` names the event", body = MerchantView),
        (status = 400, description = "Reason too long, or a body that is not empty and not a JSON object", body = ErrorBody),
        (status = 401, description = "No session, or not a staff session", body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody),
        (status = 409, description = "Already suspended", body = ErrorBody),
    )
)]
pub async fn suspend(
    State(state): State<AppState>,
    staff: StaffSession,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<SuspendBody>,
) -> Result<CommandResponse, ApiError> {
    let suspend = SuspendMerchant {
        reason: body.reason.trim().to_string(),
    };
    let (merchant, position) = command(
        &state,
        staff.actor(),
        parse_merchant_id(&id)?,
        suspend.into(),
    )
    .await?;
    session::end_all_of_merchant(state.store.pool(), merchant.merchant_id).await?;
    Ok(CommandResponse::new(
        StatusCode::OK,
        views::body(MerchantView::from(&merchant)),
        position,
    ))
}

/// Reactivate a suspended merchant (staff).
#[utoipa::path(
    post,
    path = "/api/v1/merchants/{id}/reactivate",
    tag = "merchants",
    params(("id" = Uuid, Path, description = "Merchant id")),
    security(("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "Active again; `X-Event-Position` names the event", body = MerchantView),
        (status = 400, description = "A body that is not empty and not a JSON object", body = ErrorBody),
        (status = 401, description = "No session, or not a staff session", body = ErrorBody),
        (status = 404, description = "No such merchant", body = ErrorBody),
        (status = 409, description = "Not suspended", body = ErrorBody),
    )
)]
pub async fn reactivate(
    State(state): State<AppState>,
    staff: StaffSession,
    ApiPath(id): ApiPath<String>,
    _: NoBody,
) -> Result<CommandResponse, ApiError> {
    let (merchant, position) = command(
        &state,
        staff.actor(),
        parse_merchant_id(&id)?,
        ReactivateMerchant.into(),
    )
    .await?;
    Ok(CommandResponse::new(
        StatusCode::OK,
        views::body(MerchantView::from(&merchant)),
        position,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handlers_document_themselves() {
        use utoipa::OpenApi;

        #[derive(OpenApi)]
        #[openapi(paths(create, rotate_keys, rotate_own_keys, suspend, reactivate))]
        struct Doc;

        let doc = serde_json::to_value(Doc::openapi()).unwrap();
        for path in [
            "/api/v1/merchants",
            "/api/v1/merchants/{id}/rotate-keys",
            "/api/v1/merchant/rotate-keys",
            "/api/v1/merchants/{id}/suspend",
            "/api/v1/merchants/{id}/reactivate",
        ] {
            assert!(doc["paths"][path]["post"].is_object(), "{path}");
        }
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["CreateMerchantBody"]["required"],
            serde_json::json!(["name", "email"])
        );
        for schema in [
            "MerchantView",
            "CreatedMerchantView",
            "RotatedKeysView",
            "SuspendBody",
            "ErrorBody",
        ] {
            assert!(schemas[schema].is_object(), "{schema}: {schemas}");
        }
    }

    #[test]
    fn bodies_never_print_the_password() {
        let body: CreateMerchantBody = serde_json::from_str(
            r#"{"name": "A", "email": "a@example.com", "password": "hunter22"}"#,
        )
        .unwrap();
        assert!(!format!("{body:?}").contains("hunter22"));
    }

    #[test]
    fn generated_credentials_have_the_documented_shapes() {
        let key = new_api_key();
        assert!(key.starts_with("key_") && key.len() == 4 + 24, "{key}");
        let secret = new_api_secret();
        assert!(secret.starts_with("secret_") && secret.len() == 7 + 32);
        for value in [&key[4..], &secret[7..]] {
            assert!(value.chars().all(|c| c.is_ascii_alphanumeric()));
        }
        assert_ne!(new_api_secret(), secret);
    }
}
