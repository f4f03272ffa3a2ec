//! How fresh a read model is, and `X-Min-Position`.
//!
//! Every projection records the global position of the last event it applied
//! in `projection_checkpoints`. A command answers with `X-Event-Position`; a
//! list query that sends it back as `X-Min-Position` waits until the
//! projection behind the list has reached it, for at most [`MAX_WAIT`], and
//! answers 503 `PROJECTION_BEHIND` past that bound.
//!
//! A position that no append can have been handed yet is a 400 at once, not
//! a 5 s wait and a 503: positions are `(xid << 20) + index` of the
//! appending transaction, so every position handed out so far is below
//! `xmax << 20`, `xmax` being the first transaction id not yet assigned
//! (`pg_snapshot_xmax`). The bound is read only when the projection has not
//! reached the position already, and it also covers the highest stored
//! position (should the transaction ids ever restart below it, as after a
//! restore into a new cluster).

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use paystream_kit::http::error::ApiError;
use paystream_store::{EventStore, PgEventStore};
use sqlx::PgPool;
use tokio::time::Instant;

/// The longest a list query waits for its projection.
pub const MAX_WAIT: Duration = Duration::from_secs(5);
/// How often the checkpoint is read while waiting.
const POLL: Duration = Duration::from_millis(5);

pub const HEADER: &str = "x-min-position";

/// The `X-Min-Position` header: the position a list must reflect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinPosition(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for MinPosition {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(HEADER) else {
            return Ok(Self(None));
        };
        value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
            .filter(|position| *position >= 0)
            .map(|position| Self(Some(position)))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "X-Min-Position must be a non-negative integer (an X-Event-Position value)",
                )
                .with_field("X-Min-Position")
            })
    }
}

/// The position `projection` has applied up to (0 before its first event).
pub async fn checkpoint(pool: &PgPool, projection: &str) -> Result<i64, sqlx::Error> {
    let position: Option<i64> =
        sqlx::query_scalar("select position from projection_checkpoints where projection = $1")
            .bind(projection)
            .fetch_optional(pool)
            .await?;
    Ok(position.unwrap_or(0))
}

impl MinPosition {
    /// Waits until `projection` has applied `self`'s position, if any.
    pub async fn wait(self, store: &PgEventStore, projection: &str) -> Result<(), ApiError> {
        let Some(wanted) = self.0 else {
            return Ok(());
        };
        let deadline = Instant::now() + MAX_WAIT;
        let mut within_bound = false;
        loop {
            let reached = checkpoint(store.pool(), projection).await?;
            if reached >= wanted {
                return Ok(());
            }
            if !within_bound {
                let next = store.next_position().await?.0;
                if wanted >= next {
                    return Err(ApiError::bad_request(format!(
                        "X-Min-Position {wanted} is beyond every position handed out so far (all are below {next}); send the X-Event-Position of a command's answer"
                    ))
                    .with_field("X-Min-Position"));
                }
                within_bound = true;
            }
            if Instant::now() + POLL > deadline {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "PROJECTION_BEHIND",
                    format!(
                        "The {projection} read model has not reached position {wanted} within {} s (it is at {reached}); retry shortly",
                        MAX_WAIT.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
