//! Test support: a fresh PostgreSQL database per test, the real command API
//! and the real query API over it, and bounded waits. (Copied in part from
//! command-api/tests/support, so the crates' tests stay independent.)
#![allow(dead_code)]

pub mod apps;

use std::future::Future;
use std::time::Duration;

use paystream_command_api::store::PgEventStore;
use sqlx::{Connection, Executor, PgConnection};

/// Server URL of a role that may create databases.
pub fn admin_database_url() -> String {
    std::env::var("PAYSTREAM_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn nats_url() -> String {
    std::env::var("PAYSTREAM_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A unique, lowercase name for this test's database, stream, subjects.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A database of its own, migrated. Databases are named `ps_test_…`;
/// `deploy/dev test` drops old ones before a run.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub url: String,
    pub store: PgEventStore,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let admin = admin_database_url();
        let name = unique_name("ps_test");
        let mut connection = PgConnection::connect(&admin)
            .await
            .expect("connect to the test PostgreSQL server (PAYSTREAM_TEST_DATABASE_URL)");
        connection
            .execute(format!("create database {name}").as_str())
            .await
            .expect("create test database");
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("PAYSTREAM_TEST_DATABASE_URL must end in /<database>"),
        };
        let store = PgEventStore::connect(&url, 8)
            .await
            .expect("connect and migrate test database");
        Self { url, store }
    }
}

/// A JetStream context on `url` that keeps reconnecting by itself.
pub async fn jetstream_at(url: &str) -> async_nats::jetstream::Context {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(url)
        .await
        .expect("connect to NATS");
    let mut context = async_nats::jetstream::new(client);
    context.set_timeout(Duration::from_secs(5));
    context
}

/// Polls `check` until it returns `Some`, at most `timeout`.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
