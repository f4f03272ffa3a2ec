//! Tamper evidence and export, for staff and auditors.
//!
//! * `GET /api/v1/audit/verify[?after=<stream id>&limit=<streams>]` walks
//!   every stream's hash chain (the store's [`ChainWalker`], as
//!   `verify_all` and `command-api verify` do) and reports what it checked
//!   and the breaks it found. It works in chunks of [`CHUNK_STREAMS`]
//!   streams, each ONE statement (one snapshot: a stream's events and its
//!   head row are always read together, so an append during the walk can
//!   never look like a truncation), streamed row by row: memory stays
//!   constant whatever the size of the store. Time is bounded too: past
//!   [`TIME_BUDGET`] (or `limit` streams) it stops after a chunk and answers
//!   `complete: false` with `next_after`, to pass as `after` to go on.
//!   At most [`MAX_BREAKS_LISTED`] breaks are listed; `breaks_total` counts
//!   them all.
//! * `GET /api/v1/audit/export?from=&to=&merchant_id=&format=ndjson|csv`
//!   streams the events in global order, below the horizon taken when the
//!   request starts (the final part of the log), filtered by `recorded_at`
//!   (`from` inclusive, `to` exclusive) and merchant. A producer task reads
//!   keyset pages of [`EXPORT_PAGE`] events with `fetch` and sends encoded
//!   chunks into a bounded channel that the response body drains, so memory
//!   is bounded and a client that stops reading stops the reads. Secrets in
//!   merchant events (`password_hash`, `api_secret_hash`, `webhook_secret`,
//!   `secret`, `previous_secret`) are replaced by `"[REDACTED]"` and the row
//!   says `redacted: true` (its hash then no longer verifies from the
//!   export alone: verify those streams with `/audit/verify`).

pub use paystream_domain::api::{BreakView, VerifyReport};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use paystream_domain::api::{timestamp, ErrorBody};
use paystream_kit::http::error::ApiError;
use paystream_store::{
    EventStore, IdempotencyRecord, LogRange, PgEventStore, Position, RecordedEvent, StoreError,
    StreamBreak, StreamId, VerifiedStreams,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::auth::Overseer;
use crate::listing::Params;
use crate::startup::QueryState;
use crate::views::recorded_at;

/// Streams per verification statement.
pub const CHUNK_STREAMS: i64 = 1000;
/// A verification stops after the chunk that crosses this.
pub const TIME_BUDGET: Duration = Duration::from_secs(20);
/// Breaks listed in one answer.
pub const MAX_BREAKS_LISTED: usize = 100;
/// Events per export page.
pub const EXPORT_PAGE: usize = 500;
/// Encoded pages buffered between the reader task and the client.
const EXPORT_BUFFER: usize = 4;
/// Keys whose values are secrets in merchant events.
pub const SECRET_KEYS: [&str; 5] = [
    "password_hash",
    "api_secret_hash",
    "webhook_secret",
    "secret",
    "previous_secret",
];
/// What a redacted value becomes.
pub const REDACTED: &str = "[REDACTED]";

pub fn router() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/audit/verify", get(verify))
        .route("/api/v1/audit/export", get(export))
}

fn break_view(broken: StreamBreak) -> BreakView {
    let kind = serde_json::to_value(broken.kind)
        .ok()
        .and_then(|kind| kind.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{:?}", broken.kind).to_lowercase());
    BreakView {
        stream_id: broken.stream_id,
        version: broken.version,
        kind,
    }
}

/// Query parameters of `GET /api/v1/audit/verify` (documentation; read
/// through [`Params`]).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct VerifyParams {
    /// Start after this stream id (`next_after` of a previous walk):
    /// `category-id`, printable ASCII, at most 200 characters.
    after: Option<String>,
    /// Check at most about this many streams (1 to 10 000 000): whole
    /// chunks of 1 000, the last one cut to fit.
    limit: Option<u32>,
}

/// Query parameters of `GET /api/v1/audit/export` (documentation; read
/// through [`Params`]).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ExportParams {
    /// Recorded at or after (RFC 3339).
    from: Option<String>,
    /// Recorded before (RFC 3339).
    to: Option<String>,
    /// Only this merchant's events (UUID), its own merchant stream included.
    merchant_id: Option<String>,
    /// `ndjson` (default) or `csv`.
    format: Option<String>,
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

#[derive(Default)]
struct Tally {
    streams: u64,
    events: u64,
    breaks: Vec<BreakView>,
    breaks_total: u64,
}

impl Tally {
    fn add(&mut self, step: VerifiedStreams) {
        self.streams += step.streams;
        self.events += step.events;
        for broken in step.breaks {
            self.breaks_total += 1;
            if self.breaks.len() < MAX_BREAKS_LISTED {
                self.breaks.push(break_view(broken));
            }
        }
    }
}

/// Verifies the hash chain of every stream (or the next part of them).
#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    tag = "audit",
    params(VerifyParams),
    security(("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "What was checked and every break found; `ok` only when complete and intact", body = VerifyReport),
        (status = 400, description = "Bad parameter (`field` says which)", body = ErrorBody),
        (status = 401, description = "No staff or auditor session", body = ErrorBody),
    )
)]
pub async fn verify(
    State(state): State<QueryState>,
    _overseer: Overseer,
    params: Params,
) -> Result<Json<VerifyReport>, ApiError> {
    let start_after = params.get("after").map(str::to_string);
    if let Some(after) = &start_after {
        // A stream id is printable ASCII: checked here, so that nothing the
        // database cannot compare (a NUL) ever reaches the statement.
        if StreamId::parse(after.clone()).is_err() {
            return Err(ApiError::bad_request(
                "after must be a stream id (next_after of a previous answer)",
            )
            .with_field("after"));
        }
    }
    let limit = match params.get("limit") {
        Some(_) => Some(params.integer("limit", 1, 10_000_000, 1)?),
        None => None,
    };
    let started_at = Utc::now();
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut after = start_after.clone();
    let complete = loop {
        let size = limit.map_or(CHUNK_STREAMS, |limit| {
            let left = limit - i64::try_from(tally.streams).unwrap_or(i64::MAX);
            left.clamp(1, CHUNK_STREAMS)
        });
        let step = state
            .store
            .verify_streams(after.as_deref(), usize::try_from(size).unwrap_or(1))
            .await?;
        let upto = step.upto.clone();
        tally.add(step);
        let Some(upto) = upto else {
            break true;
        };
        let limit_reached = limit.is_some_and(|limit| tally.streams >= limit.unsigned_abs());
        let stop = limit_reached || started.elapsed() >= TIME_BUDGET;
        after = Some(upto);
        if stop {
            // Stopping: complete only if no stream (head or event) is left.
            break !state
                .store
                .has_streams_after(after.as_deref().unwrap_or_default())
                .await?;
        }
    };
    Ok(Json(VerifyReport {
        ok: complete && tally.breaks_total == 0,
        complete,
        streams_checked: tally.streams,
        events_checked: tally.events,
        breaks: tally.breaks,
        breaks_total: tally.breaks_total,
        next_after: if complete { None } else { after },
        after: start_after,
        started_at: timestamp(started_at),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
}

/// The export's filters, checked.
#[derive(Debug, Clone)]
struct ExportFilter {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    merchant: Option<Uuid>,
    horizon: i64,
}

/// Replaces secret values (at any depth) with [`REDACTED`]; true if any.
pub fn redact(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => {
            let mut redacted = false;
            for (key, value) in map.iter_mut() {
                if SECRET_KEYS.contains(&key.as_str()) && !value.is_null() {
                    *value = Value::String(REDACTED.into());
                    redacted = true;
                } else {
                    redacted |= redact(value);
                }
            }
            redacted
        }
        Value::Array(items) => items.iter_mut().fold(false, |any, item| redact(item) | any),
        _ => false,
    }
}

/// One exported event.
#[derive(Debug, Serialize)]
struct ExportRow {
    position: i64,
    id: Uuid,
    stream: String,
    version: u64,
    #[serde(rename = "type")]
    event_type: String,
    schema_version: u16,
    recorded_at: String,
    merchant_id: Option<Uuid>,
    actor: String,
    causation_id: Option<Uuid>,
    correlation_id: Option<Uuid>,
    hash: String,
    redacted: bool,
    data: Value,
    /// Hashes of the `Idempotency-Key` request that caused the event; only
    /// on events that have them (they are then part of the hashed facts).
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency: Option<IdempotencyRecord>,
}

impl ExportRow {
    fn of(mut event: RecordedEvent) -> Self {
        let redacted = event.stream_id.category() == "merchant" && redact(&mut event.payload);
        Self {
            position: event.position.0,
            id: event.event_id,
            stream: event.stream_id.to_string(),
            version: event.version,
            event_type: event.event_type,
            schema_version: event.schema_version,
            recorded_at: recorded_at(event.recorded_at),
            merchant_id: event.metadata.merchant_id,
            actor: event.metadata.actor,
            causation_id: event.metadata.causation_id,
            correlation_id: event.metadata.correlation_id,
            hash: hex::encode(event.hash),
            redacted,
            data: event.payload,
            idempotency: event.metadata.idempotency,
        }
    }
}

pub const CSV_HEADER: &str = "position,id,stream,version,type,schema_version,recorded_at,merchant_id,actor,causation_id,correlation_id,hash,redacted,data,idempotency_key_hash,idempotency_request_hash\r\n";

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote, CR or
/// LF, with quotes doubled.
pub fn csv_field(text: &str, out: &mut String) {
    if text.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn hex_or_empty(hash: Option<[u8; 32]>) -> String {
    hash.map(hex::encode).unwrap_or_default()
}

fn csv_row(row: &ExportRow, out: &mut String) {
    let optional = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    let fields = [
        row.position.to_string(),
        row.id.to_string(),
        row.stream.clone(),
        row.version.to_string(),
        row.event_type.clone(),
        row.schema_version.to_string(),
        row.recorded_at.clone(),
        optional(row.merchant_id),
        row.actor.clone(),
        optional(row.causation_id),
        optional(row.correlation_id),
        row.hash.clone(),
        row.redacted.to_string(),
        row.data.to_string(),
        hex_or_empty(row.idempotency.map(|record| record.key_hash)),
        hex_or_empty(row.idempotency.map(|record| record.request_hash)),
    ];
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        csv_field(field, out);
    }
    out.push_str("\r\n");
}

/// The page of events after `after`, encoded; the last position read.
async fn export_page(
    store: &PgEventStore,
    filter: &ExportFilter,
    format: Format,
    after: i64,
    out: &mut String,
) -> Result<Option<i64>, StoreError> {
    let events = store
        .read_range(&LogRange {
            after: Position(after),
            before: Position(filter.horizon),
            recorded_from: filter.from,
            recorded_to: filter.to,
            merchant: filter.merchant,
            limit: EXPORT_PAGE,
        })
        .await?;
    let mut last = None;
    for event in events {
        last = Some(event.position.0);
        let row = ExportRow::of(event);
        match format {
            Format::Ndjson => {
                out.push_str(
                    &serde_json::to_string(&row).map_err(|error| corrupt(error.to_string()))?,
                );
                out.push('\n');
            }
            Format::Csv => csv_row(&row, out),
        }
    }
    Ok(last)
}

/// Reads pages and sends them until the end, an error, or the client leaves.
async fn produce(
    store: PgEventStore,
    filter: ExportFilter,
    format: Format,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    if format == Format::Csv && sender.send(Ok(Bytes::from(CSV_HEADER))).await.is_err() {
        return;
    }
    let mut after = 0;
    loop {
        let mut out = String::with_capacity(64 * 1024);
        match export_page(&store, &filter, format, after, &mut out).await {
            Ok(Some(last)) => {
                after = last;
                if sender.send(Ok(Bytes::from(out))).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(error) => {
                tracing::error!(%error, after, "audit export failed part-way");
                let _ = sender
                    .send(Err(std::io::Error::other("the export failed part-way")))
                    .await;
                return;
            }
        }
    }
}

/// Streams the event history (NDJSON or CSV), filtered.
#[utoipa::path(
    get,
    path = "/api/v1/audit/export",
    tag = "audit",
    params(ExportParams),
    security(("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "NDJSON (one event per line: position, id, stream, version, type, schema_version, recorded_at, merchant_id, actor, causation_id, correlation_id, hash, redacted, data, and `idempotency` {key_hash, request_hash} on events caused by an Idempotency-Key request) or CSV with those columns (the last two as idempotency_key_hash, idempotency_request_hash, empty when absent) and a header row", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "Bad parameter (`field` says which)", body = ErrorBody),
        (status = 401, description = "No staff or auditor session", body = ErrorBody),
    )
)]
pub async fn export(
    State(state): State<QueryState>,
    _overseer: Overseer,
    params: Params,
) -> Result<Response, ApiError> {
    let from = params.moment("from")?;
    let to = params.moment("to")?;
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(ApiError::bad_request("to must not be before from").with_field("to"));
        }
    }
    let merchant = params
        .get("merchant_id")
        .map(|text| {
            text.parse::<Uuid>().map_err(|_| {
                ApiError::bad_request("merchant_id must be a merchant id (a UUID)")
                    .with_field("merchant_id")
            })
        })
        .transpose()?;
    let format = match params.one_of("format", &["ndjson", "csv"])? {
        Some("csv") => Format::Csv,
        _ => Format::Ndjson,
    };
    let store = state.store.clone();
    let horizon = state.store.horizon().await?.0;
    let filter = ExportFilter {
        from,
        to,
        merchant,
        horizon,
    };
    let (sender, mut receiver) = mpsc::channel(EXPORT_BUFFER);
    tokio::spawn(produce(store, filter, format, sender));
    let body = Body::from_stream(futures::stream::poll_fn(move |context| {
        receiver.poll_recv(context)
    }));
    let (content_type, extension) = match format {
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let disposition = format!("attachment; filename=\"paystream-events.{extension}\"");
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&horizon.to_string()) {
        headers.insert("x-export-horizon", value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let mut payload = json!({
            "name": "Acme",
            "api_secret_hash": "abc",
            "password_hash": null,
            "webhook": {"secret": "whsec_1", "previous_secret": "whsec_0", "url": "https://x"},
            "list": [{"webhook_secret": "w"}]
        });
        assert!(redact(&mut payload));
        assert_eq!(
            payload,
            json!({
                "name": "Acme",
                "api_secret_hash": REDACTED,
                "password_hash": null,
                "webhook": {"secret": REDACTED, "previous_secret": REDACTED, "url": "https://x"},
                "list": [{"webhook_secret": REDACTED}]
            })
        );
        assert!(!redact(&mut json!({"amount": 5})));
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut out = String::new();
        csv_field("plain", &mut out);
        out.push('|');
        csv_field("a,b", &mut out);
        out.push('|');
        csv_field("say \"hi\"\nthere", &mut out);
        assert_eq!(out, "plain|\"a,b\"|\"say \"\"hi\"\"\nthere\"");
    }
}
