//! `GET /api/v1/test/jobs/status`: the contract's job queue status, from the
//! real workers. The simulated acquirer is a durable JetStream consumer, so
//! its queue is the consumer's state: `pending` = messages not yet delivered
//! to it, `processing` = delivered and not yet acknowledged. `completed` and
//! `failed` count the outcomes recorded, from the read models (payments that
//! succeeded or failed, refunds processed): they survive restarts, count
//! every acquirer replica, and cost a few index-free sums however large the
//! store grows.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use paystream_domain::api::ErrorBody;
use paystream_kit::http::error::ApiError;

use crate::startup::QueryState;
use crate::views::JobsStatus;

pub fn router() -> Router<QueryState> {
    Router::new().route("/api/v1/test/jobs/status", get(status))
}

/// What JetStream says of the acquirer's consumer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Queue {
    pending: u64,
    processing: u64,
    running: bool,
}

async fn queue(state: &QueryState) -> Queue {
    if state.nats.connection_state() != async_nats::connection::State::Connected {
        return Queue::default();
    }
    let info = match state
        .jetstream
        .get_stream_no_info(&state.events_stream)
        .await
    {
        Ok(stream) => stream.consumer_info(&state.acquirer_consumer).await,
        Err(error) => {
            tracing::warn!(stream = %state.events_stream, %error, "job status: bad stream name");
            return Queue::default();
        }
    };
    match info {
        Ok(info) => Queue {
            pending: info.num_pending,
            processing: info.num_ack_pending as u64,
            // A live acquirer always keeps a pull request open, except while
            // every in-flight slot is busy, when messages are unacknowledged.
            running: info.num_waiting > 0 || info.num_ack_pending > 0,
        },
        Err(error) => {
            // No stream or consumer yet (nothing relayed, no acquirer ever
            // started), or NATS too slow: nothing is running that we can see.
            tracing::debug!(consumer = %state.acquirer_consumer, %error, "job status: no consumer info");
            Queue::default()
        }
    }
}

/// Outcomes recorded: (completed, failed), from the `payments` projection.
async fn outcomes(state: &QueryState) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "select (s.succeeded + s.failed + r.processed)::int8, s.failed::int8 \
         from (select coalesce(sum(succeeded), 0) as succeeded, \
                      coalesce(sum(failed), 0) as failed \
               from rm_merchant_stats_daily) s, \
              (select count(*) as processed from rm_refunds where status = 'processed') r",
    )
    .fetch_one(state.store.pool())
    .await
}

/// The acquirer's queue and the outcomes recorded. No authentication.
#[utoipa::path(
    get,
    path = "/api/v1/test/jobs/status",
    tag = "operations",
    responses(
        (status = 200, description = "Queue and worker status", body = JobsStatus),
        (status = 503, description = "The database is unreachable", body = ErrorBody),
    )
)]
pub async fn status(State(state): State<QueryState>) -> Result<Json<JobsStatus>, ApiError> {
    let (queue, outcomes) = tokio::join!(queue(&state), outcomes(&state));
    let (completed, failed) = outcomes?;
    Ok(Json(JobsStatus {
        pending: queue.pending,
        processing: queue.processing,
        completed,
        failed,
        worker_status: if queue.running { "running" } else { "stopped" },
    }))
}
