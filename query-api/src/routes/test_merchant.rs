//! `GET /api/v1/test/merchant`: the dev profile's seeded test merchant, as
//! clients and test suites of the original gateway read it to find their
//! credentials. No authentication; the dev profile only (in production the
//! path answers like any unknown one, 404).
//!
//! The merchant is folded from its stream (read your writes: right after the
//! command API seeded it, it is there), so the answer shows what is stored,
//! not constants: a seed that did not run is a 404. Never a secret: not the
//! API secret (only its hash is stored anyway), nor the webhook secret.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use paystream_domain::api::ErrorBody;
use paystream_domain::dev::DEV_MERCHANT_ID;
use paystream_domain::merchant::MerchantAggregate;
use paystream_domain::MerchantId;
use paystream_kit::config::Profile;
use paystream_kit::http::error::ApiError;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::fold;
use crate::startup::QueryState;

pub fn router() -> Router<QueryState> {
    Router::new().route("/api/v1/test/merchant", get(test_merchant))
}

/// The seeded test merchant: what a client needs to find it, no secret.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct TestMerchantView {
    #[schema(example = "550e8400-e29b-41d4-a716-446655440000")]
    pub id: Uuid,
    #[schema(example = "test@example.com")]
    pub email: String,
    /// The (publishable) API key; the secret is in the documentation of the
    /// dev profile, never in an answer.
    #[schema(example = "key_test_abc123")]
    pub api_key: String,
    /// Always `true`: the merchant was seeded by the dev profile.
    pub seeded: bool,
}

/// The dev profile's seeded test merchant (no authentication).
#[utoipa::path(
    get,
    path = "/api/v1/test/merchant",
    tag = "test",
    responses(
        (status = 200, description = "The seeded test merchant (dev profile only); never a secret", body = TestMerchantView),
        (status = 404, description = "Production profile, or the test merchant is not seeded", body = ErrorBody),
    )
)]
pub async fn test_merchant(
    State(state): State<QueryState>,
) -> Result<Json<TestMerchantView>, ApiError> {
    if state.profile != Profile::Dev {
        // As if the endpoint did not exist (the router's own fallback).
        return Err(ApiError::not_found("No such endpoint"));
    }
    let merchant =
        fold::load::<MerchantAggregate>(&state.store, MerchantId::from(DEV_MERCHANT_ID), None)
            .await?
            .state
            .ok_or_else(|| ApiError::not_found("The test merchant is not seeded"))?;
    Ok(Json(TestMerchantView {
        id: merchant.merchant_id.into(),
        email: merchant.email,
        api_key: merchant.api_key,
        seeded: true,
    }))
}
