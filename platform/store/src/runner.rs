//! Running commands against aggregates: load an aggregate from its stream,
//! decide with the pure domain, append the events with the version it was
//! loaded at, and retry (bounded) when another writer got there first.

use std::fmt::Display;

use paystream_domain::{Aggregate, DomainError, DomainEvent};

use crate::{EventMetadata, EventStore, ExpectedVersion, NewEvent, Position, StoreError, StreamId};

/// Attempts at one command before a conflict is reported to the caller.
pub const MAX_ATTEMPTS: u32 = 5;

/// Events read per page while loading a stream.
const PAGE: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The domain refused the command: a 4xx for the client.
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// Other writers kept winning the race for this stream.
    #[error("stream {0} is busy: too many concurrent writers")]
    Contention(StreamId),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event could not be read back as a domain event.
    #[error("stream {stream} holds an unreadable event: {reason}")]
    Corrupt { stream: StreamId, reason: String },
}

/// An aggregate as loaded from its stream.
#[derive(Debug, Clone)]
pub struct Loaded<A: Aggregate> {
    pub stream: StreamId,
    pub state: A::State,
    /// Version of its last event; 0 when the stream does not exist.
    pub version: u64,
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Executed<A: Aggregate> {
    pub stream: StreamId,
    /// The state after the command (unchanged for a no-op).
    pub state: A::State,
    pub version: u64,
    /// Events appended; empty when the command was a no-op.
    pub events: Vec<A::Event>,
    /// Global position of the last appended event (`None` for a no-op).
    pub position: Option<Position>,
}

/// Striped per-stream locks: bounded memory, rare false sharing.
///
/// Process-global on purpose, and safe: a stripe only serialises this
/// process's commands on streams that hash alike, so two stores in one
/// process (tests) at worst wait for each other briefly; correctness never
/// rests on it (the append's expected version does). It saves the conflict
/// and reload that racing commands on one stream would otherwise cost.
fn stripe(stream: &StreamId) -> &'static tokio::sync::Mutex<()> {
    static STRIPES: std::sync::LazyLock<Vec<tokio::sync::Mutex<()>>> =
        std::sync::LazyLock::new(|| {
            (0..STRIPES_COUNT)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect()
        });
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(stream, &mut hasher);
    &STRIPES[(std::hash::Hasher::finish(&hasher) % STRIPES_COUNT as u64) as usize]
}

const STRIPES_COUNT: usize = 1024;

pub fn stream_of<A: Aggregate>(id: impl Display) -> Result<StreamId, StoreError> {
    StreamId::new(A::CATEGORY, id)
}

/// Folds the aggregate's stream.
pub async fn load<A: Aggregate>(
    store: &impl EventStore,
    id: impl Display,
) -> Result<Loaded<A>, CommandError> {
    load_stream(store, stream_of::<A>(id)?).await
}

async fn load_stream<A: Aggregate>(
    store: &impl EventStore,
    stream: StreamId,
) -> Result<Loaded<A>, CommandError> {
    let mut state = A::State::default();
    let version = read_events::<A>(store, &stream, |_, event| {
        state = A::evolve(std::mem::take(&mut state), &event);
    })
    .await?;
    Ok(Loaded {
        stream,
        state,
        version,
    })
}

/// Reads `stream` page by page, oldest first, handing `visit` each event as
/// stored (position, version, …; its payload already taken) and decoded;
/// returns the last version (0 when the stream does not exist). An event
/// that does not decode is [`CommandError::Corrupt`].
pub async fn read_events<A: Aggregate>(
    store: &impl EventStore,
    stream: &StreamId,
    mut visit: impl FnMut(&crate::RecordedEvent, A::Event),
) -> Result<u64, CommandError> {
    let mut version = 0;
    loop {
        let page = store.read_stream(stream, version, PAGE).await?;
        let full = page.len() == PAGE;
        for mut recorded in page {
            let event = A::Event::from_stored(
                &recorded.event_type,
                recorded.schema_version,
                std::mem::take(&mut recorded.payload),
            )
            .map_err(|error| CommandError::Corrupt {
                stream: stream.clone(),
                reason: error.to_string(),
            })?;
            version = recorded.version;
            visit(&recorded, event);
        }
        if !full {
            return Ok(version);
        }
    }
}

/// Loads the aggregate, builds the command from its state (so the command
/// can carry facts read from it), decides, and appends. On a version
/// conflict it starts over from a fresh load, at most [`MAX_ATTEMPTS`] times.
pub async fn execute<A, F>(
    store: &impl EventStore,
    id: impl Display,
    metadata: &EventMetadata,
    command: F,
) -> Result<Executed<A>, CommandError>
where
    A: Aggregate,
    F: FnMut(&A::State) -> Result<A::Command, DomainError>,
{
    let stream = stream_of::<A>(id)?;
    let _turn = stripe(&stream).lock().await;
    let loaded = load_stream::<A>(store, stream).await?;
    decide_and_append(store, loaded, metadata, command).await
}

/// For an object whose id was just generated: decides against the empty
/// state without reading the stream (a collision shows up as a conflict,
/// and the retry then sees the existing object).
pub async fn create<A, F>(
    store: &impl EventStore,
    id: impl Display,
    metadata: &EventMetadata,
    command: F,
) -> Result<Executed<A>, CommandError>
where
    A: Aggregate,
    F: FnMut(&A::State) -> Result<A::Command, DomainError>,
{
    let stream = stream_of::<A>(id)?;
    let _turn = stripe(&stream).lock().await;
    let empty = Loaded {
        stream,
        state: A::State::default(),
        version: 0,
    };
    decide_and_append(store, empty, metadata, command).await
}

/// Like [`execute`], starting from a state the caller loaded a moment ago;
/// if it is stale, the append conflicts and the command runs on a fresh load.
pub async fn execute_loaded<A, F>(
    store: &impl EventStore,
    loaded: Loaded<A>,
    metadata: &EventMetadata,
    command: F,
) -> Result<Executed<A>, CommandError>
where
    A: Aggregate,
    F: FnMut(&A::State) -> Result<A::Command, DomainError>,
{
    let _turn = stripe(&loaded.stream).lock().await;
    decide_and_append(store, loaded, metadata, command).await
}

async fn decide_and_append<A, F>(
    store: &impl EventStore,
    mut loaded: Loaded<A>,
    metadata: &EventMetadata,
    mut command: F,
) -> Result<Executed<A>, CommandError>
where
    A: Aggregate,
    F: FnMut(&A::State) -> Result<A::Command, DomainError>,
{
    for attempt in 1..=MAX_ATTEMPTS {
        let decided = command(&loaded.state)?;
        let (events, state) = paystream_domain::execute::<A>(&loaded.state, decided)?;
        if events.is_empty() {
            return Ok(Executed {
                stream: loaded.stream,
                state,
                version: loaded.version,
                events,
                position: None,
            });
        }
        let new_events = events
            .iter()
            .map(|event| {
                NewEvent::new(
                    event.event_type(),
                    event.schema_version(),
                    event.to_payload(),
                )
            })
            .collect();
        match store
            .append(
                &loaded.stream,
                ExpectedVersion::from_version(loaded.version),
                new_events,
                metadata,
            )
            .await
        {
            Ok(appended) => {
                return Ok(Executed {
                    stream: loaded.stream,
                    state,
                    version: appended.last_version,
                    events,
                    position: Some(appended.position),
                })
            }
            Err(StoreError::Conflict { .. }) if attempt < MAX_ATTEMPTS => {
                loaded = load_stream::<A>(store, loaded.stream).await?;
            }
            Err(StoreError::Conflict { .. }) => break,
            Err(error) => return Err(error.into()),
        }
    }
    Err(CommandError::Contention(loaded.stream))
}
