//! The event store contract, written once over the port. Every backend runs
//! it through `store_contract_tests!(HarnessType)`; a harness supplies what
//! only a backend can do (hold a commit open, tamper with stored events).
#![allow(dead_code)]

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::time::Duration;

use paystream_store::{
    ChainBreakKind, EventMetadata, EventStore, ExpectedVersion, IdempotencyRecord, NewEvent,
    Position, RecordedEvent, StoreError, StreamId,
};
use serde_json::json;
use uuid::Uuid;

/// An append whose transaction stays open until `commit`.
pub trait HeldAppend: Send {
    fn commit(self) -> impl Future<Output = ()> + Send;
}

/// A change made behind the store's back.
#[derive(Debug, Clone)]
pub enum Tamper {
    /// Rewrite one event's payload.
    ChangePayload { stream: StreamId, version: u64 },
    /// Remove one event.
    Delete { stream: StreamId, version: u64 },
    /// Swap the payloads of two events of a stream.
    SwapPayloads { stream: StreamId, a: u64, b: u64 },
}

pub trait Harness: Sized + Send + Sync {
    type Store: EventStore + Clone + Send + Sync + 'static;
    type Held: HeldAppend;

    fn create() -> impl Future<Output = Self> + Send;
    fn store(&self) -> Self::Store;
    /// A second, independent client of the same backend, as another process
    /// would have (its own caches, its own connections).
    fn another_store(&self) -> impl Future<Output = Self::Store> + Send;
    /// Appends without committing: readers must not see it, nor anything
    /// appended after it, until `commit`.
    fn hold_append(
        &self,
        stream: &StreamId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Self::Held> + Send;
    fn tamper(&self, tamper: Tamper) -> impl Future<Output = ()> + Send;
}

pub fn stream(category: &str) -> StreamId {
    StreamId::new(category, Uuid::now_v7().simple()).unwrap()
}

pub fn event(n: u64) -> NewEvent {
    NewEvent::new("Tested", 1, json!({"n": n, "amount": 5000, "note": "ü"}))
}

pub fn metadata() -> EventMetadata {
    EventMetadata {
        merchant_id: Some(Uuid::now_v7()),
        causation_id: Some(Uuid::now_v7()),
        correlation_id: Some(Uuid::now_v7()),
        actor: "test:contract".into(),
        idempotency: None,
    }
}

async fn read_everything<S: EventStore>(store: &S, stream: &StreamId) -> Vec<RecordedEvent> {
    store.read_stream(stream, 0, 10_000).await.unwrap()
}

/// Everything in the global log that belongs to `streams`.
async fn read_all_of<S: EventStore>(store: &S, streams: &[&StreamId]) -> Vec<RecordedEvent> {
    let mut seen = Vec::new();
    let mut after = Position::START;
    loop {
        let batch = store.read_all(after, 1000).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        seen.extend(
            batch
                .into_iter()
                .filter(|e| streams.contains(&&e.stream_id)),
        );
    }
    seen
}

pub async fn append_and_read_back<H: Harness>(harness: H) {
    let store = harness.store();
    let stream = stream("order");
    let meta = metadata();
    let events: Vec<_> = (1..=3).map(event).collect();
    let appended = store
        .append(&stream, ExpectedVersion::NoStream, events.clone(), &meta)
        .await
        .unwrap();
    assert_eq!((appended.first_version, appended.last_version), (1, 3));
    assert!(!appended.duplicate);

    let read = read_everything(&store, &stream).await;
    assert_eq!(read.len(), 3);
    for (index, (stored, sent)) in read.iter().zip(&events).enumerate() {
        assert_eq!(stored.version, index as u64 + 1);
        assert_eq!(stored.event_id, sent.event_id);
        assert_eq!(stored.event_type, "Tested");
        assert_eq!(stored.schema_version, 1);
        assert_eq!(stored.payload, sent.payload);
        assert_eq!(stored.metadata, meta);
        assert_eq!(stored.stream_id, stream);
    }
    assert!(read.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(read[2].position, appended.position);

    let tail = store.read_stream(&stream, 1, 1).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].version, 2);

    let more = store
        .append(&stream, ExpectedVersion::Exact(3), vec![event(4)], &meta)
        .await
        .unwrap();
    assert_eq!((more.first_version, more.last_version), (4, 4));
    assert!(more.position > appended.position);

    // Idempotency metadata is stored, read back and covered by the chain.
    let keyed = EventMetadata {
        idempotency: Some(IdempotencyRecord {
            key_hash: [7; 32],
            request_hash: [9; 32],
        }),
        ..metadata()
    };
    store
        .append(&stream, ExpectedVersion::Exact(4), vec![event(5)], &keyed)
        .await
        .unwrap();
    let read = read_everything(&store, &stream).await;
    assert_eq!(read[4].metadata, keyed);
    assert_eq!(read[3].metadata.idempotency, None);
    assert!(store.verify_stream(&stream).await.unwrap().is_none());
}

pub async fn stale_expectation_is_a_typed_conflict_and_writes_nothing<H: Harness>(harness: H) {
    let store = harness.store();
    let stream = stream("payment");
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![event(1), event(2)],
            &metadata(),
        )
        .await
        .unwrap();
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(1),
        ExpectedVersion::Exact(3),
    ] {
        match store
            .append(&stream, expected, vec![event(9)], &metadata())
            .await
        {
            Err(StoreError::Conflict {
                stream: s,
                expected: e,
                actual,
            }) => {
                assert_eq!(s, stream);
                assert_eq!(e, expected.as_u64());
                assert_eq!(actual, 2);
            }
            other => panic!("expected a conflict for {expected:?}, got {other:?}"),
        }
    }
    match store
        .append(
            &self::stream("payment"),
            ExpectedVersion::Exact(1),
            vec![event(1)],
            &metadata(),
        )
        .await
    {
        Err(StoreError::Conflict { actual: 0, .. }) => {}
        other => panic!("expected a conflict on a missing stream, got {other:?}"),
    }
    assert_eq!(read_everything(&store, &stream).await.len(), 2);
}

/// 50 writers race on one stream, each retrying on conflict until its event
/// lands: versions end gapless 1..=50 and every version has one winner.
pub async fn fifty_concurrent_appenders_on_one_stream<H: Harness>(harness: H) {
    let store = harness.store();
    let stream = stream("payment");
    let mut tasks = Vec::new();
    for writer in 0..50u64 {
        let store = store.clone();
        let stream = stream.clone();
        tasks.push(tokio::spawn(async move {
            let event = event(writer);
            let mut conflicts = 0u32;
            loop {
                let version = store
                    .read_stream(&stream, 0, 1000)
                    .await
                    .unwrap()
                    .last()
                    .map_or(0, |e| e.version);
                match store
                    .append(
                        &stream,
                        ExpectedVersion::from_version(version),
                        vec![event.clone()],
                        &metadata(),
                    )
                    .await
                {
                    Ok(appended) => {
                        assert_eq!(appended.first_version, version + 1);
                        return (appended.first_version, event.event_id, conflicts);
                    }
                    Err(StoreError::Conflict { .. }) => conflicts += 1,
                    Err(other) => panic!("unexpected error: {other:?}"),
                }
                assert!(conflicts < 1000, "writer {writer} starved");
            }
        }));
    }
    let mut versions = BTreeSet::new();
    let mut total_conflicts = 0;
    for task in tasks {
        let (version, _, conflicts) = task.await.unwrap();
        assert!(versions.insert(version), "version {version} won twice");
        total_conflicts += conflicts;
    }
    assert_eq!(versions, (1..=50).collect::<BTreeSet<_>>());
    let stored = read_everything(&store, &stream).await;
    assert_eq!(
        stored.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=50).collect::<Vec<_>>()
    );
    assert_eq!(
        stored
            .iter()
            .map(|e| e.event_id)
            .collect::<HashSet<_>>()
            .len(),
        50
    );
    assert!(
        total_conflicts > 0,
        "50 racing writers never conflicted: the race did not happen"
    );

    // The same race with one shared expectation: exactly one winner.
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let store = store.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                store
                    .append(
                        &stream,
                        ExpectedVersion::Exact(50),
                        vec![event(100 + n)],
                        &metadata(),
                    )
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(appended) => {
                winners += 1;
                assert_eq!(appended.first_version, 51);
            }
            Err(StoreError::Conflict { actual: 51, .. }) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(read_everything(&store, &stream).await.len(), 51);
    assert!(store.verify_stream(&stream).await.unwrap().is_none());
}

pub async fn event_ids_make_appends_idempotent<H: Harness>(harness: H) {
    let store = harness.store();
    let stream = stream("order");
    let events = vec![event(1), event(2)];
    let first = store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            events.clone(),
            &metadata(),
        )
        .await
        .unwrap();
    // A retry of the same append (same expectation) and a late retry (stale
    // expectation) are both no-ops that report the original placement.
    for expected in [ExpectedVersion::NoStream, ExpectedVersion::Exact(2)] {
        let again = store
            .append(&stream, expected, events.clone(), &metadata())
            .await
            .unwrap();
        assert!(again.duplicate);
        assert_eq!(
            (again.first_version, again.last_version, again.position),
            (first.first_version, first.last_version, first.position)
        );
    }
    assert_eq!(read_everything(&store, &stream).await.len(), 2);

    // The same id in another stream, or mixed with new events, is refused.
    let elsewhere = store
        .append(
            &self::stream("order"),
            ExpectedVersion::NoStream,
            vec![events[0].clone()],
            &metadata(),
        )
        .await;
    assert!(
        matches!(elsewhere, Err(StoreError::EventIdReused { .. })),
        "{elsewhere:?}"
    );
    let mixed = store
        .append(
            &stream,
            ExpectedVersion::Exact(2),
            vec![events[1].clone(), event(3)],
            &metadata(),
        )
        .await;
    assert!(
        matches!(mixed, Err(StoreError::EventIdReused { .. })),
        "{mixed:?}"
    );
    assert_eq!(read_everything(&store, &stream).await.len(), 2);
}

/// One append's transaction stays open while later appends commit: a tailing
/// reader must not move past it, and must deliver it once it commits.
pub async fn a_late_commit_is_never_skipped<H: Harness>(harness: H) {
    let store = harness.store();
    let early = stream("order");
    let later = stream("payment");
    let mut tail = Position::START;
    loop {
        let batch = store.read_all(tail, 1000).await.unwrap();
        match batch.last() {
            Some(last) => tail = last.position,
            None => break,
        }
    }

    let held_event = event(1);
    let held = harness.hold_append(&early, vec![held_event.clone()]).await;
    let committed: Vec<_> = (2..=4).map(event).collect();
    for (index, e) in committed.iter().enumerate() {
        store
            .append(
                &later,
                ExpectedVersion::from_version(index as u64),
                vec![e.clone()],
                &metadata(),
            )
            .await
            .unwrap();
    }
    // The later events are committed and readable by stream...
    assert_eq!(read_everything(&store, &later).await.len(), 3);
    // ...but the tailing reader stays behind the open append.
    for _ in 0..5 {
        let batch = store.read_all(tail, 1000).await.unwrap();
        let ours: Vec<_> = batch
            .iter()
            .filter(|e| e.stream_id == early || e.stream_id == later)
            .collect();
        assert!(
            ours.is_empty(),
            "the reader moved past an open append: {ours:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    held.commit().await;
    let mut delivered = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while delivered.len() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "late commit not delivered: {delivered:?}"
        );
        let batch = store.read_all(tail, 1000).await.unwrap();
        if let Some(last) = batch.last() {
            tail = last.position;
        }
        delivered.extend(
            batch
                .into_iter()
                .filter(|e| e.stream_id == early || e.stream_id == later)
                .map(|e| e.event_id),
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut expected = vec![held_event.event_id];
    expected.extend(committed.iter().map(|e| e.event_id));
    assert_eq!(
        delivered, expected,
        "the held event comes first, then the rest, once each"
    );
}

pub async fn global_log_pages_in_order<H: Harness>(harness: H) {
    let store = harness.store();
    let streams: Vec<_> = (0..5).map(|_| stream("order")).collect();
    let mut ids = Vec::new();
    for round in 0..4u64 {
        for s in &streams {
            let e = event(round);
            ids.push(e.event_id);
            store
                .append(
                    s,
                    ExpectedVersion::from_version(round),
                    vec![e],
                    &metadata(),
                )
                .await
                .unwrap();
        }
    }
    let refs: Vec<_> = streams.iter().collect();
    let mut seen = Vec::new();
    let mut after = Position::START;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < ids.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "global log incomplete"
        );
        let page = store.read_all(after, 3).await.unwrap();
        assert!(page.len() <= 3);
        assert!(page.windows(2).all(|w| w[0].position < w[1].position));
        if let Some(last) = page.last() {
            assert!(last.position > after);
            after = last.position;
        } else {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        seen.extend(
            page.into_iter()
                .filter(|e| refs.contains(&&e.stream_id))
                .map(|e| e.event_id),
        );
    }
    assert_eq!(seen, ids, "sequential appends appear in append order");
}

pub async fn tampering_is_detected<H: Harness>(harness: H) {
    let store = harness.store();
    let make = || async {
        let s = stream("payment");
        store
            .append(
                &s,
                ExpectedVersion::NoStream,
                (1..=4).map(event).collect(),
                &metadata(),
            )
            .await
            .unwrap();
        s
    };
    let intact = make().await;
    let changed = make().await;
    let removed = make().await;
    let swapped = make().await;
    let truncated = make().await;
    assert!(store.verify_all().await.unwrap().is_empty());

    harness
        .tamper(Tamper::ChangePayload {
            stream: changed.clone(),
            version: 2,
        })
        .await;
    harness
        .tamper(Tamper::Delete {
            stream: removed.clone(),
            version: 3,
        })
        .await;
    harness
        .tamper(Tamper::SwapPayloads {
            stream: swapped.clone(),
            a: 2,
            b: 3,
        })
        .await;
    harness
        .tamper(Tamper::Delete {
            stream: truncated.clone(),
            version: 4,
        })
        .await;

    let check = |s: &StreamId, version, kind| {
        let store = store.clone();
        let s = s.clone();
        async move {
            let found = store
                .verify_stream(&s)
                .await
                .unwrap()
                .expect("tampering not detected");
            assert_eq!((found.version, found.kind), (version, kind), "{s}");
        }
    };
    assert!(store.verify_stream(&intact).await.unwrap().is_none());
    check(&changed, 2, ChainBreakKind::Altered).await;
    check(&removed, 3, ChainBreakKind::Missing).await;
    check(&swapped, 2, ChainBreakKind::Altered).await;
    check(&truncated, 4, ChainBreakKind::Truncated).await;

    let mut all: Vec<_> = store
        .verify_all()
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.stream_id, b.version, b.kind))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (changed, 2, ChainBreakKind::Altered),
        (removed, 3, ChainBreakKind::Missing),
        (swapped, 2, ChainBreakKind::Altered),
        (truncated, 4, ChainBreakKind::Truncated),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(all, expected);
}

/// Many appends at once (a backend may commit them together): each keeps its
/// own outcome, and one bad append does not fail its neighbours.
pub async fn concurrent_appends_keep_their_own_outcomes<H: Harness>(harness: H) {
    let store = harness.store();
    let taken = event(0);
    store
        .append(
            &stream("order"),
            ExpectedVersion::NoStream,
            vec![taken.clone()],
            &metadata(),
        )
        .await
        .unwrap();
    let shared = stream("payment");
    let repeated = vec![event(1), event(2)];

    let mut tasks = Vec::new();
    for n in 0..60u64 {
        let store = store.clone();
        let (target, events, expected) = match n {
            // reuses an id stored elsewhere
            7 => (
                stream("order"),
                vec![taken.clone()],
                ExpectedVersion::NoStream,
            ),
            // the same append twice, concurrently
            20 | 21 => (shared.clone(), repeated.clone(), ExpectedVersion::NoStream),
            // stale expectation on a new stream
            33 => (stream("order"), vec![event(n)], ExpectedVersion::Exact(4)),
            _ => (
                stream("order"),
                vec![event(n), event(n + 1000)],
                ExpectedVersion::NoStream,
            ),
        };
        tasks.push(tokio::spawn(async move {
            (
                n,
                store.append(&target, expected, events, &metadata()).await,
            )
        }));
    }
    let mut repeated_outcomes = Vec::new();
    for task in tasks {
        let (n, outcome) = task.await.unwrap();
        match (n, outcome) {
            (7, Err(StoreError::EventIdReused { .. })) => {}
            (33, Err(StoreError::Conflict { actual: 0, .. })) => {}
            (20 | 21, Ok(appended)) => repeated_outcomes.push(appended.duplicate),
            (_, Ok(appended)) if n != 7 && n != 33 => {
                assert_eq!(
                    (
                        appended.first_version,
                        appended.last_version,
                        appended.duplicate
                    ),
                    (1, 2, false)
                );
            }
            (n, other) => panic!("append {n}: unexpected {other:?}"),
        }
    }
    repeated_outcomes.sort();
    assert_eq!(
        repeated_outcomes,
        vec![false, true],
        "one append lands, its twin is a no-op"
    );
    assert_eq!(read_everything(&store, &shared).await.len(), 2);
    assert!(store.verify_all().await.unwrap().is_empty());
}

/// Two processes append to the same streams; whatever each one remembers
/// about stream heads, versions stay gapless and every chain verifies.
pub async fn two_processes_interleave_without_breaking_chains<H: Harness>(harness: H) {
    let one = harness.store();
    let two = harness.another_store().await;
    let s = stream("payment");
    // Each process learns the head, then the other moves it.
    one.append(&s, ExpectedVersion::NoStream, vec![event(1)], &metadata())
        .await
        .unwrap();
    assert_eq!(two.read_stream(&s, 0, 10).await.unwrap().len(), 1);
    two.append(&s, ExpectedVersion::Exact(1), vec![event(2)], &metadata())
        .await
        .unwrap();
    // `one` last saw version 1: appending on it is a conflict, not a fork.
    match one
        .append(&s, ExpectedVersion::Exact(1), vec![event(3)], &metadata())
        .await
    {
        Err(StoreError::Conflict { actual: 2, .. }) => {}
        other => panic!("expected a conflict at version 2, got {other:?}"),
    }
    one.append(&s, ExpectedVersion::Exact(2), vec![event(3)], &metadata())
        .await
        .unwrap();

    // Then both race, retrying on conflicts.
    let race = |store: H::Store, tag: u64| {
        let s = s.clone();
        tokio::spawn(async move {
            for n in 0..15u64 {
                let e = event(tag * 1000 + n);
                loop {
                    let head = store.read_stream(&s, 0, 10_000).await.unwrap().len() as u64;
                    match store
                        .append(
                            &s,
                            ExpectedVersion::from_version(head),
                            vec![e.clone()],
                            &metadata(),
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(other) => panic!("{other:?}"),
                    }
                }
            }
        })
    };
    let (a, b) = (race(one.clone(), 1), race(two.clone(), 2));
    a.await.unwrap();
    b.await.unwrap();
    let stored = read_everything(&one, &s).await;
    assert_eq!(
        stored.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=33).collect::<Vec<_>>()
    );
    assert!(one.verify_stream(&s).await.unwrap().is_none());
}

pub async fn bad_appends_are_refused<H: Harness>(harness: H) {
    let store = harness.store();
    let s = stream("order");
    let empty = store
        .append(&s, ExpectedVersion::NoStream, vec![], &metadata())
        .await;
    assert!(
        matches!(empty, Err(StoreError::InvalidEvent(_))),
        "{empty:?}"
    );
    let float = store
        .append(
            &s,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Tested", 1, json!({"x": 1.5}))],
            &metadata(),
        )
        .await;
    assert!(
        matches!(float, Err(StoreError::InvalidEvent(_))),
        "{float:?}"
    );
    let bad_type = store
        .append(
            &s,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("has.dots", 1, json!({}))],
            &metadata(),
        )
        .await;
    assert!(
        matches!(bad_type, Err(StoreError::InvalidEvent(_))),
        "{bad_type:?}"
    );
    assert!(read_everything(&store, &s).await.is_empty());
}

async fn append_with<S: EventStore>(
    store: &S,
    stream: &StreamId,
    events: Vec<NewEvent>,
    metadata: &EventMetadata,
) -> Position {
    store
        .append(stream, ExpectedVersion::NoStream, events, metadata)
        .await
        .unwrap()
        .position
}

/// Waits (bounded) until every position up to `position` is final: a
/// transaction of another test on the same server can hold the horizon back
/// for a moment.
async fn until_final<S: EventStore>(store: &S, position: Position) -> Position {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let horizon = store.horizon().await.unwrap();
        if horizon > position {
            return horizon;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "position {position} not final after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Several streams at once, one merchant's events, and a filtered range of
/// the global log.
pub async fn multi_stream_and_merchant_reads<H: Harness>(harness: H) {
    let store = harness.store();
    let ours = metadata();
    let merchant = ours.merchant_id.unwrap();
    let (a, b, c) = (stream("order"), stream("order"), stream("order"));
    append_with(&store, &a, (1..=3).map(event).collect(), &ours).await;
    append_with(&store, &b, (1..=2).map(event).collect(), &ours).await;
    let last = append_with(&store, &c, vec![event(1)], &metadata()).await;
    let horizon = until_final(&store, last).await;

    let read = store
        .read_streams(&[(b.clone(), u64::MAX), (a.clone(), 2)])
        .await
        .unwrap();
    let mut expected = vec![
        (a.clone(), 1),
        (a.clone(), 2),
        (b.clone(), 1),
        (b.clone(), 2),
    ];
    expected.sort();
    let got: Vec<(StreamId, u64)> = read
        .iter()
        .map(|event| (event.stream_id.clone(), event.version))
        .collect();
    assert_eq!(got, expected, "ordered by stream, then version");
    assert!(store.read_streams(&[]).await.unwrap().is_empty());

    let feed = store
        .read_merchant(merchant, Position::START, 100)
        .await
        .unwrap();
    let streams: Vec<&StreamId> = feed.iter().map(|event| &event.stream_id).collect();
    assert_eq!(
        streams,
        [&a, &a, &a, &b, &b],
        "the merchant's events, in global order"
    );
    assert!(feed
        .windows(2)
        .all(|pair| pair[0].position < pair[1].position));
    let rest = store
        .read_merchant(merchant, feed[2].position, 100)
        .await
        .unwrap();
    assert_eq!(rest, feed[3..].to_vec(), "paged after a position");

    let range = |merchant, limit| paystream_store::LogRange {
        after: Position::START,
        before: horizon,
        recorded_from: None,
        recorded_to: None,
        merchant,
        limit,
    };
    assert_eq!(
        store.read_range(&range(Some(merchant), 100)).await.unwrap(),
        feed
    );
    assert_eq!(store.read_range(&range(None, 100)).await.unwrap().len(), 6);
    assert_eq!(store.read_range(&range(None, 2)).await.unwrap().len(), 2);
    let later = paystream_store::LogRange {
        recorded_from: Some(feed[4].recorded_at + chrono::Duration::seconds(1)),
        ..range(None, 100)
    };
    assert!(store.read_range(&later).await.unwrap().is_empty());

    let size = store.size().await.unwrap();
    assert_eq!((size.events, size.streams), (6, 3));
    assert!(store.next_position().await.unwrap() > feed[4].position);
}

/// Lookups by content: the stream of a refund, and the streams whose last
/// event is of a type.
pub async fn lookups_by_content<H: Harness>(harness: H) {
    let store = harness.store();
    let ours = metadata();
    let merchant = ours.merchant_id.unwrap();
    let payment = stream("payment");
    append_with(
        &store,
        &payment,
        vec![NewEvent::new(
            "RefundCreated",
            1,
            json!({"refund_id": "rfnd_contract01"}),
        )],
        &ours,
    )
    .await;
    assert_eq!(
        store.refund_stream("rfnd_contract01").await.unwrap(),
        Some(payment.clone())
    );
    assert_eq!(store.refund_stream("rfnd_nothing").await.unwrap(), None);

    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    let (failed, retried, other) = (stream("webhook"), stream("webhook"), stream("webhook"));
    append_with(
        &store,
        &failed,
        vec![NewEvent::new("Failed", 1, json!({}))],
        &ours,
    )
    .await;
    append_with(
        &store,
        &retried,
        vec![
            NewEvent::new("Failed", 1, json!({})),
            NewEvent::new("Retried", 1, json!({})),
        ],
        &ours,
    )
    .await;
    append_with(
        &store,
        &other,
        vec![NewEvent::new("Failed", 1, json!({}))],
        &metadata(),
    )
    .await;
    let ending = store
        .streams_ending_with("webhook", "Failed", merchant, since, 10)
        .await
        .unwrap();
    assert_eq!(ending, [failed]);
    let future = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert!(store
        .streams_ending_with("webhook", "Failed", merchant, future, 10)
        .await
        .unwrap()
        .is_empty());
}

/// A walk over every stream's chain in bounded steps finds each stream
/// once, and the break a tamper made.
pub async fn walking_every_chain_in_steps<H: Harness>(harness: H) {
    let store = harness.store();
    let mut streams: Vec<StreamId> = (0..5).map(|_| stream("order")).collect();
    for s in &streams {
        append_with(&store, s, (1..=2).map(event).collect(), &metadata()).await;
    }
    streams.sort();
    harness
        .tamper(Tamper::ChangePayload {
            stream: streams[3].clone(),
            version: 2,
        })
        .await;
    let (mut after, mut checked, mut events, mut breaks) = (None::<String>, 0, 0, Vec::new());
    loop {
        let step = store.verify_streams(after.as_deref(), 2).await.unwrap();
        assert!(step.streams <= 2 || step.upto.is_none(), "{step:?}");
        checked += step.streams;
        events += step.events;
        breaks.extend(step.breaks);
        match step.upto {
            Some(upto) => {
                assert!(store.has_streams_after(&upto).await.unwrap() || checked == 5);
                after = Some(upto);
            }
            None => break,
        }
    }
    assert_eq!((checked, events), (5, 10));
    assert_eq!(breaks.len(), 1, "{breaks:?}");
    assert_eq!(breaks[0].stream_id, streams[3].as_str());
    assert_eq!(breaks[0].version, 2);
    assert_eq!(breaks[0].kind, ChainBreakKind::Altered);
    assert!(!store.has_streams_after(streams[4].as_str()).await.unwrap());
    assert!(store.has_streams_after(streams[0].as_str()).await.unwrap());
}

/// Expands to one `#[tokio::test]` per contract test for a harness type.
#[macro_export]
macro_rules! store_contract_tests {
    ($harness:ty) => {
        $crate::store_contract_tests!(@each $harness,
            append_and_read_back,
            stale_expectation_is_a_typed_conflict_and_writes_nothing,
            fifty_concurrent_appenders_on_one_stream,
            event_ids_make_appends_idempotent,
            a_late_commit_is_never_skipped,
            global_log_pages_in_order,
            tampering_is_detected,
            concurrent_appends_keep_their_own_outcomes,
            two_processes_interleave_without_breaking_chains,
            bad_appends_are_refused,
            multi_stream_and_merchant_reads,
            lookups_by_content,
            walking_every_chain_in_steps
        );
    };
    (@each $harness:ty, $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                store_contract::$name(<$harness as store_contract::Harness>::create().await).await;
            }
        )+
    };
}
