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

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use paystream_domain::api::{timestamp, ErrorBody};
use paystream_kit::http::error::ApiError;
use paystream_store::chain::ChainWalker;
use paystream_store::postgres::decode_idempotency;
use paystream_store::{
    ChainBreak, EventMetadata, IdempotencyRecord, Position, RecordedEvent, StoreError, StreamId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};
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
pub const EXPORT_PAGE: i64 = 500;
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

/// The statement verifying one range of streams: the event columns, then
/// the head's (`head_*`), in (stream, version) order. The bounds are in the
/// text only when given (`$1`: streams after, `$2`: streams up to), so every
/// plan can use the `(stream_id, version)` and head indexes.
fn verify_chunk_sql(after: bool, upto: bool) -> String {
    let range = match (after, upto) {
        (true, true) => "where stream_id > $1 and stream_id <= $2",
        (true, false) => "where stream_id > $1",
        (false, true) => "where stream_id <= $1",
        (false, false) => "",
    };
    format!(
        "select coalesce(e.stream_id, s.stream_id) as key, \
                e.position, e.event_id, e.stream_id, e.version, e.event_type, e.schema_version, \
                e.payload, e.merchant_id, e.causation_id, e.correlation_id, e.actor, \
                e.idempotency_key_hash, e.idempotency_request_hash, \
                e.recorded_at, e.hash, s.version as head_version, s.last_hash as head_hash \
         from (select * from events {range}) e \
         full join (select stream_id, version, last_hash from event_streams {range}) s \
           on s.stream_id = e.stream_id \
         order by 1, e.version"
    )
}

/// A broken link.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct BreakView {
    pub stream_id: String,
    /// The first version that does not verify.
    pub version: u64,
    /// `altered` (content or order changed), `missing` (a version removed
    /// from the middle) or `truncated` (the head says more, or another last
    /// hash, than the rows show).
    #[schema(example = "altered")]
    pub kind: String,
}

impl From<ChainBreak> for BreakView {
    fn from(broken: ChainBreak) -> Self {
        let kind = serde_json::to_value(broken.kind)
            .ok()
            .and_then(|kind| kind.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{:?}", broken.kind).to_lowercase());
        Self {
            stream_id: broken.stream_id.to_string(),
            version: broken.version,
            kind,
        }
    }
}

/// `GET /api/v1/audit/verify`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifyReport {
    /// Every stream was checked (`complete`) and none is broken.
    pub ok: bool,
    /// False when the time budget or `limit` stopped the walk: continue
    /// with `after = next_after`.
    pub complete: bool,
    pub streams_checked: u64,
    pub events_checked: u64,
    /// The first breaks found (at most 100), in stream order.
    pub breaks: Vec<BreakView>,
    pub breaks_total: u64,
    /// The last stream checked, when the walk stopped early.
    pub next_after: Option<String>,
    /// The `after` this walk started from.
    pub after: Option<String>,
    pub started_at: String,
    pub duration_ms: u64,
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

fn hash32(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| corrupt(format!("hash of {} bytes", bytes.len())))
}

/// An events row as stored (the columns of `select events.*`-like queries).
fn decode_event(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let schema_version: i16 = row.try_get("schema_version")?;
    let version: i64 = row.try_get("version")?;
    Ok(RecordedEvent {
        position: Position(row.try_get("position")?),
        event_id: row.try_get("event_id")?,
        stream_id: StreamId::parse(row.try_get("stream_id")?)
            .map_err(|error| corrupt(error.to_string()))?,
        version: u64::try_from(version).map_err(|_| corrupt(format!("version {version}")))?,
        event_type: row.try_get("event_type")?,
        schema_version: u16::try_from(schema_version)
            .map_err(|_| corrupt(format!("schema version {schema_version}")))?,
        payload: row.try_get("payload")?,
        metadata: EventMetadata {
            merchant_id: row.try_get("merchant_id")?,
            causation_id: row.try_get("causation_id")?,
            correlation_id: row.try_get("correlation_id")?,
            actor: row.try_get("actor")?,
            idempotency: decode_idempotency(row)?,
        },
        recorded_at: row.try_get("recorded_at")?,
        hash: hash32(row.try_get("hash")?)?,
    })
}

/// One stream being walked.
struct Walk {
    key: String,
    walker: Option<ChainWalker>,
    head: Option<(u64, [u8; 32])>,
    /// A row that could not even be decoded: the stream is broken there.
    undecodable: Option<u64>,
}

impl Walk {
    fn finish(self) -> Option<BreakView> {
        if let Some(version) = self.undecodable {
            return Some(BreakView {
                stream_id: self.key,
                version,
                kind: "altered".into(),
            });
        }
        match (self.walker, StreamId::parse(self.key.clone())) {
            (Some(walker), _) => walker.finish(self.head).map(BreakView::from),
            (None, Ok(stream)) => ChainWalker::new(stream)
                .finish(self.head)
                .map(BreakView::from),
            (None, Err(_)) => Some(BreakView {
                stream_id: self.key,
                version: 1,
                kind: "truncated".into(),
            }),
        }
    }
}

#[derive(Default)]
struct Tally {
    streams: u64,
    events: u64,
    breaks: Vec<BreakView>,
    breaks_total: u64,
}

impl Tally {
    fn close(&mut self, walk: Walk) {
        self.streams += 1;
        if let Some(broken) = walk.finish() {
            self.breaks_total += 1;
            if self.breaks.len() < MAX_BREAKS_LISTED {
                self.breaks.push(broken);
            }
        }
    }
}

/// The upper stream of the next chunk of `size` streams after `after`
/// (`None`: the chunk runs to the end).
async fn chunk_end(
    pool: &PgPool,
    after: Option<&str>,
    size: i64,
) -> Result<Option<String>, sqlx::Error> {
    match after {
        Some(after) => {
            sqlx::query_scalar(
                "select stream_id from event_streams where stream_id > $1 \
                 order by stream_id offset $2 limit 1",
            )
            .bind(after)
            .bind(size - 1)
            .fetch_optional(pool)
            .await
        }
        None => {
            sqlx::query_scalar(
                "select stream_id from event_streams order by stream_id offset $1 limit 1",
            )
            .bind(size - 1)
            .fetch_optional(pool)
            .await
        }
    }
}

/// Whether any stream (a head or an event) sorts after `after`.
async fn any_stream_after(pool: &PgPool, after: Option<&str>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from event_streams where stream_id > $1) \
             or exists (select 1 from events where stream_id > $1)",
    )
    .bind(after)
    .fetch_one(pool)
    .await
}

/// Verifies the streams in `(after, upto]`, one statement, row by row.
async fn verify_chunk(
    pool: &PgPool,
    after: Option<&str>,
    upto: Option<&str>,
    tally: &mut Tally,
) -> Result<(), StoreError> {
    let sql = verify_chunk_sql(after.is_some(), upto.is_some());
    let mut query = sqlx::query(&sql);
    for bound in [after, upto].into_iter().flatten() {
        query = query.bind(bound);
    }
    let mut rows = query.fetch(pool);
    let mut walk: Option<Walk> = None;
    while let Some(row) = rows.try_next().await? {
        let key: String = row.try_get("key")?;
        if walk.as_ref().map(|walk| walk.key.as_str()) != Some(key.as_str()) {
            if let Some(done) = walk.take() {
                tally.close(done);
            }
            let head = match row.try_get::<Option<i64>, _>("head_version")? {
                Some(version) => {
                    let hash: Vec<u8> = row.try_get("head_hash")?;
                    Some((u64::try_from(version).unwrap_or(0), hash32(hash)?))
                }
                None => None,
            };
            walk = Some(Walk {
                key: key.clone(),
                walker: None,
                head,
                undecodable: None,
            });
        }
        let Some(current) = walk.as_mut() else {
            continue;
        };
        // A head without events has one row with no event columns.
        let Some(version) = row.try_get::<Option<i64>, _>("version")? else {
            continue;
        };
        tally.events += 1;
        if current.undecodable.is_some() {
            continue;
        }
        match decode_event(&row) {
            Ok(event) => current
                .walker
                .get_or_insert_with(|| ChainWalker::new(event.stream_id.clone()))
                .push(&event),
            Err(_) => current.undecodable = Some(u64::try_from(version).unwrap_or(0)),
        }
    }
    if let Some(done) = walk.take() {
        tally.close(done);
    }
    Ok(())
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
    let pool = state.store.pool();
    let mut tally = Tally::default();
    let mut after = start_after.clone();
    let complete = loop {
        let size = limit.map_or(CHUNK_STREAMS, |limit| {
            let left = limit - i64::try_from(tally.streams).unwrap_or(i64::MAX);
            left.clamp(1, CHUNK_STREAMS)
        });
        let upto = chunk_end(pool, after.as_deref(), size).await?;
        verify_chunk(pool, after.as_deref(), upto.as_deref(), &mut tally).await?;
        let Some(upto) = upto else {
            break true;
        };
        after = Some(upto);
        let limit_reached = limit.is_some_and(|limit| tally.streams >= limit.unsigned_abs());
        if limit_reached || started.elapsed() >= TIME_BUDGET {
            // Stopping: complete only if no stream (head or event) is left.
            break !any_stream_after(pool, after.as_deref()).await?;
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
    pool: &PgPool,
    filter: &ExportFilter,
    format: Format,
    after: i64,
    out: &mut String,
) -> Result<Option<i64>, StoreError> {
    const COLUMNS: &str = "select position, event_id, stream_id, version, event_type, \
        schema_version, payload, merchant_id, causation_id, correlation_id, actor, \
        idempotency_key_hash, idempotency_request_hash, recorded_at, hash from events where position > $1 and position < $2 \
        and ($3::timestamptz is null or recorded_at >= $3) \
        and ($4::timestamptz is null or recorded_at < $4) ";
    let sql = if filter.merchant.is_some() {
        format!("{COLUMNS} and (merchant_id = $5 or stream_id = $6) order by position limit $7")
    } else {
        format!("{COLUMNS} and $5::uuid is null and $6::text is null order by position limit $7")
    };
    let mut rows = sqlx::query(&sql)
        .bind(after)
        .bind(filter.horizon)
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.merchant)
        .bind(
            filter
                .merchant
                .map(|merchant| format!("merchant-{merchant}")),
        )
        .bind(EXPORT_PAGE)
        .fetch(pool);
    let mut last = None;
    while let Some(row) = rows.try_next().await? {
        let event = decode_event(&row)?;
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
    pool: PgPool,
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
        match export_page(&pool, &filter, format, after, &mut out).await {
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
    let pool = state.store.pool().clone();
    let horizon = state.store.horizon().await?.0;
    let filter = ExportFilter {
        from,
        to,
        merchant,
        horizon,
    };
    let (sender, mut receiver) = mpsc::channel(EXPORT_BUFFER);
    tokio::spawn(produce(pool, filter, format, sender));
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
