//! What the list endpoints share: query parameters read one by one (so each
//! bad one is a 400 `BAD_REQUEST_ERROR` naming its `field`), `limit`, the
//! opaque keyset cursor, and `created_from`/`created_to` ranges.
//!
//! Lists are newest first: `created_at desc, id desc`. A page holds `limit`
//! rows; one more is read to tell whether another page follows. The cursor
//! names the last row of a page (its `created_at` to the microsecond, as
//! stored, and its id), so the next page starts strictly after it: a walk
//! sees every object that existed when it started exactly once, however many
//! objects are created meanwhile (new ones sort before the walk's start).

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, Utc};
use paystream_command_api::http::error::ApiError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::routes::parse_as_of;

/// Default and largest `limit` of the cursor lists.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

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

/// One page of a cursor list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    /// Newest first.
    pub data: Vec<T>,
    /// True when another page follows.
    pub has_more: bool,
    /// Send as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from rows read with `limit + 1`: the extra row only says that
    /// more follow. `key` gives a row's `created_at` and id.
    pub fn from_rows<R>(
        list: &'static str,
        mut rows: Vec<R>,
        limit: i64,
        key: impl Fn(&R) -> (DateTime<Utc>, &str),
        view: impl FnMut(R) -> Result<T, ApiError>,
    ) -> Result<Self, ApiError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = rows.last().filter(|_| has_more).map(|last| {
            let (created_at, id) = key(last);
            Cursor::encode(list, created_at, id)
        });
        let data = rows.into_iter().map(view).collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            data,
            has_more,
            next_cursor,
        })
    }
}

/// Builds `select … where merchant_id = $1 [and filters] order by
/// created_at desc, <id> desc limit <limit + 1>` over one read-model table.
pub struct ListQuery<'args> {
    builder: sqlx::QueryBuilder<'args, sqlx::Postgres>,
    id_column: &'static str,
}

impl std::fmt::Debug for ListQuery<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ListQuery")
            .field("sql", &self.builder.sql())
            .finish()
    }
}

impl<'args> ListQuery<'args> {
    pub fn new(
        columns: &str,
        table: &'static str,
        id_column: &'static str,
        merchant: uuid::Uuid,
    ) -> Self {
        let mut builder = sqlx::QueryBuilder::new(format!(
            "select {columns} from {table} where merchant_id = "
        ));
        builder.push_bind(merchant);
        Self { builder, id_column }
    }

    /// `and <column> = <value>` when a value is given.
    pub fn equals(mut self, column: &'static str, value: Option<&str>) -> Self {
        if let Some(value) = value {
            self.builder
                .push(format!(" and {column} = "))
                .push_bind(value.to_owned());
        }
        self
    }

    pub fn created(mut self, range: CreatedRange) -> Self {
        if let Some(from) = range.from {
            self.builder.push(" and created_at >= ").push_bind(from);
        }
        if let Some(to) = range.to {
            self.builder.push(" and created_at < ").push_bind(to);
        }
        self
    }

    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        if let Some(cursor) = cursor {
            self.builder
                .push(format!(" and (created_at, {}) < (", self.id_column))
                .push_bind(cursor.created_at)
                .push(", ")
                .push_bind(cursor.id)
                .push(")");
        }
        self
    }

    pub async fn fetch(
        mut self,
        pool: &sqlx::PgPool,
        limit: i64,
    ) -> Result<Vec<sqlx::postgres::PgRow>, ApiError> {
        self.builder
            .push(format!(
                " order by created_at desc, {} desc limit ",
                self.id_column
            ))
            .push_bind(limit.saturating_add(1));
        Ok(self.builder.build().fetch_all(pool).await?)
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
        let page = Page::from_rows(
            "orders",
            rows.clone(),
            2,
            |row| (row.0, row.1),
            |row| Ok(row.1.to_string()),
        )
        .unwrap();
        assert_eq!(page.data, ["c", "b"]);
        assert!(page.has_more);
        let cursor = Cursor::decode("orders", page.next_cursor.as_deref().unwrap()).unwrap();
        assert_eq!((cursor.created_at, cursor.id.as_str()), (at(2), "b"));
        let last = Page::from_rows(
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
