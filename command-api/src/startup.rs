//! Builds and runs the command API: the event store, the relay task and the
//! HTTP server, from one [`Config`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::Router;
use tokio::net::TcpListener;

use crate::acquirer::{self, AcquirerConfig};
use crate::config::{Config, Profile};
use crate::http::error::with_fallbacks;
use crate::http::json::MAX_BODY_BYTES;
use crate::http::metrics::{track, HttpMetrics};
use crate::relay::{self, RelaySignal};
use crate::routes;
use crate::seed;
use crate::store::PgEventStore;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub profile: Profile,
    pub store: PgEventStore,
    pub nats: async_nats::Client,
    pub relay_signal: RelaySignal,
    /// Request counts and latencies for `GET /metrics`.
    pub metrics: Arc<HttpMetrics>,
}

/// Extractors that only need the database (authentication) take it from here,
/// so that any service's state can provide it.
impl FromRef<AppState> for sqlx::PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.store.pool().clone()
    }
}

pub fn router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    with_fallbacks(
        Router::new()
            .merge(routes::health::router())
            .merge(routes::metrics::router())
            .merge(routes::orders::router())
            .merge(routes::payments::router())
            .merge(routes::merchants::router())
            .merge(routes::sessions::router())
            .merge(routes::webhooks::router())
            .merge(routes::openapi::router()),
    )
    .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
    .layer(axum::middleware::from_fn_with_state(metrics, track))
    .layer(crate::http::in_flight_limit())
    .with_state(state)
}

/// The command API, built and bound, not yet serving.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Connects to PostgreSQL (applying migrations) and NATS, seeds the dev
    /// profile, starts the relay, and binds the HTTP listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = PgEventStore::connect(
            config.database_url.expose(),
            config.database_max_connections,
        )
        .await?;
        if config.profile == Profile::Dev {
            seed::dev(&store).await?;
        }
        let nats = connect_nats(&config, "paystream-command-api").await?;
        let relay_signal = RelaySignal::default();
        if config.relay {
            tokio::spawn(relay::run(
                store.clone(),
                jetstream(&nats),
                config.relay(),
                relay_signal.clone(),
            ));
        }
        if config.acquirer {
            // Detached: it lives as long as the process.
            let _acquirer = acquirer::spawn(
                store.clone(),
                jetstream(&nats),
                config.relay(),
                AcquirerConfig::from_env()?,
            );
        }
        let listener = TcpListener::bind(config.http_addr).await?;
        tracing::info!(addr = %listener.local_addr()?, profile = ?config.profile, "command-api listening");
        Ok(Self {
            listener,
            state: AppState {
                profile: config.profile,
                store,
                nats,
                relay_signal,
                metrics: Arc::new(HttpMetrics::new("command_api")),
            },
        })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        Ok(())
    }
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    Application::build(config).await?.run_until_stopped().await
}

/// A NATS client that keeps reconnecting by itself, even if NATS is down at start.
pub async fn connect_nats(config: &Config, name: &str) -> anyhow::Result<async_nats::Client> {
    Ok(async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .connect(&config.nats_url)
        .await?)
}

/// A JetStream context with the configured request timeout.
pub fn jetstream(nats: &async_nats::Client) -> async_nats::jetstream::Context {
    let mut context = async_nats::jetstream::new(nats.clone());
    context.set_timeout(Config::NATS_REQUEST_TIMEOUT);
    context
}

/// Resolves on SIGINT or SIGTERM: every service's graceful-shutdown trigger.
pub async fn shutdown_signal() {
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
