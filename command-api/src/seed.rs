//! The dev profile's seed: the contract's test merchant and the dashboard
//! users `test@example.com` / `test123` (that merchant), `admin@example.com`
//! / `admin123` (staff) and `auditor@example.com` / `auditor123` (auditor).
//! Idempotent: it runs at every start. The production profile seeds nothing.

use chrono::Utc;
use paystream_domain::merchant::{MerchantAggregate, RegisterMerchant, SetCheckoutOrigins};
use paystream_domain::{DomainError, MerchantId};

use paystream_kit::http::auth::{secret_hash, sync_credentials};
use paystream_kit::http::session::Role;
use paystream_store::runner::{self, CommandError};
use paystream_store::{EventMetadata, PgEventStore};

pub use paystream_domain::dev::*;

/// argon2id hashes of the dev passwords above, computed once (hashing at
/// every start would cost a second of CPU in a debug build).
const DEV_MERCHANT_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$pCR+pLlwl33I5zDCklN35g$fUcegW0xPGQhJ+6UBm6pe1Tn8ObDVsE5xu7wn1u1OU8";
const DEV_STAFF_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$3vpd/gLP/z1iNAPbUlqcgg$2SZ/P1+l2BU3It84DtK2Ye/vJA5efk+4qCW6btTPIbg";
const DEV_AUDITOR_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$l+TysXJBqhB5HbZ/xO852w$DPw9Pdmi3+wIVnIOpZnOUvFKQbTQSKu4SkfNAhVTdUU";

/// Registers the test merchant unless it exists, and writes its credentials.
///
/// While the merchant has no checkout origins, it gets `checkout_origins`
/// (the example shop's), so that its embedded checkout can post results.
pub async fn dev(store: &PgEventStore, checkout_origins: &[String]) -> Result<(), CommandError> {
    let merchant_id = MerchantId::from(DEV_MERCHANT_ID);
    let metadata = EventMetadata {
        merchant_id: Some(DEV_MERCHANT_ID),
        causation_id: None,
        correlation_id: None,
        actor: "system:seed".into(),
        idempotency: None,
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
    let outcome = runner::execute::<MerchantAggregate, _>(store, merchant_id, &metadata, |_| {
        Ok(command.clone().into())
    })
    .await;
    match outcome {
        Ok(_) | Err(CommandError::Rejected(DomainError::MerchantAlreadyRegistered)) => {}
        Err(error) => return Err(error),
    }
    let mut state = runner::load::<MerchantAggregate>(store, merchant_id)
        .await?
        .state;
    let unset = state
        .as_ref()
        .is_some_and(|merchant| merchant.checkout_origins.is_empty());
    if unset && !checkout_origins.is_empty() {
        let set = SetCheckoutOrigins {
            origins: checkout_origins.to_vec(),
        };
        state = runner::execute::<MerchantAggregate, _>(store, merchant_id, &metadata, |_| {
            Ok(set.clone().into())
        })
        .await?
        .state;
    }
    if let Some(merchant) = state {
        sync_credentials(store.pool(), &merchant)
            .await
            .map_err(paystream_store::StoreError::from)?;
    }
    users(store)
        .await
        .map_err(paystream_store::StoreError::from)?;
    Ok(())
}

/// The dev users, and the dev merchant's claim on its e-mail.
async fn users(store: &PgEventStore) -> Result<(), sqlx::Error> {
    let pool = store.pool();
    sqlx::query(
        "insert into merchant_emails (email, merchant_id) values ($1, $2) on conflict do nothing",
    )
    .bind(DEV_MERCHANT_EMAIL)
    .bind(DEV_MERCHANT_ID)
    .execute(pool)
    .await?;
    let users = [
        (
            DEV_MERCHANT_EMAIL,
            DEV_MERCHANT_PASSWORD_HASH,
            Role::Merchant,
            Some(DEV_MERCHANT_ID),
        ),
        (DEV_STAFF_EMAIL, DEV_STAFF_PASSWORD_HASH, Role::Staff, None),
        (
            DEV_AUDITOR_EMAIL,
            DEV_AUDITOR_PASSWORD_HASH,
            Role::Auditor,
            None,
        ),
    ];
    for (email, password_hash, role, merchant_id) in users {
        sqlx::query(
            "insert into users (email, password_hash, role, merchant_id) values ($1, $2, $3, $4) \
             on conflict (email) do nothing",
        )
        .bind(email)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(merchant_id)
        .execute(pool)
        .await?;
    }
    Ok(())
}
