//! JetStream pull consumers, the same way in every service that consumes
//! the relay's events (the acquirer, the projector, the webhook
//! dispatcher):
//!
//! * [`open`] gets the stream and the durable consumer (creating it, or
//!   bringing changed settings up to date, or re-creating it when a
//!   service must restart from a sequence of its own), and its message
//!   stream with bounded batches, expiry and heartbeats;
//! * [`supervise`] runs one life of a consumer after another for ever:
//!   after an error or the end of the message stream it waits a jittered,
//!   bounded back-off, which the life resets ([`Failures::reset`]) as soon
//!   as messages flow again.
//!
//! What a service does with each message stays its own.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};

use crate::backoff::backoff;

/// How long a pull request waits for messages before it is renewed.
pub const PULL_EXPIRES: Duration = Duration::from_secs(30);

/// Why a consumer's life ended.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The relay has not created the stream yet: not a failure to shout
    /// about.
    #[error("stream {0} does not exist yet")]
    NoStream(String),
    #[error("NATS: {0}")]
    Nats(String),
    /// The service's own handling failed (the database, an unreadable
    /// batch…).
    #[error("{0}")]
    Handler(String),
}

impl ConsumeError {
    pub fn nats(error: impl fmt::Display) -> Self {
        Self::Nats(error.to_string())
    }
}

impl From<String> for ConsumeError {
    fn from(error: String) -> Self {
        Self::Handler(error)
    }
}

/// What a service asks of its durable consumer.
#[derive(Debug, Clone)]
pub struct Durable {
    /// The JetStream stream (the relay's).
    pub stream: String,
    /// `durable_name`, `filter_subject`, `deliver_policy`, `ack_policy`,
    /// `ack_wait`, `max_ack_pending`, …
    pub config: consumer::pull::Config,
    /// Delete and create the consumer at every start (its deliver policy
    /// must follow the service's own checkpoints), deleting these earlier
    /// consumers of the service too. Otherwise the consumer is reused and
    /// only changed settings are updated.
    pub recreate: Option<Vec<String>>,
    /// Most messages per pull request.
    pub batch: usize,
    /// Idle heartbeat: a silent server is noticed after two of them.
    pub heartbeat: Duration,
}

/// Opens `durable`'s message stream.
pub async fn open(
    jetstream: &jetstream::Context,
    durable: &Durable,
) -> Result<consumer::pull::Stream, ConsumeError> {
    let name = durable.config.durable_name.clone().unwrap_or_default();
    let stream = match jetstream.get_stream(&durable.stream).await {
        Ok(stream) => stream,
        Err(error) => {
            if let jetstream::context::GetStreamErrorKind::JetStream(inner) = error.kind() {
                if inner.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND {
                    return Err(ConsumeError::NoStream(durable.stream.clone()));
                }
            }
            return Err(ConsumeError::nats(format!(
                "stream {}: {error}",
                durable.stream
            )));
        }
    };
    let consumer: consumer::PullConsumer = match &durable.recreate {
        Some(earlier) => {
            for old in std::iter::once(&name).chain(earlier) {
                match stream.delete_consumer(old).await {
                    Ok(_) => {}
                    Err(error) if error.to_string().contains("not found") => {}
                    Err(error) => {
                        tracing::debug!(consumer = %old, %error, "deleting the old consumer")
                    }
                }
            }
            stream
                .create_consumer(durable.config.clone())
                .await
                .map_err(|error| ConsumeError::nats(format!("consumer {name}: {error}")))?
        }
        None => {
            let existing: consumer::PullConsumer = stream
                .get_or_create_consumer(&name, durable.config.clone())
                .await
                .map_err(|error| ConsumeError::nats(format!("consumer {name}: {error}")))?;
            let current = &existing.cached_info().config;
            let wanted = &durable.config;
            if current.filter_subject == wanted.filter_subject
                && current.ack_wait == wanted.ack_wait
                && current.max_ack_pending == wanted.max_ack_pending
            {
                existing
            } else {
                match stream.create_consumer(wanted.clone()).await {
                    Ok(updated) => {
                        tracing::info!(consumer = %name, "consumer settings updated");
                        updated
                    }
                    Err(error) => {
                        tracing::warn!(consumer = %name, %error, "could not update the consumer's settings; using them as they are");
                        existing
                    }
                }
            }
        }
    };
    consumer
        .stream()
        .max_messages_per_batch(durable.batch.max(1))
        .expires(PULL_EXPIRES)
        .heartbeat(durable.heartbeat)
        .messages()
        .await
        .map_err(|error| ConsumeError::nats(format!("messages of {name}: {error}")))
}

/// Failed lives in a row; a life resets it once messages flow.
#[derive(Debug, Clone, Default)]
pub struct Failures(Arc<AtomicU32>);

impl Failures {
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    fn bump(&self) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed).saturating_add(1)
    }
}

/// Runs `life` again and again, for ever, with a back-off of at most
/// `backoff_max` between lives; `on_end` sees how each life ended (for a
/// service's metrics) before the wait.
pub async fn supervise<Life, Fut>(
    consumer: &str,
    backoff_max: Duration,
    mut life: Life,
    on_end: impl Fn(&Result<(), ConsumeError>),
) where
    Life: FnMut(Failures) -> Fut,
    Fut: Future<Output = Result<(), ConsumeError>>,
{
    let failures = Failures::default();
    loop {
        let result = life(failures.clone()).await;
        on_end(&result);
        let failed = failures.bump();
        match &result {
            Ok(()) => tracing::warn!(
                consumer,
                failures = failed,
                "message stream ended; reconnecting"
            ),
            Err(ConsumeError::NoStream(stream)) => {
                tracing::info!(consumer, %stream, "waiting for the relay to create the stream")
            }
            Err(error) => {
                tracing::warn!(consumer, %error, failures = failed, "consumer error; reconnecting")
            }
        }
        tokio::time::sleep(backoff(failed, backoff_max)).await;
    }
}
