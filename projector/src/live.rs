//! Live tailing: one durable JetStream pull consumer for every projection.
//!
//! Each batch of messages is applied to all four projections in one
//! transaction ([`apply_live`]): one delivery and one commit per batch,
//! instead of one per projection (the per-payment budget measured every
//! event delivered to each of four consumers).
//!
//! The checkpoints in PostgreSQL, one per projection, not the consumer's ack
//! state, decide what is applied: at every (re)start the consumer is
//! re-created to deliver from the message after the lowest checkpoint's
//! stream sequence, each projection's messages must continue its own
//! checkpoint's sequence, and positions at or below its checkpoint are
//! skipped (a rebuilt projection can be ahead of the others). Acks only
//! release JetStream's window. So a redelivery has no second effect, nothing
//! is skipped, and the projector recovers by itself from NATS or PostgreSQL
//! restarts: any error drops the consumer session and starts over from the
//! checkpoints, with back-off.
//!
//! JetStream keeps events for a while; the store keeps them for ever. When
//! the messages after a checkpoint are gone (expired, purged, or the stream
//! re-created, its sequences starting again and naming other events), that
//! projection first reads them from the store ([`bridge`]), up to where
//! JetStream's history begins, then the consumer resumes there.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use futures::{FutureExt, StreamExt};
use paystream_kit::consumer::{supervise, ConsumeError, Durable, Failures};
use paystream_store::relay::HEADER_POSITION;
use paystream_store::{EventStore, PgEventStore, Position, RecordedEvent};
use tracing::Instrument;

use crate::apply::{apply_from_store, apply_live, checkpoint, Delivered, StepError};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::projection::Projection;

/// Runs the consumer of every projection for ever: each life starts over
/// from the checkpoints.
pub async fn run(
    store: PgEventStore,
    jetstream: jetstream::Context,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
) {
    supervise(
        "projector",
        Config::BACKOFF_MAX,
        |failures| consume(&store, &jetstream, &config, &metrics, failures),
        |_| metrics.restarts.increment(1),
    )
    .await;
}

async fn consume(
    store: &PgEventStore,
    jetstream: &jetstream::Context,
    config: &Config,
    metrics: &Metrics,
    failures: Failures,
) -> Result<(), ConsumeError> {
    let pool = store.pool();
    let mut stream = jetstream
        .get_stream(&config.nats.events_stream)
        .await
        .map_err(|error| format!("stream {}: {error}", config.nats.events_stream))?;
    // Resume after the lowest sequence any projection needs.
    let mut resume_after = u64::MAX;
    for projection in Projection::ALL {
        let (_, sequence) = checkpoint(pool, projection)
            .await
            .map_err(|error| format!("checkpoint: {error}"))?;
        let sequence = bridge(store, &mut stream, projection, sequence, metrics).await?;
        resume_after = resume_after.min(sequence);
    }
    let name = &config.consumer_name;
    let batch_size = usize::try_from(config.batch_size).unwrap_or(500).max(1);
    let durable = Durable {
        stream: config.nats.events_stream.clone(),
        config: consumer::pull::Config {
            durable_name: Some(name.clone()),
            description: Some("Paystream projector (every projection)".into()),
            filter_subject: format!("{}.>", config.nats.events_subject_prefix),
            deliver_policy: if resume_after == 0 {
                consumer::DeliverPolicy::All
            } else {
                consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: resume_after + 1,
                }
            },
            ack_policy: consumer::AckPolicy::All,
            ack_wait: Config::ACK_WAIT,
            max_ack_pending: i64::try_from(batch_size * 4).unwrap_or(i64::MAX),
            ..Default::default()
        },
        // Re-created at each start so it resumes exactly after the
        // checkpoints. The per-projection consumers of earlier versions go
        // too.
        recreate: Some(
            Projection::ALL
                .map(|projection| format!("{name}-{projection}"))
                .to_vec(),
        ),
        batch: batch_size,
        heartbeat: Duration::from_secs(5),
    };
    let mut messages = paystream_kit::consumer::open(jetstream, &durable).await?;
    tracing::info!(consumer = %name, after_sequence = resume_after, "projector consuming");

    loop {
        let mut batch = Vec::with_capacity(batch_size);
        match messages.next().await {
            None => return Ok(()),
            Some(Err(error)) => return Err(ConsumeError::nats(format!("pull: {error}"))),
            Some(Ok(message)) => batch.push(message),
        }
        // Take whatever else has already arrived, without waiting.
        while batch.len() < batch_size {
            match messages.next().now_or_never() {
                Some(Some(Ok(message))) => batch.push(message),
                Some(Some(Err(error))) => return Err(ConsumeError::nats(format!("pull: {error}"))),
                Some(None) | None => break,
            }
        }
        let delivered = decode(&batch, metrics)?;
        let span = tracing::info_span!(
            "batch",
            events = delivered.len(),
            first_position = delivered.first().map_or(0, |m| m.event.position.0),
            last_position = delivered.last().map_or(0, |m| m.event.position.0),
        );
        let step = apply_live(pool, &Projection::ALL, &delivered).instrument(span);
        let outcomes = match tokio::time::timeout(Config::ACK_WAIT.mul_f32(0.8), step).await {
            Err(_) => return Err(ConsumeError::Handler("applying a batch timed out".into())),
            Ok(Err(StepError::Gap { first, checkpoint })) => {
                return Err(ConsumeError::Handler(format!(
                    "messages skip from sequence {checkpoint} to {first}"
                )))
            }
            Ok(Err(error)) => return Err(error.to_string().into()),
            Ok(Ok(outcomes)) => outcomes,
        };
        failures.reset();
        for (projection, outcome) in Projection::ALL.into_iter().zip(&outcomes) {
            metrics
                .of(projection)
                .record(outcome, delivered.last().map(|m| &m.event));
        }
        if let Some(last) = batch.last() {
            // AckPolicy::All: acknowledges every message up to this one.
            if let Err(error) = last.ack_with(AckKind::Ack).await {
                tracing::debug!(%error, "ack failed; redelivered messages are skipped");
            }
        }
    }
}

/// If JetStream no longer holds the messages right after the checkpoint's
/// sequence, applies their events from the store, up to the position of
/// the first message it still holds (or, when it holds none, up to what the
/// relay has published), and returns the sequence to resume after.
async fn bridge(
    store: &PgEventStore,
    stream: &mut jetstream::stream::Stream,
    projection: Projection,
    sequence: u64,
    metrics: &Metrics,
) -> Result<u64, String> {
    let state = stream
        .info()
        .await
        .map_err(|error| format!("stream info: {error}"))?
        .state
        .clone();
    let (position, _) = checkpoint(store.pool(), projection)
        .await
        .map_err(|error| format!("checkpoint: {error}"))?;
    // Resuming after `sequence` is right only if no message up to it holds
    // an event beyond the checkpoint. Positions grow with sequences, so the
    // message at `sequence` itself must be at or below the checkpoint: after
    // the stream is deleted and re-created, the same sequence can name a
    // later event.
    let renumbered = sequence >= state.first_sequence
        && sequence <= state.last_sequence
        && sequence > 0
        && message_position(stream, sequence).await? > position;
    let gone = renumbered || sequence + 1 < state.first_sequence || sequence > state.last_sequence;
    if !gone {
        return Ok(sequence);
    }
    // Events below `until` are what JetStream lost; `resume_after` is the
    // sequence just before its first message.
    let (until, resume_after) = if state.messages > 0 {
        (
            message_position(stream, state.first_sequence).await?,
            state.first_sequence - 1,
        )
    } else {
        let published: i64 =
            sqlx::query_scalar("select coalesce(max(position), 0) from relay_checkpoints")
                .fetch_one(store.pool())
                .await
                .map_err(|error| format!("relay checkpoint: {error}"))?;
        (published + 1, state.last_sequence)
    };
    tracing::warn!(%projection, after_sequence = sequence, first_sequence = state.first_sequence,
        last_sequence = state.last_sequence, until_position = until,
        "JetStream no longer holds the messages after the checkpoint; reading them from the store");
    let mut after = position;
    loop {
        let page = store
            .read_all(Position(after), crate::rebuild::PAGE)
            .await
            .map_err(|error| format!("store: {error}"))?;
        // Done once the store has nothing more, or the page reaches `until`.
        let done = page.len() < crate::rebuild::PAGE
            || page.last().is_some_and(|event| event.position.0 >= until);
        let events: Vec<RecordedEvent> = page
            .into_iter()
            .filter(|event| event.position.0 < until)
            .collect();
        let outcome = apply_from_store(
            store.pool(),
            projection,
            &events,
            done.then_some(resume_after),
        )
        .await
        .map_err(|error| error.to_string())?;
        metrics.of(projection).record(&outcome, events.last());
        after = outcome
            .position
            .max(events.last().map_or(after, |e| e.position.0));
        if done {
            return Ok(resume_after);
        }
    }
}

/// The global position of the event in message `sequence`.
async fn message_position(
    stream: &jetstream::stream::Stream,
    sequence: u64,
) -> Result<i64, String> {
    let message = stream
        .get_raw_message(sequence)
        .await
        .map_err(|error| format!("message {sequence}: {error}"))?;
    message
        .headers
        .get(HEADER_POSITION)
        .and_then(|value| value.as_str().parse::<i64>().ok())
        .ok_or_else(|| format!("message {sequence} has no position header"))
}

/// Reads each message's event; a message that does not hold one is a relay
/// bug, not something to retry: the consumer stops (the checkpoint keeps the
/// place) and the error is counted and logged.
fn decode(batch: &[jetstream::Message], metrics: &Metrics) -> Result<Vec<Delivered>, String> {
    batch
        .iter()
        .map(|message| {
            let info = message
                .info()
                .map_err(|error| format!("message info: {error}"))?;
            let event: RecordedEvent =
                serde_json::from_slice(&message.payload).map_err(|error| {
                    metrics.unreadable.increment(1);
                    format!(
                        "stream sequence {} ({}) holds no readable event: {error}",
                        info.stream_sequence, message.subject
                    )
                })?;
            Ok(Delivered {
                stream_sequence: info.stream_sequence,
                event,
            })
        })
        .collect()
}
