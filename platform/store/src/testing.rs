//! Test support shared by every crate's tests and benches: a fresh
//! PostgreSQL database per test, a NATS server of the test's own when it must
//! stop it, and bounded waits. Not used by the services themselves.

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::PgEventStore;
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
        PgEventStore::migrate(&url)
            .await
            .expect("migrate the test database");
        let store = PgEventStore::connect(&url, 24)
            .await
            .expect("connect to the test database");
        Self { url, store }
    }

    pub async fn connection(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("connect")
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

/// A nats-server of this test's own, on a free port, with JetStream file
/// storage in a temporary folder, so the test can stop and start it.
#[derive(Debug)]
pub struct NatsServer {
    pub port: u16,
    pub store_dir: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    pub async fn start() -> Self {
        let port = free_port();
        let store_dir = std::env::temp_dir().join(unique_name("paystream_nats"));
        std::fs::create_dir_all(&store_dir).expect("nats store dir");
        let mut server = Self {
            port,
            store_dir,
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        let child = Command::new(nats_server_binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (is it installed? deploy/dev installs it)");
        self.child = Some(child);
        let address = format!("127.0.0.1:{}", self.port);
        wait_until(Duration::from_secs(10), "nats-server to listen", || async {
            tokio::net::TcpStream::connect(&address)
                .await
                .ok()
                .map(|_| ())
        })
        .await;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store_dir);
    }
}

fn nats_server_binary() -> String {
    std::env::var("PAYSTREAM_NATS_SERVER_BIN").unwrap_or_else(|_| {
        [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "/usr/local/bin/nats-server",
        ]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .unwrap_or("nats-server")
        .to_string()
    })
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}
