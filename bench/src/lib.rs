//! Paystream's end-to-end load generator. It drives the whole system as
//! `deploy/dev up` starts it, through the edge (`http://localhost:8000`),
//! as merchants would, and reports what users get:
//!
//! * payments settled per second, at a constant arrival rate (open model)
//!   stepped up until the p99 of creating a payment passes 100 ms (the knee);
//! * p50 / p99 / p99.9 per stage, with HDR histograms: create (order and
//!   payment), commit to outcome (from the store's event times), outcome
//!   visible on `GET`, capture, refund, webhook received (arrival minus the
//!   source event's commit);
//! * errors by code, and **lost** work: an accepted payment that never got
//!   its outcome, a refund never processed, a final event that never reached
//!   its endpoint;
//! * a per-payment budget measured from counters (events, SQL statements,
//!   commits, WAL bytes, JetStream messages, CPU per process), and the
//!   services' peak RSS;
//! * baselines from the same run: pgbench single-row `INSERT` TPS and the
//!   event store's raw append rate.
//!
//! * [`api`]: the client side of the API.
//! * [`receiver`]: the merchants' webhook endpoints (both signatures checked).
//! * [`load`]: the arrival process and each payment's path.
//! * [`budget`]: counters and the per-payment budget.
//! * [`baseline`]: pgbench and the raw store append rate.
//! * [`run`]: the steps and the report.
//! * [`seed`]: history (payment lives through the real store), for the
//!   `seed` binary and the projector's rebuild benchmark.

pub mod api;
pub mod baseline;
pub mod budget;
pub mod load;
pub mod receiver;
pub mod run;
pub mod seed;

pub use run::{run, Options, Report};
