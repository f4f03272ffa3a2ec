//! The dev profile's seed: the contract's test merchant. The production
//! profile seeds nothing.

use chrono::Utc;
use paystream_domain::merchant::{MerchantAggregate, RegisterMerchant};
use paystream_domain::{DomainError, MerchantId};
use uuid::Uuid;

use crate::aggregates::{self, CommandError};
use crate::http::auth::{secret_hash, sync_credentials};
use crate::store::{EventMetadata, PgEventStore};

pub const DEV_MERCHANT_ID: Uuid = Uuid::from_u128(0x550e8400_e29b_41d4_a716_446655440000);
pub const DEV_MERCHANT_EMAIL: &str = "test@example.com";
pub const DEV_API_KEY: &str = "key_test_abc123";
pub const DEV_API_SECRET: &str = "secret_test_xyz789";
pub const DEV_WEBHOOK_SECRET: &str = "whsec_test_abc123";
/// 2 % per capture.
pub const DEV_FEE_BPS: u32 = 200;

/// Registers the test merchant unless it exists, and writes its credentials.
pub async fn dev(store: &PgEventStore) -> Result<(), CommandError> {
    let merchant_id = MerchantId::from(DEV_MERCHANT_ID);
    let metadata = EventMetadata {
        merchant_id: Some(DEV_MERCHANT_ID),
        causation_id: None,
        correlation_id: None,
        actor: "system:seed".into(),
    };
    let command = RegisterMerchant {
        merchant_id,
        name: "Test Merchant".into(),
        email: DEV_MERCHANT_EMAIL.into(),
        password_hash: None,
        api_key: DEV_API_KEY.into(),
        api_secret_hash: secret_hash(DEV_API_SECRET),
        webhook_secret: DEV_WEBHOOK_SECRET.into(),
        fee_bps: DEV_FEE_BPS,
        at: Utc::now(),
    };
    let outcome =
        aggregates::execute::<MerchantAggregate, _>(store, merchant_id, &metadata, |_| {
            Ok(command.clone().into())
        })
        .await;
    match outcome {
        Ok(_) | Err(CommandError::Rejected(DomainError::MerchantAlreadyRegistered)) => {}
        Err(error) => return Err(error),
    }
    let loaded = aggregates::load::<MerchantAggregate>(store, merchant_id).await?;
    if let Some(merchant) = loaded.state {
        sync_credentials(store.pool(), &merchant)
            .await
            .map_err(crate::store::StoreError::from)?;
    }
    Ok(())
}
