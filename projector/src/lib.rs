//! Paystream projector: JetStream consumers that fold committed events into
//! PostgreSQL read models (orders, payments, refunds, webhook deliveries,
//! stats, the merchant feed and the double-entry ledger).
//!
//! Not built yet: it arrives with the read-side issue. Nothing here pretends
//! to project anything.
