//! The durable schedule (`webhook_schedule`): one row per pending delivery,
//! kept in step with the delivery aggregate. The aggregate decides; the row
//! is only an index of what is due, so a stale row costs a wasted claim,
//! never a wrong send. Every write carries the delivery stream's version and
//! never replaces a row that reflects a later one.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use paystream_domain::webhook::{WebhookDeliveryAggregate, WebhookDeliveryStatus};
use paystream_store::runner::Loaded;
use sqlx::PgPool;
use uuid::Uuid;

use crate::recent::Rows;

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

/// One new row for [`insert_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRow {
    pub delivery_id: String,
    pub merchant_id: Uuid,
    pub endpoint: String,
    pub next_attempt_at: DateTime<Utc>,
    pub version: i64,
    /// Insert it already leased (for `lease`) by this dispatcher, which
    /// hands the delivery straight to its worker instead of waiting for a
    /// claim.
    pub leased: bool,
}

impl NewRow {
    /// The row `loaded` needs, or `None` when it needs none (not pending).
    pub fn of(loaded: &Loaded<WebhookDeliveryAggregate>, leased: bool) -> Option<Self> {
        let delivery = loaded.state.as_ref()?;
        match (delivery.status, delivery.next_attempt_at) {
            (WebhookDeliveryStatus::Pending, Some(next_attempt_at)) => Some(Self {
                delivery_id: delivery.delivery_id.as_str().to_owned(),
                merchant_id: delivery.merchant_id.into(),
                endpoint: endpoint_of(&delivery.url),
                next_attempt_at,
                version: i64::try_from(loaded.version).unwrap_or(i64::MAX),
                leased,
            }),
            _ => None,
        }
    }
}

/// [`upsert`] of many rows in one statement (the same version guard); a
/// leased row's lease runs for `lease` from now. Returns the ids of the rows
/// written: a row that already reflects the same or a later version is left
/// alone, and so is its lease.
pub async fn insert_many(
    pool: &PgPool,
    rows: &[NewRow],
    lease: Duration,
) -> sqlx::Result<Vec<String>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // One row per delivery (the latest version), in id order, so that
    // concurrent statements lock rows in the same order.
    let mut latest: Vec<&NewRow> = Vec::with_capacity(rows.len());
    let mut sorted: Vec<&NewRow> = rows.iter().collect();
    sorted.sort_by(|a, b| {
        a.delivery_id
            .cmp(&b.delivery_id)
            .then(b.version.cmp(&a.version))
    });
    for row in sorted {
        if latest
            .last()
            .is_none_or(|last| last.delivery_id != row.delivery_id)
        {
            latest.push(row);
        }
    }
    let ids: Vec<&str> = latest.iter().map(|r| r.delivery_id.as_str()).collect();
    let merchants: Vec<Uuid> = latest.iter().map(|r| r.merchant_id).collect();
    let endpoints: Vec<&str> = latest.iter().map(|r| r.endpoint.as_str()).collect();
    let due: Vec<DateTime<Utc>> = latest.iter().map(|r| r.next_attempt_at).collect();
    let versions: Vec<i64> = latest.iter().map(|r| r.version).collect();
    let leased: Vec<bool> = latest.iter().map(|r| r.leased).collect();
    sqlx::query_scalar(
        "insert into webhook_schedule \
             (delivery_id, merchant_id, endpoint, next_attempt_at, leased_until, version) \
         select r.id, r.merchant, r.endpoint, r.due, \
                case when r.leased then now() + make_interval(secs => $7) end, r.version \
           from unnest($1::text[], $2::uuid[], $3::text[], $4::timestamptz[], $5::bigint[], \
                       $6::bool[]) as r(id, merchant, endpoint, due, version, leased) \
         on conflict (delivery_id) do update \
             set next_attempt_at = excluded.next_attempt_at, \
                 leased_until = excluded.leased_until, \
                 endpoint = excluded.endpoint, version = excluded.version \
             where webhook_schedule.version < excluded.version \
         returning delivery_id",
    )
    .bind(&ids)
    .bind(&merchants)
    .bind(&endpoints)
    .bind(&due)
    .bind(&versions)
    .bind(&leased)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// A row change after an attempt: the row `loaded` needs (unleased), or its
/// removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Upsert(NewRow),
    Remove { delivery_id: String, version: i64 },
}

impl Change {
    /// What the row of `loaded` must become; `None` for a stream that does
    /// not exist.
    pub fn of(loaded: &Loaded<WebhookDeliveryAggregate>) -> Option<Self> {
        let delivery = loaded.state.as_ref()?;
        Some(match NewRow::of(loaded, false) {
            Some(row) => Self::Upsert(row),
            None => Self::Remove {
                delivery_id: delivery.delivery_id.as_str().to_owned(),
                version: i64::try_from(loaded.version).unwrap_or(i64::MAX),
            },
        })
    }

    fn delivery_id(&self) -> &str {
        match self {
            Self::Upsert(row) => &row.delivery_id,
            Self::Remove { delivery_id, .. } => delivery_id,
        }
    }

    fn version(&self) -> i64 {
        match self {
            Self::Upsert(row) => row.version,
            Self::Remove { version, .. } => *version,
        }
    }
}

/// Applies many [`Change`]s in one statement (one transaction), each with
/// the version guard of [`upsert`] and [`remove`]. For a delivery changed
/// more than once, only its latest version counts.
pub async fn apply(pool: &PgPool, changes: &[Change]) -> sqlx::Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by(|a, b| {
        a.delivery_id()
            .cmp(b.delivery_id())
            .then(b.version().cmp(&a.version()))
    });
    let mut latest: Vec<&Change> = Vec::with_capacity(sorted.len());
    for change in sorted {
        if latest
            .last()
            .is_none_or(|last| last.delivery_id() != change.delivery_id())
        {
            latest.push(change);
        }
    }
    let (mut remove_ids, mut remove_versions) = (Vec::new(), Vec::new());
    let mut upserts = Vec::new();
    for change in latest {
        match change {
            Change::Remove {
                delivery_id,
                version,
            } => {
                remove_ids.push(delivery_id.as_str());
                remove_versions.push(*version);
            }
            Change::Upsert(row) => upserts.push(row),
        }
    }
    let ids: Vec<&str> = upserts.iter().map(|r| r.delivery_id.as_str()).collect();
    let merchants: Vec<Uuid> = upserts.iter().map(|r| r.merchant_id).collect();
    let endpoints: Vec<&str> = upserts.iter().map(|r| r.endpoint.as_str()).collect();
    let due: Vec<DateTime<Utc>> = upserts.iter().map(|r| r.next_attempt_at).collect();
    let versions: Vec<i64> = upserts.iter().map(|r| r.version).collect();
    sqlx::query(
        "with removed as ( \
             delete from webhook_schedule s \
              using unnest($1::text[], $2::bigint[]) as r(id, version) \
              where s.delivery_id = r.id and s.version <= r.version \
             returning 1 \
         ), upserted as ( \
             insert into webhook_schedule \
                 (delivery_id, merchant_id, endpoint, next_attempt_at, leased_until, version) \
             select r.id, r.merchant, r.endpoint, r.due, null, r.version \
               from unnest($3::text[], $4::uuid[], $5::text[], $6::timestamptz[], \
                           $7::bigint[]) as r(id, merchant, endpoint, due, version) \
             on conflict (delivery_id) do update \
                 set next_attempt_at = excluded.next_attempt_at, leased_until = null, \
                     endpoint = excluded.endpoint, version = excluded.version \
                 where webhook_schedule.version < excluded.version \
             returning 1 \
         ) \
         select (select count(*) from removed), (select count(*) from upserted)",
    )
    .bind(&remove_ids)
    .bind(&remove_versions)
    .bind(&ids)
    .bind(&merchants)
    .bind(&endpoints)
    .bind(&due)
    .bind(&versions)
    .execute(pool)
    .await?;
    Ok(())
}

/// The versions the rows of `delivery_ids` reflect (deliveries without a
/// row are absent).
pub async fn versions(
    pool: &PgPool,
    delivery_ids: &[&str],
) -> sqlx::Result<std::collections::HashMap<String, i64>> {
    if delivery_ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select delivery_id, version from webhook_schedule where delivery_id = any($1)",
    )
    .bind(delivery_ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Row changes queued for the [`Writer`], with where to report the outcome.
type Queued = (Change, tokio::sync::oneshot::Sender<Result<(), String>>);

/// Group commit for row changes after attempts: callers queue a [`Change`]
/// (bounded queue) and wait for it; one task writes everything queued as
/// one statement ([`apply`]), so one round trip and one commit serve many
/// attempts. If a batch fails, its changes are written one by one, so one
/// bad change cannot fail its neighbours.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: tokio::sync::mpsc::Sender<Queued>,
}

/// Most changes written in one statement.
const WRITER_BATCH: usize = 512;

impl Writer {
    /// Starts the writer task; it ends when every handle is dropped.
    /// `rows` learns every change written.
    pub fn start(pool: PgPool, capacity: usize, rows: Option<Arc<Rows>>) -> Self {
        let (queue, mut receiver) = tokio::sync::mpsc::channel::<Queued>(capacity.max(1));
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(WRITER_BATCH);
            while receiver.recv_many(&mut batch, WRITER_BATCH).await > 0 {
                let changes: Vec<Change> = batch.iter().map(|(change, _)| change.clone()).collect();
                let learn = |change: &Change| {
                    if let Some(rows) = &rows {
                        rows.wrote(change.delivery_id(), change.version());
                    }
                };
                match apply(&pool, &changes).await {
                    Ok(()) => {
                        for (change, reply) in batch.drain(..) {
                            learn(&change);
                            let _ = reply.send(Ok(()));
                        }
                    }
                    Err(_) => {
                        for (change, reply) in batch.drain(..) {
                            let result = apply(&pool, std::slice::from_ref(&change))
                                .await
                                .map_err(|error| error.to_string());
                            if result.is_ok() {
                                learn(&change);
                            }
                            let _ = reply.send(result);
                        }
                    }
                }
            }
        });
        Self { queue }
    }

    /// Brings the row of `loaded` in line with its state, like [`sync`],
    /// batched with other attempts' changes.
    pub async fn sync(&self, loaded: &Loaded<WebhookDeliveryAggregate>) -> Result<(), String> {
        let Some(change) = Change::of(loaded) else {
            return Ok(());
        };
        let (reply, outcome) = tokio::sync::oneshot::channel();
        self.queue
            .send((change, reply))
            .await
            .map_err(|_| "the schedule writer stopped".to_owned())?;
        outcome
            .await
            .map_err(|_| "the schedule writer stopped".to_owned())?
    }
}
