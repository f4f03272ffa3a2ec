//! Wiring: the intake consumer, the worker loop and the HTTP endpoints
//! (`GET /health`, `GET /metrics`).

use std::sync::Arc;

use async_nats::jetstream;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use paystream_kit::health::Report;
use paystream_store::PgEventStore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::{Config, Settings};
use crate::merchants::Merchants;
use crate::metrics::Metrics;
use crate::send::Sender;
use crate::ssrf::Guard;
use crate::{intake, schedule, worker};
use paystream_kit::metrics::CacheSize;

/// A running dispatcher (its tasks stop when this is dropped or aborted).
#[derive(Debug)]
pub struct Dispatcher {
    pub metrics: Arc<Metrics>,
    pub caches: Caches,
    tasks: Vec<JoinHandle<()>>,
}

/// The dispatcher's bounded memories, whose sizes `/metrics` shows.
#[derive(Debug, Clone)]
pub struct Caches {
    rows: Arc<crate::recent::Rows>,
    merchants: Arc<Merchants>,
}

impl Caches {
    /// (name, entries, capacity) of each.
    pub fn sizes(&self) -> Vec<CacheSize> {
        let named = |name, (entries, capacity)| (name, entries, capacity);
        vec![
            named("payments", intake::remembered_payments()),
            named("schedule_rows", self.rows.size()),
            named("merchants", self.merchants.size()),
        ]
    }
}

impl Dispatcher {
    pub fn abort(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Most schedule rows remembered as written by this dispatcher. A delivery's
/// own events echo back within about a second; a forgotten one costs a read.
const REMEMBERED_ROWS: usize = 16_384;

/// Most merchants whose webhook settings are remembered.
const REMEMBERED_MERCHANTS: usize = 10_000;

/// Starts the intake consumer and the worker loop on tasks of their own.
pub fn spawn(
    store: PgEventStore,
    jetstream: jetstream::Context,
    settings: Settings,
) -> anyhow::Result<Dispatcher> {
    let settings = Arc::new(settings);
    let metrics = Arc::new(Metrics::default());
    let sender = Sender::new(
        Guard::new(settings.address_policy()),
        settings.request_timeout,
    )?;
    tracing::info!(
        consumer = %settings.consumer_name,
        stream = %settings.relay.stream_name,
        allow_private = settings.allow_private,
        system_ports = %settings.system_ports,
        retry_intervals = ?settings.retry_intervals,
        "webhook dispatcher starting"
    );
    // Deliveries the intake just scheduled (rows already leased), straight
    // to the worker; bounded, and the intake leaves a row to be claimed when
    // it is full.
    let (queue, handed) = tokio::sync::mpsc::channel(settings.max_in_flight.max(1));
    // Rows this dispatcher wrote, shared by the intake and the row writer.
    let rows = Arc::new(crate::recent::Rows::new(REMEMBERED_ROWS));
    let writer = schedule::Writer::start(
        store.pool().clone(),
        settings.max_in_flight.max(1),
        Some(rows.clone()),
    );
    // Merchants' settings by log position, kept current by the intake.
    let merchants = Arc::new(Merchants::new(REMEMBERED_MERCHANTS));
    let caches = Caches {
        rows: rows.clone(),
        merchants: merchants.clone(),
    };
    let tasks = vec![
        tokio::spawn(intake::run(
            store.clone(),
            jetstream,
            settings.clone(),
            metrics.clone(),
            merchants.clone(),
            Some(intake::Handoff { queue, rows }),
        )),
        tokio::spawn(worker::run(
            store,
            sender,
            settings,
            metrics.clone(),
            merchants,
            handed,
            writer,
        )),
    ];
    Ok(Dispatcher {
        metrics,
        caches,
        tasks,
    })
}

#[derive(Debug, Clone)]
struct HttpState {
    store: PgEventStore,
    nats: async_nats::Client,
    metrics: Arc<Metrics>,
    caches: Caches,
}

pub fn router(store: PgEventStore, nats: async_nats::Client, dispatcher: &Dispatcher) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .with_state(HttpState {
            store,
            nats,
            metrics: dispatcher.metrics.clone(),
            caches: dispatcher.caches.clone(),
        })
}

/// The kit's report: unhealthy (503) without the database (no delivery
/// can be claimed or recorded); degraded without NATS (due retries still go
/// out, new events wait in JetStream until it is back).
async fn health(State(state): State<HttpState>) -> Report {
    Report::probe("webhook-dispatcher", &state.store, &state.nats, false).await
}

async fn metrics_text(State(state): State<HttpState>) -> impl IntoResponse {
    let (depth, lag) = match tokio::time::timeout(
        std::time::Duration::from_secs(2),
        schedule::depth_and_lag(state.store.pool()),
    )
    .await
    {
        Ok(Ok((depth, lag))) => (Some(depth), Some(lag)),
        _ => (None, None),
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(depth, lag, &state.caches.sizes()),
    )
}

/// The binary: connects (to a database at this build's schema), starts the dispatcher
/// and serves HTTP until SIGINT/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let store = PgEventStore::connect(
        config.database.database_url.expose(),
        config.database.database_max_connections,
    )
    .await?;
    let nats = paystream_kit::nats::connect(&config.nats, "paystream-webhook-dispatcher").await?;
    let dispatcher = spawn(
        store.clone(),
        paystream_kit::nats::jetstream(&nats),
        config.settings(),
    )?;
    let listener = TcpListener::bind(config.http_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, profile = ?config.runtime.profile, "webhook-dispatcher listening");
    axum::serve(listener, router(store, nats, &dispatcher))
        .with_graceful_shutdown(paystream_kit::shutdown::signal())
        .await?;
    Ok(())
}
