//! Builds and runs the projector from one [`Config`]: a PostgreSQL pool
//! (connecting applies the migrations), a NATS client, one live consumer for
//! every projection, and a small HTTP server for `/health` and `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use paystream_command_api::store::PgEventStore;
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::lag::lags;
use crate::live;
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
struct HttpState {
    store: PgEventStore,
    nats: async_nats::Client,
    metrics: Arc<Metrics>,
}

/// The projector, connected and bound, not yet consuming.
#[derive(Debug)]
pub struct Application {
    config: Arc<Config>,
    store: PgEventStore,
    nats: async_nats::Client,
    listener: TcpListener,
    metrics: Arc<Metrics>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = PgEventStore::connect(
            config.database_url.expose(),
            config.database_max_connections,
        )
        .await?;
        let nats = async_nats::ConnectOptions::new()
            .name("paystream-projector")
            .retry_on_initial_connect()
            .connection_timeout(std::time::Duration::from_secs(5))
            .connect(&config.nats_url)
            .await?;
        let listener = TcpListener::bind(config.http_addr).await?;
        tracing::info!(addr = %listener.local_addr()?, "projector listening");
        Ok(Self {
            config: Arc::new(config),
            store,
            nats,
            listener,
            metrics: Arc::new(Metrics::default()),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Consumes until SIGINT or SIGTERM. A batch in flight at that moment is
    /// simply not committed: it is applied again after the restart.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let mut jetstream = async_nats::jetstream::new(self.nats.clone());
        jetstream.set_timeout(Config::NATS_REQUEST_TIMEOUT);
        // Owned by this future: when it ends or is dropped (the task
        // aborted), the set is dropped and every consumer with it.
        let mut consumers = tokio::task::JoinSet::new();
        consumers.spawn(live::run(
            self.store.clone(),
            jetstream,
            self.config.clone(),
            self.metrics.clone(),
        ));
        let state = HttpState {
            store: self.store,
            nats: self.nats,
            metrics: self.metrics,
        };
        let app = Router::new()
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .with_state(state);
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(paystream_command_api::startup::shutdown_signal())
            .await;
        consumers.shutdown().await;
        Ok(served?)
    }
}

async fn health(State(state): State<HttpState>) -> impl IntoResponse {
    let nats = state.nats.connection_state() == async_nats::connection::State::Connected;
    let lags = lags(state.store.pool()).await;
    let database = lags.is_ok();
    let projections: Vec<_> = lags
        .unwrap_or_default()
        .into_iter()
        .map(|lag| {
            json!({
                "projection": lag.projection,
                "position": lag.position,
                "lag_events": lag.events,
                "lag_capped": lag.capped,
                "parked": lag.parked,
            })
        })
        .collect();
    let ok = database && nats;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ok { "ok" } else { "degraded" },
            "database": if database { "connected" } else { "disconnected" },
            "nats": if nats { "connected" } else { "disconnected" },
            "projections": projections,
            "timestamp": chrono::Utc::now().to_rfc3339(),
        })),
    )
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let lags = lags(state.store.pool()).await.unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&lags),
    )
}
