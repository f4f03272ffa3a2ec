//! The durable schedule (`webhook_schedule`): one row per pending delivery,
//! kept in step with the delivery aggregate. The aggregate decides; the row
//! is only an index of what is due, so a stale row costs a wasted claim,
//! never a wrong send. Every write carries the delivery stream's version and
//! never replaces a row that reflects a later one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use paystream_command_api::aggregates::Loaded;
use paystream_domain::webhook::{WebhookDeliveryAggregate, WebhookDeliveryStatus};
use sqlx::PgPool;
use uuid::Uuid;

/// The origin (`scheme://host:port`) of `url`: the unit of per-endpoint limits.
pub fn endpoint_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => parsed.origin().ascii_serialization(),
        Err(_) => url.to_owned(),
    }
}

/// Brings the row of `loaded` in line with its state: present with the next
/// attempt time while pending, absent otherwise.
pub async fn sync(pool: &PgPool, loaded: &Loaded<WebhookDeliveryAggregate>) -> sqlx::Result<()> {
    let Some(delivery) = &loaded.state else {
        return Ok(());
    };
    let version = i64::try_from(loaded.version).unwrap_or(i64::MAX);
    match (delivery.status, delivery.next_attempt_at) {
        (WebhookDeliveryStatus::Pending, Some(next_attempt_at)) => {
            upsert(
                pool,
                delivery.delivery_id.as_str(),
                delivery.merchant_id.into(),
                &endpoint_of(&delivery.url),
                next_attempt_at,
                version,
            )
            .await
        }
        _ => remove(pool, delivery.delivery_id.as_str(), version).await,
    }
}

/// Inserts or moves a row, only for a version later than the row's: an event
/// handled again (or the intake seeing its own `WebhookDeliveryScheduled`)
/// must not release the lease of a worker that is sending it right now, or
/// a second worker would send it again. A later version releases the lease.
pub async fn upsert(
    pool: &PgPool,
    delivery_id: &str,
    merchant_id: Uuid,
    endpoint: &str,
    next_attempt_at: DateTime<Utc>,
    version: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into webhook_schedule \
             (delivery_id, merchant_id, endpoint, next_attempt_at, leased_until, version) \
         values ($1, $2, $3, $4, null, $5) \
         on conflict (delivery_id) do update \
             set next_attempt_at = excluded.next_attempt_at, leased_until = null, \
                 endpoint = excluded.endpoint, version = excluded.version \
             where webhook_schedule.version < excluded.version",
    )
    .bind(delivery_id)
    .bind(merchant_id)
    .bind(endpoint)
    .bind(next_attempt_at)
    .bind(version)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether the delivery's row reflects a version before `version` (no row:
/// not behind; a delivered or failed delivery has none).
pub async fn behind(pool: &PgPool, delivery_id: &str, version: u64) -> sqlx::Result<bool> {
    let row_version: Option<i64> =
        sqlx::query_scalar("select version from webhook_schedule where delivery_id = $1")
            .bind(delivery_id)
            .fetch_optional(pool)
            .await?;
    Ok(row_version.is_some_and(|row| row < i64::try_from(version).unwrap_or(i64::MAX)))
}

/// Deletes the row unless it reflects a version after `version`.
pub async fn remove(pool: &PgPool, delivery_id: &str, version: i64) -> sqlx::Result<()> {
    sqlx::query("delete from webhook_schedule where delivery_id = $1 and version <= $2")
        .bind(delivery_id)
        .bind(version)
        .execute(pool)
        .await?;
    Ok(())
}

/// A row claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Claimed {
    pub delivery_id: String,
    pub endpoint: String,
    pub next_attempt_at: DateTime<Utc>,
}

/// Leases up to `limit` due rows whose endpoint is not in `skip`, earliest
/// first. Rows leased by a live dispatcher are skipped; expired leases are
/// taken over.
pub async fn claim(
    pool: &PgPool,
    limit: usize,
    skip: &[String],
    lease: Duration,
) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as(
        "update webhook_schedule set leased_until = now() + make_interval(secs => $3) \
         where delivery_id in ( \
             select delivery_id from webhook_schedule \
             where next_attempt_at <= now() \
               and (leased_until is null or leased_until < now()) \
               and not (endpoint = any($2)) \
             order by next_attempt_at \
             limit $1 \
             for update skip locked) \
         returning delivery_id, endpoint, next_attempt_at",
    )
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .bind(skip)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// Gives leased rows back at once (e.g. their endpoint is saturated).
pub async fn release(pool: &PgPool, delivery_ids: &[String]) -> sqlx::Result<()> {
    if delivery_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("update webhook_schedule set leased_until = null where delivery_id = any($1)")
        .bind(delivery_ids)
        .execute(pool)
        .await?;
    Ok(())
}

/// Due rows, and how late the most overdue unleased one is (seconds).
pub async fn depth_and_lag(pool: &PgPool) -> sqlx::Result<(i64, f64)> {
    let row: (i64, Option<f64>) = sqlx::query_as(
        "select count(*), \
                extract(epoch from now() - min(next_attempt_at) \
                    filter (where leased_until is null or leased_until < now()))::float8 \
         from webhook_schedule where next_attempt_at <= now()",
    )
    .fetch_one(pool)
    .await?;
    Ok((row.0, row.1.unwrap_or(0.0).max(0.0)))
}
