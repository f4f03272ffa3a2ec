//! The aggregate abstraction: `decide` turns a command into events, `evolve`
//! folds one event into the state. Both are pure and synchronous.

use std::fmt::{Debug, Display};

use crate::error::DomainError;
use crate::event::DomainEvent;

/// A consistency boundary whose state is the fold of its own event stream.
pub trait Aggregate {
    /// Stream category: `"merchant"`, `"order"`, `"payment"` or `"webhook"`.
    /// The stream id of one object is `format!("{CATEGORY}-{id}")` (see [`stream_id`]).
    const CATEGORY: &'static str;
    /// `Default` is "does not exist yet".
    type State: Default + Clone + PartialEq + Debug;
    type Command;
    type Event: DomainEvent;

    /// Validates `command` against `state`. On success returns the events to
    /// append (possibly none, for an idempotent no-op); a rejection appends nothing.
    fn decide(state: &Self::State, command: Self::Command)
        -> Result<Vec<Self::Event>, DomainError>;

    /// Applies one event. Never fails: history is trusted, `decide` keeps it valid.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;
}

/// Decides, then folds every emitted event through `evolve` in order.
/// Returns the events to append and the state after them.
pub fn execute<A: Aggregate>(
    state: &A::State,
    command: A::Command,
) -> Result<(Vec<A::Event>, A::State), DomainError> {
    let events = A::decide(state, command)?;
    let next = events.iter().fold(state.clone(), A::evolve);
    Ok((events, next))
}

/// Rebuilds a state from scratch by folding `events` over the default state.
pub fn replay<'a, A: Aggregate>(events: impl IntoIterator<Item = &'a A::Event>) -> A::State
where
    A::Event: 'a,
{
    events.into_iter().fold(A::State::default(), A::evolve)
}

/// The stream id of one object: `"{CATEGORY}-{id}"`, e.g. `payment-pay_H8sK3jD9s2L1pQr5`.
pub fn stream_id<A: Aggregate>(id: impl Display) -> String {
    format!("{}-{id}", A::CATEGORY)
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::event::domain_events;
    use crate::payment::PaymentAggregate;

    /// A toy tally: `Bump` adds one; when that reaches a multiple of three,
    /// the same decision also emits `Rolled` (which resets the count) —
    /// a second event that depends on the state after the first.
    #[derive(Debug)]
    struct Tally;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Bumped {}

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Rolled {}

    domain_events! {
        pub enum TallyEvent {
            Bumped => [],
            Rolled => [],
        }
    }

    impl Aggregate for Tally {
        const CATEGORY: &'static str = "tally";
        type State = (u32, u32); // (count, rolls)
        type Command = ();
        type Event = TallyEvent;

        fn decide(state: &Self::State, _command: ()) -> Result<Vec<TallyEvent>, DomainError> {
            let bumped = TallyEvent::from(Bumped {});
            let after = Self::evolve(*state, &bumped);
            let mut events = vec![bumped];
            if after.0 == 3 {
                events.push(Rolled {}.into());
            }
            Ok(events)
        }

        fn evolve(state: Self::State, event: &TallyEvent) -> Self::State {
            match event {
                TallyEvent::Bumped(_) => (state.0 + 1, state.1),
                TallyEvent::Rolled(_) => (0, state.1 + 1),
            }
        }
    }

    #[test]
    fn execute_folds_every_emitted_event() {
        let mut state = (0, 0);
        let mut history = Vec::new();
        for _ in 0..7 {
            let (events, next) = execute::<Tally>(&state, ()).unwrap();
            history.extend(events);
            state = next;
        }
        assert_eq!(state, (1, 2));
        assert_eq!(history.len(), 9);
        assert_eq!(replay::<Tally>(&history), state);
        assert_eq!(TallyEvent::EVENT_TYPES, ["Bumped", "Rolled"]);
    }

    #[test]
    fn stream_ids_are_category_dash_id() {
        let id: crate::PaymentId = "pay_H8sK3jD9s2L1pQr5".parse().unwrap();
        assert_eq!(
            stream_id::<PaymentAggregate>(&id),
            "payment-pay_H8sK3jD9s2L1pQr5"
        );
        assert_eq!(stream_id::<Tally>(42), "tally-42");
    }
}
