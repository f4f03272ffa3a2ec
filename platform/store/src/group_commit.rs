//! Group commit: concurrent appends share one transaction, so one WAL flush
//! and one round trip serve many commands, while each append keeps its own
//! optimistic-concurrency outcome.
//!
//! Callers queue their append (bounded) and wait for its outcome. A few
//! writer tasks each take everything queued (bounded) and write it as one
//! plan (see `postgres::append`), in arrival order. When load is light a
//! batch holds one append and costs what a direct append costs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::append_plan::PreparedAppend;
use super::head_cache::HeadCache;
use super::postgres::{now_micros, PgEventStore};
use super::{Appended, EventMetadata, ExpectedVersion, NewEvent, StoreError, StreamId};

#[derive(Debug, Clone, Copy)]
pub struct GroupCommitConfig {
    /// Batches in flight at once (each holds one connection).
    pub writers: usize,
    /// Most appends in one batch.
    pub max_batch_appends: usize,
    /// Most events in one batch.
    pub max_batch_events: usize,
    /// Appends that may wait for a writer; callers beyond it wait to queue.
    pub queue_capacity: usize,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        Self {
            writers: 2,
            max_batch_appends: 256,
            max_batch_events: 2000,
            queue_capacity: 4096,
        }
    }
}

#[derive(Debug)]
struct Request {
    stream: StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    metadata: EventMetadata,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// The queue in front of the writers.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Request>,
    stats: Arc<Stats>,
}

/// Counters since start: batches committed and the appends they carried.
#[derive(Debug, Default)]
pub struct Stats {
    pub batches: AtomicU64,
    pub appends: AtomicU64,
}

impl GroupCommit {
    /// Starts the writer tasks; they end when every handle is dropped.
    pub fn start(pool: PgPool, config: GroupCommitConfig, cache: Arc<HeadCache>) -> Self {
        let (queue, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let stats = Arc::new(Stats::default());
        for _ in 0..config.writers.max(1) {
            tokio::spawn(write_batches(
                pool.clone(),
                cache.clone(),
                receiver.clone(),
                config,
                stats.clone(),
            ));
        }
        Self { queue, stats }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        metadata: EventMetadata,
    ) -> Result<Appended, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let request = Request {
            stream,
            expected,
            events,
            metadata,
            reply,
        };
        self.queue
            .send(request)
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed.into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed.into()))?
    }
}

async fn write_batches(
    pool: PgPool,
    cache: Arc<HeadCache>,
    receiver: Arc<Mutex<mpsc::Receiver<Request>>>,
    config: GroupCommitConfig,
    stats: Arc<Stats>,
) {
    loop {
        let batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut events = first.events.len();
            let mut batch = vec![first];
            while batch.len() < config.max_batch_appends && events < config.max_batch_events {
                match receiver.try_recv() {
                    Ok(request) => {
                        events += request.events.len();
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .appends
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        commit(&pool, &cache, batch).await;
    }
}

async fn commit(pool: &PgPool, cache: &HeadCache, mut batch: Vec<Request>) {
    if let [single] = batch.as_slice() {
        let outcome = PgEventStore::append_alone(
            pool,
            cache,
            &single.stream,
            single.expected,
            &single.events,
            &single.metadata,
        )
        .await;
        if let Some(request) = batch.pop() {
            let _ = request.reply.send(outcome);
        }
        return;
    }

    let recorded_at = now_micros();
    let mut prepared = Vec::with_capacity(batch.len());
    let mut rejected = Vec::new();
    for (index, request) in batch.iter().enumerate() {
        match PreparedAppend::new(
            &request.stream,
            request.expected,
            &request.events,
            &request.metadata,
            recorded_at,
        ) {
            Ok(append) => prepared.push((index, append)),
            Err(error) => rejected.push((index, error)),
        }
    }
    let appends: Vec<_> = prepared.iter().map(|(_, append)| append).collect();
    let outcomes = if appends.is_empty() {
        Ok(Vec::new())
    } else {
        match pool.acquire().await {
            Ok(mut connection) => {
                PgEventStore::append_batch(&mut connection, 0, &appends, Some(cache)).await
            }
            Err(error) => Err(error),
        }
    };
    let accepted: Vec<usize> = prepared.iter().map(|(index, _)| *index).collect();
    drop(prepared);

    let mut replies: Vec<Option<Result<Appended, StoreError>>> =
        batch.iter().map(|_| None).collect();
    for (index, error) in rejected {
        replies[index] = Some(Err(error));
    }
    match outcomes {
        Ok(outcomes) => {
            for (index, outcome) in accepted.into_iter().zip(outcomes) {
                replies[index] = Some(Ok(outcome).and_then(|o| o));
            }
        }
        Err(error) => {
            // The whole transaction rolled back: retry each append alone so
            // that one bad append cannot fail its neighbours.
            tracing::debug!(%error, appends = accepted.len(), "group commit failed; appending one by one");
            for index in accepted {
                let request = &batch[index];
                replies[index] = Some(
                    PgEventStore::append_alone(
                        pool,
                        cache,
                        &request.stream,
                        request.expected,
                        &request.events,
                        &request.metadata,
                    )
                    .await,
                );
            }
        }
    }
    for (request, reply) in batch.into_iter().zip(replies) {
        if let Some(reply) = reply {
            let _ = request.reply.send(reply);
        }
    }
}
