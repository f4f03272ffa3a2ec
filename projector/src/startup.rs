//! Builds and runs the projector from one [`Config`]: a PostgreSQL pool
//! (on a database `command-api migrate` brought to its schema), a NATS client, one live consumer for
//! every projection, and a small HTTP server for `/health` and `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use paystream_kit::health::Report;
use paystream_store::PgEventStore;
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::Config;
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
            config.database.database_url.expose(),
            config.database.database_max_connections,
        )
        .await?;
        let nats = paystream_kit::nats::connect(&config.nats, "paystream-projector").await?;
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
        let jetstream = paystream_kit::nats::jetstream(&self.nats);
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
            .with_graceful_shutdown(paystream_kit::shutdown::signal())
            .await;
        consumers.shutdown().await;
        Ok(served?)
    }
}

/// The kit's report, with each projection's progress; degraded while one
/// has parked events or is more than `LAG_CAP` events behind.
async fn health(State(state): State<HttpState>) -> impl IntoResponse {
    let nats = paystream_kit::nats::connected(&state.nats);
    let lags = state.store.projection_lags().await;
    let database = lags.is_ok();
    let lags = lags.unwrap_or_default();
    let troubled = lags.iter().any(|lag| lag.parked > 0 || lag.capped);
    let report = Report::new("projector", database, nats, troubled);
    let status = report.status_code();
    let projections: Vec<_> = lags
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
    let mut body = serde_json::to_value(&report).unwrap_or_default();
    body["projections"] = projections.into();
    (status, Json(body))
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let lags = state.store.projection_lags().await.unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&lags),
    )
}
