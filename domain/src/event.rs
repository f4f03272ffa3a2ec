//! Stored events: the [`DomainEvent`] trait, schema versions and upcasting.
//!
//! Each aggregate lists its event types once, in its `event.rs`, through
//! `domain_events!`. Next to every type stands its upcast chain: the functions
//! that turn a stored payload of version N into version N + 1. The current
//! version of a type is the chain's length + 1, so the list cannot drift:
//!
//! ```text
//! domain_events! {
//!     pub enum PaymentEvent {
//!         PaymentCreated => [],                            // v1, current
//!         // after a breaking change it would read:
//!         // PaymentCreated => [payment_created_v1_to_v2], // v2, current
//!     }
//! }
//! ```
//!
//! [`DomainEvent::from_stored`] applies the chain from the stored version up to
//! the current one, then deserializes. Unknown types, versions 0 or above the
//! current one, and payloads that do not fit are an [`UpcastError`], never a panic.
//! Every type is v1 today, so every chain is empty.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// An event as the domain sees it: a type name, a schema version and a JSON payload.
pub trait DomainEvent: Sized + Clone + Debug + PartialEq {
    /// The stored type name, PascalCase past tense (e.g. `"PaymentCreated"`).
    fn event_type(&self) -> &'static str;
    /// The version written for this type today.
    fn schema_version(&self) -> u16;
    /// The stored JSON payload (the event's fields, without type or version).
    fn to_payload(&self) -> Value;
    /// Parses a stored event of any known (type, version): older versions are
    /// upcast step by step to the current one.
    fn from_stored(
        event_type: &str,
        schema_version: u16,
        payload: Value,
    ) -> Result<Self, UpcastError>;
}

/// A stored event could not be turned into a current domain event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    #[error("unknown event type {event_type:?}")]
    UnknownEventType { event_type: String },

    #[error("{event_type} has no schema version {schema_version} (current is {current_version})")]
    UnsupportedVersion {
        event_type: String,
        schema_version: u16,
        current_version: u16,
    },

    #[error("invalid {event_type} v{schema_version} payload: {message}")]
    InvalidPayload {
        event_type: String,
        schema_version: u16,
        message: String,
    },
}

/// One upcast step: a payload of version N in, the same event at version N + 1 out.
/// An `Err` carries a description of what did not fit.
pub type UpcastStep = fn(Value) -> Result<Value, String>;

/// The current version of a type whose upcast chain is `chain`.
pub fn current_version(chain: &[UpcastStep]) -> u16 {
    u16::try_from(chain.len()).map_or(u16::MAX, |steps| steps.saturating_add(1))
}

/// Runs `payload` (stored at `schema_version`) through the rest of `chain`.
pub fn upcast_payload(
    event_type: &str,
    schema_version: u16,
    chain: &[UpcastStep],
    payload: Value,
) -> Result<Value, UpcastError> {
    let current = current_version(chain);
    if schema_version == 0 || schema_version > current {
        return Err(UpcastError::UnsupportedVersion {
            event_type: event_type.to_owned(),
            schema_version,
            current_version: current,
        });
    }
    let remaining = &chain[usize::from(schema_version - 1)..];
    remaining
        .iter()
        .zip(schema_version..)
        .try_fold(payload, |payload, (step, version)| {
            step(payload).map_err(|message| UpcastError::InvalidPayload {
                event_type: event_type.to_owned(),
                schema_version: version,
                message,
            })
        })
}

/// Deserializes a payload that is at the current version.
pub fn parse_payload<T: DeserializeOwned>(
    event_type: &str,
    schema_version: u16,
    payload: Value,
) -> Result<T, UpcastError> {
    serde_json::from_value(payload).map_err(|error| UpcastError::InvalidPayload {
        event_type: event_type.to_owned(),
        schema_version,
        message: error.to_string(),
    })
}

/// Serializes one event struct to its payload.
pub fn payload_of<T: Serialize>(event: &T) -> Value {
    // Event structs are plain data with string keys: serialization cannot fail.
    serde_json::to_value(event).expect("event payloads are plain serializable structs")
}

/// Declares an aggregate's event enum, one variant per event struct of the
/// same name, with the upcast chain of each type; implements [`DomainEvent`],
/// `From<Struct>` for each struct, and `EVENT_TYPES`.
macro_rules! domain_events {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => [$($step:path),* $(,)?] ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant($variant), )+
        }

        impl $name {
            /// Every event type name of this enum, as stored.
            pub const EVENT_TYPES: &'static [&'static str] = &[$(stringify!($variant)),+];
        }

        $(
            impl From<$variant> for $name {
                fn from(event: $variant) -> Self {
                    Self::$variant(event)
                }
            }
        )+

        impl $crate::event::DomainEvent for $name {
            fn event_type(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => stringify!($variant), )+
                }
            }

            fn schema_version(&self) -> u16 {
                match self {
                    $( Self::$variant(_) => {
                        let chain: &[$crate::event::UpcastStep] = &[$($step),*];
                        $crate::event::current_version(chain)
                    } )+
                }
            }

            fn to_payload(&self) -> ::serde_json::Value {
                match self {
                    $( Self::$variant(event) => $crate::event::payload_of(event), )+
                }
            }

            fn from_stored(
                event_type: &str,
                schema_version: u16,
                payload: ::serde_json::Value,
            ) -> Result<Self, $crate::event::UpcastError> {
                $(
                    if event_type == stringify!($variant) {
                        let chain: &[$crate::event::UpcastStep] = &[$($step),*];
                        let payload = $crate::event::upcast_payload(
                            event_type,
                            schema_version,
                            chain,
                            payload,
                        )?;
                        let current = $crate::event::current_version(chain);
                        return $crate::event::parse_payload(event_type, current, payload)
                            .map(Self::$variant);
                    }
                )+
                Err($crate::event::UpcastError::UnknownEventType {
                    event_type: event_type.to_owned(),
                })
            }
        }
    };
}
pub(crate) use domain_events;

#[cfg(test)]
mod tests {
    //! A hypothetical, test-only event history exercising a two-step chain:
    //! `Greeted` v1 `{"text": "hello ada"}` → v2 `{"greeting", "name"}` → v3
    //! adds `"punctuation"`. The production event lists have no such history.

    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Greeted {
        greeting: String,
        name: String,
        punctuation: String,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Waved {
        hand: String,
    }

    fn greeted_v1_to_v2(payload: Value) -> Result<Value, String> {
        let text = payload
            .get("text")
            .and_then(Value::as_str)
            .ok_or("missing text")?;
        let (greeting, name) = text
            .split_once(' ')
            .ok_or("text must be \"<greeting> <name>\"")?;
        Ok(json!({ "greeting": greeting, "name": name }))
    }

    fn greeted_v2_to_v3(mut payload: Value) -> Result<Value, String> {
        let object = payload.as_object_mut().ok_or("payload must be an object")?;
        object.insert("punctuation".to_owned(), json!("."));
        Ok(payload)
    }

    domain_events! {
        pub enum TestEvent {
            Greeted => [greeted_v1_to_v2, greeted_v2_to_v3],
            Waved => [],
        }
    }

    fn ada(punctuation: &str) -> TestEvent {
        TestEvent::Greeted(Greeted {
            greeting: "hello".to_owned(),
            name: "ada".to_owned(),
            punctuation: punctuation.to_owned(),
        })
    }

    #[test]
    fn versions_follow_the_chain_length() {
        assert_eq!(ada("!").schema_version(), 3);
        assert_eq!(
            TestEvent::Waved(Waved {
                hand: "left".to_owned()
            })
            .schema_version(),
            1
        );
        assert_eq!(TestEvent::EVENT_TYPES, ["Greeted", "Waved"]);
        assert_eq!(current_version(&[]), 1);
    }

    #[test]
    fn old_versions_are_upcast_step_by_step() {
        let v1 = TestEvent::from_stored("Greeted", 1, json!({ "text": "hello ada" })).unwrap();
        assert_eq!(v1, ada("."));
        let v2 =
            TestEvent::from_stored("Greeted", 2, json!({ "greeting": "hello", "name": "ada" }))
                .unwrap();
        assert_eq!(v2, ada("."));
        let current = ada("!");
        let v3 = TestEvent::from_stored("Greeted", 3, current.to_payload()).unwrap();
        assert_eq!(v3, current);
    }

    #[test]
    fn unknown_types_and_versions_are_errors() {
        assert_eq!(
            TestEvent::from_stored("Shouted", 1, json!({})),
            Err(UpcastError::UnknownEventType {
                event_type: "Shouted".to_owned()
            })
        );
        for version in [0, 4, u16::MAX] {
            assert_eq!(
                TestEvent::from_stored("Greeted", version, json!({})),
                Err(UpcastError::UnsupportedVersion {
                    event_type: "Greeted".to_owned(),
                    schema_version: version,
                    current_version: 3,
                })
            );
        }
        assert!(matches!(
            TestEvent::from_stored("Waved", 2, json!({ "hand": "left" })),
            Err(UpcastError::UnsupportedVersion {
                current_version: 1,
                ..
            })
        ));
    }

    #[test]
    fn bad_payloads_are_errors_naming_the_failing_version() {
        assert_eq!(
            TestEvent::from_stored("Greeted", 1, json!({ "text": 7 })),
            Err(UpcastError::InvalidPayload {
                event_type: "Greeted".to_owned(),
                schema_version: 1,
                message: "missing text".to_owned(),
            })
        );
        assert!(matches!(
            TestEvent::from_stored("Greeted", 2, json!([1, 2])),
            Err(UpcastError::InvalidPayload {
                schema_version: 2,
                ..
            })
        ));
        let error = TestEvent::from_stored("Waved", 1, json!({ "hand": 3 })).unwrap_err();
        assert!(matches!(
            error,
            UpcastError::InvalidPayload {
                schema_version: 1,
                ..
            }
        ));
        assert!(
            error.to_string().starts_with("invalid Waved v1 payload"),
            "{error}"
        );
    }
}
