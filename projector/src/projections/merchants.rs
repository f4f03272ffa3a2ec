//! Projection `merchants`: `rm_merchants`, folded with the domain's `evolve`.
//! `updated_at` is the time of the last event applied.

use paystream_domain::merchant::MerchantAggregate;
use paystream_store::RecordedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{fold_rows, state_json, text, ApplyError};

pub async fn apply(conn: &mut PgConnection, events: &[&RecordedEvent]) -> Result<(), ApplyError> {
    let rows =
        fold_rows::<MerchantAggregate>(&mut *conn, "rm_merchants", "merchant_id", "uuid", events)
            .await?;
    let mut ids = Vec::new();
    let mut names = Vec::new();
    let mut emails = Vec::new();
    let mut statuses = Vec::new();
    let mut keys = Vec::new();
    let mut fees = Vec::new();
    let mut urls: Vec<Option<String>> = Vec::new();
    let mut created = Vec::new();
    let mut updated = Vec::new();
    let mut versions = Vec::new();
    let mut states = Vec::new();
    for row in &rows {
        let (Some(merchant), Some((_, last))) = (&row.state, row.applied.last()) else {
            continue;
        };
        ids.push(Uuid::from(merchant.merchant_id));
        names.push(merchant.name.clone());
        emails.push(merchant.email.clone());
        statuses.push(text(&merchant.status));
        keys.push(merchant.api_key.clone());
        fees.push(i32::try_from(merchant.fee_bps).unwrap_or(i32::MAX));
        urls.push(merchant.webhook.url.clone());
        created.push(merchant.registered_at);
        updated.push(last.recorded_at);
        versions.push(row.version);
        states.push(state_json(merchant)?);
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "insert into rm_merchants \
           (merchant_id, name, email, status, api_key, fee_bps, webhook_url, created_at, \
            updated_at, version, state) \
         select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
                              $6::int4[], $7::text[], $8::timestamptz[], $9::timestamptz[], \
                              $10::int8[], $11::text[]::jsonb[]) \
         on conflict (merchant_id) do update set \
           name = excluded.name, email = excluded.email, status = excluded.status, \
           api_key = excluded.api_key, fee_bps = excluded.fee_bps, \
           webhook_url = excluded.webhook_url, updated_at = excluded.updated_at, \
           version = excluded.version, state = excluded.state",
    )
    .bind(ids)
    .bind(names)
    .bind(emails)
    .bind(statuses)
    .bind(keys)
    .bind(fees)
    .bind(urls)
    .bind(created)
    .bind(updated)
    .bind(versions)
    .bind(states)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
