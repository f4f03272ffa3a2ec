//! `GET /api/v1/audit/verify` and `/api/v1/audit/export` against the real
//! services: chains checked through the API (and broken through SQL, as the
//! table owner could), exports streamed in both formats, filtered by merchant
//! and time, secrets redacted; who may call them; every bad parameter.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Executor;
use support::apps::{dev_merchant, spawn_apps, Apps, Merchant};
use support::oversight::{
    assert_bad, assert_unauthorized, command, get_ok, get_raw, login, As, AUDITOR, MERCHANT_USER,
    STAFF,
};
use support::wait_until;

async fn event_count(apps: &Apps) -> i64 {
    let mut connection = apps.database.connection().await;
    sqlx::query_scalar("select count(*) from events")
        .fetch_one(&mut connection)
        .await
        .unwrap()
}

async fn stream_count(apps: &Apps) -> u64 {
    let mut connection = apps.database.connection().await;
    let streams: i64 = sqlx::query_scalar("select count(*) from event_streams")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    streams as u64
}

/// Runs `sql` with the append-only trigger off, as the table owner could.
async fn tamper(apps: &Apps, sql: &str, stream: &str, version: i64) {
    let mut connection = apps.database.connection().await;
    connection
        .execute("alter table events disable trigger events_append_only")
        .await
        .unwrap();
    let changed = sqlx::query(sql)
        .bind(stream)
        .bind(version)
        .execute(&mut connection)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 1, "{sql}");
    connection
        .execute("alter table events enable trigger events_append_only")
        .await
        .unwrap();
}

/// An order with a receipt that needs CSV quoting.
async fn order(apps: &Apps, merchant: &Merchant, receipt: &str) -> String {
    let (status, _, body) = command(
        apps,
        Method::POST,
        "/api/v1/orders",
        As::Merchant(merchant),
        json!({"amount": 50000, "currency": "INR", "receipt": receipt}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_every_kind_of_tampering_through_the_api() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    let auditor = login(&apps, AUDITOR).await;
    let mut orders = Vec::new();
    for n in 0..3 {
        let id = order(&apps, &merchant, &format!("r-{n}")).await;
        let payment = apps.upi_payment(&merchant, &id).await;
        orders.push((id, payment));
    }

    let report = get_ok(&apps, "/api/v1/audit/verify", As::Session(&auditor)).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["complete"], true);
    assert_eq!(report["breaks"], json!([]));
    assert_eq!(report["breaks_total"], 0);
    assert_eq!(report["streams_checked"], stream_count(&apps).await);
    assert_eq!(report["events_checked"], event_count(&apps).await);
    assert!(report["streams_checked"].as_u64().unwrap() >= 7, "{report}");

    // A walk in parts: `limit` streams at a time, continued with `after`,
    // covers every stream exactly once.
    let mut after: Option<String> = None;
    let mut streams = 0;
    let mut events = 0;
    for _ in 0..20 {
        let path = match &after {
            Some(after) => format!("/api/v1/audit/verify?limit=2&after={after}"),
            None => "/api/v1/audit/verify?limit=2".to_string(),
        };
        let part = get_ok(&apps, &path, As::Session(&auditor)).await;
        assert!(part["streams_checked"].as_u64().unwrap() <= 2, "{part}");
        streams += part["streams_checked"].as_u64().unwrap();
        events += part["events_checked"].as_i64().unwrap();
        if part["complete"] == true {
            assert_eq!(part["ok"], true, "{part}");
            after = None;
            break;
        }
        assert_eq!(part["ok"], false, "an incomplete walk is not ok: {part}");
        after = Some(part["next_after"].as_str().unwrap().to_string());
    }
    assert!(after.is_none(), "the walk in parts never completed");
    assert_eq!(streams, stream_count(&apps).await);
    assert_eq!(events, event_count(&apps).await);

    // Altered content: the order's first event.
    let (first_order, _) = &orders[0];
    let first_stream = format!("order-{first_order}");
    tamper(
        &apps,
        "update events set payload = jsonb_set(payload, '{amount}', '1') \
         where stream_id = $1 and version = $2",
        &first_stream,
        1,
    )
    .await;
    // A version removed from the middle: the second order's stream has
    // OrderCreated (1) and OrderAttempted (2); the payment's has more.
    let (_, second_payment) = &orders[1];
    let payment_stream = format!("payment-{second_payment}");
    let mut connection = apps.database.connection().await;
    let payment_versions: i64 =
        sqlx::query_scalar("select count(*) from events where stream_id = $1")
            .bind(&payment_stream)
            .fetch_one(&mut connection)
            .await
            .unwrap();
    let (third_order, _) = &orders[2];
    let third_stream = format!("order-{third_order}");
    tamper(
        &apps,
        "delete from events where stream_id = $1 and version = $2",
        &third_stream,
        2,
    )
    .await;
    if payment_versions >= 2 {
        // Removed from the end: the head still says more.
        tamper(
            &apps,
            "delete from events where stream_id = $1 and version = $2",
            &payment_stream,
            payment_versions,
        )
        .await;
    }

    let report = get_ok(&apps, "/api/v1/audit/verify", As::Session(&auditor)).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["complete"], true);
    let breaks: HashSet<(String, u64, String)> = report["breaks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|broken| {
            (
                broken["stream_id"].as_str().unwrap().to_string(),
                broken["version"].as_u64().unwrap(),
                broken["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut expected = HashSet::from([
        (first_stream.clone(), 1, "altered".to_string()),
        (third_stream.clone(), 2, "truncated".to_string()),
    ]);
    if payment_versions >= 2 {
        expected.insert((
            payment_stream.clone(),
            payment_versions as u64,
            "truncated".to_string(),
        ));
    }
    assert_eq!(breaks, expected, "{report}");
    assert_eq!(report["breaks_total"], expected.len());
    assert_eq!(report["events_checked"], event_count(&apps).await);

    // Staff see the same.
    let staff = login(&apps, STAFF).await;
    let report = get_ok(&apps, "/api/v1/audit/verify", As::Session(&staff)).await;
    assert_eq!(report["breaks_total"], expected.len(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_missing_from_the_middle_is_reported_as_missing() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    let order = order(&apps, &merchant, "r").await;
    let payment = apps.upi_payment(&merchant, &order).await;
    apps.record_outcome(&order, &payment, true).await;
    apps.capture(&merchant, &payment, 50000).await;
    // payment stream: created (1), succeeded (2), captured (3).
    let stream = format!("payment-{payment}");
    tamper(
        &apps,
        "delete from events where stream_id = $1 and version = $2",
        &stream,
        2,
    )
    .await;
    let auditor = login(&apps, AUDITOR).await;
    let report = get_ok(&apps, "/api/v1/audit/verify", As::Session(&auditor)).await;
    assert_eq!(report["ok"], false);
    assert_eq!(
        report["breaks"],
        json!([{"stream_id": stream, "version": 2, "kind": "missing"}]),
        "{report}"
    );
}

/// A minimal RFC 4180 reader: rows of fields, quotes and CRLF handled.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                other => field.push(other),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            other => field.push(other),
        }
    }
    assert!(!quoted, "unterminated quote");
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

async fn export(apps: &Apps, token: &str, query: &str) -> (reqwest::header::HeaderMap, String) {
    let (status, headers, text) = get_raw(
        apps,
        &format!("/api/v1/audit/export{query}"),
        As::Session(token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{query}: {text}");
    (headers, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_the_history_filtered_by_merchant_and_time_in_both_formats() {
    let apps = spawn_apps().await;
    let a = dev_merchant();
    let b = apps.merchant(false).await;
    let auditor = login(&apps, AUDITOR).await;

    let tricky = "r,\"1\"\nnext line";
    let a_early = order(&apps, &a, tricky).await;
    let b_early = order(&apps, &b, "b-early").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mark: DateTime<Utc> = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let a_late = order(&apps, &a, "a-late").await;
    let b_late = order(&apps, &b, "b-late").await;
    let total = event_count(&apps).await as usize;

    // Everything, NDJSON, in global order (waiting for the horizon to pass
    // the last commit, should another transaction in the cluster hold it).
    let everything = wait_until(
        Duration::from_secs(30),
        "the export to reach the last order",
        || async {
            let (headers, text) = export(&apps, &auditor, "").await;
            let rows = ndjson(&text);
            (rows.len() == total).then_some((headers, rows))
        },
    )
    .await;
    let (headers, rows) = everything;
    assert_eq!(headers["content-type"], "application/x-ndjson");
    let positions: Vec<i64> = rows
        .iter()
        .map(|row| row["position"].as_i64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "global order"
    );
    for key in [
        "id",
        "stream",
        "version",
        "type",
        "schema_version",
        "recorded_at",
        "actor",
        "hash",
        "data",
        "redacted",
    ] {
        assert!(rows.iter().all(|row| !row[key].is_null()), "{key} missing");
    }

    // Secrets of merchant events are redacted; nothing else is.
    let a_registered = rows
        .iter()
        .find(|row| {
            row["stream"] == format!("merchant-{}", a.id) && row["type"] == "MerchantRegistered"
        })
        .expect("the dev merchant's registration");
    assert_eq!(a_registered["redacted"], true, "{a_registered}");
    assert_eq!(a_registered["data"]["webhook_secret"], "[REDACTED]");
    assert_eq!(a_registered["data"]["api_secret_hash"], "[REDACTED]");
    assert_eq!(a_registered["data"]["api_key"], a.key.as_str());
    let (_, raw) = export(&apps, &auditor, "").await;
    assert!(
        !raw.contains("whsec_test_abc123"),
        "a webhook secret leaked"
    );
    assert!(!raw.contains("whsec_other"), "a webhook secret leaked");
    assert!(rows
        .iter()
        .filter(|row| row["stream"].as_str().unwrap().starts_with("order-"))
        .all(|row| row["redacted"] == false));

    // Merchant A only: its objects and its own merchant stream, nothing of B.
    let (_, text) = export(&apps, &auditor, &format!("?merchant_id={}", a.id)).await;
    let a_rows = ndjson(&text);
    let streams: HashSet<&str> = a_rows
        .iter()
        .map(|row| row["stream"].as_str().unwrap())
        .collect();
    assert!(streams.contains(format!("order-{a_early}").as_str()));
    assert!(streams.contains(format!("order-{a_late}").as_str()));
    assert!(streams.contains(format!("merchant-{}", a.id).as_str()));
    assert!(!streams.contains(format!("order-{b_early}").as_str()));
    assert!(!streams.contains(format!("merchant-{}", b.id).as_str()));
    assert!(a_rows
        .iter()
        .all(|row| row["merchant_id"] == a.id.to_string()
            || row["stream"] == format!("merchant-{}", a.id)));

    // Merchant B from the mark on: exactly its late order.
    let query = format!(
        "?merchant_id={}&from={}",
        b.id,
        mark.to_rfc3339().replace('+', "%2B")
    );
    let (_, text) = export(&apps, &auditor, &query).await;
    let late = ndjson(&text);
    assert_eq!(late.len(), 1, "{text}");
    assert_eq!(late[0]["stream"], format!("order-{b_late}"));
    assert_eq!(late[0]["type"], "OrderCreated");
    // Before the mark: A's early order, not its late one.
    let query = format!(
        "?merchant_id={}&to={}",
        a.id,
        mark.to_rfc3339().replace('+', "%2B")
    );
    let (_, text) = export(&apps, &auditor, &query).await;
    let early: Vec<Value> = ndjson(&text);
    assert!(early
        .iter()
        .any(|row| row["stream"] == format!("order-{a_early}")));
    assert!(early
        .iter()
        .all(|row| row["stream"] != format!("order-{a_late}")));
    assert!(early.iter().all(|row| {
        DateTime::parse_from_rfc3339(row["recorded_at"].as_str().unwrap()).unwrap() < mark
    }));

    // CSV: a header row, then the same events, quoted where needed.
    let (headers, text) = export(
        &apps,
        &auditor,
        &format!("?merchant_id={}&format=csv", a.id),
    )
    .await;
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let table = parse_csv(&text);
    assert_eq!(
        table[0],
        [
            "position",
            "id",
            "stream",
            "version",
            "type",
            "schema_version",
            "recorded_at",
            "merchant_id",
            "actor",
            "causation_id",
            "correlation_id",
            "hash",
            "redacted",
            "data",
            "idempotency_key_hash",
            "idempotency_request_hash"
        ]
    );
    assert_eq!(table.len(), a_rows.len() + 1, "{text}");
    for (row, json_row) in table[1..].iter().zip(&a_rows) {
        assert_eq!(row.len(), 16, "{row:?}");
        assert_eq!(row[0], json_row["position"].to_string());
        assert_eq!(row[2], json_row["stream"].as_str().unwrap());
        assert_eq!(row[11], json_row["hash"].as_str().unwrap());
        let data: Value = serde_json::from_str(&row[13]).expect("data is JSON");
        assert_eq!(data, json_row["data"]);
    }
    let created = table
        .iter()
        .find(|row| row[2] == format!("order-{a_early}") && row[4] == "OrderCreated")
        .expect("A's early order");
    let data: Value = serde_json::from_str(&created[13]).unwrap();
    assert_eq!(
        data["receipt"], tricky,
        "quotes, commas and newlines survive"
    );

    // Staff may export too.
    let staff = login(&apps, STAFF).await;
    export(&apps, &staff, "?format=ndjson").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_is_for_staff_and_auditors_and_bad_parameters_name_their_field() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    let merchant_user = login(&apps, MERCHANT_USER).await;
    let auditor = login(&apps, AUDITOR).await;
    for path in ["/api/v1/audit/verify", "/api/v1/audit/export"] {
        assert_unauthorized(&apps, path, As::Nobody).await;
        assert_unauthorized(&apps, path, As::Merchant(&merchant)).await;
        assert_unauthorized(&apps, path, As::Session(&merchant_user)).await;
        assert_unauthorized(&apps, path, As::Session("not-a-token")).await;
    }
    let who = As::Session(&auditor);
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=10000001", "limit"),
        ("limit=1&limit=2", "limit"),
        (&format!("after={}", "x".repeat(201)) as &str, "after"),
        // A NUL (which PostgreSQL text cannot hold) is bad input, not a 503.
        ("after=%00", "after"),
        ("after=order-order_A%00", "after"),
        ("after=not%20a%20stream", "after"),
        ("after=%C3%A9t%C3%A9", "after"),
    ] {
        assert_bad(&apps, &format!("/api/v1/audit/verify?{query}"), who, field).await;
    }
    for (query, field) in [
        ("format=xml", "format"),
        ("format=CSV", "format"),
        ("format=csv&format=ndjson", "format"),
        ("from=yesterday", "from"),
        ("from=2025-01-31", "from"),
        ("to=2025-01-31T10:00:00", "to"),
        ("from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z", "to"),
        ("merchant_id=123", "merchant_id"),
        ("merchant_id=merchant-550e8400", "merchant_id"),
    ] {
        assert_bad(&apps, &format!("/api/v1/audit/export?{query}"), who, field).await;
    }
    // An empty parameter counts as not sent.
    let (status, _, _) = get_raw(&apps, "/api/v1/audit/export?format=&from=", who).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_has_the_ledger_staff_and_audit_reads() {
    let apps = spawn_apps().await;
    let (status, document) = apps.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = &document["paths"];
    for path in [
        "/api/v1/balance",
        "/api/v1/ledger/entries",
        "/api/v1/admin/ledger/trial-balance",
        "/api/v1/merchants",
        "/api/v1/merchants/{id}",
        "/api/v1/audit/verify",
        "/api/v1/audit/export",
        "/health",
    ] {
        assert!(paths[path]["get"].is_object(), "GET {path} missing");
    }
    // The staff POST on /api/v1/merchants is still there beside the GET.
    assert!(paths["/api/v1/merchants"]["post"].is_object());
    let parameters = |path: &str| -> Vec<String> {
        paths[path]["get"]["parameters"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|p| p["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    for (path, names) in [
        ("/api/v1/balance", &["as_of", "X-Min-Position"][..]),
        (
            "/api/v1/ledger/entries",
            &[
                "limit",
                "cursor",
                "kind",
                "payment_id",
                "created_from",
                "created_to",
            ][..],
        ),
        (
            "/api/v1/audit/export",
            &["from", "to", "merchant_id", "format"][..],
        ),
        ("/api/v1/audit/verify", &["after", "limit"][..]),
        ("/api/v1/merchants", &["limit", "cursor", "status"][..]),
    ] {
        let documented = parameters(path);
        for name in names {
            assert!(
                documented.iter().any(|n| n == name),
                "{path}: {name} undocumented"
            );
        }
    }
    let schemas = &document["components"]["schemas"];
    for schema in [
        "BalanceView",
        "CurrencyBalance",
        "LedgerEntriesPage",
        "TrialBalance",
        "StaffMerchantView",
        "VerifyReport",
        "BreakView",
        "ProjectionHealth",
    ] {
        assert!(schemas[schema].is_object(), "{schema} missing");
    }
    assert!(schemas["Health"]["properties"]["projections"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_export_page_through_a_history_larger_than_their_chunks() {
    use paystream_store::{EventMetadata, EventStore, ExpectedVersion, NewEvent, StreamId};

    let apps = spawn_apps().await;
    let auditor = login(&apps, AUDITOR).await;
    let merchant = uuid::Uuid::now_v7();
    let metadata = EventMetadata {
        merchant_id: Some(merchant),
        actor: "test".into(),
        ..EventMetadata::default()
    };
    // 1,100 one-event streams (more than a verify chunk of 1,000 streams)
    // and one stream of 700 events (more than an export page of 500).
    let appends = (0..1100).map(|n| {
        let store = apps.store.clone();
        let metadata = metadata.clone();
        async move {
            let stream = StreamId::new("probe", format!("s{n:05}")).unwrap();
            let event = NewEvent::new("ProbeRecorded", 1, json!({"n": n, "note": "a,\"b\""}));
            store
                .append(&stream, ExpectedVersion::NoStream, vec![event], &metadata)
                .await
                .unwrap();
        }
    });
    futures::future::join_all(appends).await;
    let long = StreamId::new("probe", "long").unwrap();
    let events = (0..700)
        .map(|n| NewEvent::new("ProbeRecorded", 1, json!({"n": n})))
        .collect();
    apps.store
        .append(&long, ExpectedVersion::NoStream, events, &metadata)
        .await
        .unwrap();

    let report = get_ok(&apps, "/api/v1/audit/verify", As::Session(&auditor)).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["streams_checked"], stream_count(&apps).await);
    assert_eq!(report["events_checked"], event_count(&apps).await);
    assert!(report["streams_checked"].as_u64().unwrap() > 1101);

    let query = format!("?merchant_id={merchant}");
    let rows = wait_until(Duration::from_secs(30), "the whole export", || async {
        let (_, text) = export(&apps, &auditor, &query).await;
        let rows = ndjson(&text);
        (rows.len() == 1800).then_some(rows)
    })
    .await;
    let positions: Vec<i64> = rows
        .iter()
        .map(|row| row["position"].as_i64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "each once, in order"
    );
    let long_versions: Vec<u64> = rows
        .iter()
        .filter(|row| row["stream"] == long.as_str())
        .map(|row| row["version"].as_u64().unwrap())
        .collect();
    assert_eq!(long_versions, (1..=700).collect::<Vec<_>>());
    let (_, text) = export(&apps, &auditor, &format!("{query}&format=csv")).await;
    let table = parse_csv(&text);
    assert_eq!(table.len(), 1801, "a header and every event");
    assert!(table[1..].iter().all(|row| row.len() == 16));
}
