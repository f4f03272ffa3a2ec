//! Projection `webhooks`: `rm_webhook_deliveries` (folded with the domain's
//! `evolve`) and `rm_webhook_attempts` (one row per `WebhookAttemptRecorded`,
//! keyed by the delivery stream's version).

use chrono::{DateTime, Utc};
use paystream_domain::webhook::{WebhookDeliveryAggregate, WebhookDeliveryEvent};
use paystream_store::RecordedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{fold_rows, state_json, text, ApplyError};

pub async fn apply(conn: &mut PgConnection, events: &[&RecordedEvent]) -> Result<(), ApplyError> {
    let rows = fold_rows::<WebhookDeliveryAggregate>(
        &mut *conn,
        "rm_webhook_deliveries",
        "delivery_id",
        "text",
        events,
    )
    .await?;
    if rows.is_empty() {
        return Ok(());
    }

    let mut ids = Vec::new();
    let mut merchants = Vec::new();
    let mut names = Vec::new();
    let mut statuses = Vec::new();
    let mut attempts = Vec::new();
    let mut created = Vec::new();
    let mut updated = Vec::new();
    let mut last_attempt: Vec<Option<DateTime<Utc>>> = Vec::new();
    let mut codes: Vec<Option<i32>> = Vec::new();
    let mut next_retry: Vec<Option<DateTime<Utc>>> = Vec::new();
    let mut versions = Vec::new();
    let mut states = Vec::new();
    for row in &rows {
        let Some(delivery) = &row.state else { continue };
        ids.push(row.key.clone());
        merchants.push(Uuid::from(delivery.merchant_id));
        names.push(delivery.event.clone());
        statuses.push(text(&delivery.status));
        attempts.push(i32::try_from(delivery.attempts).unwrap_or(i32::MAX));
        created.push(delivery.created_at);
        updated.push(delivery.updated_at);
        last_attempt.push(delivery.last_attempt_at);
        codes.push(delivery.last_status_code.map(i32::from));
        next_retry.push(delivery.next_attempt_at);
        versions.push(row.version);
        states.push(state_json(delivery)?);
    }
    if !ids.is_empty() {
        sqlx::query(
            "insert into rm_webhook_deliveries \
               (delivery_id, merchant_id, event, status, attempts, created_at, updated_at, \
                last_attempt_at, response_code, next_retry_at, version, state) \
             select * from unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::int4[], \
                                  $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], \
                                  $9::int4[], $10::timestamptz[], $11::int8[], $12::text[]::jsonb[]) \
             on conflict (delivery_id) do update set \
               status = excluded.status, attempts = excluded.attempts, \
               updated_at = excluded.updated_at, last_attempt_at = excluded.last_attempt_at, \
               response_code = excluded.response_code, next_retry_at = excluded.next_retry_at, \
               version = excluded.version, state = excluded.state",
        )
        .bind(ids)
        .bind(merchants)
        .bind(names)
        .bind(statuses)
        .bind(attempts)
        .bind(created)
        .bind(updated)
        .bind(last_attempt)
        .bind(codes)
        .bind(next_retry)
        .bind(versions)
        .bind(states)
        .execute(&mut *conn)
        .await?;
    }

    let mut delivery_ids = Vec::new();
    let mut versions = Vec::new();
    let mut numbers = Vec::new();
    let mut at = Vec::new();
    let mut codes: Vec<Option<i32>> = Vec::new();
    let mut latencies = Vec::new();
    let mut errors: Vec<Option<String>> = Vec::new();
    let mut excerpts = Vec::new();
    let mut retry_after: Vec<Option<i32>> = Vec::new();
    for row in &rows {
        for (event, recorded) in &row.applied {
            let WebhookDeliveryEvent::WebhookAttemptRecorded(attempt) = event else {
                continue;
            };
            delivery_ids.push(row.key.clone());
            versions.push(i64::try_from(recorded.version).unwrap_or(i64::MAX));
            numbers.push(i32::try_from(attempt.attempt).unwrap_or(i32::MAX));
            at.push(attempt.attempted_at);
            codes.push(attempt.status_code.map(i32::from));
            latencies.push(i32::try_from(attempt.latency_ms).unwrap_or(i32::MAX));
            errors.push(attempt.error.clone());
            excerpts.push(attempt.response_body_excerpt.clone());
            retry_after.push(
                attempt
                    .retry_after_seconds
                    .map(|s| i32::try_from(s).unwrap_or(i32::MAX)),
            );
        }
    }
    if !delivery_ids.is_empty() {
        sqlx::query(
            "insert into rm_webhook_attempts \
               (delivery_id, version, attempt, attempted_at, status_code, latency_ms, error, \
                response_body_excerpt, retry_after_seconds) \
             select * from unnest($1::text[], $2::int8[], $3::int4[], $4::timestamptz[], \
                                  $5::int4[], $6::int4[], $7::text[], $8::text[], $9::int4[]) \
             on conflict (delivery_id, version) do nothing",
        )
        .bind(delivery_ids)
        .bind(versions)
        .bind(numbers)
        .bind(at)
        .bind(codes)
        .bind(latencies)
        .bind(errors)
        .bind(excerpts)
        .bind(retry_after)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
