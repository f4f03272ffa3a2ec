//! Builds and runs the command API: the event store, the relay task and the
//! HTTP server, from one [`Config`].

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::Router;
use tokio::net::TcpListener;

use crate::acquirer::{self, AcquirerConfig};
use crate::config::{Config, Profile};
use crate::routes;
use crate::routes::webhooks::address_policy;
use crate::seed;
use paystream_domain::validation::AddressPolicy;
use paystream_kit::http::csrf::{self, DashboardOrigins};
use paystream_kit::http::error::with_fallbacks;
use paystream_kit::http::headers::security_headers;
use paystream_kit::http::json::MAX_BODY_BYTES;
use paystream_kit::http::limits::RateLimits;
use paystream_kit::http::metrics::{track, HttpMetrics};
use paystream_store::relay::{self, RelaySignal};
use paystream_store::PgEventStore;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub profile: Profile,
    /// Where webhook URLs may point: the profile's rule, with the system's
    /// ports (`PAYSTREAM_SYSTEM_PORTS` and this API's own) in dev.
    pub webhook_targets: Arc<AddressPolicy>,
    pub store: PgEventStore,
    pub nats: async_nats::Client,
    pub relay_signal: RelaySignal,
    /// Request counts and latencies for `GET /metrics`.
    pub metrics: Arc<HttpMetrics>,
    /// Where cookie-authenticated commands may come from.
    pub dashboard_origins: DashboardOrigins,
    /// The rate limits of this instance (the login lock-out's settings too).
    pub limits: RateLimits,
}

impl FromRef<AppState> for RateLimits {
    fn from_ref(state: &AppState) -> Self {
        state.limits.clone()
    }
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
    let dashboard_origins = state.dashboard_origins.clone();
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
    .layer(axum::middleware::from_fn_with_state(
        dashboard_origins,
        csrf::guard,
    ))
    .layer(axum::middleware::from_fn(security_headers))
    .layer(axum::middleware::from_fn_with_state(metrics, track))
    .layer(axum::middleware::from_fn(
        paystream_kit::http::request::span,
    ))
    .layer(paystream_kit::http::in_flight_limit())
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
            config.database.database_url.expose(),
            config.database.database_max_connections,
        )
        .await?;
        if config.runtime.profile == Profile::Dev {
            seed::dev(&store, &config.browser.dev_checkout_origins).await?;
        }
        let nats = paystream_kit::nats::connect(&config.nats, "paystream-command-api").await?;
        let relay_signal = RelaySignal::default();
        if config.relay {
            tokio::spawn(relay::run(
                store.clone(),
                paystream_kit::nats::jetstream(&nats),
                config.relay(),
                relay_signal.clone(),
            ));
        }
        if config.acquirer {
            // Detached: it lives as long as the process.
            let _acquirer = acquirer::spawn(
                store.clone(),
                paystream_kit::nats::jetstream(&nats),
                config.relay(),
                AcquirerConfig::from_env()?,
            );
        }
        let listener = TcpListener::bind(config.http_addr).await?;
        let addr = listener.local_addr()?;
        let system_ports = config.system_ports.system_ports.with(addr.port());
        tracing::info!(%addr, profile = ?config.runtime.profile, %system_ports, "command-api listening");
        Ok(Self {
            listener,
            state: AppState {
                profile: config.runtime.profile,
                webhook_targets: Arc::new(address_policy(config.runtime.profile, system_ports)),
                store,
                nats,
                relay_signal,
                metrics: Arc::new(HttpMetrics::new("command_api")),
                dashboard_origins: DashboardOrigins::new(config.browser.dashboard_origins.clone()),
                limits: {
                    let limits = RateLimits::new(config.rate.clone());
                    limits.spawn_housekeeping();
                    limits
                },
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
        axum::serve(
            self.listener,
            router(self.state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(paystream_kit::shutdown::signal())
        .await?;
        Ok(())
    }
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    Application::build(config).await?.run_until_stopped().await
}
