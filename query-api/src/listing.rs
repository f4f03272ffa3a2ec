//! What the list endpoints share: query parameters read one by one (so each
//! bad one is a 400 `BAD_REQUEST_ERROR` naming its `field`), `limit`, the
//! opaque keyset cursor, `offset`, and `created_from`/`created_to` ranges.
//!
//! Lists are newest first: `created_at desc, id desc`. A page holds `limit`
//! rows; one more is read to tell whether another page follows. The cursor
//! names the last row of a page (its `created_at` to the microsecond, as
//! stored, and its id), so the next page starts strictly after it: a walk
//! sees every object that existed when it started exactly once, however many
//! objects are created meanwhile (new ones sort before the walk's start).
//!
//! The order, payment and refund lists also page the way clients of the
//! original gateway do: `limit` (default 10) and `offset`, with `total`.
//! Cursors stay the fast path: a cursor page is one index range read, while
//! a page without a cursor also counts the matching rows (`total`) and skips
//! `offset` rows, both in the merchant's part of the list index (see
//! [`ListQuery::page`]).

pub use paystream_domain::api::{ListPage, Page};
use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, Utc};
use paystream_kit::http::error::ApiError;

use crate::routes::parse_as_of;

/// Default and largest `limit` of the cursor lists.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// Default `limit` of the order, payment and refund lists: the original
/// gateway's (as the webhook log's).
pub const OBJECT_LIST_DEFAULT_LIMIT: u32 = 10;

/// Largest `offset` (as the webhook log's). Deep offsets cost a walk over
/// the skipped rows; cursors do not.
pub const MAX_OFFSET: i64 = i32::MAX as i64;

/// Longest cursor accepted (they are far shorter).
const MAX_CURSOR_LEN: usize = 512;

/// A list endpoint's query parameters. A parameter sent twice is a 400 (its
/// meaning would be ambiguous); an empty one (`?status=`, as an empty form
/// field sends) counts as not sent; unknown ones are ignored, as unknown
/// JSON fields are on the command side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|_| ApiError::bad_request("The query string cannot be decoded"))?;
        Self::from_pairs(pairs)
    }
}

fn bad(field: &str, description: impl Into<String>) -> ApiError {
    ApiError::bad_request(description).with_field(field)
}

impl Params {
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, ApiError> {
        let mut params = HashMap::new();
        for (key, value) in pairs {
            if params.contains_key(&key) {
                return Err(bad(&key, format!("{key} is given more than once")));
            }
            params.insert(key, value);
        }
        Ok(Self(params))
    }

    /// The parameter's value, trimmed; `None` when absent or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// An integer in `min..=max`, `default` when absent.
    pub fn integer(&self, key: &str, min: i64, max: i64, default: i64) -> Result<i64, ApiError> {
        let Some(text) = self.get(key) else {
            return Ok(default);
        };
        text.parse::<i64>()
            .ok()
            .filter(|value| (min..=max).contains(value))
            .ok_or_else(|| bad(key, format!("{key} must be an integer from {min} to {max}")))
    }

    /// `limit`: 1 to `max`, `default` when absent.
    pub fn limit(&self, default: u32, max: u32) -> Result<i64, ApiError> {
        self.integer("limit", 1, i64::from(max), i64::from(default))
    }

    /// One of `allowed` (exactly; they are lower case).
    pub fn one_of(
        &self,
        key: &str,
        allowed: &[&'static str],
    ) -> Result<Option<&'static str>, ApiError> {
        let Some(text) = self.get(key) else {
            return Ok(None);
        };
        allowed
            .iter()
            .find(|candidate| **candidate == text)
            .copied()
            .map(Some)
            .ok_or_else(|| bad(key, format!("{key} must be one of: {}", allowed.join(", "))))
    }

    /// An RFC 3339 moment with a time zone.
    pub fn moment(&self, key: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.get(key)
            .map(|text| {
                parse_as_of(text).map_err(|_| {
                    bad(
                        key,
                        format!("{key} must be an RFC 3339 date-time with a time zone, e.g. 2025-01-31T10:15:30Z"),
                    )
                })
            })
            .transpose()
    }

    /// A calendar day, `YYYY-MM-DD`.
    pub fn day(&self, key: &str) -> Result<Option<NaiveDate>, ApiError> {
        self.get(key)
            .map(|text| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .filter(|_| text.len() == 10)
                    .ok_or_else(|| bad(key, format!("{key} must be a day, YYYY-MM-DD")))
            })
            .transpose()
    }

    /// `created_from` (inclusive) and `created_to` (exclusive).
    pub fn created_range(&self) -> Result<CreatedRange, ApiError> {
        let from = self.moment("created_from")?;
        let to = self.moment("created_to")?;
        if let (Some(from), Some(to)) = (from, to) {
            if from > to {
                return Err(bad(
                    "created_to",
                    "created_to must not be before created_from",
                ));
            }
        }
        Ok(CreatedRange { from, to })
    }

    /// `cursor`, which must come from a page of the same list.
    pub fn cursor(&self, list: &'static str) -> Result<Option<Cursor>, ApiError> {
        self.get("cursor")
            .map(|text| Cursor::decode(list, text))
            .transpose()
    }

    /// `limit` (1 to [`MAX_LIMIT`], default `default_limit`) and either
    /// `cursor` or `offset` (0 to [`MAX_OFFSET`], default 0), not both.
    pub fn paging(&self, list: &'static str, default_limit: u32) -> Result<Paging, ApiError> {
        let limit = self.limit(default_limit, MAX_LIMIT)?;
        let cursor = self.cursor(list)?;
        let offset = self.integer("offset", 0, MAX_OFFSET, 0)?;
        if cursor.is_some() && self.get("offset").is_some() {
            return Err(bad(
                "offset",
                "offset cannot be combined with cursor: page with one or the other",
            ));
        }
        Ok(Paging {
            limit,
            cursor,
            offset,
        })
    }
}

/// How a page of a list is asked for: after a cursor (keyset paging), or
/// `offset` rows from the start (the original gateway's paging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    pub limit: i64,
    pub cursor: Option<Cursor>,
    /// 0 with a cursor.
    pub offset: i64,
}

/// `created_from <= created_at < created_to`; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreatedRange {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Where the next page starts: strictly after (older than) this row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

fn bad_cursor() -> ApiError {
    bad(
        "cursor",
        "cursor must be a next_cursor value returned by this list",
    )
}

impl Cursor {
    /// Opaque to clients: hex of `<list>|<created_at µs>|<id>`.
    pub fn encode(list: &str, created_at: DateTime<Utc>, id: &str) -> String {
        hex::encode(format!("{list}|{}|{id}", created_at.timestamp_micros()))
    }

    pub fn decode(list: &str, text: &str) -> Result<Self, ApiError> {
        if text.len() > MAX_CURSOR_LEN {
            return Err(bad_cursor());
        }
        let bytes = hex::decode(text).map_err(|_| bad_cursor())?;
        let text = String::from_utf8(bytes).map_err(|_| bad_cursor())?;
        let mut parts = text.splitn(3, '|');
        let (Some(kind), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad_cursor());
        };
        if kind != list || id.is_empty() {
            return Err(bad_cursor());
        }
        let created_at = micros
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .ok_or_else(bad_cursor)?;
        Ok(Self {
            created_at,
            id: id.to_owned(),
        })
    }
}

/// A list page from rows read by [`ListQuery::page`] (`limit + 1` of them
/// at most: the extra row only says that more follow).
pub fn list_page<T, R>(
    list: &'static str,
    listed: Listed<R>,
    paging: &Paging,
    key: impl Fn(&R) -> (DateTime<Utc>, &str),
    view: impl FnMut(R) -> Result<T, ApiError>,
) -> Result<ListPage<T>, ApiError> {
    let page = page(list, listed.rows, paging.limit, key, view)?;
    Ok(ListPage {
        data: page.data,
        has_more: page.has_more,
        next_cursor: page.next_cursor,
        total: listed.total,
        limit: paging.limit,
        offset: paging.offset,
    })
}

/// Rows of one page, and the count of every matching row when asked.
#[derive(Debug)]
pub struct Listed<R> {
    pub rows: Vec<R>,
    pub total: Option<i64>,
}

impl<R> Listed<R> {
    /// The same page with each row mapped.
    pub fn try_map<S, E>(self, map: impl FnMut(R) -> Result<S, E>) -> Result<Listed<S>, E> {
        Ok(Listed {
            rows: self.rows.into_iter().map(map).collect::<Result<_, E>>()?,
            total: self.total,
        })
    }
}

/// A page from rows read with `limit + 1`: the extra row only says that
/// more follow. `key` gives a row's `created_at` and id.
pub fn page<T, R>(
    list: &'static str,
    mut rows: Vec<R>,
    limit: i64,
    key: impl Fn(&R) -> (DateTime<Utc>, &str),
    view: impl FnMut(R) -> Result<T, ApiError>,
) -> Result<Page<T>, ApiError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = rows.last().filter(|_| has_more).map(|last| {
        let (created_at, id) = key(last);
        Cursor::encode(list, created_at, id)
    });
    let data = rows.into_iter().map(view).collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        data,
        has_more,
        next_cursor,
    })
}

/// One read model's list for one merchant, with its filters: `select …
/// where merchant_id = $1 [and filters] order by created_at desc, <id> desc`.
pub struct ListQuery {
    columns: &'static str,
    table: &'static str,
    id_column: &'static str,
    merchant: uuid::Uuid,
    equals: Vec<(&'static str, String)>,
    created: CreatedRange,
}

impl std::fmt::Debug for ListQuery {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ListQuery")
            .field("sql", &self.filtered(self.columns).sql())
            .finish()
    }
}

impl ListQuery {
    pub fn new(
        columns: &'static str,
        table: &'static str,
        id_column: &'static str,
        merchant: uuid::Uuid,
    ) -> Self {
        Self {
            columns,
            table,
            id_column,
            merchant,
            equals: Vec::new(),
            created: CreatedRange::default(),
        }
    }

    /// `and <column> = <value>` when a value is given.
    pub fn equals(mut self, column: &'static str, value: Option<&str>) -> Self {
        if let Some(value) = value {
            self.equals.push((column, value.to_owned()));
        }
        self
    }

    pub fn created(mut self, range: CreatedRange) -> Self {
        self.created = range;
        self
    }

    /// `select <select> from <table> where merchant_id = $1 [and filters]`.
    fn filtered(&self, select: &str) -> sqlx::QueryBuilder<'static, sqlx::Postgres> {
        let mut builder = sqlx::QueryBuilder::new(format!(
            "select {select} from {} where merchant_id = ",
            self.table
        ));
        builder.push_bind(self.merchant);
        for (column, value) in &self.equals {
            builder
                .push(format!(" and {column} = "))
                .push_bind(value.clone());
        }
        if let Some(from) = self.created.from {
            builder.push(" and created_at >= ").push_bind(from);
        }
        if let Some(to) = self.created.to {
            builder.push(" and created_at < ").push_bind(to);
        }
        builder
    }

    /// The rows of the page `paging` asks for (`limit + 1` at most).
    ///
    /// After a cursor: one range read of the list index, nothing counted.
    /// Otherwise the matching rows are counted too (`total`), in the same
    /// read-only snapshot as the page. The count walks the merchant's part
    /// of the list index (`merchant_id` leads it), and reads the rows for the
    /// other filters: it grows with the merchant's objects, not the table's.
    /// A page past the end is not read at all.
    pub async fn page(
        self,
        pool: &sqlx::PgPool,
        paging: &Paging,
    ) -> Result<Listed<sqlx::postgres::PgRow>, ApiError> {
        let mut rows = self.filtered(self.columns);
        if let Some(cursor) = &paging.cursor {
            rows.push(format!(" and (created_at, {}) < (", self.id_column))
                .push_bind(cursor.created_at)
                .push(", ")
                .push_bind(cursor.id.clone())
                .push(")");
        }
        rows.push(format!(
            " order by created_at desc, {} desc limit ",
            self.id_column
        ))
        .push_bind(paging.limit.saturating_add(1));
        if paging.offset > 0 {
            rows.push(" offset ").push_bind(paging.offset);
        }
        if paging.cursor.is_some() {
            return Ok(Listed {
                rows: rows.build().fetch_all(pool).await?,
                total: None,
            });
        }
        let mut transaction = pool.begin().await?;
        sqlx::query("set transaction isolation level repeatable read, read only")
            .execute(&mut *transaction)
            .await?;
        let total: i64 = self
            .filtered("count(*)")
            .build_query_scalar()
            .fetch_one(&mut *transaction)
            .await?;
        let rows = if paging.offset >= total {
            Vec::new()
        } else {
            rows.build().fetch_all(&mut *transaction).await?
        };
        transaction.commit().await?;
        Ok(Listed {
            rows,
            total: Some(total),
        })
    }
}

/// A read-model row's `state` could not be read back: a bug or a schema
/// change, never the client's fault.
pub fn corrupt_row(table: &str, error: impl std::fmt::Display) -> ApiError {
    #[derive(Debug)]
    struct Corrupt(String);
    impl std::fmt::Display for Corrupt {
        fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str(&self.0)
        }
    }
    impl std::error::Error for Corrupt {}
    ApiError::internal(&Corrupt(format!("{table}: unreadable row: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(
            pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string())),
        )
        .unwrap()
    }

    fn field(error: ApiError) -> String {
        assert_eq!(error.status, 400);
        assert_eq!(error.code, "BAD_REQUEST_ERROR");
        error.field.unwrap()
    }

    #[test]
    fn limits_are_bounded_integers() {
        assert_eq!(params(&[]).limit(20, 100).unwrap(), 20);
        assert_eq!(params(&[("limit", "")]).limit(20, 100).unwrap(), 20);
        assert_eq!(params(&[("limit", "1")]).limit(20, 100).unwrap(), 1);
        assert_eq!(params(&[("limit", "100")]).limit(20, 100).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", "1.5", "99999999999999999999"] {
            let error = params(&[("limit", bad)]).limit(20, 100).unwrap_err();
            assert_eq!(field(error), "limit", "{bad}");
        }
    }

    #[test]
    fn paging_is_by_cursor_or_by_offset() {
        let paging = params(&[]).paging("orders", 10).unwrap();
        assert_eq!((paging.limit, paging.offset, paging.cursor), (10, 0, None));
        let paging = params(&[("limit", "3"), ("offset", "40")])
            .paging("orders", 10)
            .unwrap();
        assert_eq!((paging.limit, paging.offset), (3, 40));
        let at = DateTime::from_timestamp_micros(1_738_318_530_123_456).unwrap();
        let cursor = Cursor::encode("orders", at, "order_A1b2C3d4E5f6G7h8");
        let paging = params(&[("cursor", &cursor), ("offset", "")])
            .paging("orders", 10)
            .unwrap();
        assert_eq!(paging.offset, 0);
        assert!(paging.cursor.is_some());
        for bad in ["-1", "ten", "1.5", "2147483648", "99999999999999999999"] {
            let error = params(&[("offset", bad)]).paging("orders", 10).unwrap_err();
            assert_eq!(field(error), "offset", "{bad}");
        }
        let error = params(&[("cursor", &cursor), ("offset", "0")])
            .paging("orders", 10)
            .unwrap_err();
        assert_eq!(field(error), "offset");
        let error = params(&[("limit", "101")])
            .paging("orders", 10)
            .unwrap_err();
        assert_eq!(field(error), "limit");
    }

    #[test]
    fn a_parameter_sent_twice_is_refused() {
        let error = Params::from_pairs([
            ("status".to_string(), "paid".to_string()),
            ("status".to_string(), "created".to_string()),
        ])
        .unwrap_err();
        assert_eq!(field(error), "status");
    }

    #[test]
    fn enumerations_and_moments_name_their_field() {
        let allowed = ["pending", "success", "failed"];
        assert_eq!(
            params(&[("status", "success")])
                .one_of("status", &allowed)
                .unwrap(),
            Some("success")
        );
        let error = params(&[("status", "SUCCESS")])
            .one_of("status", &allowed)
            .unwrap_err();
        assert_eq!(field(error), "status");
        let error = params(&[("created_from", "yesterday")])
            .created_range()
            .unwrap_err();
        assert_eq!(field(error), "created_from");
        let error = params(&[
            ("created_from", "2025-02-01T00:00:00Z"),
            ("created_to", "2025-01-01T00:00:00Z"),
        ])
        .created_range()
        .unwrap_err();
        assert_eq!(field(error), "created_to");
        let range = params(&[("created_to", "2025-01-01T05:30:00 05:30")])
            .created_range()
            .unwrap();
        assert_eq!(range.to.unwrap().to_rfc3339(), "2025-01-01T00:00:00+00:00");
        for bad in ["2025-1-1", "2025-02-30", "20250101", "2025-01-01T00:00:00Z"] {
            assert_eq!(
                field(params(&[("from", bad)]).day("from").unwrap_err()),
                "from"
            );
        }
    }

    #[test]
    fn cursors_round_trip_and_belong_to_one_list() {
        let at = DateTime::from_timestamp_micros(1_738_318_530_123_456).unwrap();
        let text = Cursor::encode("payments", at, "pay_H8sK3jD9s2L1pQr5");
        let cursor = Cursor::decode("payments", &text).unwrap();
        assert_eq!(cursor.created_at, at);
        assert_eq!(cursor.id, "pay_H8sK3jD9s2L1pQr5");
        assert_eq!(
            field(Cursor::decode("orders", &text).unwrap_err()),
            "cursor"
        );
        for bad in [
            "zz",
            "abc",
            &hex::encode("payments|x|pay_1"),
            &hex::encode("payments|1"),
            &hex::encode("payments|1|"),
            &"a".repeat(1000),
        ] {
            assert_eq!(
                field(Cursor::decode("payments", bad).unwrap_err()),
                "cursor",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_page_reads_one_row_more_than_it_shows() {
        let at = |micros| DateTime::from_timestamp_micros(micros).unwrap();
        let rows = vec![(at(3), "c"), (at(2), "b"), (at(1), "a")];
        let first = page(
            "orders",
            rows.clone(),
            2,
            |row| (row.0, row.1),
            |row| Ok(row.1.to_string()),
        )
        .unwrap();
        assert_eq!(first.data, ["c", "b"]);
        assert!(first.has_more);
        let cursor = Cursor::decode("orders", first.next_cursor.as_deref().unwrap()).unwrap();
        assert_eq!((cursor.created_at, cursor.id.as_str()), (at(2), "b"));
        let last = page(
            "orders",
            rows,
            3,
            |row| (row.0, row.1),
            |row| Ok(row.1.to_string()),
        )
        .unwrap();
        assert_eq!(last.data.len(), 3);
        assert!(!last.has_more);
        assert_eq!(last.next_cursor, None);
    }
}
