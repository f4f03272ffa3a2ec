//! The ledger reads against the real services and the real projector:
//! balances (now and `as_of`) against the domain's fee rule, entries with
//! their postings, the trial balance, tenant isolation, who may read what,
//! every bad parameter; and the projections' progress in `/health` and
//! `/metrics`.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use paystream_domain::dev as seed;
use paystream_domain::ledger;
use reqwest::StatusCode;
use serde_json::Value;
use support::apps::{dev_merchant, spawn_apps_with, Apps, Merchant, Options};
use support::oversight::{
    assert_bad, assert_unauthorized, get, get_ok, get_raw, login, As, AUDITOR, MERCHANT_USER, STAFF,
};
use support::wait_until;

fn with_projector() -> Options {
    Options {
        projector: true,
        ..Options::default()
    }
}

/// A paid, captured payment of `amount`; its id.
async fn captured_payment(apps: &Apps, merchant: &Merchant, amount: i64) -> String {
    let order = apps.order(merchant, amount).await;
    let payment = apps.upi_payment(merchant, &order).await;
    apps.record_outcome(&order, &payment, true).await;
    apps.capture(merchant, &payment, amount).await;
    payment
}

/// A refund requested and processed.
async fn refunded(apps: &Apps, merchant: &Merchant, payment: &str, amount: i64) -> String {
    let refund = apps.refund(merchant, payment, amount).await;
    apps.process_refund(payment, &refund).await;
    refund
}

/// The balance rows by currency.
fn by_currency(balance: &Value) -> BTreeMap<String, Value> {
    balance["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["currency"].as_str().unwrap().to_string(), row.clone()))
        .collect()
}

/// Waits until the merchant's INR balance shows these totals.
async fn wait_for_totals(apps: &Apps, merchant: &Merchant, captured: i64, refunded: i64) -> Value {
    wait_until(Duration::from_secs(30), "the ledger to post", || async {
        let balance = apps.get_ok("/api/v1/balance", merchant).await;
        let inr = by_currency(&balance).get("INR").cloned()?;
        (inr["captured"] == captured && inr["refunded"] == refunded).then_some(balance)
    })
    .await
}

/// The fee net of reversals, by the domain's rule: charged on the capture,
/// returned in proportion to what is refunded (rounded down).
fn net_fee(captured: i64, refunded: i64, fee_bps: u32) -> i64 {
    let charged = ledger::fee(captured, fee_bps);
    charged - charged * refunded.min(captured) / captured
}

fn all_entries(value: &Value) -> Vec<Value> {
    value["data"].as_array().unwrap().clone()
}

fn at(moment: DateTime<Utc>) -> String {
    moment.to_rfc3339().replace('+', "%2B")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_entries_and_the_trial_balance_follow_captures_and_refunds() {
    let apps = spawn_apps_with(with_projector()).await;
    let a = dev_merchant();
    let b = apps.merchant(false).await;
    let staff = login(&apps, STAFF).await;
    let auditor = login(&apps, AUDITOR).await;

    // A: two captures, one partly refunded after a moment we remember.
    let first = captured_payment(&apps, &a, 50_000).await;
    let second = captured_payment(&apps, &a, 12_345).await;
    wait_for_totals(&apps, &a, 62_345, 0).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before_refund = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let refund = refunded(&apps, &a, &first, 10_000).await;
    // B: one capture, fully refunded.
    let b_payment = captured_payment(&apps, &b, 20_000).await;
    refunded(&apps, &b, &b_payment, 20_000).await;

    let balance = wait_for_totals(&apps, &a, 62_345, 10_000).await;
    assert_eq!(balance["merchant_id"], a.id.to_string());
    assert_eq!(balance["as_of"], Value::Null);
    assert!(balance["ledger_position"].as_i64().unwrap() > 0);
    let inr = &by_currency(&balance)["INR"];
    let fees = net_fee(50_000, 10_000, seed::DEV_FEE_BPS) + net_fee(12_345, 0, seed::DEV_FEE_BPS);
    assert_eq!(inr["fees"], fees, "{balance}");
    assert_eq!(inr["balance"], 62_345 - 10_000 - fees, "{balance}");
    assert_eq!(balance["data"].as_array().unwrap().len(), 1);

    // As of before the refund: the captures and their fees only.
    let then = apps
        .get_ok(&format!("/api/v1/balance?as_of={}", at(before_refund)), &a)
        .await;
    let as_of = DateTime::parse_from_rfc3339(then["as_of"].as_str().unwrap()).unwrap();
    assert!((as_of.timestamp_millis() - before_refund.timestamp_millis()).abs() <= 1);
    let inr_then = &by_currency(&then)["INR"];
    let fees_then = ledger::fee(50_000, seed::DEV_FEE_BPS) + ledger::fee(12_345, seed::DEV_FEE_BPS);
    assert_eq!(inr_then["captured"], 62_345, "{then}");
    assert_eq!(inr_then["refunded"], 0);
    assert_eq!(inr_then["fees"], fees_then);
    assert_eq!(inr_then["balance"], 62_345 - fees_then);
    // Before anything: nothing.
    let empty = apps
        .get_ok("/api/v1/balance?as_of=2001-01-01T00:00:00Z", &a)
        .await;
    assert_eq!(empty["data"], serde_json::json!([]));

    // B sees only its own, fully refunded payment (fee returned in full).
    let b_balance = wait_for_totals(&apps, &b, 20_000, 20_000).await;
    let b_inr = &by_currency(&b_balance)["INR"];
    assert_eq!(b_inr["fees"], 0, "{b_balance}");
    assert_eq!(b_inr["balance"], 0);
    assert_eq!(b_balance["merchant_id"], b.id.to_string());

    // A's entries, newest first, each balanced, all of A's and none of B's.
    let page = apps.get_ok("/api/v1/ledger/entries?limit=100", &a).await;
    let entries = all_entries(&page);
    assert_eq!(page["has_more"], false);
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    // Two captures with their fees, one refund with its fee reversal.
    let mut counted: BTreeMap<&str, usize> = BTreeMap::new();
    for kind in &kinds {
        *counted.entry(kind).or_default() += 1;
    }
    assert_eq!(
        counted,
        BTreeMap::from([
            ("capture", 2),
            ("fee", 2),
            ("fee_reversal", 1),
            ("refund", 1)
        ]),
        "{page}"
    );
    let positions: Vec<i64> = entries
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first"
    );
    let payable = format!("merchant_payable:{}", a.id);
    let mut merchant_sum = 0;
    for entry in &entries {
        assert!(entry["payment_id"] == first.as_str() || entry["payment_id"] == second.as_str());
        let postings = entry["postings"].as_array().unwrap();
        assert_eq!(postings.len(), 2, "{entry}");
        assert_eq!(postings[0]["line"], 1);
        assert_eq!(postings[0]["amount"], entry["amount"]);
        assert_eq!(
            postings[1]["amount"].as_i64().unwrap(),
            -entry["amount"].as_i64().unwrap()
        );
        assert!(postings.iter().all(|p| p["currency"] == "INR"));
        for posting in postings {
            if posting["account"] == payable.as_str() {
                merchant_sum += posting["amount"].as_i64().unwrap();
            }
        }
    }
    assert_eq!(
        -merchant_sum,
        inr["balance"].as_i64().unwrap(),
        "entries add up to the balance"
    );
    let refund_entry = entries.iter().find(|e| e["kind"] == "refund").unwrap();
    assert_eq!(refund_entry["refund_id"], refund.as_str());
    assert_eq!(refund_entry["amount"], 10_000);

    // Filters.
    let refunds = apps.get_ok("/api/v1/ledger/entries?kind=refund", &a).await;
    assert_eq!(all_entries(&refunds).len(), 1);
    let of_second = apps
        .get_ok(&format!("/api/v1/ledger/entries?payment_id={second}"), &a)
        .await;
    let of_second = all_entries(&of_second);
    assert_eq!(of_second.len(), 2, "capture and fee");
    assert!(of_second.iter().all(|e| e["payment_id"] == second.as_str()));
    let late = apps
        .get_ok(
            &format!("/api/v1/ledger/entries?created_from={}", at(before_refund)),
            &a,
        )
        .await;
    let late_kinds: HashSet<String> = all_entries(&late)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        late_kinds,
        HashSet::from(["refund".to_string(), "fee_reversal".to_string()]),
        "{late}"
    );
    let early = apps
        .get_ok(
            &format!("/api/v1/ledger/entries?created_to={}", at(before_refund)),
            &a,
        )
        .await;
    assert_eq!(all_entries(&early).len(), 4, "{early}");

    // Page by page: the same entries, each once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/ledger/entries?limit=4&cursor={cursor}"),
            None => "/api/v1/ledger/entries?limit=4".to_string(),
        };
        let page = apps.get_ok(&path, &a).await;
        seen.extend(
            all_entries(&page)
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let ids: Vec<String> = entries
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, ids);

    // Tenant isolation: B sees none of A's entries, even by A's payment id.
    let b_entries = apps.get_ok("/api/v1/ledger/entries?limit=100", &b).await;
    let b_entries = all_entries(&b_entries);
    assert_eq!(b_entries.len(), 4, "capture, fee, refund, fee reversal");
    assert!(b_entries
        .iter()
        .all(|e| e["payment_id"] == b_payment.as_str()));
    let (_, _, text) = get_raw(&apps, "/api/v1/ledger/entries?limit=100", As::Merchant(&b)).await;
    assert!(!text.contains(&a.id.to_string()), "A's account leaked to B");
    let probe = apps
        .get_ok(&format!("/api/v1/ledger/entries?payment_id={first}"), &b)
        .await;
    assert_eq!(probe["data"], serde_json::json!([]));

    // A merchant's dashboard session reads the same balance.
    let merchant_user = login(&apps, MERCHANT_USER).await;
    let via_session = get_ok(&apps, "/api/v1/balance", As::Session(&merchant_user)).await;
    assert_eq!(via_session["data"], balance["data"]);

    // The trial balance: staff and auditors, every account, zero per currency.
    for token in [&staff, &auditor] {
        let trial = get_ok(
            &apps,
            "/api/v1/admin/ledger/trial-balance",
            As::Session(token),
        )
        .await;
        assert_eq!(trial["balanced"], true, "{trial}");
        assert_eq!(
            trial["totals"],
            serde_json::json!([{"currency": "INR", "total": 0}])
        );
        let accounts: BTreeMap<String, i64> = trial["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row["account"].as_str().unwrap().to_string(),
                    row["balance"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(accounts.values().sum::<i64>(), 0);
        assert_eq!(accounts[&payable], -inr["balance"].as_i64().unwrap());
        assert_eq!(accounts[&format!("merchant_payable:{}", b.id)], 0);
        assert_eq!(
            accounts["fee_revenue"], -fees,
            "B's fee was returned in full"
        );
        assert_eq!(accounts["acquirer_clearing"], 62_345 - 10_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_reads_check_who_asks_and_every_parameter() {
    let apps = spawn_apps_with(with_projector()).await;
    let a = dev_merchant();
    let staff = login(&apps, STAFF).await;
    let auditor = login(&apps, AUDITOR).await;
    let merchant_user = login(&apps, MERCHANT_USER).await;

    for path in ["/api/v1/balance", "/api/v1/ledger/entries"] {
        assert_unauthorized(&apps, path, As::Nobody).await;
        assert_unauthorized(&apps, path, As::Session(&staff)).await;
        assert_unauthorized(&apps, path, As::Session(&auditor)).await;
        let wrong = Merchant {
            secret: "secret_wrong".into(),
            ..a.clone()
        };
        assert_unauthorized(&apps, path, As::Merchant(&wrong)).await;
    }
    let trial = "/api/v1/admin/ledger/trial-balance";
    assert_unauthorized(&apps, trial, As::Nobody).await;
    assert_unauthorized(&apps, trial, As::Merchant(&a)).await;
    assert_unauthorized(&apps, trial, As::Session(&merchant_user)).await;
    // A suspended merchant reads nothing.
    let suspended = apps.merchant(true).await;
    assert_unauthorized(&apps, "/api/v1/balance", As::Merchant(&suspended)).await;

    let who = As::Merchant(&a);
    for (query, field) in [
        ("as_of=yesterday", "as_of"),
        ("as_of=2025-01-31", "as_of"),
        ("as_of=2025-01-31T10:00:00", "as_of"),
    ] {
        assert_bad(&apps, &format!("/api/v1/balance?{query}"), who, field).await;
    }
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("kind=chargeback", "kind"),
        ("kind=Capture", "kind"),
        ("payment_id=order_AAAAAAAAAAAAAAAA", "payment_id"),
        ("payment_id=pay_short", "payment_id"),
        ("created_from=never", "created_from"),
        ("created_to=2025-13-01T00:00:00Z", "created_to"),
        (
            "created_from=2025-02-01T00:00:00Z&created_to=2025-01-01T00:00:00Z",
            "created_to",
        ),
        ("cursor=zz", "cursor"),
        ("cursor=6c65646765727c787c79", "cursor"),
        ("limit=1&limit=2", "limit"),
    ] {
        assert_bad(
            &apps,
            &format!("/api/v1/ledger/entries?{query}"),
            who,
            field,
        )
        .await;
    }
    // X-Min-Position must be a position; one beyond every position handed
    // out so far is a 400 too, at once.
    let response = apps
        .client
        .get(format!("{}/api/v1/balance", apps.query))
        .header("X-Api-Key", &a.key)
        .header("X-Api-Secret", &a.secret)
        .header("X-Min-Position", "soon")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "X-Min-Position");
    let response = apps
        .client
        .get(format!("{}/api/v1/ledger/entries", apps.query))
        .header("X-Api-Key", &a.key)
        .header("X-Api-Secret", &a.secret)
        .header("X-Min-Position", i64::MAX.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BAD_REQUEST_ERROR");
    assert_eq!(body["error"]["field"], "X-Min-Position");

    // A merchant with no money moved: an empty balance, no entries.
    let (status, balance) = get(&apps, "/api/v1/balance", who).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(balance["data"], serde_json::json!([]));
    let entries = apps.get_ok("/api/v1/ledger/entries", &a).await;
    assert_eq!(entries["data"], serde_json::json!([]));
    assert_eq!(entries["has_more"], false);
    assert_eq!(entries["next_cursor"], Value::Null);

    // The trial balance is computed, not asserted: a running sum that does
    // not add up (a broken projection, simulated) is reported as such.
    let trial = get_ok(
        &apps,
        "/api/v1/admin/ledger/trial-balance",
        As::Session(&auditor),
    )
    .await;
    assert_eq!(trial["balanced"], true, "{trial}");
    let mut connection = apps.database.connection().await;
    sqlx::query(
        "insert into ledger_balances (account, currency, balance) values ('fee_revenue', 'USD', 5)",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    let trial = get_ok(
        &apps,
        "/api/v1/admin/ledger/trial-balance",
        As::Session(&auditor),
    )
    .await;
    assert_eq!(trial["balanced"], false, "{trial}");
    assert_eq!(
        trial["totals"],
        serde_json::json!([{"currency": "USD", "total": 5}])
    );
    assert_eq!(
        trial["accounts"],
        serde_json::json!([{"account": "fee_revenue", "currency": "USD", "balance": 5}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_report_every_projection() {
    let apps = spawn_apps_with(with_projector()).await;
    let a = dev_merchant();
    let payment = captured_payment(&apps, &a, 30_000).await;
    refunded(&apps, &a, &payment, 5_000).await;
    wait_for_totals(&apps, &a, 30_000, 5_000).await;

    let health = wait_until(
        Duration::from_secs(30),
        "every projection to catch up",
        || async {
            let (status, health) = apps.get("/health", None).await;
            assert_eq!(status, StatusCode::OK, "{health}");
            let projections = health["projections"].as_array()?;
            let caught_up = projections.len() == 4
                && projections
                    .iter()
                    .all(|p| p["lag_events"] == 0 && p["position"].as_i64() > Some(0));
            (caught_up && health["nats"] == "connected").then_some(health)
        },
    )
    .await;
    assert_eq!(health["status"], "healthy", "{health}");
    let names: Vec<&str> = health["projections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["projection"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ledger", "merchants", "payments", "webhooks"]);
    assert!(health["projections"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["parked"] == 0 && p["lag_capped"] == false));

    // A parked event (as the projector parks poison): degraded, still 200.
    let mut connection = apps.database.connection().await;
    sqlx::query(
        "insert into projection_parked (projection, position, event_id, stream_id, event_type, error) \
         select 'ledger', position, event_id, stream_id, event_type, 'test: cannot apply' \
         from events order by position limit 1",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    let (status, degraded) = apps.get("/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(degraded["status"], "degraded", "{degraded}");
    let ledger = degraded["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["projection"] == "ledger")
        .unwrap();
    assert_eq!(ledger["parked"], 1);

    // Metrics: requests by route template and status, latency, projections.
    apps.get_ok("/api/v1/balance", &a).await;
    let (status, _) = apps.get("/api/v1/balance", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, headers, text) = get_raw(&apps, "/metrics", As::Nobody).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let line = |prefix: &str| -> Option<f64> {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
    };
    let ok = line(
        "query_api_http_requests_total{method=\"GET\",route=\"/api/v1/balance\",status=\"200\"}",
    )
    .expect("balance 200s counted");
    assert!(ok >= 2.0, "{text}");
    assert_eq!(
        line("query_api_http_requests_total{method=\"GET\",route=\"/api/v1/balance\",status=\"401\"}"),
        Some(1.0),
        "{text}"
    );
    assert!(
        line(
            "query_api_http_request_duration_seconds_bucket{route=\"/api/v1/balance\",le=\"+Inf\"}"
        )
        .unwrap()
            >= 3.0
    );
    assert!(
        line("query_api_http_request_duration_seconds_count{route=\"/health\"}").is_some(),
        "{text}"
    );
    assert_eq!(
        line("query_api_projection_lag_events{projection=\"ledger\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        line("query_api_projection_parked{projection=\"ledger\"}"),
        Some(1.0)
    );
    assert!(line("query_api_projection_position{projection=\"payments\"}").unwrap() > 0.0);
    assert_eq!(line("query_api_database_up"), Some(1.0));
    // Raw ids never become labels.
    let (_, _) = apps
        .get("/api/v1/payments/pay_AAAAAAAAAAAAAAAA", Some(&a))
        .await;
    let (_, _, text) = get_raw(&apps, "/metrics", As::Nobody).await;
    assert!(text.contains("route=\"/api/v1/payments/{id}\""), "{text}");
    assert!(!text.contains("pay_AAAAAAAAAAAAAAAA"));
}
