//! Payments as they were at the events being handled: folded from the
//! remembered previous version where possible, else read from the store,
//! all of a batch's streams in one read.

use std::collections::HashMap;

use paystream_domain::payment::{Payment, PaymentAggregate, PaymentEvent};
use paystream_domain::{Aggregate, DomainEvent};
use paystream_store::{EventStore, PgEventStore, RecordedEvent, StreamId};

use super::HandleError;
use crate::recent;

/// Most payments remembered as folded (about a kilobyte each). A payment's
/// events mostly come within a second of each other; 4,096 cover several
/// seconds at the target rate, and a later event (a capture, a refund)
/// reads the stream. 20,000 made the dispatcher's RSS climb to 84 MiB over a
/// 10-minute soak (issue 10).
const REMEMBERED_PAYMENTS: usize = 4_096;

/// Payments as last folded by this process (the fold of a stream is the
/// same whoever computes it).
pub(super) static PAYMENTS: std::sync::LazyLock<recent::Payments> =
    std::sync::LazyLock::new(|| recent::Payments::new(REMEMBERED_PAYMENTS));

/// (payments remembered, capacity), for `/metrics`.
pub fn remembered_payments() -> (usize, usize) {
    PAYMENTS.size()
}

/// The payments right after each of `work`'s events (indexes into
/// `events`), remembered for the next events of their streams.
pub(super) async fn at_events(
    store: &PgEventStore,
    events: &[RecordedEvent],
    work: &[(usize, PaymentEvent, Vec<super::Announcement>)],
) -> Result<HashMap<(String, u64), Payment>, HandleError> {
    let mut states: HashMap<(String, u64), Payment> = HashMap::new();
    let mut missing: Vec<(&StreamId, u64)> = Vec::new();
    for (index, parsed, _) in work {
        let event = &events[*index];
        let key = (event.stream_id.as_str().to_owned(), event.version);
        let folded = if event.version == 1 {
            PaymentAggregate::evolve(None, parsed)
        } else {
            PAYMENTS
                .at(event.stream_id.as_str(), event.version - 1)
                .and_then(|previous| PaymentAggregate::evolve(Some(previous), parsed))
        };
        match folded {
            Some(payment) => {
                states.insert(key, payment);
            }
            None => missing.push((&event.stream_id, event.version)),
        }
    }
    if !missing.is_empty() {
        states.extend(read_at(store, &missing).await?);
    }
    for ((stream, version), payment) in &states {
        PAYMENTS.remember(stream, *version, payment);
    }
    Ok(states)
}

/// The payments as they were right after the given versions of their
/// streams, folded from one read of all the streams (one statement per
/// batch of events instead of one stream read per event).
async fn read_at(
    store: &PgEventStore,
    wanted: &[(&StreamId, u64)],
) -> Result<HashMap<(String, u64), Payment>, HandleError> {
    let mut upto: HashMap<&str, u64> = HashMap::new();
    for (stream, version) in wanted {
        let entry = upto.entry(stream.as_str()).or_default();
        *entry = (*entry).max(*version);
    }
    let streams: Vec<(StreamId, u64)> = wanted
        .iter()
        .filter_map(|(stream, _)| {
            let version = upto.remove(stream.as_str())?;
            Some(((*stream).clone(), version))
        })
        .collect();
    let events = store.read_streams(&streams).await?;
    let mut needed: HashMap<&str, Vec<u64>> = HashMap::new();
    for (stream, version) in wanted {
        needed.entry(stream.as_str()).or_default().push(*version);
    }
    let mut states = HashMap::new();
    // The stream being folded: its name, state and last version.
    let mut folding: Option<String> = None;
    let mut state: Option<Payment> = None;
    let mut last = 0;
    for recorded in events {
        let (stream, version) = (recorded.stream_id.to_string(), recorded.version);
        if folding.as_deref() != Some(stream.as_str()) {
            folding = Some(stream.clone());
            state = None;
            last = 0;
        }
        if version != last + 1 {
            // A gap: this stream's events find no payment and are retried.
            continue;
        }
        let event = PaymentEvent::from_stored(
            &recorded.event_type,
            recorded.schema_version,
            recorded.payload,
        )
        .map_err(|error| HandleError::Unreadable(format!("{stream}: {error}")))?;
        state = PaymentAggregate::evolve(state.take(), &event);
        last = version;
        if needed
            .get(stream.as_str())
            .is_some_and(|versions| versions.contains(&version))
        {
            if let Some(payment) = &state {
                states.insert((stream, version), payment.clone());
            }
        }
    }
    Ok(states)
}
