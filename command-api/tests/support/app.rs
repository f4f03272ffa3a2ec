//! The real command API on port 0, over a database of its own.

use std::time::Duration;

use paystream_command_api::config::{Config, Profile, Secret, SystemPortsArgs};
use paystream_command_api::startup::Application;
use paystream_domain::dev as seed;
use paystream_domain::validation::SystemPorts;
use paystream_store::PgEventStore;
use uuid::Uuid;

use super::{nats_url, unique_name, TestDatabase};

#[derive(Debug)]
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: PgEventStore,
    pub database: TestDatabase,
}

/// Credentials of one merchant.
#[derive(Debug, Clone)]
pub struct Merchant {
    pub id: Uuid,
    pub key: String,
    pub secret: String,
}

/// The dev profile's seeded merchant.
pub fn dev_merchant() -> Merchant {
    Merchant {
        id: seed::DEV_MERCHANT_ID,
        key: seed::DEV_API_KEY.into(),
        secret: seed::DEV_API_SECRET.into(),
    }
}

/// Dev profile, no relay and no acquirer: the API alone.
pub async fn spawn_app() -> TestApp {
    spawn_app_in(Profile::Dev).await
}

/// The API alone in `profile` (production seeds nothing), with the default
/// system ports.
pub async fn spawn_app_in(profile: Profile) -> TestApp {
    spawn_app_with(profile, SystemPortsArgs::default().system_ports).await
}

/// The API alone in `profile`, told that the system listens on
/// `system_ports` (`PAYSTREAM_SYSTEM_PORTS`).
pub async fn spawn_app_with(profile: Profile, system_ports: SystemPorts) -> TestApp {
    spawn_app_tuned(profile, |config| {
        config.system_ports = SystemPortsArgs { system_ports };
    })
    .await
}

/// The API alone in `profile`, its configuration changed by `tune` first
/// (a test that needs other limits, say).
pub async fn spawn_app_tuned(profile: Profile, tune: impl FnOnce(&mut Config)) -> TestApp {
    let database = TestDatabase::create().await;
    let name = unique_name("t");
    let mut config = Config {
        runtime: paystream_kit::config::RuntimeArgs::new(profile),
        database: paystream_kit::config::DatabaseArgs {
            database_url: paystream_kit::config::Secret::new(database.url.clone()),
            database_max_connections: 16,
        },
        nats: paystream_kit::config::NatsArgs {
            nats_url: nats_url(),
            events_stream: name.to_uppercase(),
            events_subject_prefix: format!("{name}.events"),
        },
        system_ports: SystemPortsArgs::default(),
        http_addr: "127.0.0.1:0".parse().expect("address"),
        relay: false,
        acquirer: false,
        relay_batch_size: 500,
        browser: Default::default(),
        rate: Default::default(),
    };
    tune(&mut config);
    let app = Application::build(config).await.expect("build the app");
    let base = format!("http://{}", app.local_addr().expect("bound"));
    let store = app.state().store.clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        store,
        database,
    }
}
