//! Paystream's read side: the `GET` half of `/api/v1`.
//!
//! This first slice folds every object from the event store, so a read by id
//! always reflects every command acknowledged before it (read your writes),
//! and `?as_of=` rebuilds the state at any moment with the domain's own
//! `evolve`. Read models (projector) come later, for lists and totals.
//!
//! * [`fold`]: reading a stream and folding it, up to a moment or not.
//! * [`routes`]: one module per resource, plus health, job status and the
//!   OpenAPI document of the whole API.
//! * [`views`]: the query side's own shapes (public views, histories); the
//!   objects themselves use the command API's views, so a read answers
//!   exactly like the write before it.

pub mod auth;
pub mod config;
pub mod fold;
pub mod freshness;
pub mod listing;
pub mod metrics;
pub mod routes;
pub mod startup;
pub mod views;
