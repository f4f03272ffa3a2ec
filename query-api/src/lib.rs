//! Paystream query API: every `GET` of the contract, served from the read
//! models, with `as_of` reads and read-your-writes folded from the event store.
//!
//! Not built yet: it arrives with the read-side issue.
