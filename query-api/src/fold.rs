//! Objects rebuilt from their streams: the events are read in version order
//! and folded with the domain's own `evolve`, so a read reflects every
//! command acknowledged before it (an acknowledged append is committed, and a
//! stream read sees every committed event: no read model, no lag).
//!
//! `as_of` keeps the events recorded at or before that moment. A stream's
//! `recorded_at` grows with its version (each append reads the previous
//! version first), so that is a prefix of the stream; the fold stops at the
//! first later event, so it never folds an event over a gap should clocks
//! ever step backwards.

use std::fmt::Display;

use chrono::{DateTime, Utc};
use paystream_domain::{Aggregate, DomainEvent, RefundId};
use paystream_store::runner::{stream_of, CommandError};
use paystream_store::{EventStore, PgEventStore, RecordedEvent, StoreError, StreamId};

/// Events read per page.
const PAGE: usize = 1000;

/// The events of `stream`, oldest first: all of them, or those recorded up
/// to `as_of`.
pub async fn read_stream(
    store: &PgEventStore,
    stream: &StreamId,
    as_of: Option<DateTime<Utc>>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read_stream(stream, after, PAGE).await?;
        let full = page.len() == PAGE;
        for event in page {
            if as_of.is_some_and(|moment| event.recorded_at > moment) {
                return Ok(events);
            }
            after = event.version;
            events.push(event);
        }
        if !full {
            return Ok(events);
        }
    }
}

/// Folds stored events into the aggregate's state (`Default` = "does not
/// exist"), upcasting older schema versions on the way.
pub fn fold<A: Aggregate>(events: &[RecordedEvent]) -> Result<A::State, CommandError> {
    events
        .iter()
        .try_fold(A::State::default(), |state, recorded| {
            let event = A::Event::from_stored(
                &recorded.event_type,
                recorded.schema_version,
                recorded.payload.clone(),
            )
            .map_err(|error| CommandError::Corrupt {
                stream: recorded.stream_id.clone(),
                reason: error.to_string(),
            })?;
            Ok(A::evolve(state, &event))
        })
}

/// An object's events (up to `as_of`) and the state they fold into.
#[derive(Debug, Clone)]
pub struct Folded<A: Aggregate> {
    pub state: A::State,
    pub events: Vec<RecordedEvent>,
}

/// Reads and folds the stream of object `id` of aggregate `A`.
pub async fn load<A: Aggregate>(
    store: &PgEventStore,
    id: impl Display,
    as_of: Option<DateTime<Utc>>,
) -> Result<Folded<A>, CommandError> {
    let stream = stream_of::<A>(id)?;
    load_stream::<A>(store, &stream, as_of).await
}

/// Reads and folds `stream`.
pub async fn load_stream<A: Aggregate>(
    store: &PgEventStore,
    stream: &StreamId,
    as_of: Option<DateTime<Utc>>,
) -> Result<Folded<A>, CommandError> {
    let events = read_stream(store, stream, as_of).await?;
    let state = fold::<A>(&events)?;
    Ok(Folded { state, events })
}

/// The payment stream a refund lives in (refunds are part of their payment's
/// aggregate), found through the `events_refund_id` index; `None` when no
/// such refund was ever requested.
pub async fn refund_stream(
    store: &PgEventStore,
    refund_id: &RefundId,
) -> Result<Option<StreamId>, StoreError> {
    store.refund_stream(refund_id.as_str()).await
}
