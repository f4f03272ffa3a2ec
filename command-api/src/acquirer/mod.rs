//! The simulated acquirer: a durable JetStream consumer that turns
//! `PaymentCreated` and `RefundCreated` events into outcomes, recorded as
//! domain commands.
//!
//! # Processing (contract)
//!
//! * A payment waits a random 5–10 s, then succeeds with probability 0.90
//!   (UPI) or 0.95 (card); a random failure is `PAYMENT_FAILED`, "Payment
//!   declined by the bank".
//! * A refund waits a random 3–5 s, then is processed.
//! * `TEST_MODE=true`: every delay is `TEST_PROCESSING_DELAY` ms (default
//!   1000) and a payment's outcome is `TEST_PAYMENT_SUCCESS` (default true).
//! * Delays count from when the event was recorded, so a message redelivered
//!   after a crash does not wait all over again; they are never longer than
//!   the chosen delay, whatever the clocks say.
//! * The random choices are a hash of the payment (or refund) id: a
//!   redelivered message gets the same delay and the same outcome.
//!
//! # Magic test inputs (every mode, including the random one)
//!
//! | input | outcome |
//! |---|---|
//! | VPA whose local part is `fail` (e.g. `fail@upi`) | failed: `PAYMENT_FAILED`, "Payment declined by the bank (test VPA)" |
//! | VPA whose local part is `success` (e.g. `success@upi`) | success |
//! | card ending in `0002` (e.g. `4000 0000 0000 0002`) | failed: `CARD_DECLINED`, "Card declined by the issuer (test card)" |
//!
//! The local part is compared ignoring ASCII case. There are no others.
//!
//! A payment the bank accepted for an order another payment already paid is
//! recorded failed with `ORDER_ALREADY_PAID` (an order is paid at most once).
//!
//! # Delivery
//!
//! * Durable pull consumer (default name `acquirer`) on the relay's stream,
//!   filter `{prefix}.payment.>` (one filter subject: NATS 2.9). Events other
//!   than `PaymentCreated`/`RefundCreated` are acknowledged and ignored.
//! * Explicit acks, sent only once the outcome is recorded or found already
//!   recorded. While a message is being worked on, an in-progress ack is sent
//!   every third of `ack_wait`, so a slow database does not cause redelivery
//!   to a live acquirer; a dead one's messages come back after `ack_wait`.
//! * At most `max_in_flight` messages at once (a semaphore, and the
//!   consumer's `max_ack_pending`). The delay is a timer: no database
//!   connection is held while waiting.
//! * Exactly one outcome per payment, even with duplicate deliveries or a kill
//!   between steps: see [`record`].
//! * A failed job is handed back (`nak`) with a jittered back-off of 1 s
//!   doubling to 60 s, and retried for ever: no event is ever skipped.
//! * NATS or PostgreSQL restarts: the consumer and its message stream are
//!   re-created after any error, with a jittered back-off (100 ms doubling to
//!   `backoff_max`). Until the relay has created the stream, the acquirer
//!   waits the same way.
//!
//! Nothing logged carries card data or VPAs: payment id, outcome, rule.

//!
//! # Modules
//!
//! * [`config`]: settings; [`stats`]: live counters;
//! * [`outcome`]: the pure decision (delay, success or failure, rule);
//! * [`record`]: recording an outcome exactly once;
//! * `consumer`: the I/O loop.

pub mod config;
mod consumer;
pub mod outcome;
pub mod record;
pub mod stats;

pub use config::{env, AcquirerConfig, AcquirerConfigError, MAX_IN_FLIGHT, MAX_TEST_DELAY_MS};
pub use consumer::{run, run_standalone, run_with_stats, spawn, AcquirerHandle};
pub use stats::{AcquirerStats, AcquirerStatsSnapshot};
