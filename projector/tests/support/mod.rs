//! Test support for the projector: a database and a JetStream stream of the
//! test's own, the real relay, the real projector (in-process or as the
//! `projector` binary), a randomized workload of real commands, canonical
//! dumps of every read-model table, and the ledger invariants.
#![allow(dead_code, unused_imports)]

pub mod workload;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use paystream_projector::startup::Application;
use paystream_projector::{Config, Projection};
use paystream_store::relay::{self, RelayConfig, RelaySignal};
pub use paystream_store::testing::{
    jetstream_at, nats_url, unique_name, wait_until, NatsServer, TestDatabase,
};
use paystream_store::PgEventStore;
use tokio::task::JoinHandle;

pub struct Harness {
    pub database: TestDatabase,
    pub nats_url: String,
    pub jetstream: jetstream::Context,
    pub relay: RelayConfig,
    pub consumer_name: String,
    relay_task: Option<JoinHandle<()>>,
    projector_task: Option<JoinHandle<anyhow::Result<()>>>,
    pub projector_addr: Option<std::net::SocketAddr>,
    child: Option<Child>,
}

impl Harness {
    pub async fn new() -> Self {
        Self::at(&nats_url()).await
    }

    pub async fn at(nats_url: &str) -> Self {
        let name = unique_name("proj");
        Self {
            database: TestDatabase::create().await,
            nats_url: nats_url.to_owned(),
            jetstream: jetstream_at(nats_url).await,
            relay: RelayConfig {
                stream_name: name.to_uppercase(),
                subject_prefix: format!("{name}.events"),
                ..RelayConfig::default()
            },
            consumer_name: format!("{name}_projector"),
            relay_task: None,
            projector_task: None,
            projector_addr: None,
            child: None,
        }
    }

    pub fn store(&self) -> &PgEventStore {
        &self.database.store
    }

    pub fn start_relay(&mut self) {
        self.relay_task = Some(tokio::spawn(relay::run(
            self.store().clone(),
            self.jetstream.clone(),
            self.relay.clone(),
            RelaySignal::default(),
        )));
    }

    pub fn stop_relay(&mut self) {
        if let Some(task) = self.relay_task.take() {
            task.abort();
        }
    }

    pub fn config(&self) -> Config {
        Config {
            runtime: paystream_kit::config::RuntimeArgs::new(paystream_kit::config::Profile::Dev),
            database: paystream_kit::config::DatabaseArgs {
                database_url: paystream_kit::config::Secret::new(self.database.url.clone()),
                database_max_connections: 4,
            },
            nats: paystream_kit::config::NatsArgs {
                nats_url: self.nats_url.clone(),
                events_stream: self.relay.stream_name.clone(),
                events_subject_prefix: self.relay.subject_prefix.clone(),
            },
            http_addr: "127.0.0.1:0".parse().expect("address"),
            consumer_name: self.consumer_name.clone(),
            batch_size: 200,
        }
    }

    /// The projector in this process.
    pub async fn start_projector(&mut self) {
        let app = Application::build(self.config()).await.expect("projector");
        self.projector_addr = Some(app.local_addr().expect("bound"));
        self.projector_task = Some(tokio::spawn(app.run_until_stopped()));
    }

    pub fn stop_projector(&mut self) {
        if let Some(task) = self.projector_task.take() {
            task.abort();
        }
    }

    /// The real `projector` binary.
    pub fn start_projector_process(&mut self) {
        let port = paystream_store::testing::free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_projector"))
            .env("PAYSTREAM_DATABASE_URL", &self.database.url)
            .env("PAYSTREAM_NATS_URL", &self.nats_url)
            .env("PAYSTREAM_PROJECTOR_ADDR", format!("127.0.0.1:{port}"))
            .env("PAYSTREAM_EVENTS_STREAM", &self.relay.stream_name)
            .env(
                "PAYSTREAM_EVENTS_SUBJECT_PREFIX",
                &self.relay.subject_prefix,
            )
            .env("PAYSTREAM_PROJECTOR_CONSUMER", &self.consumer_name)
            .env("PAYSTREAM_PROJECTOR_BATCH_SIZE", "50")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the projector binary");
        self.projector_addr = Some(format!("127.0.0.1:{port}").parse().expect("address"));
        self.child = Some(child);
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill_projector_process(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
    }

    /// The last position committed to the store.
    pub async fn head(&self) -> i64 {
        sqlx::query_scalar("select coalesce(max(position), 0) from events")
            .fetch_one(self.store().pool())
            .await
            .expect("head")
    }

    pub async fn checkpoints(&self) -> BTreeMap<String, i64> {
        sqlx::query_as::<_, (String, i64)>(
            "select projection, position from projection_checkpoints",
        )
        .fetch_all(self.store().pool())
        .await
        .expect("checkpoints")
        .into_iter()
        .collect()
    }

    /// Waits until every projection has applied every committed event.
    pub async fn wait_caught_up(&self, timeout: Duration) {
        let head = self.head().await;
        wait_until(timeout, "every projection to reach the head", || async {
            let checkpoints = self.checkpoints().await;
            Projection::ALL
                .iter()
                .all(|p| checkpoints.get(p.name()).is_some_and(|at| *at >= head))
                .then_some(())
        })
        .await;
    }

    /// Every read-model table (and the parked events), one canonical JSON
    /// line per row, sorted.
    pub async fn dump(&self) -> BTreeMap<String, Vec<String>> {
        let mut dump = BTreeMap::new();
        let tables = Projection::ALL
            .iter()
            .flat_map(|p| p.tables().iter().copied())
            .chain(["projection_parked"]);
        for table in tables {
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "select (to_jsonb(t) - 'parked_at')::text from {table} t order by 1"
            ))
            .fetch_all(self.store().pool())
            .await
            .expect("dump");
            dump.insert(table.to_owned(), rows);
        }
        dump
    }

    pub async fn metrics(&self) -> String {
        let addr = self.projector_addr.expect("projector running");
        reqwest::get(format!("http://{addr}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop_relay();
        self.stop_projector();
        self.kill_projector_process();
    }
}

/// Asserts two dumps are equal, naming the first table and row that differ.
pub fn assert_same(live: &BTreeMap<String, Vec<String>>, rebuilt: &BTreeMap<String, Vec<String>>) {
    for (table, rows) in live {
        let other = &rebuilt[table];
        if rows != other {
            let first = rows
                .iter()
                .zip(other)
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("live:    {a}\nrebuilt: {b}"))
                .unwrap_or_else(|| format!("{} rows live, {} rebuilt", rows.len(), other.len()));
            panic!("{table} differs after a rebuild:\n{first}");
        }
    }
}
