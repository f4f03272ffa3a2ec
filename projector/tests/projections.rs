//! The projector against real PostgreSQL and NATS JetStream: live read
//! models equal a rebuild from scratch after a randomized concurrent
//! workload; the ledger balances; kill -9, duplicate deliveries, poison
//! events, NATS restarts and lost database connections leave the models
//! consistent; `projector rebuild` swaps while the live projector runs.
//!
//! Each test has its own database, stream and consumers; every wait is
//! bounded.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use futures::future::join_all;
use paystream_domain::ledger::fee;
use paystream_domain::payment::PaymentAggregate;
use paystream_domain::MerchantId;
use paystream_projector::rebuild::rebuild;
use paystream_projector::Projection;
use paystream_store::runner;
use paystream_store::{EventMetadata, EventStore, ExpectedVersion, NewEvent, StreamId};
use serde_json::json;
use support::{assert_same, wait_until, workload, Harness, NatsServer};

const CATCH_UP: Duration = Duration::from_secs(60);

/// Merchants with different fee rates (0 and odd rates exercise rounding).
async fn merchants(harness: &Harness) -> Vec<MerchantId> {
    let mut merchants = Vec::new();
    for fee_bps in [0, 199, 250, 333] {
        merchants.push(workload::merchant(harness.store(), fee_bps).await);
    }
    merchants
}

/// `workers` concurrent workloads, so commits interleave across streams.
async fn concurrent_workload(
    harness: &Harness,
    merchants: &[MerchantId],
    workers: u64,
    each: usize,
    seed: u64,
) {
    join_all(
        (0..workers)
            .map(|worker| workload::run(harness.store(), merchants, each, seed * 100 + worker)),
    )
    .await;
}

fn seed() -> u64 {
    let seed = std::env::var("PAYSTREAM_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u16>)
        .into();
    eprintln!("workload seed {seed} (PAYSTREAM_TEST_SEED={seed} repeats it)");
    seed
}

/// Invariant 9 and the balance identity, from the read models: every
/// currency's postings sum to zero, the running balances equal the
/// postings, and each merchant's balance is captured − refunded − fees,
/// with the fees recomputed here from the payments and the merchant's rate.
async fn assert_ledger_balances(harness: &Harness) {
    let pool = harness.store().pool();
    let totals: Vec<(String, i64)> =
        sqlx::query_as("select currency, sum(amount)::int8 from ledger_postings group by currency")
            .fetch_all(pool)
            .await
            .unwrap();
    assert!(!totals.is_empty(), "the workload posted nothing");
    for (currency, total) in &totals {
        assert_eq!(*total, 0, "trial balance of {currency}");
    }
    let drift: i64 = sqlx::query_scalar(
        "select count(*) from ledger_balances b full join \
           (select account, currency, sum(amount)::int8 as total from ledger_postings \
            group by account, currency) p using (account, currency) \
         where b.balance is distinct from p.total",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(drift, 0, "running balances differ from the postings");

    let payments: Vec<(uuid::Uuid, String, i64, i64, i32)> = sqlx::query_as(
        "select p.merchant_id, p.currency, p.captured_amount, p.amount_refunded, m.fee_bps \
         from rm_payments p join rm_merchants m using (merchant_id)",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut expected: BTreeMap<(uuid::Uuid, String), i64> = BTreeMap::new();
    for (merchant, currency, captured, refunded, fee_bps) in payments {
        let charged = fee(captured, u32::try_from(fee_bps).unwrap());
        let returned = if captured == 0 {
            0
        } else {
            // Proportional to the refunded share, rounded down.
            i64::try_from(
                i128::from(charged) * i128::from(refunded.min(captured)) / i128::from(captured),
            )
            .unwrap()
        };
        *expected.entry((merchant, currency)).or_default() +=
            captured - refunded - (charged - returned);
    }
    let balances: Vec<(String, String, i64)> = sqlx::query_as(
        "select account, currency, balance from ledger_balances where account like 'merchant_payable:%'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (account, currency, balance) in &balances {
        let merchant: uuid::Uuid = account["merchant_payable:".len()..].parse().unwrap();
        assert_eq!(
            -balance,
            expected
                .get(&(merchant, currency.clone()))
                .copied()
                .unwrap_or(0),
            "balance of {account} in {currency}"
        );
    }
    for ((merchant, currency), amount) in expected.iter().filter(|(_, a)| **a != 0) {
        assert!(
            balances
                .iter()
                .any(|(a, c, _)| a.ends_with(&merchant.to_string()) && c == currency),
            "merchant {merchant} is owed {amount} {currency} but has no balance"
        );
    }
}

/// The funnel's day counters, kept event by event, equal the cohort counted
/// from the rows: per merchant and order creation day, the orders, those
/// attempted (or paid) and paid, and those whose paying payment was
/// captured and has a processed refund (as migration 0009 recounts them).
async fn assert_funnel_equals_rows(harness: &Harness) {
    type Days = Vec<(uuid::Uuid, chrono::NaiveDate, i64, i64, i64, i64, i64)>;
    let pool = harness.store().pool();
    let counted: Days = sqlx::query_as(
        "select o.merchant_id, (o.created_at at time zone 'UTC')::date as day, count(*), \
                count(*) filter (where o.status <> 'created' or o.state->>'paid_by' is not null), \
                count(*) filter (where o.state->>'paid_by' is not null), \
                count(p.payment_id) filter (where p.captured), \
                count(p.payment_id) filter (where p.amount_refunded > 0) \
         from rm_orders o \
         left join rm_payments p on p.payment_id = o.state->>'paid_by' \
         group by 1, 2 order by 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let kept: Days = sqlx::query_as(
        "select merchant_id, day, orders_created, payment_attempted, paid, captured, refunded \
         from rm_merchant_funnel_daily \
         where (orders_created, payment_attempted, paid, captured, refunded) <> (0, 0, 0, 0, 0) \
         order by 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(kept, counted);
    assert!(
        counted.iter().any(|day| day.5 > 0 && day.6 > 0),
        "the workload captured and refunded nothing: {counted:?}"
    );
}

/// Invariant 7 directly: each payment row's state is the fold of its stream.
async fn assert_rows_equal_folds(harness: &Harness) {
    let rows: Vec<(String, i64, serde_json::Value)> =
        sqlx::query_as("select payment_id, version, state from rm_payments")
            .fetch_all(harness.store().pool())
            .await
            .unwrap();
    assert!(!rows.is_empty());
    for (payment_id, version, state) in rows {
        let loaded = runner::load::<PaymentAggregate>(harness.store(), &payment_id)
            .await
            .unwrap();
        assert_eq!(
            version,
            i64::try_from(loaded.version).unwrap(),
            "{payment_id}"
        );
        assert_eq!(
            state,
            serde_json::to_value(&loaded.state).unwrap(),
            "{payment_id}"
        );
    }
}

#[tokio::test]
async fn live_models_equal_a_rebuild_after_a_random_concurrent_workload() {
    let mut harness = Harness::new().await;
    harness.start_relay();
    harness.start_projector().await;
    let merchants = merchants(&harness).await;
    concurrent_workload(&harness, &merchants, 4, 12, seed()).await;
    harness.wait_caught_up(CATCH_UP).await;

    let live = harness.dump().await;
    assert!(
        live["rm_payments"].len() >= 48,
        "{}",
        live["rm_payments"].len()
    );
    assert!(!live["ledger_entries"].is_empty());
    assert!(
        live["projection_parked"].is_empty(),
        "{:?}",
        live["projection_parked"]
    );
    assert_ledger_balances(&harness).await;
    assert_rows_equal_folds(&harness).await;
    assert_funnel_equals_rows(&harness).await;

    // Rebuild from the store while the live projector keeps running.
    let report = rebuild(harness.store(), &Projection::ALL, false)
        .await
        .unwrap();
    assert!(report.events > 0);
    assert_eq!(report.parked, 0);
    assert_same(&live, &harness.dump().await);

    // Live tailing continues after the swap: no gap, no duplicate.
    concurrent_workload(&harness, &merchants, 2, 5, seed()).await;
    harness.wait_caught_up(CATCH_UP).await;
    let live = harness.dump().await;
    rebuild(harness.store(), &Projection::ALL, false)
        .await
        .unwrap();
    assert_same(&live, &harness.dump().await);
    assert_ledger_balances(&harness).await;
    assert_funnel_equals_rows(&harness).await;
}

#[tokio::test]
async fn a_projector_killed_mid_batch_resumes_with_consistent_models() {
    let mut harness = Harness::new().await;
    harness.start_relay();
    let merchants = merchants(&harness).await;
    let store = harness.store().clone();
    let mut work = Box::pin(async move {
        join_all((0..3).map(|worker| workload::run(&store, &merchants, 25, seed() * 100 + worker)))
            .await
    });
    let mut behind_at_a_kill = false;
    // SIGKILL the binary three times while commands stream in, each time
    // once it has moved on since its (re)start.
    for _ in 0..3 {
        harness.start_projector_process();
        let started_at = harness.checkpoints().await;
        let progressed = wait_until(
            Duration::from_secs(30),
            "the projector to apply a batch",
            || async {
                let now = harness.checkpoints().await;
                (now != started_at && !now.is_empty()).then_some(now)
            },
        );
        tokio::select! {
            _ = &mut work => panic!("the workload ended before the kills"),
            now = progressed => {
                let head = harness.head().await;
                behind_at_a_kill |= now.values().any(|position| *position < head);
            }
        }
        harness.kill_projector_process();
    }
    work.await;
    harness.start_projector_process();
    harness.wait_caught_up(CATCH_UP).await;
    eprintln!("a projection was behind the head at a kill: {behind_at_a_kill}");

    let live = harness.dump().await;
    assert_ledger_balances(&harness).await;
    assert_rows_equal_folds(&harness).await;
    rebuild(harness.store(), &Projection::ALL, false)
        .await
        .unwrap();
    assert_same(&live, &harness.dump().await);
}

#[tokio::test]
async fn duplicate_deliveries_have_no_second_effect() {
    let mut harness = Harness::new().await;
    harness.start_relay();
    harness.start_projector().await;
    let merchants = merchants(&harness).await;
    workload::run(harness.store(), &merchants, 10, seed()).await;
    harness.wait_caught_up(CATCH_UP).await;
    let before = harness.dump().await;
    // The relay would refuse to publish after foreign messages: stop it.
    harness.stop_relay();

    // Publish every event a second time, under new message ids, as a
    // redelivery or a republishing relay would.
    let mut stream = harness
        .jetstream
        .get_stream(&harness.relay.stream_name)
        .await
        .unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await.unwrap();
        harness
            .jetstream
            .send_publish(
                message.subject.to_string(),
                PublishMessage::build()
                    .payload(message.payload.clone())
                    .message_id(format!("duplicate-{sequence}")),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let skipped = |metrics: &str| -> u64 {
        metrics
            .lines()
            .filter(|line| line.starts_with("projector_events_skipped_total{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let expected = last * Projection::ALL.len() as u64;
    let metrics = wait_until(
        Duration::from_secs(30),
        "every duplicate to be skipped",
        || async {
            let metrics = harness.metrics().await;
            (skipped(&metrics) >= expected).then_some(metrics)
        },
    )
    .await;
    assert_eq!(skipped(&metrics), expected, "{metrics}");
    assert_same(&before, &harness.dump().await);
}

#[tokio::test]
async fn a_poison_event_is_parked_and_everything_else_goes_on() {
    let mut harness = Harness::new().await;
    harness.start_relay();
    harness.start_projector().await;
    let merchants = merchants(&harness).await;
    let (order_id, payment_id) = workload::pay(harness.store(), merchants[1], 10_000, false).await;
    workload::outcome(harness.store(), &order_id, &payment_id, true).await;

    // An event no projection can read, in the payment's stream: a capture
    // whose amount is not a number.
    let stream = StreamId::new("payment", &payment_id).unwrap();
    let version = harness
        .store()
        .read_stream(&stream, 0, 100)
        .await
        .unwrap()
        .len() as u64;
    harness
        .store()
        .append(
            &stream,
            ExpectedVersion::Exact(version),
            vec![NewEvent::new(
                "PaymentCaptured",
                1,
                json!({"amount": "lots", "captured_at": "2025-01-01T00:00:00Z"}),
            )],
            &EventMetadata {
                actor: "test".into(),
                ..EventMetadata::default()
            },
        )
        .await
        .unwrap();
    // A later event of the same stream waits behind it, parked too.
    harness
        .store()
        .append(
            &stream,
            ExpectedVersion::Exact(version + 1),
            vec![NewEvent::new(
                "PaymentCaptured",
                1,
                json!({"amount": 10, "captured_at": "2025-01-01T00:00:00Z"}),
            )],
            &EventMetadata {
                actor: "test".into(),
                ..EventMetadata::default()
            },
        )
        .await
        .unwrap();
    // Other streams carry on.
    workload::run(harness.store(), &merchants, 5, seed()).await;
    harness.wait_caught_up(CATCH_UP).await;

    let parked: Vec<(String, i64, String)> = sqlx::query_as(
        "select projection, position, error from projection_parked order by projection, position",
    )
    .fetch_all(harness.store().pool())
    .await
    .unwrap();
    let by: BTreeMap<&str, Vec<&String>> =
        parked.iter().fold(BTreeMap::new(), |mut by, (p, _, e)| {
            by.entry(p.as_str()).or_insert_with(Vec::new).push(e);
            by
        });
    // The payments and ledger projections read payment events; the other two ignore them.
    assert_eq!(
        by.keys().copied().collect::<Vec<_>>(),
        ["ledger", "payments"],
        "{parked:?}"
    );
    for errors in by.values() {
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("PaymentCaptured"), "{}", errors[0]);
        assert!(errors[1].contains("gap"), "{}", errors[1]);
    }
    // The payment row stays at its last good version.
    let row_version: i64 =
        sqlx::query_scalar("select version from rm_payments where payment_id = $1")
            .bind(payment_id.as_str())
            .fetch_one(harness.store().pool())
            .await
            .unwrap();
    assert_eq!(row_version, i64::try_from(version).unwrap());
    let metrics = harness.metrics().await;
    assert!(
        metrics.contains("projector_events_parked_total{projection=\"payments\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("projector_parked_events{projection=\"ledger\"} 2"),
        "{metrics}"
    );
    // A rebuild parks the same events.
    let live = harness.dump().await;
    let report = rebuild(harness.store(), &Projection::ALL, false)
        .await
        .unwrap();
    assert_eq!(report.parked, 4);
    assert_same(&live, &harness.dump().await);
}

#[tokio::test]
async fn projections_recover_after_nats_restarts_and_lost_database_connections() {
    let mut nats = NatsServer::start().await;
    let mut harness = Harness::at(&nats.url()).await;
    harness.start_relay();
    harness.start_projector().await;
    let merchants = merchants(&harness).await;
    workload::run(harness.store(), &merchants, 5, seed()).await;
    harness.wait_caught_up(CATCH_UP).await;

    nats.restart().await;
    workload::run(harness.store(), &merchants, 5, seed()).await;
    harness.wait_caught_up(CATCH_UP).await;

    // What a PostgreSQL restart does to the projector: every connection of
    // this database is cut (other tests' databases are untouched).
    let cut = || async {
        sqlx::query(
            "select pg_terminate_backend(pid) from pg_stat_activity \
             where datname = current_database() and pid <> pg_backend_pid() \
             and backend_type = 'client backend' and usename = current_user",
        )
        .execute(&mut harness.database.connection().await)
        .await
        .unwrap();
    };
    // Between commands: a command caught by the cut fails, as it would for
    // any client. The workload's pool replaces its dead connections once
    // they have been idle for 250 ms (they are pinged then); the projector
    // must recover on its own, whenever the cut finds it.
    for round in 0..3 {
        cut().await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        workload::run(harness.store(), &merchants, 3, seed() + round).await;
    }
    harness.wait_caught_up(CATCH_UP).await;
    let live = harness.dump().await;
    assert_ledger_balances(&harness).await;
    rebuild(harness.store(), &Projection::ALL, false)
        .await
        .unwrap();
    assert_same(&live, &harness.dump().await);
}

#[tokio::test]
async fn the_rebuild_command_swaps_while_the_live_projector_runs() {
    let mut harness = Harness::new().await;
    harness.start_relay();
    harness.start_projector().await;
    let merchants = merchants(&harness).await;
    workload::run(harness.store(), &merchants, 10, seed()).await;
    harness.wait_caught_up(CATCH_UP).await;

    // The real binary, while commands keep arriving.
    let database_url = harness.database.url.clone();
    let command = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
            .args(["rebuild", "--projection", "ledger"])
            .env("PAYSTREAM_DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run projector rebuild")
    });
    workload::run(harness.store(), &merchants, 5, seed()).await;
    let output = command.await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("rebuilt ledger from "), "{stdout}");
    assert!(stdout.contains("events/s"), "{stdout}");
    // The progress bar went to stderr.
    assert!(String::from_utf8_lossy(&output.stderr).contains("events/s"));

    harness.wait_caught_up(CATCH_UP).await;
    assert_ledger_balances(&harness).await;
    let live = harness.dump().await;
    rebuild(harness.store(), &Projection::ALL, false)
        .await
        .unwrap();
    assert_same(&live, &harness.dump().await);

    // A bad projection name is refused.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["rebuild", "--projection", "nope"])
        .env("PAYSTREAM_DATABASE_URL", &harness.database.url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown projection"));
}

/// How JetStream loses the messages while the projector is down.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// Purged (as retention or an operator would): sequences go on.
    Purge,
    /// The stream deleted; the relay re-creates it and sequences restart at 1.
    Delete,
}

#[tokio::test]
async fn events_purged_from_jetstream_are_read_from_the_store() {
    events_lost_to_jetstream_are_read_from_the_store(Loss::Purge).await;
}

#[tokio::test]
async fn events_of_a_deleted_jetstream_stream_are_read_from_the_store() {
    events_lost_to_jetstream_are_read_from_the_store(Loss::Delete).await;
}

async fn events_lost_to_jetstream_are_read_from_the_store(loss: Loss) {
    let mut harness = Harness::new().await;
    harness.start_relay();
    harness.start_projector().await;
    let merchants = merchants(&harness).await;
    workload::run(harness.store(), &merchants, 4, seed()).await;
    harness.wait_caught_up(CATCH_UP).await;

    // While the projector is down, events are relayed and then lost to
    // JetStream (as retention or an operator's purge would), then more come.
    harness.stop_projector();
    workload::run(harness.store(), &merchants, 4, seed()).await;
    let head = harness.head().await;
    let mut stream = harness
        .jetstream
        .get_stream(&harness.relay.stream_name)
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(30),
        "the relay to publish everything",
        || async {
            let published: i64 =
                sqlx::query_scalar("select coalesce(max(position), 0) from relay_checkpoints")
                    .fetch_one(harness.store().pool())
                    .await
                    .unwrap();
            (published >= head).then_some(())
        },
    )
    .await;
    match loss {
        Loss::Purge => {
            stream.purge().await.unwrap();
            assert_eq!(stream.info().await.unwrap().state.messages, 0);
        }
        Loss::Delete => {
            harness
                .jetstream
                .delete_stream(&harness.relay.stream_name)
                .await
                .unwrap();
        }
    }
    let checkpoint_sequence: i64 =
        sqlx::query_scalar("select max(stream_sequence) from projection_checkpoints")
            .fetch_one(harness.store().pool())
            .await
            .unwrap();
    workload::run(harness.store(), &merchants, 12, seed()).await;
    if matches!(loss, Loss::Delete) {
        // The re-created stream numbers its messages from 1 again: once it
        // holds more than the checkpoint's sequence, that sequence names a
        // later event, which a naive resume would skip past.
        wait_until(
            Duration::from_secs(30),
            "the re-created stream to pass the old sequence",
            || async {
                let mut stream = harness
                    .jetstream
                    .get_stream(&harness.relay.stream_name)
                    .await
                    .ok()?;
                let last = stream.info().await.ok()?.state.last_sequence;
                (i64::try_from(last).unwrap() > checkpoint_sequence).then_some(())
            },
        )
        .await;
    }

    harness.start_projector().await;
    harness.wait_caught_up(CATCH_UP).await;
    let live = harness.dump().await;
    assert!(live["projection_parked"].is_empty());
    assert_ledger_balances(&harness).await;
    assert_rows_equal_folds(&harness).await;
    rebuild(harness.store(), &Projection::ALL, false)
        .await
        .unwrap();
    assert_same(&live, &harness.dump().await);
}
