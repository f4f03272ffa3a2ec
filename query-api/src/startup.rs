//! Builds and runs the query API from one [`Config`]: the event store (read
//! only, on a database `command-api migrate` brought to its schema), a NATS client for the job
//! status, and the HTTP server.

use axum::extract::FromRef;
use axum::Router;
use paystream_kit::config::Profile;
use paystream_kit::http::error::with_fallbacks;
use paystream_kit::http::limits::RateLimits;
use paystream_store::PgEventStore;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::routes;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct QueryState {
    pub profile: Profile,
    pub store: PgEventStore,
    pub nats: async_nats::Client,
    pub jetstream: async_nats::jetstream::Context,
    /// JetStream stream whose consumers the job status reports.
    pub events_stream: String,
    /// The simulated acquirer's durable consumer on `events_stream`.
    pub acquirer_consumer: String,
    /// Request counts and latencies for `GET /metrics`.
    pub metrics: std::sync::Arc<paystream_kit::http::metrics::HttpMetrics>,
    /// The rate limits of this instance.
    pub limits: RateLimits,
}

impl FromRef<QueryState> for RateLimits {
    fn from_ref(state: &QueryState) -> Self {
        state.limits.clone()
    }
}

/// Authentication takes the pool from here (see `http::auth`).
impl FromRef<QueryState> for sqlx::PgPool {
    fn from_ref(state: &QueryState) -> Self {
        state.store.pool().clone()
    }
}

pub fn router(state: QueryState) -> Router {
    with_fallbacks(
        Router::new()
            .merge(routes::health::router())
            .merge(routes::orders::router())
            .merge(routes::payments::router())
            .merge(routes::refunds::router())
            .merge(routes::webhooks::router())
            .merge(routes::events::router())
            .merge(routes::stats::router())
            .merge(routes::jobs::router())
            .merge(routes::test_merchant::router())
            .merge(routes::ledger::router())
            .merge(routes::merchants::router())
            .merge(routes::audit::router())
            .merge(routes::session::router())
            .merge(crate::metrics::router())
            .merge(routes::openapi::router()),
    )
    .layer(axum::middleware::from_fn(
        paystream_kit::http::headers::security_headers,
    ))
    .layer(axum::middleware::from_fn_with_state(
        state.metrics.clone(),
        crate::metrics::track,
    ))
    .layer(axum::middleware::from_fn(
        paystream_kit::http::request::span,
    ))
    .layer(paystream_kit::http::in_flight_limit())
    .with_state(state)
}

/// The query API, built and bound, not yet serving.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: QueryState,
}

impl Application {
    /// Connects to PostgreSQL (refusing a schema behind this build) and NATS (which may be down: the client keeps trying),
    /// and binds the HTTP listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = PgEventStore::connect(
            config.database.database_url.expose(),
            config.database.database_max_connections,
        )
        .await?;
        let nats = paystream_kit::nats::connect(&config.nats, "paystream-query-api").await?;
        let mut jetstream = paystream_kit::nats::jetstream(&nats);
        jetstream.set_timeout(Config::JOB_STATUS_TIMEOUT);
        let listener = TcpListener::bind(config.http_addr).await?;
        tracing::info!(addr = %listener.local_addr()?, profile = ?config.runtime.profile, "query-api listening");
        Ok(Self {
            listener,
            state: QueryState {
                profile: config.runtime.profile,
                store,
                nats,
                jetstream,
                events_stream: config.nats.events_stream,
                acquirer_consumer: config.acquirer_consumer,
                metrics: std::sync::Arc::new(paystream_kit::http::metrics::HttpMetrics::new(
                    "query_api",
                )),
                limits: {
                    let limits = RateLimits::new(config.rate);
                    limits.spawn_housekeeping();
                    limits
                },
            },
        })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &QueryState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM, then finishes the requests in flight.
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
