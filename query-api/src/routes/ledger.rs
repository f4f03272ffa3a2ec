//! The double-entry ledger, read from the `ledger` projection's tables:
//!
//! * `GET /api/v1/balance[?as_of=]` (merchant): per currency, what Paystream
//!   owes the merchant (`balance`, the negated balance of
//!   `merchant_payable:<merchant id>`), with the `captured`, `refunded` and
//!   net `fees` behind it, so `balance = captured − refunded − fees`. Now:
//!   from `ledger_balances`; `as_of`: from the postings up to that moment.
//! * `GET /api/v1/ledger/entries` (merchant): the merchant's entries with
//!   their two postings, newest first, keyset-paginated.
//! * `GET /api/v1/admin/ledger/trial-balance` (staff, auditor): every
//!   account's balance per currency and each currency's total, which must be
//!   zero (invariant 9).
//!
//! Each answer comes from one SQL statement, so from one snapshot: the
//! projector writes an event's entries, postings, balances and checkpoint in
//! one transaction, so an answer never shows half of a money movement. The
//! merchant reads honour `X-Min-Position` (they wait for the projection).

pub use paystream_domain::api::{
    BalanceView, CurrencyBalance, LedgerEntriesPage, LedgerEntryView, PostingView,
};
use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use paystream_domain::api::{timestamp, ErrorBody};
use paystream_kit::http::error::ApiError;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AsOf;
use crate::auth::{MerchantReader, Overseer};
use crate::freshness::{self, MinPosition};
use crate::listing::{self, Params};
use crate::startup::QueryState;

/// The projection behind these reads.
pub const PROJECTION: &str = "ledger";

/// Entry kinds, as stored.
pub const KINDS: [&str; 4] = ["capture", "fee", "refund", "fee_reversal"];

pub fn router() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/balance", get(balance))
        .route("/api/v1/ledger/entries", get(entries))
        .route("/api/v1/admin/ledger/trial-balance", get(trial_balance))
}

/// The account of what Paystream owes `merchant`.
pub fn merchant_account(merchant: Uuid) -> String {
    format!("merchant_payable:{merchant}")
}

/// Query parameters of `GET /api/v1/ledger/entries` (documentation; read
/// through [`Params`]).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EntriesParams {
    /// 1 to 100, default 20.
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// `capture`, `fee`, `refund` or `fee_reversal`.
    kind: Option<String>,
    /// Only this payment's entries.
    payment_id: Option<String>,
    /// Posted at or after (RFC 3339).
    created_from: Option<String>,
    /// Posted before (RFC 3339).
    created_to: Option<String>,
}

/// Opaque to clients: hex of `ledger|<position>|<entry id>`.
fn encode_cursor(position: i64, entry_id: &str) -> String {
    hex::encode(format!("ledger|{position}|{entry_id}"))
}

fn decode_cursor(text: Option<&str>) -> Result<Option<(i64, String)>, ApiError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request("cursor must be a next_cursor value returned by this list")
            .with_field("cursor")
    };
    if text.len() > 512 {
        return Err(bad());
    }
    let decoded = hex::decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(bad)?;
    let mut parts = decoded.splitn(3, '|');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("ledger"), Some(position), Some(id)) if !id.is_empty() => position
            .parse::<i64>()
            .map(|position| Some((position, id.to_string())))
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// One account's balance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountBalance {
    pub account: String,
    pub currency: String,
    /// Signed: debits positive, credits negative.
    pub balance: i64,
}

/// The sum of every account in one currency.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CurrencyTotal {
    pub currency: String,
    /// Must be 0.
    pub total: i64,
}

/// `GET /api/v1/admin/ledger/trial-balance`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrialBalance {
    /// Every currency's total is zero.
    pub balanced: bool,
    pub totals: Vec<CurrencyTotal>,
    pub accounts: Vec<AccountBalance>,
    /// Position of the last event the ledger has applied.
    pub ledger_position: i64,
    pub generated_at: String,
}

fn to_i64(value: i128, what: &str) -> Result<i64, ApiError> {
    i64::try_from(value).map_err(|_| {
        ApiError::internal(&std::io::Error::other(format!("{what} overflows 64 bits")))
    })
}

/// A merchant's balance per currency, now or as of a moment.
#[utoipa::path(
    get,
    path = "/api/v1/balance",
    tag = "ledger",
    params(
        ("as_of" = Option<String>, Query, description = "RFC 3339: the balance at that moment, from the postings"),
        ("X-Min-Position" = Option<i64>, Header, description = "Wait (at most 5 s) until the ledger has applied this position"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = [])),
    responses(
        (status = 200, description = "Balances per currency", body = BalanceView),
        (status = 400, description = "Bad `as_of` or `X-Min-Position`", body = ErrorBody),
        (status = 401, description = "No merchant credentials or session", body = ErrorBody),
        (status = 503, description = "The ledger has not reached `X-Min-Position`", body = ErrorBody),
    )
)]
pub async fn balance(
    State(state): State<QueryState>,
    reader: MerchantReader,
    AsOf(as_of): AsOf,
    min: MinPosition,
) -> Result<Json<BalanceView>, ApiError> {
    let pool = state.store.pool();
    min.wait(&state.store, PROJECTION).await?;
    let merchant = Uuid::from(reader.merchant_id);
    let account = merchant_account(merchant);
    // Totals by kind from the entries; the balance from the running sums
    // (now) or from the postings (as of). One statement, one snapshot.
    let rows = sqlx::query(
        "with totals as ( \
             select currency, \
                    coalesce(sum(amount) filter (where kind = 'capture'), 0) as captured, \
                    coalesce(sum(amount) filter (where kind = 'refund'), 0) as refunded, \
                    coalesce(sum(amount) filter (where kind = 'fee'), 0) \
                      - coalesce(sum(amount) filter (where kind = 'fee_reversal'), 0) as fees \
             from ledger_entries \
             where merchant_id = $1 and ($3::timestamptz is null or posted_at <= $3) \
             group by currency), \
         balances as ( \
             select currency, -balance::numeric as balance from ledger_balances \
             where account = $2 and $3::timestamptz is null \
             union all \
             select currency, -sum(amount) from ledger_postings \
             where account = $2 and $3::timestamptz is not null and posted_at <= $3 \
             group by currency) \
         select coalesce(t.currency, b.currency) as currency, \
                coalesce(b.balance, 0)::text as balance, coalesce(t.captured, 0)::text as captured, \
                coalesce(t.refunded, 0)::text as refunded, coalesce(t.fees, 0)::text as fees, \
                (select position from projection_checkpoints where projection = 'ledger') as position \
         from totals t full join balances b on b.currency = t.currency \
         order by 1",
    )
    .bind(merchant)
    .bind(&account)
    .bind(as_of)
    .fetch_all(pool)
    .await?;
    let mut ledger_position = None;
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        ledger_position = row.try_get::<Option<i64>, _>("position")?;
        let number = |column: &str| -> Result<i64, ApiError> {
            let text: String = row.try_get(column)?;
            let value: i128 = text.parse().map_err(|_| {
                ApiError::internal(&std::io::Error::other(format!("{column} = {text}")))
            })?;
            to_i64(value, column)
        };
        data.push(CurrencyBalance {
            currency: row.try_get("currency")?,
            balance: number("balance")?,
            captured: number("captured")?,
            refunded: number("refunded")?,
            fees: number("fees")?,
        });
    }
    let ledger_position = match ledger_position {
        Some(position) => position,
        None => freshness::checkpoint(pool, PROJECTION).await?,
    };
    Ok(Json(BalanceView {
        merchant_id: merchant,
        as_of: as_of.map(timestamp),
        ledger_position,
        data,
    }))
}

/// The merchant's ledger entries with their postings, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/ledger/entries",
    tag = "ledger",
    params(
        EntriesParams,
        ("X-Min-Position" = Option<i64>, Header, description = "Wait (at most 5 s) until the ledger has applied this position"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = [])),
    responses(
        (status = 200, description = "A page of entries", body = LedgerEntriesPage),
        (status = 400, description = "Bad parameter (`field` says which)", body = ErrorBody),
        (status = 401, description = "No merchant credentials or session", body = ErrorBody),
        (status = 503, description = "The ledger has not reached `X-Min-Position`", body = ErrorBody),
    )
)]
pub async fn entries(
    State(state): State<QueryState>,
    reader: MerchantReader,
    min: MinPosition,
    params: Params,
) -> Result<Json<LedgerEntriesPage>, ApiError> {
    let limit = params.limit(listing::DEFAULT_LIMIT, listing::MAX_LIMIT)?;
    let cursor = decode_cursor(params.get("cursor"))?;
    let kind = params.one_of("kind", &KINDS)?;
    let payment_id = params
        .get("payment_id")
        .map(|text| {
            text.parse::<paystream_domain::PaymentId>()
                .map(|id| id.to_string())
                .map_err(|_| {
                    ApiError::bad_request("payment_id must be a payment id (pay_ + 16 characters)")
                        .with_field("payment_id")
                })
        })
        .transpose()?;
    let range = params.created_range()?;
    let pool = state.store.pool();
    min.wait(&state.store, PROJECTION).await?;

    // Only the filters given are in the text, so the plan can use the
    // (merchant, position, entry) index for the cursor too.
    let mut query = sqlx::QueryBuilder::<sqlx::Postgres>::new(
        "select e.entry_id, e.position, e.kind, e.payment_id, e.refund_id, e.currency, e.amount, \
                e.posted_at, \
                coalesce((select json_agg(json_build_object( \
                              'line', p.line, 'account', p.account, \
                              'currency', p.currency, 'amount', p.amount) order by p.line) \
                          from ledger_postings p where p.entry_id = e.entry_id), '[]') as postings \
         from ledger_entries e where e.merchant_id = ",
    );
    query.push_bind(Uuid::from(reader.merchant_id));
    if let Some(kind) = kind {
        query.push(" and e.kind = ").push_bind(kind);
    }
    if let Some(payment_id) = payment_id {
        query.push(" and e.payment_id = ").push_bind(payment_id);
    }
    if let Some(from) = range.from {
        query.push(" and e.posted_at >= ").push_bind(from);
    }
    if let Some(to) = range.to {
        query.push(" and e.posted_at < ").push_bind(to);
    }
    if let Some((position, id)) = cursor {
        query
            .push(" and (e.position, e.entry_id) < (")
            .push_bind(position)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    query
        .push(" order by e.position desc, e.entry_id desc limit ")
        .push_bind(limit + 1);
    let rows = query.build().fetch_all(pool).await?;
    let has_more = rows.len() as i64 > limit;
    let mut data = Vec::with_capacity(rows.len());
    for row in rows.iter().take(limit as usize) {
        let postings: serde_json::Value = row.try_get("postings")?;
        let postings: Vec<PostingView> =
            serde_json::from_value(postings).map_err(|error| ApiError::internal(&error))?;
        data.push(LedgerEntryView {
            id: row.try_get("entry_id")?,
            kind: row.try_get("kind")?,
            payment_id: row.try_get("payment_id")?,
            refund_id: row.try_get("refund_id")?,
            currency: row.try_get("currency")?,
            amount: row.try_get("amount")?,
            posted_at: timestamp(row.try_get::<DateTime<Utc>, _>("posted_at")?),
            position: row.try_get("position")?,
            postings,
        });
    }
    let next_cursor = if has_more {
        data.last()
            .map(|entry| encode_cursor(entry.position, &entry.id))
    } else {
        None
    };
    Ok(Json(LedgerEntriesPage {
        data,
        has_more,
        next_cursor,
    }))
}

/// Every account's balance per currency; each currency must total zero.
#[utoipa::path(
    get,
    path = "/api/v1/admin/ledger/trial-balance",
    tag = "ledger",
    security(("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The trial balance", body = TrialBalance),
        (status = 401, description = "No staff or auditor session", body = ErrorBody),
    )
)]
pub async fn trial_balance(
    State(state): State<QueryState>,
    _overseer: Overseer,
) -> Result<Json<TrialBalance>, ApiError> {
    let pool = state.store.pool();
    let rows = sqlx::query(
        "select b.account, b.currency, b.balance, \
                (select position from projection_checkpoints where projection = 'ledger') as position \
         from ledger_balances b order by b.currency, b.account",
    )
    .fetch_all(pool)
    .await?;
    let mut ledger_position = None;
    let mut sums: BTreeMap<String, i128> = BTreeMap::new();
    let mut accounts = Vec::with_capacity(rows.len());
    for row in rows {
        ledger_position = row.try_get::<Option<i64>, _>("position")?;
        let account = AccountBalance {
            account: row.try_get("account")?,
            currency: row.try_get("currency")?,
            balance: row.try_get("balance")?,
        };
        *sums.entry(account.currency.clone()).or_default() += i128::from(account.balance);
        accounts.push(account);
    }
    let ledger_position = match ledger_position {
        Some(position) => position,
        None => freshness::checkpoint(pool, PROJECTION).await?,
    };
    let totals = sums
        .into_iter()
        .map(|(currency, total)| {
            Ok(CurrencyTotal {
                currency,
                total: to_i64(total, "a currency total")?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(TrialBalance {
        balanced: totals.iter().all(|total| total.total == 0),
        totals,
        accounts,
        ledger_position,
        generated_at: timestamp(Utc::now()),
    }))
}
