//! Test support: a fresh PostgreSQL database per test, the real command API
//! and the real query API over it, and bounded waits.
#![allow(dead_code, unused_imports)]

pub mod apps;
pub mod oversight;

pub use paystream_store::testing::{
    admin_database_url, jetstream_at, nats_url, unique_name, wait_until, TestDatabase,
};
