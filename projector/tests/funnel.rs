//! The conversion funnel never widens (issue 18): for every merchant and
//! day, orders created ≥ payment attempted ≥ paid ≥ captured, and refunded
//! ≤ paid. A property over random histories the domain allows, run through
//! the real store and the real PostgreSQL read models:
//!
//! * orders paid without an `OrderAttempted` (the acquirer claimed the order
//!   before the request that created the payment marked it attempted, the
//!   mark then a no-op; or the mark was lost), marks late or never;
//! * several payments per order racing for it (`ORDER_ALREADY_PAID`), an
//!   acquirer killed between its claim and the outcome, and a success
//!   recorded without a claim, which the payment aggregate alone allows;
//! * captures, refunds in parts, processed or left pending;
//! * delivered to the live step (`apply_live`) in random batches, from one
//!   event at a time up, with duplicates inside a batch, events republished
//!   later under new stream sequences, and whole batches redelivered.
//!
//! Checked after every live batch, at the end against a count from the
//! aggregates' states, against migration 0009's recount, and after a
//! rebuild from the store (which must equal the live tables).
//!
//! One database for every case, a merchant of its own per case, whose rows
//! alone are checked: a case applies its events after the previous ones, as
//! a long-lived projector does, and each rebuild replays the whole store.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use paystream_domain::order::{
    CreateOrder, MarkOrderAttempted, MarkOrderPaid, Order, OrderAggregate, OrderEvent, OrderStatus,
};
use paystream_domain::payment::{
    CapturePayment, CreatePayment, Payment, PaymentAggregate, PaymentMethodInput, PaymentStatus,
    ProcessRefund, RecordPaymentFailure, RecordPaymentSuccess, RequestRefund,
};
use paystream_domain::{
    Aggregate, Currency, DomainError, MerchantId, Money, OrderId, PaymentId, RefundId,
};
use paystream_projector::apply::{apply_live, checkpoint, Delivered};
use paystream_projector::rebuild::rebuild;
use paystream_projector::Projection;
use paystream_store::runner::{self, CommandError};
use paystream_store::{EventMetadata, EventStore, PgEventStore, Position, RecordedEvent};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{wait_until, TestDatabase};
use uuid::Uuid;

const CASES: u32 = 24;
const AMOUNT: i64 = 10_000;
/// The migration that recounts the funnel from the rows.
const RECOUNT: &str =
    include_str!("../../platform/store/migrations/0009_merchant_funnel_recount.sql");

/// What the services do, as commands on the aggregates.
#[derive(Debug, Clone)]
enum Op {
    /// `POST /payments`: the payment, then (if `mark`) the order's
    /// attempted mark right away.
    Pay {
        order: usize,
        mark: bool,
    },
    /// The attempted mark of a payment, late (after the acquirer paid the
    /// order it is a no-op), or again.
    MarkAttempted {
        payment: usize,
    },
    /// The acquirer (`acquirer::record`): on success it claims the order,
    /// then records the success, or `ORDER_ALREADY_PAID` if another payment
    /// holds the order; `crash` stops it after the claim (a redelivery
    /// finishes). A failure is a success if the payment holds the order.
    Acquire {
        payment: usize,
        success: bool,
        crash: bool,
    },
    /// A success recorded without a claim: the payment aggregate alone
    /// allows it (its order may then be paid by another payment, or later).
    SucceedUnclaimed {
        payment: usize,
    },
    Capture {
        payment: usize,
        full: bool,
    },
    Refund {
        payment: usize,
        tenths: i64,
    },
    ProcessRefund {
        refund: usize,
    },
}

#[derive(Debug, Clone)]
struct Case {
    /// Each order's creation: days and minutes after the first day.
    orders: Vec<(i64, i64)>,
    ops: Vec<Op>,
    /// Seeds the delivery: batch cuts, duplicates, redeliveries.
    delivery: u64,
    max_batch: usize,
}

fn op() -> impl Strategy<Value = Op> {
    let index = 0usize..4;
    prop_oneof![
        4 => (index.clone(), prop::bool::weighted(0.5))
            .prop_map(|(order, mark)| Op::Pay { order, mark }),
        2 => index.clone().prop_map(|payment| Op::MarkAttempted { payment }),
        6 => (index.clone(), prop::bool::weighted(0.8), prop::bool::weighted(0.15))
            .prop_map(|(payment, success, crash)| Op::Acquire { payment, success, crash }),
        1 => index.clone().prop_map(|payment| Op::SucceedUnclaimed { payment }),
        2 => (index.clone(), any::<bool>())
            .prop_map(|(payment, full)| Op::Capture { payment, full }),
        3 => (index.clone(), 1i64..=10).prop_map(|(payment, tenths)| Op::Refund { payment, tenths }),
        3 => index.prop_map(|refund| Op::ProcessRefund { refund }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((0i64..3, 0i64..1440), 1..6),
        prop::collection::vec(op(), 0..48),
        any::<u64>(),
        1usize..=6,
    )
        .prop_map(|(orders, ops, delivery, max_batch)| Case {
            orders,
            ops,
            delivery,
            max_batch,
        })
}

/// How often the generated histories hit the interesting shapes.
#[derive(Debug, Default)]
struct Coverage {
    paid_without_attempted: AtomicUsize,
    captured: AtomicUsize,
    refunded: AtomicUsize,
    duplicates: AtomicUsize,
}

fn metadata(merchant: MerchantId, actor: &str) -> EventMetadata {
    EventMetadata {
        merchant_id: Some(*merchant.as_uuid()),
        causation_id: None,
        correlation_id: Some(Uuid::now_v7()),
        actor: actor.to_owned(),
        idempotency: None,
    }
}

/// Runs one command; a refusal by the domain is `None` (the history only
/// holds what the domain allows).
async fn run<A, F>(
    store: &PgEventStore,
    id: impl std::fmt::Display,
    metadata: &EventMetadata,
    command: F,
) -> Option<runner::Executed<A>>
where
    A: Aggregate,
    F: FnMut(&A::State) -> Result<A::Command, DomainError>,
{
    match runner::execute::<A, F>(store, id, metadata, command).await {
        Ok(executed) => Some(executed),
        Err(CommandError::Rejected(_)) => None,
        Err(error) => panic!("command failed: {error}"),
    }
}

async fn load_order(store: &PgEventStore, order_id: &OrderId) -> Order {
    runner::load::<OrderAggregate>(store, order_id)
        .await
        .expect("load the order")
        .state
        .expect("the order exists")
}

async fn load_payment(store: &PgEventStore, payment_id: &PaymentId) -> Payment {
    runner::load::<PaymentAggregate>(store, payment_id)
        .await
        .expect("load the payment")
        .state
        .expect("the payment exists")
}

fn pick<T>(items: &[T], index: usize) -> Option<&T> {
    (!items.is_empty()).then(|| &items[index % items.len()])
}

/// Builds the case's history in the store; returns its orders.
async fn record(store: &PgEventStore, merchant: MerchantId, case: &Case) -> Vec<OrderId> {
    let merchant_meta = metadata(merchant, "merchant");
    let acquirer = metadata(merchant, "system:acquirer");
    let first_day: DateTime<Utc> = "2025-03-01T00:00:00Z".parse().unwrap();
    let mut orders = Vec::new();
    for (days, minutes) in &case.orders {
        let order_id = OrderId::from_random_bytes(rand::random());
        let at = first_day + TimeDelta::days(*days) + TimeDelta::minutes(*minutes);
        run::<OrderAggregate, _>(store, &order_id, &merchant_meta, |_| {
            Ok(CreateOrder {
                order_id: order_id.clone(),
                merchant_id: merchant,
                amount: Money::new(AMOUNT, Currency::INR),
                receipt: None,
                notes: None,
                at,
            }
            .into())
        })
        .await
        .expect("a valid order is created");
        orders.push(order_id);
    }
    let mut payments: Vec<(PaymentId, OrderId)> = Vec::new();
    let mut refunds: Vec<(PaymentId, RefundId)> = Vec::new();
    for op in &case.ops {
        let now = Utc::now();
        match op {
            Op::Pay { order, mark } => {
                let order_id = pick(&orders, *order).unwrap().clone();
                let order = load_order(store, &order_id).await;
                let payment_id = PaymentId::from_random_bytes(rand::random());
                let created =
                    run::<PaymentAggregate, _>(store, &payment_id, &merchant_meta, |_| {
                        Ok(CreatePayment {
                            payment_id: payment_id.clone(),
                            merchant_id: merchant,
                            order_id: order_id.clone(),
                            amount: order.amount,
                            order_paid: order.is_paid(),
                            method: PaymentMethodInput::Upi {
                                vpa: "shopper@okbank".into(),
                            },
                            current_year: 2025,
                            current_month: 3,
                            at: now,
                        }
                        .into())
                    })
                    .await;
                if created.is_none() {
                    continue;
                }
                if *mark {
                    run::<OrderAggregate, _>(store, &order_id, &merchant_meta, |_| {
                        Ok(MarkOrderAttempted {
                            payment_id: payment_id.clone(),
                            at: now,
                        }
                        .into())
                    })
                    .await;
                }
                payments.push((payment_id, order_id));
            }
            Op::MarkAttempted { payment } => {
                let Some((payment_id, order_id)) = pick(&payments, *payment) else {
                    continue;
                };
                run::<OrderAggregate, _>(store, order_id, &merchant_meta, |_| {
                    Ok(MarkOrderAttempted {
                        payment_id: payment_id.clone(),
                        at: now,
                    }
                    .into())
                })
                .await;
            }
            Op::Acquire {
                payment,
                success,
                crash,
            } => {
                let Some((payment_id, order_id)) = pick(&payments, *payment) else {
                    continue;
                };
                if load_payment(store, payment_id).await.status != PaymentStatus::Pending {
                    continue; // a redelivery: already recorded
                }
                let claimed =
                    load_order(store, order_id).await.paid_by.as_ref() == Some(payment_id);
                let success = if *success {
                    let claim =
                        runner::execute::<OrderAggregate, _>(store, order_id, &acquirer, |_| {
                            Ok(MarkOrderPaid {
                                payment_id: payment_id.clone(),
                                at: now,
                            }
                            .into())
                        })
                        .await;
                    match claim {
                        Ok(_) if *crash => continue,
                        Ok(_) => true,
                        Err(CommandError::Rejected(DomainError::OrderAlreadyPaid)) => false,
                        Err(error) => panic!("claim failed: {error}"),
                    }
                } else {
                    claimed
                };
                run::<PaymentAggregate, _>(store, payment_id, &acquirer, |_| {
                    Ok(if success {
                        RecordPaymentSuccess { at: now }.into()
                    } else {
                        RecordPaymentFailure {
                            error_code: "PAYMENT_FAILED".into(),
                            error_description: "declined".into(),
                            at: now,
                        }
                        .into()
                    })
                })
                .await;
            }
            Op::SucceedUnclaimed { payment } => {
                let Some((payment_id, _)) = pick(&payments, *payment) else {
                    continue;
                };
                run::<PaymentAggregate, _>(store, payment_id, &acquirer, |_| {
                    Ok(RecordPaymentSuccess { at: now }.into())
                })
                .await;
            }
            Op::Capture { payment, full } => {
                let Some((payment_id, _)) = pick(&payments, *payment) else {
                    continue;
                };
                let amount = if *full { AMOUNT } else { AMOUNT / 3 };
                run::<PaymentAggregate, _>(store, payment_id, &merchant_meta, |_| {
                    Ok(CapturePayment { amount, at: now }.into())
                })
                .await;
            }
            Op::Refund { payment, tenths } => {
                let Some((payment_id, _)) = pick(&payments, *payment) else {
                    continue;
                };
                let refund_id = RefundId::from_random_bytes(rand::random());
                let refunded =
                    run::<PaymentAggregate, _>(store, payment_id, &merchant_meta, |state| {
                        let left = state.as_ref().map_or(0, Payment::refundable_amount);
                        Ok(RequestRefund {
                            refund_id: refund_id.clone(),
                            amount: (left * tenths / 10).max(1),
                            reason: None,
                            at: now,
                        }
                        .into())
                    })
                    .await;
                if refunded.is_some() {
                    refunds.push((payment_id.clone(), refund_id));
                }
            }
            Op::ProcessRefund { refund } => {
                let Some((payment_id, refund_id)) = pick(&refunds, *refund) else {
                    continue;
                };
                run::<PaymentAggregate, _>(store, payment_id, &acquirer, |_| {
                    Ok(ProcessRefund {
                        refund_id: refund_id.clone(),
                        at: now,
                    }
                    .into())
                })
                .await;
            }
        }
    }
    orders
}

type Funnel = BTreeMap<NaiveDate, [i64; 5]>;

async fn funnel(store: &PgEventStore, merchant: MerchantId) -> Funnel {
    sqlx::query_as::<_, (NaiveDate, i64, i64, i64, i64, i64)>(
        "select day, orders_created, payment_attempted, paid, captured, refunded \
         from rm_merchant_funnel_daily where merchant_id = $1",
    )
    .bind(Uuid::from(merchant))
    .fetch_all(store.pool())
    .await
    .expect("read the funnel")
    .into_iter()
    .map(|(day, a, b, c, d, e)| (day, [a, b, c, d, e]))
    .collect()
}

/// Each step at most the step before, per day and over the whole period.
fn assert_narrows(funnel: &Funnel, when: &str) {
    let mut total = [0i64; 5];
    for (day, steps) in funnel {
        for (sum, step) in total.iter_mut().zip(steps) {
            *sum += step;
        }
        check_steps(steps, &format!("{when}, {day}"));
    }
    check_steps(&total, &format!("{when}, all days"));
}

fn check_steps(steps: &[i64; 5], when: &str) {
    let [created, attempted, paid, captured, refunded] = *steps;
    assert!(
        created >= attempted
            && attempted >= paid
            && paid >= captured
            && paid >= refunded
            && captured >= 0
            && refunded >= 0,
        "{when}: the funnel widens: created {created}, payment attempted {attempted}, \
         paid {paid}, captured {captured}, refunded {refunded}"
    );
}

/// The funnel the definition gives, from the aggregates' states: each order
/// once per step reached, the last two by the payment that paid it.
async fn expected(store: &PgEventStore, orders: &[OrderId], coverage: &Coverage) -> Funnel {
    let mut funnel = Funnel::new();
    for order_id in orders {
        let order = load_order(store, order_id).await;
        let payer = match &order.paid_by {
            Some(payment_id) => Some(load_payment(store, payment_id).await),
            None => None,
        };
        let steps = [
            true,
            order.status != OrderStatus::Created,
            order.paid_by.is_some(),
            payer.as_ref().is_some_and(|p| p.captured),
            payer.as_ref().is_some_and(|p| p.amount_refunded > 0),
        ];
        let counts = funnel.entry(order.created_at.date_naive()).or_default();
        for (count, reached) in counts.iter_mut().zip(steps) {
            *count += i64::from(reached);
        }
        if steps[3] {
            coverage.captured.fetch_add(1, Ordering::Relaxed);
        }
        if steps[4] {
            coverage.refunded.fetch_add(1, Ordering::Relaxed);
        }
    }
    funnel
}

/// Whether the order's history has a payment without an `OrderAttempted`.
async fn paid_without_attempted(store: &PgEventStore, order_id: &OrderId) -> bool {
    let stream = runner::stream_of::<OrderAggregate>(order_id).unwrap();
    let mut attempted = false;
    let mut paid = false;
    runner::read_events::<OrderAggregate>(store, &stream, |_, event| match event {
        OrderEvent::OrderAttempted(_) => attempted = true,
        OrderEvent::OrderPaid(_) => paid = true,
        OrderEvent::OrderCreated(_) => {}
    })
    .await
    .unwrap();
    paid && !attempted
}

/// The live step, as the projector's consumer drives it: the case's events
/// (everything after the checkpoint) in random batches, with duplicates and
/// redeliveries; the funnel checked after every batch.
async fn deliver(store: &PgEventStore, merchant: MerchantId, case: &Case, coverage: &Coverage) {
    let pool = store.pool();
    let (position, sequence) = checkpoint(pool, Projection::Payments).await.unwrap();
    // Every event of the case below the horizon (other transactions in the
    // cluster may hold it back a moment).
    let last: i64 = sqlx::query_scalar("select coalesce(max(position), 0) from events")
        .fetch_one(pool)
        .await
        .unwrap();
    wait_until(
        std::time::Duration::from_secs(120),
        "the store's horizon to pass the case's events",
        || async { (store.horizon().await.unwrap().0 > last).then_some(()) },
    )
    .await;
    let events = store
        .read_all(Position(position), 100_000)
        .await
        .expect("read the log");
    let mut rng = StdRng::seed_from_u64(case.delivery);
    let mut messages: Vec<Delivered> = Vec::new();
    let mut next = sequence;
    let mut message = |event: &RecordedEvent, messages: &mut Vec<Delivered>| {
        next += 1;
        messages.push(Delivered {
            stream_sequence: next,
            event: event.clone(),
        });
    };
    for (index, event) in events.iter().enumerate() {
        message(event, &mut messages);
        if rng.gen_bool(0.1) {
            // Delivered twice in a row (the same batch, most often).
            message(event, &mut messages);
            coverage.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        if index > 0 && rng.gen_bool(0.1) {
            // Republished later under a new stream sequence.
            message(&events[rng.gen_range(0..index)], &mut messages);
            coverage.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }
    let mut rest = &messages[..];
    while !rest.is_empty() {
        let size = rng.gen_range(1..=case.max_batch).min(rest.len());
        let (batch, after) = rest.split_at(size);
        apply_live(pool, &[Projection::Payments], batch)
            .await
            .expect("apply a batch");
        if rng.gen_bool(0.15) {
            // Redelivered whole (no ack reached the server): skipped.
            let outcomes = apply_live(pool, &[Projection::Payments], batch)
                .await
                .expect("apply a redelivered batch");
            assert_eq!(outcomes[0].applied, 0, "a redelivery applied again");
        }
        assert_narrows(&funnel(store, merchant).await, "live");
        rest = after;
    }
    let (_, sequence) = checkpoint(pool, Projection::Payments).await.unwrap();
    assert_eq!(
        sequence, next,
        "the checkpoint did not reach the last message"
    );
}

/// The merchant's rows in the `payments` projection's tables, one canonical
/// line per row. (Only the case's merchant: a failed case, while proptest
/// shrinks it, leaves rows of its own behind.)
async fn dump(store: &PgEventStore, merchant: MerchantId) -> BTreeMap<&'static str, Vec<String>> {
    let mut dump = BTreeMap::new();
    for table in Projection::Payments.tables() {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "select to_jsonb(t)::text from {table} t where merchant_id = $1 order by 1"
        ))
        .bind(Uuid::from(merchant))
        .fetch_all(store.pool())
        .await
        .expect("dump");
        dump.insert(*table, rows);
    }
    dump
}

async fn check_case(store: &PgEventStore, case: &Case, coverage: &Coverage) {
    let merchant = MerchantId::from_uuid(Uuid::now_v7());
    let orders = record(store, merchant, case).await;
    for order_id in &orders {
        if paid_without_attempted(store, order_id).await {
            coverage
                .paid_without_attempted
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    // Live.
    deliver(store, merchant, case, coverage).await;
    let live = funnel(store, merchant).await;
    assert_narrows(&live, "live, at the end");
    assert_eq!(
        live,
        expected(store, &orders, coverage).await,
        "live: the funnel differs from the orders' states"
    );

    // Migration 0009's recount (of every merchant) gives the same rows.
    let before = dump(store, merchant).await;
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::raw_sql(RECOUNT)
        .execute(&mut *tx)
        .await
        .expect("migration 0009's recount");
    tx.commit().await.unwrap();
    assert_eq!(
        before["rm_merchant_funnel_daily"],
        dump(store, merchant).await["rm_merchant_funnel_daily"],
        "the recount differs from the live counters"
    );

    // A rebuild from the store.
    rebuild(store, &[Projection::Payments], false)
        .await
        .expect("rebuild");
    assert_narrows(&funnel(store, merchant).await, "rebuilt");
    let rebuilt = dump(store, merchant).await;
    for (table, rows) in &before {
        assert_eq!(rows, &rebuilt[table], "{table} differs after a rebuild");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_funnel_never_widens_live_or_rebuilt() {
    let runtime = runtime();
    let database = runtime.block_on(TestDatabase::create());
    let coverage = Coverage::default();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case(), |case| {
            runtime.block_on(check_case(&database.store, &case, &coverage));
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
    eprintln!("coverage: {coverage:?}");
    // The histories did reach the shapes that matter.
    assert!(coverage.paid_without_attempted.load(Ordering::Relaxed) > 0);
    assert!(coverage.captured.load(Ordering::Relaxed) > 0);
    assert!(coverage.refunded.load(Ordering::Relaxed) > 0);
    assert!(coverage.duplicates.load(Ordering::Relaxed) > 0);
}

/// The shapes the property found against the old projector, every run.
#[test]
fn the_funnel_counts_the_known_races() {
    let runtime = runtime();
    let database = runtime.block_on(TestDatabase::create());
    let coverage = Coverage::default();
    let one_order = |ops| Case {
        orders: vec![(0, 0)],
        ops,
        delivery: 7,
        max_batch: 1,
    };
    // Issue 18: the acquirer pays the order before (or instead of) the
    // request's attempted mark, which then is a no-op.
    let paid_first = one_order(vec![
        Op::Pay {
            order: 0,
            mark: false,
        },
        Op::Acquire {
            payment: 0,
            success: true,
            crash: false,
        },
        Op::MarkAttempted { payment: 0 },
    ]);
    // Two payments succeed without claiming the order and are captured and
    // refunded: neither paid it, so neither counts.
    let unclaimed = one_order(vec![
        Op::Pay {
            order: 0,
            mark: true,
        },
        Op::Pay {
            order: 0,
            mark: true,
        },
        Op::SucceedUnclaimed { payment: 0 },
        Op::SucceedUnclaimed { payment: 1 },
        Op::Capture {
            payment: 0,
            full: true,
        },
        Op::Capture {
            payment: 1,
            full: false,
        },
        Op::Refund {
            payment: 1,
            tenths: 5,
        },
        Op::ProcessRefund { refund: 0 },
    ]);
    // The acquirer dies between its claim and the outcome; the merchant
    // cannot capture until a redelivery records the success.
    let crashed = one_order(vec![
        Op::Pay {
            order: 0,
            mark: false,
        },
        Op::Acquire {
            payment: 0,
            success: true,
            crash: true,
        },
        Op::Capture {
            payment: 0,
            full: true,
        },
        Op::Acquire {
            payment: 0,
            success: false,
            crash: false,
        },
        Op::Capture {
            payment: 0,
            full: true,
        },
        Op::Refund {
            payment: 0,
            tenths: 10,
        },
        Op::ProcessRefund { refund: 0 },
    ]);
    for case in [paid_first, unclaimed, crashed] {
        runtime.block_on(check_case(&database.store, &case, &coverage));
    }
    assert_eq!(coverage.paid_without_attempted.load(Ordering::Relaxed), 2);
    assert_eq!(coverage.captured.load(Ordering::Relaxed), 1);
    assert_eq!(coverage.refunded.load(Ordering::Relaxed), 1);
}
