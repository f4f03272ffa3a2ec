//! What a projection is: a name, the tables it owns, and how it applies a
//! batch of events inside a transaction.
//!
//! Projections are few and fixed, so they are an enum, not trait objects.
//! Applying never commits: the caller (live tailing or rebuild) owns the
//! transaction and the checkpoint, so rows and checkpoint move together.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use paystream_domain::{Aggregate, DomainEvent};
use paystream_store::RecordedEvent;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::PgConnection;

pub use paystream_domain::api::text;

use crate::projections;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Projection {
    /// Orders, payments, refunds, merchant stats and the funnel.
    Payments,
    /// Webhook deliveries and their attempts.
    Webhooks,
    /// Merchant accounts.
    Merchants,
    /// The double-entry ledger and balances.
    Ledger,
}

impl Projection {
    pub const ALL: [Projection; 4] = [
        Projection::Payments,
        Projection::Webhooks,
        Projection::Merchants,
        Projection::Ledger,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Projection::Payments => "payments",
            Projection::Webhooks => "webhooks",
            Projection::Merchants => "merchants",
            Projection::Ledger => "ledger",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The tables this projection alone writes (migrations 0006 and 0008).
    pub const fn tables(self) -> &'static [&'static str] {
        match self {
            Projection::Payments => &[
                "rm_orders",
                "rm_payments",
                "rm_refunds",
                "rm_merchant_stats_daily",
                "rm_merchant_funnel_daily",
            ],
            Projection::Webhooks => &["rm_webhook_deliveries", "rm_webhook_attempts"],
            Projection::Merchants => &["rm_merchants"],
            Projection::Ledger => &[
                "ledger_entries",
                "ledger_postings",
                "ledger_balances",
                "ledger_merchants",
                "ledger_payments",
            ],
        }
    }

    /// Applies `events` (global order, each at most once: the caller skips
    /// positions at or below the checkpoint) on `conn`, inside the caller's
    /// transaction. Events this projection does not use are ignored.
    pub async fn apply(
        self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), ApplyError> {
        match self {
            Projection::Payments => projections::payments::apply(conn, events).await,
            Projection::Webhooks => projections::webhooks::apply(conn, events).await,
            Projection::Merchants => projections::merchants::apply(conn, events).await,
            Projection::Ledger => projections::ledger::apply(conn, events).await,
        }
    }
}

impl fmt::Display for Projection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// PostgreSQL failed. Usually transient (retry the batch); a data or
    /// constraint error is the event's fault (see [`ApplyError::is_poison`]).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading the event store failed (never the event's fault).
    #[error("event store: {0}")]
    Store(#[from] paystream_store::StoreError),
    /// The event cannot be applied: unknown type or version, bad payload, or
    /// a gap in its stream. Retrying cannot help.
    #[error("{0}")]
    Poison(String),
}

impl ApplyError {
    /// Whether retrying the same event can never succeed.
    pub fn is_poison(&self) -> bool {
        match self {
            ApplyError::Poison(_) => true,
            // SQLSTATE class 22 (data exception) and 23 (integrity violation).
            ApplyError::Database(sqlx::Error::Database(error)) => error
                .code()
                .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
            ApplyError::Database(_) | ApplyError::Store(_) => false,
        }
    }
}

/// The id of the object a stream holds: `order_…` for `order-order_…`.
pub fn object_key(event: &RecordedEvent) -> &str {
    event
        .stream_id
        .as_str()
        .split_once('-')
        .map_or("", |(_, id)| id)
}

/// One object's row after a batch: its state as `evolve` left it, the stream
/// version it reflects, the events this batch applied to it, and its state
/// before the first of them.
#[derive(Debug)]
pub struct Folded<'e, A: Aggregate> {
    pub key: String,
    pub version: i64,
    pub state: A::State,
    pub applied: Vec<(A::Event, &'e RecordedEvent)>,
    /// The state before this batch (`Default`, "does not exist", for an
    /// object this batch created).
    pub before: A::State,
}

/// Folds the events of aggregate `A` into the rows of `table`: loads the
/// touched rows (`key_column` of SQL type `key_type`, plus `version` and
/// `state`), applies each event with the domain's `evolve`, and returns the
/// rows that changed. An event at or below a row's version was applied
/// before and is skipped; one beyond the next version is a gap (an earlier
/// event of the stream was parked) and is poison, like an unreadable event.
pub async fn fold_rows<'e, A>(
    conn: &mut PgConnection,
    table: &str,
    key_column: &str,
    key_type: &str,
    events: &[&'e RecordedEvent],
) -> Result<Vec<Folded<'e, A>>, ApplyError>
where
    A: Aggregate,
    A::State: Serialize + DeserializeOwned,
{
    let ours: Vec<&RecordedEvent> = events
        .iter()
        .copied()
        .filter(|event| event.stream_id.category() == A::CATEGORY)
        .collect();
    if ours.is_empty() {
        return Ok(Vec::new());
    }
    let mut keys: Vec<String> = ours.iter().map(|e| object_key(e).to_owned()).collect();
    keys.sort_unstable();
    keys.dedup();
    let sql = format!(
        "select {key_column}::text, version, state from {table} \
         where {key_column} = any($1::text[]::{key_type}[])"
    );
    let stored: Vec<(String, i64, serde_json::Value)> = sqlx::query_as(&sql)
        .bind(&keys)
        .fetch_all(&mut *conn)
        .await?;
    let mut rows: HashMap<String, Folded<'e, A>> = HashMap::with_capacity(keys.len());
    for (key, version, state) in stored {
        let state = serde_json::from_value(state).map_err(|error| {
            ApplyError::Poison(format!("stored {table} row {key} is unreadable: {error}"))
        })?;
        rows.insert(
            key.clone(),
            Folded {
                key,
                version,
                state,
                applied: Vec::new(),
                before: A::State::default(),
            },
        );
    }
    for event in ours {
        let key = object_key(event);
        let row = rows.entry(key.to_owned()).or_insert_with(|| Folded {
            key: key.to_owned(),
            version: 0,
            state: A::State::default(),
            applied: Vec::new(),
            before: A::State::default(),
        });
        let version = i64::try_from(event.version).unwrap_or(i64::MAX);
        if version <= row.version {
            continue;
        }
        if version != row.version + 1 {
            return Err(ApplyError::Poison(format!(
                "gap in {}: the read model is at version {}, the event is version {version}",
                event.stream_id, row.version
            )));
        }
        let domain_event = A::Event::from_stored(
            &event.event_type,
            event.schema_version,
            event.payload.clone(),
        )
        .map_err(|error| ApplyError::Poison(error.to_string()))?;
        if row.applied.is_empty() {
            row.before = row.state.clone();
        }
        row.state = A::evolve(std::mem::take(&mut row.state), &domain_event);
        row.version = version;
        row.applied.push((domain_event, event));
    }
    let changed: BTreeMap<String, Folded<'e, A>> = rows
        .into_iter()
        .filter(|(_, row)| !row.applied.is_empty())
        .collect();
    Ok(changed.into_values().collect())
}

/// A state as stored in a `state` column: JSON text, bound as `text[]` and
/// cast to `jsonb[]` in SQL (no intermediate `serde_json::Value`).
pub fn state_json<T: Serialize>(state: &T) -> Result<String, ApplyError> {
    serde_json::to_string(state)
        .map_err(|error| ApplyError::Poison(format!("state does not serialize: {error}")))
}

#[cfg(test)]
mod tests {
    use super::Projection;

    /// The store lists the projections in `/health` before their first
    /// checkpoint; its list is this one.
    #[test]
    fn the_store_knows_every_projection() {
        let names: Vec<&str> = Projection::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(names, paystream_store::postgres::lag::PROJECTIONS);
    }
}
