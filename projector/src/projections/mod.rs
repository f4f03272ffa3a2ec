//! One module per projection; each exposes `apply(conn, events)`.

pub mod ledger;
pub mod merchants;
pub mod payments;
pub mod webhooks;
