//! What clients and test suites of the original gateway rely on, against the
//! real services (lists filled by the real projector):
//!
//! * the order, payment and refund lists page by `limit` (default 10) and
//!   `offset` with `total`, next to the cursor fields; an offset past the
//!   end is an empty page; a bad offset is a 400 naming `offset`;
//! * `GET /api/v1/test/merchant` shows the seeded test merchant in the dev
//!   profile (never a secret), and is a 404 in production;
//! * histories show the `Idempotency-Key` request behind each event (its
//!   hashes), covered by the hash chain that audit verification checks.

mod support;

use std::time::{Duration, Instant};

use paystream_command_api::http::idempotency;
use paystream_domain::dev as seed;
use paystream_query_api::config::{Config as QueryConfig, Profile};
use paystream_query_api::startup::Application as QueryApplication;
use paystream_store::chain::{chain_hash, EventFacts};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Executor;
use support::apps::{dev_merchant, spawn_apps, spawn_apps_with, Apps, Merchant, Options};
use support::oversight::{assert_bad, get_ok, get_raw, login, As, AUDITOR};
use support::TestDatabase;
use uuid::Uuid;

// ---- helpers -----------------------------------------------------------------

/// `GET` with `X-Min-Position`, retried while the projection is behind (as
/// the 503 asks), 60 s at most in all: a long transaction elsewhere in a
/// shared PostgreSQL cluster can hold every relay back for a while.
async fn get_fresh(apps: &Apps, path: &str, merchant: &Merchant, position: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = apps
            .client
            .get(format!("{}{path}", apps.query))
            .header("X-Api-Key", &merchant.key)
            .header("X-Api-Secret", &merchant.secret)
            .header("X-Min-Position", position.to_string())
            .send()
            .await
            .expect("request");
        let status = response.status();
        let body: Value = response.json().await.expect("JSON");
        let behind = status == StatusCode::SERVICE_UNAVAILABLE
            && body["error"]["code"] == "PROJECTION_BEHIND";
        if !behind || Instant::now() > deadline {
            assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
            return body;
        }
    }
}

/// The last position in the store: every write so far.
async fn last_position(apps: &Apps) -> i64 {
    sqlx::query_scalar("select max(position) from events")
        .fetch_one(apps.store.pool())
        .await
        .expect("max position")
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Every id of a list, newest first, walked by cursor `limit` at a time.
async fn walk(apps: &Apps, path: &str, merchant: &Merchant, position: i64) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let url = match &cursor {
            Some(cursor) => format!("{path}?limit=4&cursor={cursor}"),
            None => format!("{path}?limit=4"),
        };
        let page = get_fresh(apps, &url, merchant, position).await;
        all.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
    panic!("{path}: the walk does not end");
}

/// A POST to the command API as the merchant, with an `Idempotency-Key`.
async fn post_keyed(apps: &Apps, merchant: &Merchant, path: &str, key: &str, body: &str) -> Value {
    let response = apps
        .client
        .post(format!("{}{path}", apps.command))
        .header("X-Api-Key", &merchant.key)
        .header("X-Api-Secret", &merchant.secret)
        .header("Idempotency-Key", key)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert!(status.is_success(), "POST {path}: {status} {body}");
    body
}

// ---- limit / offset / total -----------------------------------------------------------

/// Checks one list's offset paging against its cursor walk: `n` objects in
/// all, `filtered` (a query string) matching `filtered_total` of them.
async fn check_offset_paging(
    apps: &Apps,
    merchant: &Merchant,
    position: i64,
    path: &str,
    n: usize,
    (filtered, filtered_total): (&str, i64),
) {
    let walked = walk(apps, path, merchant, position).await;
    assert_eq!(walked.len(), n, "{path}: {walked:?}");

    // No parameters: the first 10, with total, limit and offset.
    let first = get_fresh(apps, path, merchant, position).await;
    assert_eq!(first["limit"], 10, "{path}: {first}");
    assert_eq!(first["offset"], 0);
    assert_eq!(first["total"], n as i64);
    assert_eq!(ids(&first), walked[..10], "{path}");
    assert_eq!(first["has_more"], true);

    // Offset pages put together are the cursor walk.
    let mut paged = Vec::new();
    for offset in (0..n).step_by(5) {
        let page = get_fresh(
            apps,
            &format!("{path}?limit=5&offset={offset}"),
            merchant,
            position,
        )
        .await;
        assert_eq!(page["total"], n as i64, "{path} offset {offset}: {page}");
        assert_eq!(
            (page["limit"].as_i64(), page["offset"].as_i64()),
            (Some(5), Some(offset as i64))
        );
        assert_eq!(page["has_more"], offset + 5 < n, "{path} offset {offset}");
        paged.extend(ids(&page));
    }
    assert_eq!(paged, walked, "{path}");

    // An offset page's cursor goes on from where it ended.
    let page = get_fresh(
        apps,
        &format!("{path}?limit=3&offset=2"),
        merchant,
        position,
    )
    .await;
    let cursor = page["next_cursor"].as_str().expect("next_cursor");
    let next = get_fresh(
        apps,
        &format!("{path}?limit=3&cursor={cursor}"),
        merchant,
        position,
    )
    .await;
    assert_eq!(ids(&next), walked[5..8], "{path}");
    // A cursor page is not counted.
    assert!(next.get("total").is_none(), "{path}: {next}");
    assert_eq!(
        (next["limit"].as_i64(), next["offset"].as_i64()),
        (Some(3), Some(0))
    );

    // Past the end: an empty page, not an error.
    for offset in [n, n + 1, 1_000_000] {
        let page = get_fresh(apps, &format!("{path}?offset={offset}"), merchant, position).await;
        assert_eq!(page["data"], json!([]), "{path} offset {offset}");
        assert_eq!(page["total"], n as i64);
        assert_eq!(page["has_more"], false);
        assert_eq!(page["next_cursor"], Value::Null);
    }

    // `total` counts what the filters keep.
    let page = get_fresh(
        apps,
        &format!("{path}?{filtered}&limit=1"),
        merchant,
        position,
    )
    .await;
    assert_eq!(page["total"], filtered_total, "{path}?{filtered}: {page}");
    let everything = get_fresh(
        apps,
        &format!("{path}?{filtered}&limit=100"),
        merchant,
        position,
    )
    .await;
    assert_eq!(
        ids(&everything).len() as i64,
        filtered_total,
        "{path}?{filtered}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_by_limit_and_offset_with_total() {
    let apps = spawn_apps_with(Options {
        projector: true,
        ..Options::default()
    })
    .await;
    let merchant = apps.merchant(false).await;
    // 12 orders, each with a payment; 11 succeed (their orders are paid);
    // the first payment gets 11 refunds.
    let mut payments = Vec::new();
    for n in 0..12 {
        // The relay and the projector carry keyed events like any other.
        let order = if n == 0 {
            let body = r#"{"amount": 50000, "currency": "INR"}"#;
            let order = post_keyed(&apps, &merchant, "/api/v1/orders", "first", body).await;
            order["id"].as_str().unwrap().to_owned()
        } else {
            apps.order(&merchant, 50000).await
        };
        let payment = apps.upi_payment(&merchant, &order).await;
        payments.push((order, payment));
    }
    for (order, payment) in &payments[..11] {
        apps.record_outcome(order, payment, true).await;
    }
    let first_payment = payments[0].1.clone();
    for _ in 0..11 {
        apps.refund(&merchant, &first_payment, 100).await;
    }
    // Another merchant's objects are neither listed nor counted.
    let other = apps.merchant(false).await;
    let other_order = apps.order(&other, 1000).await;
    apps.upi_payment(&other, &other_order).await;
    let position = last_position(&apps).await;

    check_offset_paging(
        &apps,
        &merchant,
        position,
        "/api/v1/orders",
        12,
        ("status=paid", 11),
    )
    .await;
    check_offset_paging(
        &apps,
        &merchant,
        position,
        "/api/v1/payments",
        12,
        ("status=pending", 1),
    )
    .await;
    check_offset_paging(
        &apps,
        &merchant,
        position,
        "/api/v1/refunds",
        11,
        (&format!("payment_id={first_payment}&status=processed"), 0),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offsets_and_limits_name_their_field() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    let who = As::Merchant(&merchant);
    for list in ["orders", "payments", "refunds"] {
        let path = format!("/api/v1/{list}");
        for bad in [
            "-1",
            "ten",
            "1.5",
            "2147483648",
            "1e3",
            "99999999999999999999",
        ] {
            assert_bad(&apps, &format!("{path}?offset={bad}"), who, "offset").await;
        }
        for bad in ["0", "101", "-5", "x"] {
            assert_bad(&apps, &format!("{path}?limit={bad}"), who, "limit").await;
        }
        // A cursor and an offset together are ambiguous.
        let page = get_ok(&apps, &format!("{path}?limit=1"), who).await;
        assert_eq!(
            (page["total"].as_i64(), page["limit"].as_i64()),
            (Some(0), Some(1))
        );
        let cursor = hex_cursor(list);
        assert_bad(
            &apps,
            &format!("{path}?cursor={cursor}&offset=0"),
            who,
            "offset",
        )
        .await;
        // Empty parameters count as not sent.
        let page = get_ok(&apps, &format!("{path}?offset=&limit="), who).await;
        assert_eq!(
            (page["limit"].as_i64(), page["offset"].as_i64()),
            (Some(10), Some(0))
        );
    }
}

/// A well-formed cursor of `list` (opaque to clients; see `listing::Cursor`).
fn hex_cursor(list: &str) -> String {
    paystream_query_api::listing::Cursor::encode(list, chrono::Utc::now(), "x_1")
}

// ---- GET /api/v1/test/merchant ------------------------------------------------------------

/// A query API of the given profile over `database`, serving.
async fn query_api(config: &QueryConfig, database: &TestDatabase, profile: Profile) -> String {
    let app = QueryApplication::build(QueryConfig {
        runtime: paystream_kit::config::RuntimeArgs::new(profile),
        database: paystream_kit::config::DatabaseArgs {
            database_url: paystream_kit::config::Secret::new(database.url.clone()),
            ..config.database.clone()
        },
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..config.clone()
    })
    .await
    .expect("build the query API");
    let base = format!("http://{}", app.local_addr().unwrap());
    tokio::spawn(app.run_until_stopped());
    base
}

async fn get_anonymous(apps: &Apps, base: &str, path: &str) -> (StatusCode, String) {
    let response = apps
        .client
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("request");
    (response.status(), response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_merchant_is_shown_in_dev_and_not_in_production() {
    let apps = spawn_apps().await;

    // Dev: the seeded merchant, with no authentication and no secret.
    let (status, text) = get_anonymous(&apps, &apps.query, "/api/v1/test/merchant").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        json!({
            "id": seed::DEV_MERCHANT_ID,
            "email": seed::DEV_MERCHANT_EMAIL,
            "api_key": seed::DEV_API_KEY,
            "seeded": true,
        })
    );
    for secret in [
        seed::DEV_API_SECRET,
        seed::DEV_WEBHOOK_SECRET,
        "secret",
        "hash",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // Production, same database: like an endpoint that does not exist.
    let production = query_api(&apps.query_config, &apps.database, Profile::Production).await;
    let (status, text) = get_anonymous(&apps, &production, "/api/v1/test/merchant").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    let (_, unknown) = get_anonymous(&apps, &production, "/api/v1/test/nothing").await;
    assert_eq!(text, unknown);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND_ERROR");

    // Dev, but nothing seeded (no command API ever ran on this database).
    let empty = TestDatabase::create().await;
    let unseeded = query_api(&apps.query_config, &empty, Profile::Dev).await;
    let (status, text) = get_anonymous(&apps, &unseeded, "/api/v1/test/merchant").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND_ERROR");
}

// ---- idempotency in histories ---------------------------------------------------------------

/// Checks each event's hash from the facts the history shows, idempotency
/// included.
fn assert_chain(history: &Value) {
    for event in history["data"].as_array().unwrap() {
        let uuid = |name: &str| {
            event[name]
                .as_str()
                .map(|text| text.parse::<Uuid>().expect("uuid"))
        };
        let recorded_at =
            chrono::DateTime::parse_from_rfc3339(event["recorded_at"].as_str().unwrap()).unwrap();
        let facts = EventFacts {
            stream_id: event["stream"].as_str().unwrap(),
            version: event["version"].as_u64().unwrap(),
            event_id: uuid("id").unwrap(),
            event_type: event["type"].as_str().unwrap(),
            schema_version: event["schema_version"].as_u64().unwrap() as u16,
            recorded_at_micros: recorded_at.timestamp_micros(),
            merchant_id: uuid("merchant_id"),
            causation_id: uuid("causation_id"),
            correlation_id: uuid("correlation_id"),
            actor: event["actor"].as_str().unwrap(),
            idempotency: serde_json::from_value(event["idempotency"].clone()).unwrap(),
            payload: &event["data"],
        };
        let mut previous = [0u8; 32];
        hex::decode_to_slice(event["previous_hash"].as_str().unwrap(), &mut previous).unwrap();
        let hash = chain_hash(&previous, &facts.canonical_bytes());
        assert_eq!(event["hash"], hex::encode(hash), "{event}");
    }
}

/// The `idempotency` a history should show for a keyed request.
fn expected(key: &str, path: &str, body: &str) -> Value {
    let record = idempotency::record(Some(key), "POST", path, body.as_bytes()).unwrap();
    json!({
        "key_hash": hex::encode(record.key_hash),
        "request_hash": hex::encode(record.request_hash),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_show_the_idempotency_key_behind_each_event() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    let who = As::Merchant(&merchant);

    let order_body = r#"{"amount": 50000, "currency": "INR"}"#;
    let order = post_keyed(&apps, &merchant, "/api/v1/orders", "order-key", order_body).await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let payment_body = json!({"order_id": order_id, "method": "upi", "vpa": "a@bank"}).to_string();
    let payment = post_keyed(
        &apps,
        &merchant,
        "/api/v1/payments",
        "payment-key",
        &payment_body,
    )
    .await;
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    apps.record_outcome(&order_id, &payment_id, true).await;
    let refunds_path = format!("/api/v1/payments/{payment_id}/refunds");
    let refund_body = r#"{"amount": 700}"#;
    let refund = post_keyed(&apps, &merchant, &refunds_path, "refund-key", refund_body).await;
    let refund_id = refund["id"].as_str().unwrap().to_owned();
    let unkeyed = apps.order(&merchant, 1000).await;

    let history = get_ok(&apps, &format!("/api/v1/orders/{order_id}/events"), who).await;
    let events = history["data"].as_array().unwrap();
    assert_eq!(events[0]["type"], "OrderCreated");
    assert_eq!(
        events[0]["idempotency"],
        expected("order-key", "/api/v1/orders", order_body)
    );
    assert_eq!(events[1]["type"], "OrderAttempted");
    assert_eq!(
        events[1]["idempotency"],
        expected("payment-key", "/api/v1/payments", &payment_body),
        "the payment's request attempted the order"
    );
    // Recorded by the acquirer, not by a keyed request.
    assert_eq!(events[2]["type"], "OrderPaid");
    assert_eq!(events[2]["idempotency"], Value::Null);
    assert_chain(&history);

    let history = get_ok(&apps, &format!("/api/v1/payments/{payment_id}/events"), who).await;
    let shown: Vec<(&str, &Value)> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| (event["type"].as_str().unwrap(), &event["idempotency"]))
        .collect();
    let payment_record = expected("payment-key", "/api/v1/payments", &payment_body);
    let refund_record = expected("refund-key", &refunds_path, refund_body);
    assert_eq!(
        shown,
        [
            ("PaymentCreated", &payment_record),
            ("PaymentSucceeded", &Value::Null),
            ("RefundCreated", &refund_record),
        ]
    );
    assert_chain(&history);

    let history = get_ok(&apps, &format!("/api/v1/refunds/{refund_id}/events"), who).await;
    assert_eq!(history["data"][0]["idempotency"], refund_record);
    assert_chain(&history);

    let history = get_ok(&apps, &format!("/api/v1/orders/{unkeyed}/events"), who).await;
    assert_eq!(history["data"][0]["idempotency"], Value::Null);
    assert_chain(&history);

    // Audit: the chains verify, and the export carries what they cover.
    let auditor = login(&apps, AUDITOR).await;
    let report = get_ok(&apps, "/api/v1/audit/verify", As::Session(&auditor)).await;
    assert_eq!(report["ok"], true, "{report}");
    let (status, _, text) = get_raw(
        &apps,
        &format!("/api/v1/audit/export?merchant_id={}", merchant.id),
        As::Session(&auditor),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let exported: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    let created = exported
        .iter()
        .find(|row| row["stream"] == format!("order-{order_id}") && row["type"] == "OrderCreated")
        .expect("the keyed order in the export");
    assert_eq!(
        created["idempotency"],
        expected("order-key", "/api/v1/orders", order_body)
    );
    let plain = exported
        .iter()
        .find(|row| row["stream"] == format!("order-{unkeyed}"))
        .expect("the order created without a key");
    assert!(plain.get("idempotency").is_none(), "{plain}");
    let (status, _, csv) = get_raw(
        &apps,
        &format!(
            "/api/v1/audit/export?merchant_id={}&format=csv",
            merchant.id
        ),
        As::Session(&auditor),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .ends_with(",idempotency_key_hash,idempotency_request_hash"));
    let order_record = expected("order-key", "/api/v1/orders", order_body);
    let csv_row = format!(
        ",{},{}",
        order_record["key_hash"].as_str().unwrap(),
        order_record["request_hash"].as_str().unwrap()
    );
    assert!(
        csv.lines()
            .any(|line| line.contains(&format!("order-{order_id}")) && line.ends_with(&csv_row)),
        "{csv}"
    );

    // Stripping the record off an event breaks its chain.
    let mut connection = apps.database.connection().await;
    connection
        .execute("alter table events disable trigger events_append_only")
        .await
        .unwrap();
    let stripped = sqlx::query(
        "update events set idempotency_key_hash = null, idempotency_request_hash = null \
         where stream_id = $1 and version = 1",
    )
    .bind(format!("order-{order_id}"))
    .execute(&mut connection)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(stripped, 1);
    connection
        .execute("alter table events enable trigger events_append_only")
        .await
        .unwrap();
    let report = get_ok(&apps, "/api/v1/audit/verify", As::Session(&auditor)).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(
        report["breaks"],
        json!([{"stream_id": format!("order-{order_id}"), "version": 1, "kind": "altered"}])
    );
}
