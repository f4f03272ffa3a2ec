//! Merchants' webhook settings, looked up briefly cached: every delivery
//! needs its merchant twice (to schedule, then to sign), and reading the
//! merchant's stream each time was a large share of a delivery's cost.
//!
//! A change (new URL, rotated secret, disabled endpoint) is seen within
//! [`TTL`]. Signing with the previous secret meanwhile is fine: it stays
//! valid through the rotation's overlap window. Bounded: at most
//! [`MAX_ENTRIES`] merchants; the cache is emptied when full.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use paystream_command_api::aggregates::{self, CommandError};
use paystream_command_api::store::PgEventStore;
use paystream_domain::merchant::{Merchant, MerchantAggregate};
use paystream_domain::MerchantId;

pub const TTL: Duration = Duration::from_secs(1);
const MAX_ENTRIES: usize = 10_000;

type Cache = Mutex<HashMap<MerchantId, (Option<Merchant>, Instant)>>;

fn cache() -> &'static Cache {
    static CACHE: LazyLock<Cache> = LazyLock::new(Default::default);
    &CACHE
}

/// The merchant as of at most [`TTL`] ago (`None`: no such merchant).
pub async fn merchant(
    store: &PgEventStore,
    merchant_id: MerchantId,
) -> Result<Option<Merchant>, CommandError> {
    {
        let cache = cache()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((merchant, at)) = cache.get(&merchant_id) {
            if at.elapsed() < TTL {
                return Ok(merchant.clone());
            }
        }
    }
    let merchant = aggregates::load::<MerchantAggregate>(store, merchant_id)
        .await?
        .state;
    let mut cache = cache()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if cache.len() >= MAX_ENTRIES {
        cache.clear();
    }
    cache.insert(merchant_id, (merchant.clone(), Instant::now()));
    Ok(merchant)
}

/// Drops one merchant's entry (after this process changed it).
pub fn forget(merchant_id: MerchantId) {
    cache()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .remove(&merchant_id);
}
