//! `GET /api/v1/stats[?from=&to=&currency=]`: the dashboard's totals, from
//! the `payments` projection's `rm_merchant_stats_daily` (one row per UTC day
//! of a payment's creation and currency).
//!
//! * Counts (`total_transactions`, `succeeded`, `failed`, `pending`) are
//!   payments created in the range, over every currency.
//! * Money is never added across currencies: `total_amount` is the volume of
//!   succeeded payments in `currency` (the `currency` asked for; else the
//!   merchant's most used one in the range, ties to the larger volume, then
//!   the code; `INR` when there are none), and `by_currency` lists each.
//! * `success_rate` is a percentage with two decimals (half up):
//!   succeeded ÷ all payments created, as the original dashboard showed it
//!   (pending payments count in the denominator); 0 with no payments.

use paystream_domain::api::FUNNEL_STAGES;
pub use paystream_domain::api::{CurrencyStats, DayStats, Funnel, FunnelStage, Stats};
use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use paystream_domain::api::ErrorBody;
use paystream_domain::Currency;
use paystream_kit::http::error::ApiError;
use sqlx::Row;

use crate::auth::MerchantReader;
use crate::freshness::MinPosition;
use crate::listing::{corrupt_row, Params};
use crate::startup::QueryState;

pub fn router() -> Router<QueryState> {
    Router::new()
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/stats/funnel", get(funnel))
}

/// Counts and volume of one set of payments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub payments: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub volume: i64,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.payments = self.payments.saturating_add(other.payments);
        self.succeeded = self.succeeded.saturating_add(other.succeeded);
        self.failed = self.failed.saturating_add(other.failed);
        self.volume = self.volume.saturating_add(other.volume);
    }

    fn pending(&self) -> i64 {
        (self.payments - self.succeeded - self.failed).max(0)
    }
}

/// `part / whole` in percent, rounded half up to two decimals, computed in
/// integers (0 when `whole` is 0 or less).
pub fn percent(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        return 0.0;
    }
    let (part, whole) = (i128::from(part.max(0)), i128::from(whole));
    let hundredths = (part * 10_000 * 2 + whole) / (2 * whole);
    // At most 10 000 (or a few times that if counts disagree): exact in f64.
    hundredths as f64 / 100.0
}

/// One count per step of [`FUNNEL_STAGES`], in its order.
pub type FunnelCounts = [i64; FUNNEL_STAGES.len()];

/// The funnel of `counts`.
pub fn funnel_of(from: Option<NaiveDate>, to: Option<NaiveDate>, counts: FunnelCounts) -> Funnel {
    let count_of = |name: &str| {
        FUNNEL_STAGES
            .iter()
            .position(|(stage, _)| *stage == name)
            .map_or(0, |index| counts[index])
    };
    let created = counts[0];
    let stages = FUNNEL_STAGES
        .iter()
        .zip(counts)
        .map(|((stage, of), count)| FunnelStage {
            stage: (*stage).to_owned(),
            count,
            of: of.map(str::to_owned),
            rate: of.map_or(100.0, |of| percent(count, count_of(of))),
            of_created: percent(count, created),
        })
        .collect();
    Funnel {
        from,
        to,
        stages,
        conversion_rate: percent(count_of("paid"), created),
    }
}

fn currency_stats(currency: &str, totals: &Totals) -> CurrencyStats {
    CurrencyStats {
        currency: currency.to_owned(),
        total_transactions: totals.payments,
        succeeded: totals.succeeded,
        failed: totals.failed,
        pending: totals.pending(),
        total_amount: totals.volume,
        success_rate: percent(totals.succeeded, totals.payments),
    }
}

/// Sums the daily rows (any order); `currency` picks `total_amount`'s.
pub fn from_days(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    currency: Option<&str>,
    mut days: Vec<(NaiveDate, String, Totals)>,
) -> Stats {
    days.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut all = Totals::default();
    let mut per_currency: BTreeMap<String, Totals> = BTreeMap::new();
    for (_, code, totals) in &days {
        all.add(totals);
        per_currency.entry(code.clone()).or_default().add(totals);
    }
    let mut currencies: Vec<(String, Totals)> = per_currency.into_iter().collect();
    currencies.sort_by(|(a_code, a), (b_code, b)| {
        b.payments
            .cmp(&a.payments)
            .then(b.volume.cmp(&a.volume))
            .then(a_code.cmp(b_code))
    });
    let currency = currency
        .map(str::to_owned)
        .or_else(|| currencies.first().map(|(code, _)| code.clone()))
        .unwrap_or_else(|| Currency::default().code().to_owned());
    let total_amount = currencies
        .iter()
        .find(|(code, _)| *code == currency)
        .map_or(0, |(_, totals)| totals.volume);
    Stats {
        from,
        to,
        total_transactions: all.payments,
        succeeded: all.succeeded,
        failed: all.failed,
        pending: all.pending(),
        total_amount,
        currency,
        success_rate: percent(all.succeeded, all.payments),
        by_currency: currencies
            .iter()
            .map(|(code, totals)| currency_stats(code, totals))
            .collect(),
        per_day: days
            .into_iter()
            .map(|(date, currency, totals)| DayStats {
                date,
                currency,
                total_transactions: totals.payments,
                succeeded: totals.succeeded,
                failed: totals.failed,
                total_amount: totals.volume,
            })
            .collect(),
    }
}

/// `from` and `to`: UTC days, inclusive, `to` not before `from`.
fn period(params: &Params) -> Result<(Option<NaiveDate>, Option<NaiveDate>), ApiError> {
    let from = params.day("from")?;
    let to = params.day("to")?;
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(ApiError::bad_request("to must not be before from").with_field("to"));
        }
    }
    Ok((from, to))
}

/// Totals, success rate and per-day volume of the merchant's payments.
#[utoipa::path(
    get,
    path = "/api/v1/stats",
    tag = "stats",
    params(
        ("from" = Option<String>, Query, description = "First UTC day, YYYY-MM-DD (inclusive)"),
        ("to" = Option<String>, Query, description = "Last UTC day, YYYY-MM-DD (inclusive)"),
        ("currency" = Option<String>, Query, description = "ISO 4217: only payments in it"),
        ("X-Min-Position" = Option<i64>, Header, description = "An `X-Event-Position`: wait (at most 5 s) until the totals reflect it"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The statistics", body = Stats),
        (status = 400, description = "Bad `from`, `to` or `currency` (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 503, description = "`PROJECTION_BEHIND`: the read model did not reach `X-Min-Position` in time", body = ErrorBody),
    )
)]
pub async fn stats(
    State(state): State<QueryState>,
    merchant: MerchantReader,
    min_position: MinPosition,
    params: Params,
) -> Result<Json<Stats>, ApiError> {
    let (from, to) = period(&params)?;
    let currency = params
        .get("currency")
        .map(|code| {
            Currency::from_code(code).map_err(|_| {
                ApiError::bad_request("currency must be an ISO 4217 code, e.g. INR")
                    .with_field("currency")
            })
        })
        .transpose()?;
    let pool = state.store.pool();
    min_position.wait(&state.store, "payments").await?;
    let rows = sqlx::query(
        "select day, currency, payments, succeeded, failed, volume \
         from rm_merchant_stats_daily \
         where merchant_id = $1 \
           and ($2::date is null or day >= $2) and ($3::date is null or day <= $3) \
           and ($4::text is null or currency = $4)",
    )
    .bind(uuid::Uuid::from(merchant.merchant_id))
    .bind(from)
    .bind(to)
    .bind(currency.map(|currency| currency.code()))
    .fetch_all(pool)
    .await?;
    let days = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get("day")?,
                row.try_get("currency")?,
                Totals {
                    payments: row.try_get("payments")?,
                    succeeded: row.try_get("succeeded")?,
                    failed: row.try_get("failed")?,
                    volume: row.try_get("volume")?,
                },
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(|error| corrupt_row("rm_merchant_stats_daily", error))?;
    Ok(Json(from_days(
        from,
        to,
        currency.map(|currency| currency.code()),
        days,
    )))
}

/// The conversion funnel of the merchant's orders created in a period.
///
/// A cohort: the orders created in the period (UTC days), and of those,
/// the ones with a payment attempted, paid, whose payment was captured, and
/// with at least one refund processed, whenever that happened. The
/// `payments` projection counts each step on the order's creation day in
/// `rm_merchant_funnel_daily`, so a read sums one row per day.
#[utoipa::path(
    get,
    path = "/api/v1/stats/funnel",
    tag = "stats",
    params(
        ("from" = Option<String>, Query, description = "First UTC day of the orders' creation, YYYY-MM-DD (inclusive)"),
        ("to" = Option<String>, Query, description = "Last UTC day of the orders' creation, YYYY-MM-DD (inclusive)"),
        ("X-Min-Position" = Option<i64>, Header, description = "An `X-Event-Position`: wait (at most 5 s) until the funnel reflects it"),
    ),
    security(("api_key" = [], "api_secret" = []), ("basic" = []), ("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The funnel: orders created, payment attempted, paid, captured, refunded", body = Funnel),
        (status = 400, description = "Bad `from` or `to` (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing, wrong or suspended credentials", body = ErrorBody),
        (status = 503, description = "`PROJECTION_BEHIND`: the read model did not reach `X-Min-Position` in time", body = ErrorBody),
    )
)]
pub async fn funnel(
    State(state): State<QueryState>,
    merchant: MerchantReader,
    min_position: MinPosition,
    params: Params,
) -> Result<Json<Funnel>, ApiError> {
    let (from, to) = period(&params)?;
    min_position.wait(&state.store, "payments").await?;
    let row = sqlx::query(
        "select coalesce(sum(orders_created), 0)::int8 as orders_created, \
                coalesce(sum(payment_attempted), 0)::int8 as payment_attempted, \
                coalesce(sum(paid), 0)::int8 as paid, \
                coalesce(sum(captured), 0)::int8 as captured, \
                coalesce(sum(refunded), 0)::int8 as refunded \
         from rm_merchant_funnel_daily \
         where merchant_id = $1 \
           and ($2::date is null or day >= $2) and ($3::date is null or day <= $3)",
    )
    .bind(uuid::Uuid::from(merchant.merchant_id))
    .bind(from)
    .bind(to)
    .fetch_one(state.store.pool())
    .await?;
    let mut counts: FunnelCounts = [0; FUNNEL_STAGES.len()];
    for (count, (stage, _)) in counts.iter_mut().zip(FUNNEL_STAGES) {
        *count = row
            .try_get(stage)
            .map_err(|error| corrupt_row("rm_merchant_funnel_daily", error))?;
    }
    Ok(Json(funnel_of(from, to, counts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn percent_is_rounded_half_up_to_two_decimals() {
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(percent(2, 3), 66.67);
        assert_eq!(percent(1, 3), 33.33);
        assert_eq!(percent(1, 8), 12.5);
        assert_eq!(percent(20, 21), 95.24);
        assert_eq!(percent(5, 5), 100.0);
        // 1/16 = 6.25 exactly; 1/1600 = 0.0625 → 0.06; 1/800 = 0.125 → 0.13.
        assert_eq!(percent(1, 16), 6.25);
        assert_eq!(percent(1, 1600), 0.06);
        assert_eq!(percent(1, 800), 0.13);
        assert_eq!(percent(-1, 8), 0.0);
    }

    #[test]
    fn the_funnel_measures_each_step_against_its_own_base() {
        let funnel = funnel_of(None, None, [10, 8, 6, 3, 2]);
        let steps: Vec<_> = funnel
            .stages
            .iter()
            .map(|stage| {
                (
                    stage.stage.as_str(),
                    stage.count,
                    stage.of.as_deref(),
                    stage.rate,
                )
            })
            .collect();
        assert_eq!(
            steps,
            [
                ("orders_created", 10, None, 100.0),
                ("payment_attempted", 8, Some("orders_created"), 80.0),
                ("paid", 6, Some("payment_attempted"), 75.0),
                ("captured", 3, Some("paid"), 50.0),
                ("refunded", 2, Some("paid"), 33.33),
            ]
        );
        assert_eq!(funnel.stages[4].of_created, 20.0);
        assert_eq!(funnel.conversion_rate, 60.0);

        let empty = funnel_of(None, None, [0; 5]);
        assert_eq!(empty.stages[0].rate, 100.0);
        assert!(empty.stages[1..].iter().all(|stage| stage.rate == 0.0));
        assert_eq!(empty.conversion_rate, 0.0);
    }

    #[test]
    fn money_is_summed_per_currency_only() {
        let totals = |payments, succeeded, failed, volume| Totals {
            payments,
            succeeded,
            failed,
            volume,
        };
        let days = vec![
            (day("2025-01-02"), "USD".to_string(), totals(1, 1, 0, 700)),
            (
                day("2025-01-01"),
                "INR".to_string(),
                totals(3, 2, 1, 20_000),
            ),
            (day("2025-01-02"), "INR".to_string(), totals(2, 1, 0, 5_000)),
        ];
        let stats = from_days(None, None, None, days.clone());
        assert_eq!(stats.total_transactions, 6);
        assert_eq!((stats.succeeded, stats.failed, stats.pending), (4, 1, 1));
        assert_eq!(stats.currency, "INR");
        assert_eq!(stats.total_amount, 25_000);
        assert_eq!(stats.success_rate, 66.67);
        assert_eq!(stats.by_currency.len(), 2);
        assert_eq!(stats.by_currency[0].currency, "INR");
        assert_eq!(stats.by_currency[0].total_amount, 25_000);
        assert_eq!(stats.by_currency[1].total_amount, 700);
        assert_eq!(stats.by_currency[1].success_rate, 100.0);
        let order: Vec<_> = stats
            .per_day
            .iter()
            .map(|day| (day.date.to_string(), day.currency.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("2025-01-01".to_string(), "INR"),
                ("2025-01-02".to_string(), "INR"),
                ("2025-01-02".to_string(), "USD")
            ]
        );
        let usd = from_days(None, None, Some("USD"), days);
        assert_eq!((usd.currency.as_str(), usd.total_amount), ("USD", 700));
        let empty = from_days(None, None, None, Vec::new());
        assert_eq!((empty.currency.as_str(), empty.total_amount), ("INR", 0));
        assert_eq!(empty.success_rate, 0.0);
        assert!(empty.per_day.is_empty());
    }
}
