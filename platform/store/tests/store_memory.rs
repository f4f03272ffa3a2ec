//! The event store contract against the in-memory backend: the same suite
//! PostgreSQL runs, so the port is proven by two implementations.

mod store_contract;

use paystream_store::memory::HeldAppend as MemoryHeld;
use paystream_store::{ExpectedVersion, MemoryEventStore, NewEvent, StreamId};
use store_contract::{Harness, HeldAppend, Tamper};

struct Memory(MemoryEventStore);

struct Held(MemoryHeld);

impl HeldAppend for Held {
    async fn commit(self) {
        self.0.commit().expect("the held append had events");
    }
}

impl Harness for Memory {
    type Store = MemoryEventStore;
    type Held = Held;

    async fn create() -> Self {
        Memory(MemoryEventStore::new())
    }

    fn store(&self) -> MemoryEventStore {
        self.0.clone()
    }

    /// Another process of the same backend is another handle on the same
    /// log (the in-memory log lives in one process).
    async fn another_store(&self) -> MemoryEventStore {
        self.0.clone()
    }

    async fn hold_append(&self, stream: &StreamId, events: Vec<NewEvent>) -> Held {
        Held(
            self.0
                .hold(
                    stream,
                    ExpectedVersion::NoStream,
                    &events,
                    &store_contract::metadata(),
                )
                .expect("hold an append"),
        )
    }

    async fn tamper(&self, tamper: Tamper) {
        match tamper {
            Tamper::ChangePayload { stream, version } => {
                self.0.tamper(&stream, version, |mut event| {
                    event.payload["amount"] = 1.into();
                    Some(event)
                });
            }
            Tamper::Delete { stream, version } => self.0.tamper(&stream, version, |_| None),
            Tamper::SwapPayloads { stream, a, b } => {
                let mut first = None;
                self.0.tamper(&stream, a, |event| {
                    first = Some(event.payload.clone());
                    Some(event)
                });
                let mut second = None;
                self.0.tamper(&stream, b, |mut event| {
                    second = Some(std::mem::replace(
                        &mut event.payload,
                        first.take().expect("event a"),
                    ));
                    Some(event)
                });
                self.0.tamper(&stream, a, |mut event| {
                    event.payload = second.take().expect("event b");
                    Some(event)
                });
            }
        }
    }
}

store_contract_tests!(Memory);
