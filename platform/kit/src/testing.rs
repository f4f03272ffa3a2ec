//! Test support for the workspace's tests and benches (feature `testing`,
//! dev-dependencies only): the store's fresh databases, NATS servers and
//! bounded waits, and merchants registered through the real domain.

pub use paystream_store::testing::*;
use paystream_store::PgEventStore;

/// Credentials of a merchant, as a test sends them.
#[derive(Debug, Clone)]
pub struct TestMerchant {
    pub id: uuid::Uuid,
    pub key: String,
    pub secret: String,
}

/// Registers a merchant with fresh credentials straight through the domain
/// (as staff would), suspended if asked, and writes its credentials.
pub async fn register_merchant(store: &PgEventStore, suspended: bool) -> TestMerchant {
    use chrono::Utc;
    use paystream_domain::merchant::{MerchantAggregate, RegisterMerchant};
    use paystream_domain::MerchantId;

    use paystream_store::{runner, EventMetadata};

    use crate::http::auth::{secret_hash, sync_credentials};

    let id = uuid::Uuid::now_v7();
    let merchant = TestMerchant {
        id,
        key: format!("key_{}", uuid::Uuid::now_v7().simple()),
        secret: format!("secret_{}", uuid::Uuid::now_v7().simple()),
    };
    let metadata = EventMetadata {
        actor: "test".into(),
        ..EventMetadata::default()
    };
    let merchant_id = MerchantId::from(id);
    let register = RegisterMerchant {
        merchant_id,
        name: "Other".into(),
        email: format!("{}@example.com", id.simple()),
        password_hash: None,
        api_key: merchant.key.clone(),
        api_secret_hash: secret_hash(&merchant.secret),
        webhook_secret: "whsec_other".into(),
        fee_bps: 100,
        at: Utc::now(),
    };
    let executed = runner::execute::<MerchantAggregate, _>(store, merchant_id, &metadata, |_| {
        Ok(register.clone().into())
    })
    .await
    .expect("register the merchant");
    let state = executed.state.expect("a registered merchant");
    sync_credentials(store.pool(), &state)
        .await
        .expect("write the credentials");
    if suspended {
        suspend_merchant(store, id).await;
    }
    merchant
}

/// Suspends a merchant straight through the domain, and writes its
/// credentials as suspended.
pub async fn suspend_merchant(store: &PgEventStore, id: uuid::Uuid) {
    use paystream_domain::merchant::{MerchantAggregate, SuspendMerchant};
    use paystream_domain::MerchantId;
    use paystream_store::{runner, EventMetadata};

    let metadata = EventMetadata {
        actor: "test".into(),
        ..EventMetadata::default()
    };
    let executed =
        runner::execute::<MerchantAggregate, _>(store, MerchantId::from(id), &metadata, |_| {
            Ok(SuspendMerchant {
                reason: "test".into(),
            }
            .into())
        })
        .await
        .expect("suspend the merchant");
    let state = executed.state.expect("a registered merchant");
    crate::http::auth::sync_credentials(store.pool(), &state)
        .await
        .expect("write the credentials");
}
