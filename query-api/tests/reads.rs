//! The query API over real HTTP and PostgreSQL, with the real command API
//! writing: read your writes, `as_of`, public views, histories, tenant
//! isolation and bad inputs.
//!
//! Outcomes that the acquirer records in production are recorded here
//! through the same domain commands, so these tests do not wait for it
//! (`operations.rs` runs the real acquirer).

mod support;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use futures::future::join_all;
use paystream_store::chain::{chain_hash, EventFacts};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::apps::{dev_merchant, spawn_apps, Apps, Merchant};
use uuid::Uuid;

/// `?as_of=` for a moment, in UTC with microseconds (no `+` to escape).
fn as_of(moment: DateTime<Utc>) -> String {
    format!(
        "?as_of={}",
        moment.to_rfc3339_opts(SecondsFormat::Micros, true)
    )
}

fn recorded_at(event: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(event["recorded_at"].as_str().expect("recorded_at"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn types(history: &Value) -> Vec<&str> {
    history["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|event| event["type"].as_str().expect("type"))
        .collect()
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str, what: &str) {
    assert_eq!(status, expected, "{what}: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(
        body["error"]["description"]
            .as_str()
            .is_some_and(|text| !text.is_empty()),
        "{what}: {body}"
    );
}

/// One order's whole life, each write read back at once through the query
/// API: never a 404, never a stale status, and the same shape the command
/// API answered with.
async fn lifecycle(apps: &Apps, merchant: &Merchant) {
    let (status, created) = apps
        .post(
            "/api/v1/orders",
            merchant,
            json!({"amount": 50000, "receipt": "r-7", "notes": {"k": "v"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let order_id = created["id"].as_str().unwrap().to_string();
    let order_path = format!("/api/v1/orders/{order_id}");
    let order = apps.get_ok(&order_path, merchant).await;
    assert_eq!(order, created, "GET answers like the POST did");
    assert_eq!(order["status"], "created");
    assert!(order["updated_at"].is_string());

    let (status, payment) = apps
        .post(
            "/api/v1/payments",
            merchant,
            json!({"order_id": order_id, "method": "upi", "vpa": "user@okbank"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    let payment_id = payment["id"].as_str().unwrap().to_string();
    let payment_path = format!("/api/v1/payments/{payment_id}");
    assert_eq!(apps.get_ok(&payment_path, merchant).await, payment);
    assert_eq!(payment["status"], "pending");
    assert_eq!(
        apps.get_ok(&order_path, merchant).await["status"],
        "attempted"
    );

    apps.record_outcome(&order_id, &payment_id, true).await;
    let succeeded = apps.get_ok(&payment_path, merchant).await;
    assert_eq!(succeeded["status"], "success", "{succeeded}");
    assert_eq!(succeeded["captured"], false);
    assert_eq!(apps.get_ok(&order_path, merchant).await["status"], "paid");

    let (status, captured) = apps
        .post(
            &format!("{payment_path}/capture"),
            merchant,
            json!({"amount": 50000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{captured}");
    assert_eq!(apps.get_ok(&payment_path, merchant).await, captured);
    assert_eq!(captured["captured"], true);

    let (status, refund) = apps
        .post(
            &format!("{payment_path}/refunds"),
            merchant,
            json!({"amount": 10000, "reason": "asked"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    let refund_id = refund["id"].as_str().unwrap().to_string();
    let refund_path = format!("/api/v1/refunds/{refund_id}");
    assert_eq!(apps.get_ok(&refund_path, merchant).await, refund);
    assert_eq!(refund["status"], "pending");
    assert_eq!(refund["processed_at"], Value::Null);

    apps.process_refund(&payment_id, &refund_id).await;
    let processed = apps.get_ok(&refund_path, merchant).await;
    assert_eq!(processed["status"], "processed", "{processed}");
    assert!(processed["processed_at"].is_string());
    assert_eq!(processed["payment_id"], payment_id.as_str());
    assert_eq!(processed["amount"], 10000);
    let payment = apps.get_ok(&payment_path, merchant).await;
    assert_eq!(payment["amount_refunded"], 10000, "{payment}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_is_read_back_at_once() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    // Several lives at once, so reads race other writes too.
    join_all((0..6).map(|_| lifecycle(&apps, &merchant))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_rebuilds_each_object_at_any_moment() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    let order_id = apps.order(&merchant, 50000).await;
    let payment_id = apps.upi_payment(&merchant, &order_id).await;
    apps.record_outcome(&order_id, &payment_id, true).await;
    apps.capture(&merchant, &payment_id, 50000).await;
    let refund_id = apps.refund(&merchant, &payment_id, 20000).await;
    apps.process_refund(&payment_id, &refund_id).await;

    let payment_path = format!("/api/v1/payments/{payment_id}");
    let history = apps
        .get_ok(&format!("{payment_path}/events"), &merchant)
        .await;
    assert_eq!(
        types(&history),
        [
            "PaymentCreated",
            "PaymentSucceeded",
            "PaymentCaptured",
            "RefundCreated",
            "RefundProcessed"
        ]
    );
    let at: Vec<DateTime<Utc>> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(recorded_at)
        .collect();
    let micro = Duration::microseconds(1);

    // Payment: nothing before its creation; pending up to the instant before
    // its success (bounds included); success from then on.
    let (status, body) = apps
        .get(
            &format!("{payment_path}{}", as_of(at[0] - micro)),
            Some(&merchant),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "NOT_FOUND_ERROR",
        "before creation",
    );
    for moment in [at[0], at[1] - micro] {
        let payment = apps
            .get_ok(&format!("{payment_path}{}", as_of(moment)), &merchant)
            .await;
        assert_eq!(payment["status"], "pending", "{moment}: {payment}");
        assert_eq!(payment["captured"], false);
    }
    let succeeded = apps
        .get_ok(&format!("{payment_path}{}", as_of(at[1])), &merchant)
        .await;
    assert_eq!(succeeded["status"], "success");
    assert_eq!(succeeded["captured"], false);
    let refunded = apps
        .get_ok(&format!("{payment_path}{}", as_of(at[4])), &merchant)
        .await;
    assert_eq!(refunded["captured"], true);
    assert_eq!(refunded["amount_refunded"], 20000);
    // The future is now; any time zone works (`+` escaped, or sent raw and
    // decoded as a space).
    let now = apps.get_ok(&payment_path, &merchant).await;
    let future = apps
        .get_ok(
            &format!("{payment_path}?as_of=2999-01-01T05:30:00%2B05:30"),
            &merchant,
        )
        .await;
    assert_eq!(future, now);
    let ist = (at[1] + Duration::hours(5) + Duration::minutes(30))
        .format("%Y-%m-%dT%H:%M:%S%.6f+05:30")
        .to_string();
    let raw = apps
        .get_ok(&format!("{payment_path}?as_of={ist}"), &merchant)
        .await;
    assert_eq!(raw["status"], "success", "{ist}: {raw}");

    // Refund: none before its request, pending, then processed.
    let refund_path = format!("/api/v1/refunds/{refund_id}");
    let (status, _) = apps
        .get(
            &format!("{refund_path}{}", as_of(at[3] - micro)),
            Some(&merchant),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let pending = apps
        .get_ok(&format!("{refund_path}{}", as_of(at[3])), &merchant)
        .await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["processed_at"], Value::Null);
    let processed = apps
        .get_ok(&format!("{refund_path}{}", as_of(at[4])), &merchant)
        .await;
    assert_eq!(processed["status"], "processed");

    // Order: created, attempted (the payment's creation), paid.
    let order_path = format!("/api/v1/orders/{order_id}");
    let order_history = apps
        .get_ok(&format!("{order_path}/events"), &merchant)
        .await;
    assert_eq!(
        types(&order_history),
        ["OrderCreated", "OrderAttempted", "OrderPaid"]
    );
    let order_at: Vec<DateTime<Utc>> = order_history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(recorded_at)
        .collect();
    let (status, _) = apps
        .get(
            &format!("{order_path}{}", as_of(order_at[0] - micro)),
            Some(&merchant),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (moment, expected) in [
        (order_at[0], "created"),
        (order_at[1] - micro, "created"),
        (order_at[1], "attempted"),
        (order_at[2], "paid"),
    ] {
        let order = apps
            .get_ok(&format!("{order_path}{}", as_of(moment)), &merchant)
            .await;
        assert_eq!(order["status"], expected, "{moment}: {order}");
    }
}

/// Checks each event's hash from the facts the history shows.
fn assert_chain(history: &Value) {
    for event in history["data"].as_array().unwrap() {
        let uuid = |name: &str| {
            event[name]
                .as_str()
                .map(|text| text.parse::<Uuid>().expect("uuid"))
        };
        let facts = EventFacts {
            stream_id: event["stream"].as_str().unwrap(),
            version: event["version"].as_u64().unwrap(),
            event_id: uuid("id").unwrap(),
            event_type: event["type"].as_str().unwrap(),
            schema_version: event["schema_version"].as_u64().unwrap() as u16,
            recorded_at_micros: recorded_at(event).timestamp_micros(),
            merchant_id: uuid("merchant_id"),
            causation_id: uuid("causation_id"),
            correlation_id: uuid("correlation_id"),
            actor: event["actor"].as_str().unwrap(),
            idempotency: serde_json::from_value(event["idempotency"].clone())
                .expect("idempotency: null or {key_hash, request_hash}"),
            payload: &event["data"],
        };
        let mut previous = [0u8; 32];
        hex::decode_to_slice(event["previous_hash"].as_str().unwrap(), &mut previous).unwrap();
        let hash = chain_hash(&previous, &facts.canonical_bytes());
        assert_eq!(event["hash"], hex::encode(hash), "{event}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_views_histories_and_refund_lookup() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    let order_id = apps.order(&merchant, 50000).await;
    let failed_payment = apps.upi_payment(&merchant, &order_id).await;
    apps.record_outcome(&order_id, &failed_payment, false).await;
    let payment_id = apps.upi_payment(&merchant, &order_id).await;

    // Public order: exactly the checkout's four fields and where it may post
    // its result (the dev merchant's checkout origins), no credentials.
    let (status, order) = apps
        .get(&format!("/api/v1/orders/{order_id}/public"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(
        order,
        json!({"id": order_id, "amount": 50000, "currency": "INR", "status": "attempted",
               "checkout_origins": ["http://localhost:8000", "http://127.0.0.1:8000"]})
    );
    // Public payment: pending, then failed with its error.
    let (status, pending) = apps
        .get(&format!("/api/v1/payments/{payment_id}/public"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{pending}");
    assert_eq!(
        pending,
        json!({"id": payment_id, "order_id": order_id, "amount": 50000, "currency": "INR",
               "method": "upi", "status": "pending"})
    );
    // The original design's poll path answers the same view.
    let (status, original) = apps
        .get(&format!("/api/v1/payments/public/{payment_id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{original}");
    assert_eq!(original, pending);
    let (_, failed) = apps
        .get(&format!("/api/v1/payments/{failed_payment}/public"), None)
        .await;
    assert_eq!(
        failed,
        json!({"id": failed_payment, "order_id": order_id, "amount": 50000, "currency": "INR",
               "method": "upi", "status": "failed", "error_code": "PAYMENT_FAILED",
               "error_description": "Payment declined by the bank"})
    );

    // Two refunds on one payment: each refund's history is its own events.
    apps.record_outcome(&order_id, &payment_id, true).await;
    let first = apps.refund(&merchant, &payment_id, 1000).await;
    let second = apps.refund(&merchant, &payment_id, 2000).await;
    apps.process_refund(&payment_id, &first).await;
    let refund = apps
        .get_ok(&format!("/api/v1/refunds/{second}"), &merchant)
        .await;
    assert_eq!(refund["payment_id"], payment_id.as_str());
    assert_eq!(refund["amount"], 2000);
    assert_eq!(refund["status"], "pending");
    assert_eq!(refund["merchant_id"], json!(merchant.id));

    let payment_history = apps
        .get_ok(&format!("/api/v1/payments/{payment_id}/events"), &merchant)
        .await;
    assert_eq!(payment_history["id"], payment_id.as_str());
    assert_eq!(payment_history["object"], "payment");
    assert_eq!(
        types(&payment_history),
        [
            "PaymentCreated",
            "PaymentSucceeded",
            "RefundCreated",
            "RefundCreated",
            "RefundProcessed"
        ]
    );
    let events = payment_history["data"].as_array().unwrap();
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["version"], index as u64 + 1, "{event}");
        assert_eq!(event["stream"], format!("payment-{payment_id}"));
        assert!(event["position"].as_i64().unwrap() > 0);
        assert_eq!(event["schema_version"], 1);
        assert_eq!(event["hash"].as_str().unwrap().len(), 64);
        let previous = if index == 0 {
            "0".repeat(64)
        } else {
            events[index - 1]["hash"].as_str().unwrap().to_string()
        };
        assert_eq!(event["previous_hash"], previous);
        assert!(event["correlation_id"].is_string() || event["correlation_id"].is_null());
        assert!(event["causation_id"].is_null() || event["causation_id"].is_string());
    }
    assert_eq!(events[0]["actor"], format!("merchant:{}", merchant.id));
    assert_eq!(events[1]["actor"], "system:acquirer");
    assert_eq!(events[0]["data"]["payment_id"], payment_id.as_str());
    assert_eq!(events[0]["data"]["vpa"], "user@okbank");
    assert_chain(&payment_history);

    let first_history = apps
        .get_ok(&format!("/api/v1/refunds/{first}/events"), &merchant)
        .await;
    assert_eq!(first_history["object"], "refund");
    assert_eq!(types(&first_history), ["RefundCreated", "RefundProcessed"]);
    assert_eq!(first_history["data"][0]["version"], 3);
    assert_eq!(first_history["data"][1]["version"], 5);
    // Each event carries its predecessor's hash, so a subset still checks.
    assert_eq!(first_history["data"][1]["previous_hash"], events[3]["hash"]);
    assert_chain(&first_history);
    let second_history = apps
        .get_ok(&format!("/api/v1/refunds/{second}/events"), &merchant)
        .await;
    assert_eq!(types(&second_history), ["RefundCreated"]);
    assert_eq!(second_history["data"][0]["data"]["refund_id"], second);

    let order_history = apps
        .get_ok(&format!("/api/v1/orders/{order_id}/events"), &merchant)
        .await;
    assert_eq!(
        types(&order_history),
        ["OrderCreated", "OrderAttempted", "OrderPaid"]
    );
    assert_chain(&order_history);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_merchants_objects_are_not_found_anywhere() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    let other = apps.merchant(false).await;
    let order_id = apps.order(&merchant, 50000).await;
    let payment_id = apps.upi_payment(&merchant, &order_id).await;
    apps.record_outcome(&order_id, &payment_id, true).await;
    let refund_id = apps.refund(&merchant, &payment_id, 5000).await;
    // The other merchant has objects of its own, which it can read.
    let own_order = apps.order(&other, 10000).await;
    apps.get_ok(&format!("/api/v1/orders/{own_order}"), &other)
        .await;

    let moment = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    for object in [
        format!("/api/v1/orders/{order_id}"),
        format!("/api/v1/payments/{payment_id}"),
        format!("/api/v1/refunds/{refund_id}"),
    ] {
        for path in [
            object.clone(),
            format!("{object}?as_of={moment}"),
            format!("{object}/events"),
        ] {
            let (status, body) = apps.get(&path, Some(&other)).await;
            assert_error(
                status,
                &body,
                StatusCode::NOT_FOUND,
                "NOT_FOUND_ERROR",
                &path,
            );
            // The owner reads it.
            apps.get_ok(&path, &merchant).await;
        }
    }
    // And nothing leaks the other way.
    let (status, _) = apps
        .get(
            &format!("/api/v1/orders/{own_order}/events"),
            Some(&merchant),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_a_4xx_in_the_contract_format() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    let suspended = apps.merchant(true).await;
    let wrong_secret = Merchant {
        secret: "nope".into(),
        ..dev_merchant()
    };
    let order_id = apps.order(&merchant, 50000).await;
    let payment_id = apps.upi_payment(&merchant, &order_id).await;
    apps.record_outcome(&order_id, &payment_id, true).await;
    let refund_id = apps.refund(&merchant, &payment_id, 100).await;

    let not_found = "NOT_FOUND_ERROR";
    let bad = "BAD_REQUEST_ERROR";
    let auth = "AUTHENTICATION_ERROR";
    let long = "x".repeat(5000);
    let mut cases: Vec<(String, Option<&Merchant>, StatusCode, &str)> = Vec::new();
    // Malformed, unknown, and wrong-kind ids are all "not found".
    for id in [
        "order_short",
        "order_AAAAAAAAAAAAAAAA",
        "pay_AAAAAAAAAAAAAAAA",
        "order_%21%21%21%21%21%21%21%21%21%21%21%21%21%21%21%21",
        "%00",
        &long,
        &payment_id,
    ] {
        for path in [
            format!("/api/v1/orders/{id}"),
            format!("/api/v1/orders/{id}/events"),
        ] {
            cases.push((path, Some(&merchant), StatusCode::NOT_FOUND, not_found));
        }
        cases.push((
            format!("/api/v1/orders/{id}/public"),
            None,
            StatusCode::NOT_FOUND,
            not_found,
        ));
    }
    for id in ["pay_x", "pay_AAAAAAAAAAAAAAAA", &order_id, &refund_id] {
        for path in [
            format!("/api/v1/payments/{id}"),
            format!("/api/v1/payments/{id}/events"),
        ] {
            cases.push((path, Some(&merchant), StatusCode::NOT_FOUND, not_found));
        }
        for path in [
            format!("/api/v1/payments/{id}/public"),
            format!("/api/v1/payments/public/{id}"),
        ] {
            cases.push((path, None, StatusCode::NOT_FOUND, not_found));
        }
    }
    for id in ["rfnd_", "rfnd_AAAAAAAAAAAAAAAA", &payment_id] {
        for path in [
            format!("/api/v1/refunds/{id}"),
            format!("/api/v1/refunds/{id}/events"),
        ] {
            cases.push((path, Some(&merchant), StatusCode::NOT_FOUND, not_found));
        }
    }
    // Bad `as_of` on each object.
    for object in [
        format!("/api/v1/orders/{order_id}"),
        format!("/api/v1/payments/{payment_id}"),
        format!("/api/v1/refunds/{refund_id}"),
    ] {
        for query in [
            "as_of=",
            "as_of=yesterday",
            "as_of=2025-01-31",
            "as_of=2025-01-31T10:15:30",
            "as_of=2025-02-30T10:15:30Z",
            "as_of=1738318530",
            "as_of=2025-01-31T10:15:30Z&as_of=2025-01-31T10:15:30Z",
        ] {
            cases.push((
                format!("{object}?{query}"),
                Some(&merchant),
                StatusCode::BAD_REQUEST,
                bad,
            ));
        }
        // Credentials are checked first.
        for who in [None, Some(&wrong_secret), Some(&suspended)] {
            for path in [object.clone(), format!("{object}/events")] {
                cases.push((path, who, StatusCode::UNAUTHORIZED, auth));
            }
        }
    }
    cases.push((
        "/api/v1/nothing".into(),
        None,
        StatusCode::NOT_FOUND,
        not_found,
    ));
    cases.push((
        format!("/api/v1/orders/{order_id}/events/extra"),
        Some(&merchant),
        StatusCode::NOT_FOUND,
        not_found,
    ));

    for (path, who, status, code) in &cases {
        let (actual, body) = apps.get(path, *who).await;
        let shown: String = path.chars().take(120).collect();
        assert_error(actual, &body, *status, code, &shown);
        if *status == StatusCode::BAD_REQUEST {
            assert_eq!(body["error"]["field"], "as_of", "{shown}: {body}");
        }
    }

    // An id that is not UTF-8 once percent-decoded cannot name anything:
    // a 400 naming `id`, in the contract's format, on every read by id.
    for id in ["%FF%FE", "%ed%a0%80", "pay_%c3"] {
        for (path, who) in [
            (format!("/api/v1/orders/{id}"), Some(&merchant)),
            (format!("/api/v1/orders/{id}/events"), Some(&merchant)),
            (format!("/api/v1/orders/{id}/public"), None),
            (format!("/api/v1/payments/{id}"), Some(&merchant)),
            (format!("/api/v1/payments/{id}/events"), Some(&merchant)),
            (format!("/api/v1/payments/{id}/public"), None),
            (format!("/api/v1/payments/{id}/refunds"), Some(&merchant)),
            (format!("/api/v1/refunds/{id}"), Some(&merchant)),
            (format!("/api/v1/refunds/{id}/events"), Some(&merchant)),
            (format!("/api/v1/webhooks/{id}"), Some(&merchant)),
        ] {
            let (actual, body) = apps.get(&path, who).await;
            assert_error(actual, &body, StatusCode::BAD_REQUEST, bad, &path);
            assert_eq!(body["error"]["field"], "id", "{path}: {body}");
        }
    }

    // The key alone is not enough for merchant reads; a missing key says so.
    let (status, body) = apps
        .send(
            Method::GET,
            format!("{}/api/v1/orders/{order_id}", apps.query),
            None,
            None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        auth,
        "no credentials",
    );
    // Writes are not served here: 405 in the same format.
    let (status, body) = apps
        .send(
            Method::POST,
            format!("{}/api/v1/orders/{order_id}", apps.query),
            Some(&merchant),
            Some(json!({})),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        bad,
        "POST on a query route",
    );
}
