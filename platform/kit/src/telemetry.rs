//! One tracing init for every service: `RUST_LOG` filters (default
//! `info,sqlx=warn`), [`LogFormat`] chooses JSON or pretty lines.
//!
//! Spans carry what ties a line to a request or a payment: each HTTP request
//! runs in a `request` span with its `request_id` (`http::request::span`),
//! and the consumers handle events inside an `event` span with the
//! correlation id (or, for a batch, a `batch` span with its positions).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // Logs on stderr: stdout carries a command's own output
    // (`projector rebuild`, `command-api verify`).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
}
