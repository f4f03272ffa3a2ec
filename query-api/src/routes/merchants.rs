//! Merchant accounts, for staff:
//!
//! * `GET /api/v1/merchants`: a keyset list from the `merchants` read model
//!   (`rm_merchants`), newest first, filter `status`; honours
//!   `X-Min-Position`.
//! * `GET /api/v1/merchants/{id}[?as_of=]`: folded from the merchant's
//!   stream, so it reflects every command acknowledged before it (read your
//!   writes) however far the projection lags.
//!
//! Who: staff only, as the contract's table says. Auditors work on the event
//! history (audit verify and export, trial balance, per-object history), not
//! on merchant accounts, whose rows carry contact data and API keys.
//!
//! Never sent: the API secret's hash, the password hash and the webhook
//! secrets. The list selects named columns (plus `suspension_reason` out of
//! the state), never the state document.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
pub use paystream_domain::api::StaffMerchantView;
use paystream_domain::api::{timestamp, ErrorBody};
use paystream_domain::merchant::{Merchant, MerchantAggregate};
use paystream_domain::MerchantId;
use paystream_kit::http::error::ApiError;
use paystream_kit::http::session::StaffSession;
use serde::Deserialize;
use sqlx::Row;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{AsOf, ObjectId};
use crate::auth::MerchantReader;
use crate::fold;
use crate::freshness::MinPosition;
use crate::listing::{self, Cursor, Page, Params};
use crate::startup::QueryState;

/// The projection behind the list.
pub const PROJECTION: &str = "merchants";

pub fn router() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/merchants", get(list))
        .route("/api/v1/merchants/{id}", get(get_merchant))
        .route("/api/v1/merchant", get(own_account))
}

fn staff_view(merchant: &Merchant, updated_at: DateTime<Utc>) -> StaffMerchantView {
    StaffMerchantView {
        id: merchant.merchant_id.into(),
        name: merchant.name.clone(),
        email: merchant.email.clone(),
        status: if merchant.is_active() {
            "active"
        } else {
            "suspended"
        }
        .into(),
        api_key: merchant.api_key.clone(),
        fee_bps: i64::from(merchant.fee_bps),
        webhook_url: merchant.webhook.url.clone(),
        created_at: timestamp(merchant.registered_at),
        updated_at: timestamp(updated_at),
        suspension_reason: merchant.suspension_reason.clone(),
        checkout_origins: merchant.checkout_origins.clone(),
    }
}

/// Query parameters of `GET /api/v1/merchants` (documentation; read through
/// [`Params`]).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct MerchantsParams {
    /// 1 to 100, default 20.
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// `active` or `suspended`.
    status: Option<String>,
}

fn merchant_not_found() -> ApiError {
    ApiError::not_found("Merchant not found")
}

/// Every merchant (staff), newest first, from the read model.
#[utoipa::path(
    get,
    path = "/api/v1/merchants",
    tag = "merchants",
    params(
        MerchantsParams,
        ("X-Min-Position" = Option<i64>, Header, description = "Wait (at most 5 s) until the merchants read model has applied this position"),
    ),
    security(("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "A page of merchants", body = Page<StaffMerchantView>),
        (status = 400, description = "Bad parameter (`field` says which)", body = ErrorBody),
        (status = 401, description = "No staff session", body = ErrorBody),
        (status = 503, description = "The read model has not reached `X-Min-Position`", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<QueryState>,
    _staff: StaffSession,
    min: MinPosition,
    params: Params,
) -> Result<Json<Page<StaffMerchantView>>, ApiError> {
    let limit = params.limit(listing::DEFAULT_LIMIT, listing::MAX_LIMIT)?;
    let cursor = params
        .cursor(PROJECTION)?
        .map(|Cursor { created_at, id }| {
            id.parse::<Uuid>().map(|id| (created_at, id)).map_err(|_| {
                ApiError::bad_request("cursor must be a next_cursor value returned by this list")
                    .with_field("cursor")
            })
        })
        .transpose()?;
    let status = params.one_of("status", &["active", "suspended"])?;
    let pool = state.store.pool();
    min.wait(&state.store, PROJECTION).await?;
    // Never `state` itself: it holds the secrets.
    let mut query = sqlx::QueryBuilder::<sqlx::Postgres>::new(
        "select merchant_id, name, email, status, api_key, fee_bps, webhook_url, created_at, \
                updated_at, state ->> 'suspension_reason' as suspension_reason, \
                coalesce(state -> 'checkout_origins', '[]'::jsonb) as checkout_origins \
         from rm_merchants where true",
    );
    if let Some(status) = status {
        query.push(" and status = ").push_bind(status);
    }
    if let Some((created_at, id)) = cursor {
        query
            .push(" and (created_at, merchant_id) < (")
            .push_bind(created_at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    query
        .push(" order by created_at desc, merchant_id desc limit ")
        .push_bind(limit + 1);
    let rows = query.build().fetch_all(pool).await?;
    let mut keyed = Vec::with_capacity(rows.len());
    for row in rows {
        let created_at: DateTime<Utc> = row.try_get("created_at")?;
        let id: Uuid = row.try_get("merchant_id")?;
        keyed.push((created_at, id.to_string(), row));
    }
    let page = crate::listing::page(
        PROJECTION,
        keyed,
        limit,
        |(created_at, id, _)| (*created_at, id.as_str()),
        |(created_at, _, row)| {
            Ok(StaffMerchantView {
                id: row.try_get("merchant_id")?,
                name: row.try_get("name")?,
                email: row.try_get("email")?,
                status: row.try_get("status")?,
                api_key: row.try_get("api_key")?,
                fee_bps: i64::from(row.try_get::<i32, _>("fee_bps")?),
                webhook_url: row.try_get("webhook_url")?,
                created_at: timestamp(created_at),
                updated_at: timestamp(row.try_get::<DateTime<Utc>, _>("updated_at")?),
                suspension_reason: row.try_get("suspension_reason")?,
                checkout_origins: row
                    .try_get::<sqlx::types::Json<Vec<String>>, _>("checkout_origins")?
                    .0,
            })
        },
    )?;
    Ok(Json(page))
}

/// One merchant (staff), folded from its events: always current.
#[utoipa::path(
    get,
    path = "/api/v1/merchants/{id}",
    tag = "merchants",
    params(
        ("id" = Uuid, Path, description = "Merchant id"),
        ("as_of" = Option<String>, Query, description = "RFC 3339: the account as it was then"),
    ),
    security(("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The merchant", body = StaffMerchantView),
        (status = 400, description = "Bad `as_of`", body = ErrorBody),
        (status = 401, description = "No staff session", body = ErrorBody),
        (status = 404, description = "No such merchant (then)", body = ErrorBody),
    )
)]
pub async fn get_merchant(
    State(state): State<QueryState>,
    _staff: StaffSession,
    ObjectId(id): ObjectId,
    AsOf(as_of): AsOf,
) -> Result<Json<StaffMerchantView>, ApiError> {
    let id: MerchantId = id.parse().map_err(|_| merchant_not_found())?;
    let folded = fold::load::<MerchantAggregate>(&state.store, id, as_of).await?;
    let (Some(merchant), Some(last)) = (folded.state.as_ref(), folded.events.last()) else {
        return Err(merchant_not_found());
    };
    Ok(Json(staff_view(merchant, last.recorded_at)))
}

/// The calling merchant's own account (its API key, never a secret: those
/// are stored hashed and shown once), folded from its events.
#[utoipa::path(
    get,
    path = "/api/v1/merchant",
    tag = "merchants",
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The merchant's account", body = StaffMerchantView),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
    )
)]
pub async fn own_account(
    State(state): State<QueryState>,
    merchant: MerchantReader,
) -> Result<Json<StaffMerchantView>, ApiError> {
    let folded = fold::load::<MerchantAggregate>(&state.store, merchant.merchant_id, None).await?;
    let (Some(account), Some(last)) = (folded.state.as_ref(), folded.events.last()) else {
        return Err(merchant_not_found());
    };
    Ok(Json(staff_view(account, last.recorded_at)))
}
