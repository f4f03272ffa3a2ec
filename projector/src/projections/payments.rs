//! Projection `payments`: `rm_orders`, `rm_payments`, `rm_refunds`,
//! `rm_merchant_stats_daily` and `rm_merchant_funnel_daily`.
//!
//! Orders and payments are folded with the domain's `evolve` (see
//! [`fold_rows`]); refunds are copied out of their payment's state. Stats are
//! counted from the events applied, on the payment's creation day (UTC):
//! every payment created, succeeded and failed, and the succeeded volume.
//! The funnel is counted on the order's creation day (UTC): each order once
//! per step it has reached, from its state and that of the payment that
//! paid it: created; payment attempted (attempted or paid: an order can be
//! paid without an `OrderAttempted`); paid; that payment captured; and at
//! least one of its refunds processed (see [`Reached`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use paystream_domain::order::{Order, OrderAggregate};
use paystream_domain::payment::{Payment, PaymentAggregate, PaymentEvent};
use paystream_domain::PaymentId;
use paystream_store::RecordedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{fold_rows, state_json, text, ApplyError, Folded};

pub async fn apply(conn: &mut PgConnection, events: &[&RecordedEvent]) -> Result<(), ApplyError> {
    let orders =
        fold_rows::<OrderAggregate>(&mut *conn, "rm_orders", "order_id", "text", events).await?;
    write_orders(&mut *conn, &orders).await?;
    let payments =
        fold_rows::<PaymentAggregate>(&mut *conn, "rm_payments", "payment_id", "text", events)
            .await?;
    write_payments(&mut *conn, &payments).await?;
    write_refunds(&mut *conn, &payments).await?;
    write_stats(&mut *conn, &payments).await?;
    write_funnel(&mut *conn, &orders, &payments).await?;
    Ok(())
}

async fn write_orders(
    conn: &mut PgConnection,
    rows: &[Folded<'_, OrderAggregate>],
) -> Result<(), ApplyError> {
    let rows: Vec<_> = rows
        .iter()
        .filter_map(|row| row.state.as_ref().map(|order| (row, order)))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut merchants = Vec::with_capacity(rows.len());
    let mut statuses = Vec::with_capacity(rows.len());
    let mut amounts = Vec::with_capacity(rows.len());
    let mut currencies = Vec::with_capacity(rows.len());
    let mut created = Vec::with_capacity(rows.len());
    let mut updated = Vec::with_capacity(rows.len());
    let mut versions = Vec::with_capacity(rows.len());
    let mut states = Vec::with_capacity(rows.len());
    for (row, order) in rows {
        ids.push(row.key.clone());
        merchants.push(Uuid::from(order.merchant_id));
        statuses.push(text(&order.status));
        amounts.push(order.amount.amount_minor);
        currencies.push(order.amount.currency.code().to_owned());
        created.push(order.created_at);
        updated.push(order.updated_at);
        versions.push(row.version);
        states.push(state_json(order)?);
    }
    sqlx::query(
        "insert into rm_orders \
           (order_id, merchant_id, status, amount, currency, created_at, updated_at, version, state) \
         select * from unnest($1::text[], $2::uuid[], $3::text[], $4::int8[], $5::text[], \
                              $6::timestamptz[], $7::timestamptz[], $8::int8[], $9::text[]::jsonb[]) \
         on conflict (order_id) do update set \
           status = excluded.status, updated_at = excluded.updated_at, \
           version = excluded.version, state = excluded.state",
    )
    .bind(ids)
    .bind(merchants)
    .bind(statuses)
    .bind(amounts)
    .bind(currencies)
    .bind(created)
    .bind(updated)
    .bind(versions)
    .bind(states)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn payments_of<'a>(
    rows: &'a [Folded<'_, PaymentAggregate>],
) -> impl Iterator<Item = (&'a Folded<'a, PaymentAggregate>, &'a Payment)> {
    rows.iter()
        .filter_map(|row| row.state.as_ref().map(|payment| (row, payment)))
}

async fn write_payments(
    conn: &mut PgConnection,
    rows: &[Folded<'_, PaymentAggregate>],
) -> Result<(), ApplyError> {
    let mut ids = Vec::new();
    let mut merchants = Vec::new();
    let mut orders = Vec::new();
    let mut statuses = Vec::new();
    let mut methods = Vec::new();
    let mut amounts = Vec::new();
    let mut currencies = Vec::new();
    let mut captured = Vec::new();
    let mut captured_amounts = Vec::new();
    let mut refunded = Vec::new();
    let mut created = Vec::new();
    let mut updated = Vec::new();
    let mut versions = Vec::new();
    let mut states = Vec::new();
    for (row, payment) in payments_of(rows) {
        ids.push(row.key.clone());
        merchants.push(Uuid::from(payment.merchant_id));
        orders.push(payment.order_id.to_string());
        statuses.push(text(&payment.status));
        methods.push(payment.method.as_str().to_owned());
        amounts.push(payment.amount.amount_minor);
        currencies.push(payment.amount.currency.code().to_owned());
        captured.push(payment.captured);
        captured_amounts.push(payment.captured_amount);
        refunded.push(payment.amount_refunded);
        created.push(payment.created_at);
        updated.push(payment.updated_at);
        versions.push(row.version);
        states.push(state_json(payment)?);
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "insert into rm_payments \
           (payment_id, merchant_id, order_id, status, method, amount, currency, captured, \
            captured_amount, amount_refunded, created_at, updated_at, version, state) \
         select * from unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], \
                              $6::int8[], $7::text[], $8::bool[], $9::int8[], $10::int8[], \
                              $11::timestamptz[], $12::timestamptz[], $13::int8[], $14::text[]::jsonb[]) \
         on conflict (payment_id) do update set \
           status = excluded.status, captured = excluded.captured, \
           captured_amount = excluded.captured_amount, amount_refunded = excluded.amount_refunded, \
           updated_at = excluded.updated_at, version = excluded.version, state = excluded.state",
    )
    .bind(ids)
    .bind(merchants)
    .bind(orders)
    .bind(statuses)
    .bind(methods)
    .bind(amounts)
    .bind(currencies)
    .bind(captured)
    .bind(captured_amounts)
    .bind(refunded)
    .bind(created)
    .bind(updated)
    .bind(versions)
    .bind(states)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every refund of a payment this batch touched through a refund event.
async fn write_refunds(
    conn: &mut PgConnection,
    rows: &[Folded<'_, PaymentAggregate>],
) -> Result<(), ApplyError> {
    let mut ids = Vec::new();
    let mut payment_ids = Vec::new();
    let mut merchants = Vec::new();
    let mut statuses = Vec::new();
    let mut amounts = Vec::new();
    let mut currencies = Vec::new();
    let mut created = Vec::new();
    let mut processed: Vec<Option<DateTime<Utc>>> = Vec::new();
    let mut states = Vec::new();
    for (row, payment) in payments_of(rows) {
        let touched = row.applied.iter().any(|(event, _)| {
            matches!(
                event,
                PaymentEvent::RefundCreated(_) | PaymentEvent::RefundProcessed(_)
            )
        });
        if !touched {
            continue;
        }
        for refund in payment.refunds.values() {
            ids.push(refund.refund_id.to_string());
            payment_ids.push(row.key.clone());
            merchants.push(Uuid::from(payment.merchant_id));
            statuses.push(text(&refund.status));
            amounts.push(refund.amount);
            currencies.push(payment.amount.currency.code().to_owned());
            created.push(refund.created_at);
            processed.push(refund.processed_at);
            states.push(state_json(refund)?);
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "insert into rm_refunds \
           (refund_id, payment_id, merchant_id, status, amount, currency, created_at, \
            processed_at, state) \
         select * from unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::int8[], \
                              $6::text[], $7::timestamptz[], $8::timestamptz[], $9::text[]::jsonb[]) \
         on conflict (refund_id) do update set \
           status = excluded.status, processed_at = excluded.processed_at, state = excluded.state",
    )
    .bind(ids)
    .bind(payment_ids)
    .bind(merchants)
    .bind(statuses)
    .bind(amounts)
    .bind(currencies)
    .bind(created)
    .bind(processed)
    .bind(states)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    payments: i64,
    succeeded: i64,
    failed: i64,
    volume: i64,
}

async fn write_stats(
    conn: &mut PgConnection,
    rows: &[Folded<'_, PaymentAggregate>],
) -> Result<(), ApplyError> {
    let mut deltas: BTreeMap<(Uuid, NaiveDate, &'static str), Counts> = BTreeMap::new();
    for (row, payment) in payments_of(rows) {
        let key = (
            Uuid::from(payment.merchant_id),
            payment.created_at.date_naive(),
            payment.amount.currency.code(),
        );
        for (event, _) in &row.applied {
            let counts = deltas.entry(key).or_default();
            match event {
                PaymentEvent::PaymentCreated(_) => counts.payments += 1,
                PaymentEvent::PaymentSucceeded(_) => {
                    counts.succeeded += 1;
                    counts.volume += payment.amount.amount_minor;
                }
                PaymentEvent::PaymentFailed(_) => counts.failed += 1,
                _ => {}
            }
        }
    }
    deltas.retain(|_, c| c.payments != 0 || c.succeeded != 0 || c.failed != 0);
    if deltas.is_empty() {
        return Ok(());
    }
    let mut merchants = Vec::new();
    let mut days = Vec::new();
    let mut currencies = Vec::new();
    let (mut payments, mut succeeded, mut failed, mut volume) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((merchant, day, currency), counts) in deltas {
        merchants.push(merchant);
        days.push(day);
        currencies.push(currency.to_owned());
        payments.push(counts.payments);
        succeeded.push(counts.succeeded);
        failed.push(counts.failed);
        volume.push(counts.volume);
    }
    sqlx::query(
        "insert into rm_merchant_stats_daily \
           (merchant_id, day, currency, payments, succeeded, failed, volume) \
         select * from unnest($1::uuid[], $2::date[], $3::text[], $4::int8[], $5::int8[], \
                              $6::int8[], $7::int8[]) \
         on conflict (merchant_id, day, currency) do update set \
           payments = rm_merchant_stats_daily.payments + excluded.payments, \
           succeeded = rm_merchant_stats_daily.succeeded + excluded.succeeded, \
           failed = rm_merchant_stats_daily.failed + excluded.failed, \
           volume = rm_merchant_stats_daily.volume + excluded.volume",
    )
    .bind(merchants)
    .bind(days)
    .bind(currencies)
    .bind(payments)
    .bind(succeeded)
    .bind(failed)
    .bind(volume)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Funnel step counts, per merchant and order creation day (a change of
/// them, while a batch is applied).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Steps {
    orders_created: i64,
    payment_attempted: i64,
    paid: i64,
    captured: i64,
    refunded: i64,
}

impl Steps {
    /// What moving one order from `before` to `after` changes.
    fn between(before: Reached, after: Reached) -> Self {
        let delta = |before: bool, after: bool| i64::from(after) - i64::from(before);
        Self {
            orders_created: delta(before.created, after.created),
            payment_attempted: delta(before.attempted, after.attempted),
            paid: delta(before.paid, after.paid),
            captured: delta(before.captured, after.captured),
            refunded: delta(before.refunded, after.refunded),
        }
    }

    fn add(&mut self, other: Self) {
        self.orders_created += other.orders_created;
        self.payment_attempted += other.payment_attempted;
        self.paid += other.paid;
        self.captured += other.captured;
        self.refunded += other.refunded;
    }
}

/// The steps of the payment that paid an order: captured, and at least one
/// refund processed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Settled {
    captured: bool,
    refunded: bool,
}

impl Settled {
    fn of(payment: Option<&Payment>) -> Self {
        payment.map_or_else(Self::default, |payment| Self {
            captured: payment.captured,
            refunded: payment.amount_refunded > 0,
        })
    }
}

/// The funnel steps one order has reached: a function of its state and of
/// the state of the payment that paid it (`paid_by`), each step implying
/// the one before (refunded implies paid).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Reached {
    created: bool,
    attempted: bool,
    paid: bool,
    captured: bool,
    refunded: bool,
}

impl Reached {
    /// `payer`: the steps of the payment `order.paid_by` names, if projected.
    fn of(order: Option<&Order>, payer: Option<Settled>) -> Self {
        let Some(order) = order else {
            return Self::default();
        };
        let paid = order.paid_by.is_some();
        let payer = payer.filter(|_| paid).unwrap_or_default();
        Self {
            created: true,
            // Paid implies attempted, with or without an `OrderAttempted`.
            attempted: order.payment_attempted(),
            paid,
            captured: payer.captured,
            refunded: payer.refunded,
        }
    }
}

fn paid_by(order: Option<&Order>) -> Option<&str> {
    order?.paid_by.as_ref().map(PaymentId::as_str)
}

/// Counts each order once per step it has reached (see [`Reached`]): the
/// change between the batch's before and after states of every order it
/// touched, directly or through the payment that paid it. Each step is a
/// function of the current states, so the counters equal a recount of the
/// rows (migration 0009) whatever the batches and the history: an order
/// paid without an `OrderAttempted` counts as attempted, and a payment
/// counts as captured or refunded only for the order it paid.
async fn write_funnel(
    conn: &mut PgConnection,
    orders: &[Folded<'_, OrderAggregate>],
    payments: &[Folded<'_, PaymentAggregate>],
) -> Result<(), ApplyError> {
    // The payer steps of every payment this batch touched, before and after.
    let settled: HashMap<&str, (Settled, Settled)> = payments
        .iter()
        .map(|row| {
            let steps = (
                Settled::of(row.before.as_ref()),
                Settled::of(row.state.as_ref()),
            );
            (row.key.as_str(), steps)
        })
        .collect();
    // Those of the payers of this batch's orders that it did not touch, as
    // projected (`rm_payments`, unchanged by this batch).
    let untouched: Vec<&str> = orders
        .iter()
        .filter_map(|row| paid_by(row.state.as_ref()))
        .filter(|payment_id| !settled.contains_key(payment_id))
        .collect();
    let stored: HashMap<String, Settled> = if untouched.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as(
            "select payment_id, captured, amount_refunded > 0 from rm_payments \
             where payment_id = any($1)",
        )
        .bind(untouched)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id, captured, refunded): (String, bool, bool)| (id, Settled { captured, refunded }))
        .collect()
    };
    let payer = |payment_id: Option<&str>, after: bool| {
        let payment_id = payment_id?;
        match settled.get(payment_id) {
            Some((before_batch, after_batch)) => {
                Some(if after { *after_batch } else { *before_batch })
            }
            None => stored.get(payment_id).copied(),
        }
    };

    let mut deltas: BTreeMap<(Uuid, NaiveDate), Steps> = BTreeMap::new();
    let mut touched_orders = HashSet::new();
    for row in orders {
        let Some(order) = &row.state else { continue };
        touched_orders.insert(row.key.as_str());
        let before = row.before.as_ref();
        let steps = Steps::between(
            Reached::of(before, payer(paid_by(before), false)),
            Reached::of(Some(order), payer(paid_by(Some(order)), true)),
        );
        deltas
            .entry((Uuid::from(order.merchant_id), order.created_at.date_naive()))
            .or_default()
            .add(steps);
    }

    // A payment whose order this batch did not touch moves at most its own
    // steps (captured, refunded), and only if it paid the order. The order
    // (its day and payer) is as `rm_orders` holds it; one that is not
    // projected (its stream parked) was never counted, nor is its payment.
    let moved: Vec<(String, String, Settled, Settled)> = payments_of(payments)
        .filter(|(row, payment)| {
            let (before, after) = settled[row.key.as_str()];
            before != after && !touched_orders.contains(payment.order_id.as_str())
        })
        .map(|(row, payment)| {
            let (before, after) = settled[row.key.as_str()];
            (payment.order_id.to_string(), row.key.clone(), before, after)
        })
        .collect();
    if !moved.is_empty() {
        let ids: Vec<&str> = moved.iter().map(|(order, ..)| order.as_str()).collect();
        let projected: HashMap<String, (Uuid, DateTime<Utc>, Option<String>)> = sqlx::query_as(
            "select order_id, merchant_id, created_at, state->>'paid_by' from rm_orders \
             where order_id = any($1)",
        )
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(
            |(id, merchant, created, paid_by): (String, Uuid, DateTime<Utc>, Option<String>)| {
                (id, (merchant, created, paid_by))
            },
        )
        .collect();
        for (order_id, payment_id, before, after) in &moved {
            let Some((merchant, created, paid_by)) = projected.get(order_id) else {
                continue;
            };
            if paid_by.as_deref() != Some(payment_id.as_str()) {
                continue;
            }
            let paid = |settled: Settled| Reached {
                created: true,
                attempted: true,
                paid: true,
                captured: settled.captured,
                refunded: settled.refunded,
            };
            deltas
                .entry((*merchant, created.date_naive()))
                .or_default()
                .add(Steps::between(paid(*before), paid(*after)));
        }
    }
    deltas.retain(|_, steps| *steps != Steps::default());
    if deltas.is_empty() {
        return Ok(());
    }
    let mut merchants = Vec::new();
    let mut days = Vec::new();
    let mut columns: [Vec<i64>; 5] = Default::default();
    for ((merchant, day), steps) in deltas {
        merchants.push(merchant);
        days.push(day);
        for (column, count) in columns.iter_mut().zip([
            steps.orders_created,
            steps.payment_attempted,
            steps.paid,
            steps.captured,
            steps.refunded,
        ]) {
            column.push(count);
        }
    }
    let [created, attempted, paid, captured, refunded] = columns;
    sqlx::query(
        "insert into rm_merchant_funnel_daily \
           (merchant_id, day, orders_created, payment_attempted, paid, captured, refunded) \
         select * from unnest($1::uuid[], $2::date[], $3::int8[], $4::int8[], $5::int8[], \
                              $6::int8[], $7::int8[]) \
         on conflict (merchant_id, day) do update set \
           orders_created = rm_merchant_funnel_daily.orders_created + excluded.orders_created, \
           payment_attempted = rm_merchant_funnel_daily.payment_attempted + excluded.payment_attempted, \
           paid = rm_merchant_funnel_daily.paid + excluded.paid, \
           captured = rm_merchant_funnel_daily.captured + excluded.captured, \
           refunded = rm_merchant_funnel_daily.refunded + excluded.refunded",
    )
    .bind(merchants)
    .bind(days)
    .bind(created)
    .bind(attempted)
    .bind(paid)
    .bind(captured)
    .bind(refunded)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
