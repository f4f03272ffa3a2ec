//! The relay: publishes committed events from the store's global log to a
//! NATS JetStream stream, in global order, and remembers how far it got.
//!
//! * Subjects are `{prefix}.{category}.{event_type}` so consumers can filter
//!   (`paystream.events.payment.>`).
//! * `Nats-Msg-Id` is the event id: a republished event inside the stream's
//!   duplicate window is dropped by the server.
//! * Order is strict even with pipelined publishes: each message carries
//!   `Nats-Expected-Last-Msg-Id` = the previous event's id, so if one publish
//!   fails, every later one in flight is refused instead of overtaking it.
//! * The checkpoint lives in PostgreSQL (`relay_checkpoints`) and is
//!   reconciled at every start with the last message in the stream, which the
//!   strict order makes authoritative.
//! * One relay publishes at a time: the leader holds a PostgreSQL advisory
//!   lock; others wait as standbys. A second publisher could not interleave
//!   anyway: the expected-last-id check would refuse it.
//! * NATS down: appends are unaffected (they only touch PostgreSQL); the relay
//!   backs off with jitter and drains the backlog when NATS is back.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, stream};
use async_nats::HeaderMap;
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::backoff::backoff;
use crate::{EventStore, PgEventStore, Position, RecordedEvent, StoreError};

pub const HEADER_POSITION: &str = "Paystream-Position";
pub const HEADER_STREAM: &str = "Paystream-Stream";
pub const HEADER_VERSION: &str = "Paystream-Version";
pub const HEADER_EVENT_TYPE: &str = "Paystream-Event-Type";

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// JetStream stream name, e.g. `PAYSTREAM_EVENTS`.
    pub stream_name: String,
    /// Subject prefix, e.g. `paystream.events`.
    pub subject_prefix: String,
    /// Row in `relay_checkpoints`.
    pub checkpoint_name: String,
    /// Most events read and published in one step (1..=1000).
    pub batch_size: usize,
    /// Longest wait for new events when no append in this process signals.
    pub idle_wait: Duration,
    /// Retention of the JetStream stream; the store keeps everything forever.
    pub max_age: Duration,
    /// Server-side de-duplication window for `Nats-Msg-Id`.
    pub duplicate_window: Duration,
    /// Longest back-off after an error.
    pub backoff_max: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            stream_name: "PAYSTREAM_EVENTS".into(),
            subject_prefix: "paystream.events".into(),
            checkpoint_name: "relay".into(),
            batch_size: 500,
            idle_wait: Duration::from_millis(25),
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            backoff_max: Duration::from_secs(5),
        }
    }
}

impl RelayConfig {
    /// The subject an event is published on.
    pub fn subject(&self, event: &RecordedEvent) -> String {
        format!(
            "{}.{}.{}",
            self.subject_prefix,
            event.stream_id.category(),
            event.event_type
        )
    }
}

/// Wakes the relay as soon as this process appended something.
#[derive(Debug, Clone, Default)]
pub struct RelaySignal(Arc<Notify>);

impl RelaySignal {
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Published this many events; there may be more.
    Published(usize),
    /// Nothing new below the horizon.
    Idle,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("NATS: {0}")]
    Nats(String),
}

fn nats_error(error: impl std::fmt::Display) -> RelayError {
    RelayError::Nats(error.to_string())
}

/// The relay's state while it leads.
#[derive(Debug)]
pub struct Relay {
    store: PgEventStore,
    jetstream: jetstream::Context,
    config: RelayConfig,
    /// Last position known to be in the JetStream stream.
    position: Position,
    /// Id of the last message in the JetStream stream.
    last_message_id: Option<Uuid>,
}

impl Relay {
    /// Ensures the JetStream stream exists and reconciles the checkpoint with
    /// the stream's last message.
    pub async fn start(
        store: PgEventStore,
        jetstream: jetstream::Context,
        config: RelayConfig,
    ) -> Result<Self, RelayError> {
        let mut stream = ensure_stream(&jetstream, &config).await?;
        let checkpoint = load_checkpoint(store.pool(), &config.checkpoint_name).await?;
        let last_sequence = stream.info().await.map_err(nats_error)?.state.last_sequence;
        let mut relay = Self {
            store,
            jetstream,
            config,
            position: checkpoint,
            last_message_id: None,
        };
        if last_sequence > 0 {
            match stream.get_raw_message(last_sequence).await {
                Ok(message) => {
                    let published = header_i64(&message.headers, HEADER_POSITION).map(Position);
                    relay.last_message_id = message
                        .headers
                        .get("Nats-Msg-Id")
                        .and_then(|id| id.as_str().parse().ok());
                    if let Some(published) = published.filter(|p| *p > relay.position) {
                        tracing::info!(%published, checkpoint = %relay.position, "relay checkpoint advanced to the stream's last message");
                        relay.position = published;
                        save_checkpoint(
                            relay.store.pool(),
                            &relay.config.checkpoint_name,
                            published,
                        )
                        .await?;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, last_sequence, "could not read the stream's last message; trusting the checkpoint");
                }
            }
        }
        Ok(relay)
    }

    pub fn position(&self) -> Position {
        self.position
    }

    /// Publishes the next batch of final events and advances the checkpoint
    /// past every one JetStream acknowledged.
    pub async fn step(&mut self) -> Result<StepOutcome, RelayError> {
        let events = self
            .store
            .read_all(self.position, self.config.batch_size)
            .await?;
        if events.is_empty() {
            return Ok(StepOutcome::Idle);
        }

        let mut pending = Vec::with_capacity(events.len());
        let mut previous = self.last_message_id;
        let mut send_error = None;
        for event in &events {
            match self.publish(event, previous).await {
                Ok(ack) => pending.push((event.position, event.event_id, ack)),
                Err(error) => {
                    send_error = Some(error);
                    break;
                }
            }
            previous = Some(event.event_id);
        }

        let mut acknowledged = None;
        let mut ack_error = None;
        for (position, event_id, ack) in pending {
            match ack.await {
                Ok(_) => acknowledged = Some((position, event_id)),
                Err(error) => {
                    ack_error = Some(nats_error(error));
                    break;
                }
            }
        }
        let published = match acknowledged {
            Some((position, event_id)) => {
                save_checkpoint(self.store.pool(), &self.config.checkpoint_name, position).await?;
                let count = events.iter().take_while(|e| e.position <= position).count();
                self.position = position;
                self.last_message_id = Some(event_id);
                count
            }
            None => 0,
        };
        match ack_error.or(send_error) {
            Some(error) => Err(error),
            None => Ok(StepOutcome::Published(published)),
        }
    }

    async fn publish(
        &self,
        event: &RecordedEvent,
        previous: Option<Uuid>,
    ) -> Result<jetstream::context::PublishAckFuture, RelayError> {
        let body = serde_json::to_vec(event).map_err(|e| RelayError::Nats(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_POSITION, event.position.0.to_string().as_str());
        headers.insert(HEADER_STREAM, event.stream_id.as_str());
        headers.insert(HEADER_VERSION, event.version.to_string().as_str());
        headers.insert(HEADER_EVENT_TYPE, event.event_type.as_str());
        let mut message = PublishMessage::build()
            .headers(headers)
            .message_id(event.event_id.to_string())
            .payload(body.into());
        if let Some(previous) = previous {
            message = message.expected_last_message_id(previous.to_string());
        }
        self.jetstream
            .send_publish(self.config.subject(event), message)
            .await
            .map_err(nats_error)
    }
}

/// Runs the relay for the life of the process: waits for leadership, relays,
/// and starts over (with a bounded, jittered back-off) after any error, so it
/// recovers by itself from PostgreSQL or NATS restarts.
pub async fn run(
    store: PgEventStore,
    jetstream: jetstream::Context,
    config: RelayConfig,
    signal: RelaySignal,
) {
    let mut failures: u32 = 0;
    loop {
        match lead(&store, &jetstream, &config, &signal).await {
            Ok(()) => failures = 0,
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::warn!(%error, failures, "relay error; backing off");
            }
        }
        tokio::time::sleep(backoff(failures, config.backoff_max)).await;
    }
}

/// One leadership term. Returns `Ok` when another relay leads.
async fn lead(
    store: &PgEventStore,
    jetstream: &jetstream::Context,
    config: &RelayConfig,
    signal: &RelaySignal,
) -> Result<(), RelayError> {
    let Some(mut lock) = try_lead(store.pool(), &config.checkpoint_name).await? else {
        return Ok(());
    };
    let mut relay = Relay::start(store.clone(), jetstream.clone(), config.clone()).await?;
    tracing::info!(position = %relay.position(), "relay leading");
    let mut last_lock_check = tokio::time::Instant::now();
    loop {
        if let StepOutcome::Idle = relay.step().await? {
            let _ = tokio::time::timeout(config.idle_wait, signal.0.notified()).await;
        }
        if last_lock_check.elapsed() > Duration::from_secs(1) {
            // The lock lives as long as this connection: make sure it does.
            sqlx::query("select 1").execute(&mut lock).await?;
            last_lock_check = tokio::time::Instant::now();
        }
    }
}

/// Takes the leader lock on a connection of its own: the lock lives exactly
/// as long as that connection, which never goes back to the pool.
async fn try_lead(pool: &PgPool, name: &str) -> Result<Option<PgConnection>, RelayError> {
    let mut connection = pool.acquire().await?.detach();
    let leading: bool =
        sqlx::query_scalar("select pg_try_advisory_lock(hashtext('paystream.relay.' || $1))")
            .bind(name)
            .fetch_one(&mut connection)
            .await?;
    Ok(leading.then_some(connection))
}

async fn ensure_stream(
    jetstream: &jetstream::Context,
    config: &RelayConfig,
) -> Result<stream::Stream, RelayError> {
    jetstream
        .get_or_create_stream(stream::Config {
            name: config.stream_name.clone(),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age: config.max_age,
            duplicate_window: config.duplicate_window,
            ..Default::default()
        })
        .await
        .map_err(nats_error)
}

pub async fn load_checkpoint(pool: &PgPool, name: &str) -> Result<Position, RelayError> {
    let position: Option<i64> =
        sqlx::query_scalar("select position from relay_checkpoints where name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(Position(position.unwrap_or(0)))
}

async fn save_checkpoint(pool: &PgPool, name: &str, position: Position) -> Result<(), RelayError> {
    sqlx::query(
        "insert into relay_checkpoints (name, position, updated_at) values ($1, $2, now()) \
         on conflict (name) do update set position = greatest(relay_checkpoints.position, excluded.position), updated_at = now()",
    )
    .bind(name)
    .bind(position.0)
    .execute(pool)
    .await?;
    Ok(())
}

fn header_i64(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers
        .get(name)
        .and_then(|value| value.as_str().parse().ok())
}

/// How far the relay is: the position it published up to, and the committed
/// events beyond it not yet published (counted up to `cap`, so the count
/// costs at most that many index entries).
pub async fn backlog(store: &PgEventStore, cap: u64) -> Result<(Position, u64), StoreError> {
    let (position, backlog): (i64, i64) = sqlx::query_as(
        "with relay as (select coalesce(max(position), 0) as position from relay_checkpoints) \
         select relay.position, \
           (select count(*) from (select 1 from events e \
              where e.position > relay.position and e.position < events_horizon() limit $1) backlog) \
         from relay",
    )
    .bind(i64::try_from(cap).unwrap_or(i64::MAX))
    .fetch_one(store.pool())
    .await?;
    Ok((Position(position), u64::try_from(backlog).unwrap_or(0)))
}
