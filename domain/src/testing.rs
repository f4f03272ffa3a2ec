//! Given / when / then over `decide` + `evolve` (test builds only):
//!
//! ```text
//! given::<PaymentAggregate>([created(), succeeded()])
//!     .when(capture(50_000))
//!     .then([captured(50_000)]);
//! ```
//!
//! `then` also checks that every emitted event survives a trip through its
//! stored form (`to_payload` / `from_stored`).

use crate::aggregate::{execute, replay, Aggregate};
use crate::error::DomainError;
use crate::event::DomainEvent;

pub(crate) struct Given<A: Aggregate> {
    state: A::State,
}

/// Starts from the state obtained by replaying `events`.
pub(crate) fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let events: Vec<A::Event> = events.into_iter().collect();
    Given {
        state: replay::<A>(&events),
    }
}

impl<A: Aggregate> Given<A> {
    pub(crate) fn when(self, command: A::Command) -> Outcome<A> {
        let result = execute::<A>(&self.state, command);
        Outcome {
            before: self.state,
            result,
        }
    }
}

pub(crate) struct Outcome<A: Aggregate> {
    before: A::State,
    result: Result<(Vec<A::Event>, A::State), DomainError>,
}

impl<A: Aggregate> Outcome<A> {
    /// Asserts the command was accepted and emitted exactly `expected`;
    /// returns the state after them.
    #[track_caller]
    pub(crate) fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A::State {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match self.result {
            Ok((events, state)) => {
                assert_eq!(events, expected, "emitted events differ");
                for event in &events {
                    let stored = A::Event::from_stored(
                        event.event_type(),
                        event.schema_version(),
                        event.to_payload(),
                    );
                    assert_eq!(
                        stored.as_ref(),
                        Ok(event),
                        "event does not round-trip through its payload"
                    );
                }
                state
            }
            Err(error) => {
                panic!("expected events {expected:?}, but the command was rejected: {error:?}")
            }
        }
    }

    /// Asserts the command was accepted as a no-op: no events, state unchanged.
    #[track_caller]
    pub(crate) fn then_nothing(self) -> A::State {
        let before = self.before.clone();
        let state = self.then([]);
        assert_eq!(state, before, "a no-op changed the state");
        state
    }

    /// Asserts the command was rejected with exactly `expected`.
    #[track_caller]
    pub(crate) fn then_error(self, expected: DomainError) -> DomainError {
        match self.result {
            Err(error) => {
                assert_eq!(error, expected);
                error
            }
            Ok((events, _)) => panic!("expected rejection {expected:?}, got events {events:?}"),
        }
    }

    /// Asserts the command was rejected with the machine code `code`.
    #[track_caller]
    pub(crate) fn then_error_code(self, code: &str) -> DomainError {
        match self.result {
            Err(error) => {
                assert_eq!(error.code(), code, "unexpected error {error:?}");
                error
            }
            Ok((events, _)) => panic!("expected a {code} rejection, got events {events:?}"),
        }
    }
}

/// 2025-06-01T10:00:00Z plus `seconds`: a fixed "now" for tests.
pub(crate) fn time(seconds: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_748_772_000 + seconds, 0)
        .expect("test timestamps are in range")
}
