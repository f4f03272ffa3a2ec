//! `GET /health`, one vocabulary for every service.
//!
//! The body is the contract's `{status, database, nats, timestamp, …}`, with
//! the original design's words for the status:
//!
//! * `healthy`: everything it depends on works;
//! * `degraded`: it serves, but something behind it does not (NATS is
//!   disconnected, a projection is stuck or far behind): HTTP 200;
//! * `unhealthy`: it cannot do its job (the database is unreachable):
//!   HTTP 503, the only status that fails a load balancer's check.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use paystream_store::PgEventStore;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub enum Status {
    Healthy,
    Degraded,
    Unhealthy,
}

impl Status {
    /// The one status-code rule: 503 only when unhealthy.
    pub fn http_status(self) -> u16 {
        match self {
            Status::Unhealthy => 503,
            Status::Healthy | Status::Degraded => 200,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub enum Connection {
    Connected,
    Disconnected,
}

impl From<bool> for Connection {
    fn from(connected: bool) -> Self {
        if connected {
            Connection::Connected
        } else {
            Connection::Disconnected
        }
    }
}

/// What every service reports; a service adds its own details next to it
/// (`#[serde(flatten)]`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct Report {
    /// `healthy`, `degraded` or `unhealthy` (HTTP 503).
    pub status: Status,
    pub database: Connection,
    pub nats: Connection,
    /// RFC 3339, milliseconds, UTC.
    pub timestamp: String,
    pub service: &'static str,
}

impl Report {
    /// Checks the database (one round trip) and the NATS connection.
    pub async fn probe(
        service: &'static str,
        store: &PgEventStore,
        nats: &async_nats::Client,
        troubled: bool,
    ) -> Self {
        Self::new(
            service,
            store.ping().await,
            crate::nats::connected(nats),
            troubled,
        )
    }

    /// The one status-code rule applied to this report.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status.http_status()).unwrap_or(StatusCode::OK)
    }

    /// Unhealthy without the database; degraded without NATS or when
    /// `troubled` (a service's own reason); else healthy.
    pub fn new(service: &'static str, database: bool, nats: bool, troubled: bool) -> Self {
        let status = if !database {
            Status::Unhealthy
        } else if !nats || troubled {
            Status::Degraded
        } else {
            Status::Healthy
        };
        Self {
            status,
            database: database.into(),
            nats: nats.into(),
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            service,
        }
    }
}

impl IntoResponse for Report {
    fn into_response(self) -> Response {
        (self.status_code(), Json(self)).into_response()
    }
}
