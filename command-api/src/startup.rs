//! Builds and runs the command API: the event store, the relay task and the
//! HTTP server, from one [`Config`].

use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::relay::{self, RelaySignal};
use crate::routes;
use crate::store::PgEventStore;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: PgEventStore,
    pub nats: async_nats::Client,
    pub relay_signal: RelaySignal,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(routes::health::router())
        .with_state(state)
}

/// Connects to PostgreSQL (applying migrations) and NATS, starts the relay,
/// and serves HTTP until the process is asked to stop.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let store = PgEventStore::connect(
        config.database_url.expose(),
        config.database_max_connections,
    )
    .await?;
    let nats = async_nats::ConnectOptions::new()
        .name("paystream-command-api")
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .connect(&config.nats_url)
        .await?;
    let mut jetstream = async_nats::jetstream::new(nats.clone());
    jetstream.set_timeout(Config::NATS_REQUEST_TIMEOUT);

    let relay_signal = RelaySignal::default();
    tokio::spawn(relay::run(
        store.clone(),
        jetstream,
        config.relay(),
        relay_signal.clone(),
    ));

    let app = router(AppState {
        store,
        nats,
        relay_signal,
    });
    let listener = TcpListener::bind(config.http_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, profile = ?config.profile, "command-api listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}
