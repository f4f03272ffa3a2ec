//! The command API over real HTTP, PostgreSQL and the event store.
//!
//! Outcomes that the acquirer records in production (success, failure) are
//! recorded here through the same domain commands, so the tests do not wait
//! for it; the acquirer has tests of its own.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use paystream_domain::dev as seed;
use paystream_domain::order::OrderAggregate;
use paystream_domain::payment::{
    PaymentAggregate, PaymentStatus, RecordPaymentFailure, RecordPaymentSuccess,
};
use paystream_domain::{OrderId, PaymentId};
use paystream_store::runner;
use paystream_store::EventMetadata;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::app::{dev_merchant, spawn_app, Merchant, TestApp};
use support::register_merchant;

impl TestApp {
    async fn send(
        &self,
        method: Method,
        path: &str,
        merchant: Option<&Merchant>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(merchant) = merchant {
            request = request
                .header("X-Api-Key", &merchant.key)
                .header("X-Api-Secret", &merchant.secret);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body, headers)
    }

    async fn post(&self, path: &str, merchant: &Merchant, body: Value) -> (StatusCode, Value) {
        let (status, body, _) = self
            .send(
                Method::POST,
                path,
                Some(merchant),
                &[],
                Some(body.to_string().into_bytes()),
            )
            .await;
        (status, body)
    }

    async fn event_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from events")
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    async fn order(&self, merchant: &Merchant, amount: i64) -> String {
        let (status, body) = self
            .post(
                "/api/v1/orders",
                merchant,
                json!({"amount": amount, "currency": "INR"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn upi_payment(&self, merchant: &Merchant, order_id: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/payments",
                merchant,
                json!({"order_id": order_id, "method": "upi", "vpa": "user@okbank"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// What the acquirer records for a payment, through the same commands.
    async fn record_outcome(&self, payment_id: &str, success: bool) {
        let id: PaymentId = payment_id.parse().unwrap();
        let metadata = EventMetadata {
            actor: "system:acquirer".into(),
            ..EventMetadata::default()
        };
        runner::execute::<PaymentAggregate, _>(&self.store, &id, &metadata, |_| {
            Ok(if success {
                RecordPaymentSuccess { at: Utc::now() }.into()
            } else {
                RecordPaymentFailure {
                    error_code: "PAYMENT_FAILED".into(),
                    error_description: "declined".into(),
                    at: Utc::now(),
                }
                .into()
            })
        })
        .await
        .unwrap();
    }

    /// Registers another merchant straight through the domain.
    async fn merchant(&self, suspended: bool) -> Merchant {
        let registered = register_merchant(&self.store, suspended).await;
        Merchant {
            id: registered.id,
            key: registered.key,
            secret: registered.secret,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_payments_capture_and_refunds_happy_path() {
    let app = spawn_app().await;
    let merchant = dev_merchant();

    let (status, order, headers) = app
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(&merchant),
            &[],
            Some(
                json!({"amount": 50000, "currency": "INR", "receipt": "r#1", "notes": {"k": "v"}})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["id"].as_str().unwrap();
    assert!(
        order_id.starts_with("order_") && order_id.len() == 22,
        "{order_id}"
    );
    assert_eq!(order["merchant_id"], json!(merchant.id));
    assert_eq!(order["amount"], 50000);
    assert_eq!(order["currency"], "INR");
    assert_eq!(order["receipt"], "r#1");
    assert_eq!(order["notes"], json!({"k": "v"}));
    assert_eq!(order["status"], "created");
    assert!(order["created_at"].is_string());
    let position: i64 = headers["x-event-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(position > 0);

    // Currency defaults to INR; HTTP Basic works too.
    let (status, default_currency, _) = app
        .send(
            Method::POST,
            "/api/v1/orders",
            None,
            &[(
                "Authorization",
                "Basic a2V5X3Rlc3RfYWJjMTIzOnNlY3JldF90ZXN0X3h5ejc4OQ==",
            )],
            Some(br#"{"amount": 100}"#.to_vec()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{default_currency}");
    assert_eq!(default_currency["currency"], "INR");

    // UPI payment: pending, and the order becomes attempted.
    let (status, upi) = app
        .post(
            "/api/v1/payments",
            &merchant,
            json!({"order_id": order_id, "method": "upi", "vpa": "user@okbank"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{upi}");
    assert!(upi["id"].as_str().unwrap().starts_with("pay_"));
    assert_eq!(upi["status"], "pending");
    assert_eq!(upi["method"], "upi");
    assert_eq!(upi["vpa"], "user@okbank");
    assert_eq!(upi["amount"], 50000);
    let order_state =
        runner::load::<OrderAggregate>(&app.store, order_id.parse::<OrderId>().unwrap())
            .await
            .unwrap()
            .state
            .unwrap();
    assert_eq!(
        serde_json::to_value(order_state.status).unwrap(),
        "attempted"
    );

    // Card payment through the public (checkout) variant: key only.
    let second_order = app.order(&merchant, 2000).await;
    let (status, card, _) = app
        .send(
            Method::POST,
            "/api/v1/payments/public",
            None,
            &[("X-Api-Key", seed::DEV_API_KEY)],
            Some(
                json!({"order_id": second_order, "method": "card", "card": {
                    "number": "4111 1111 1111 1111", "expiry_month": "12", "expiry_year": "30",
                    "cvv": "123", "holder_name": "A Shopper"}})
                .to_string()
                .into_bytes(),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{card}");
    assert_eq!(card["card_network"], "visa");
    assert_eq!(card["card_last4"], "1111");
    assert!(card.get("card").is_none() && card.get("cvv").is_none());

    // Capture after success.
    let payment_id = upi["id"].as_str().unwrap();
    app.record_outcome(payment_id, true).await;
    let (status, captured) = app
        .post(
            &format!("/api/v1/payments/{payment_id}/capture"),
            &merchant,
            json!({"amount": 50000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{captured}");
    assert_eq!(captured["captured"], true);
    assert_eq!(captured["status"], "success");
    assert!(captured["updated_at"].is_string());

    // Refund.
    let (status, refund) = app
        .post(
            &format!("/api/v1/payments/{payment_id}/refunds"),
            &merchant,
            json!({"amount": 10000, "reason": "customer asked"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    assert!(refund["id"].as_str().unwrap().starts_with("rfnd_"));
    assert_eq!(refund["payment_id"], payment_id);
    assert_eq!(refund["amount"], 10000);
    assert_eq!(refund["reason"], "customer asked");
    assert_eq!(refund["status"], "pending");
}

/// Every bad input gets a 4xx with a code and appends nothing.
/// The original design's checkout pays with no key at all: the order names
/// its merchant. A key that is sent must be the order's merchant's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkout_pays_an_order_with_no_key() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    let other = app.merchant(false).await;
    let pay = |order: String, key: Option<String>, body: Value| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> = key
                .as_deref()
                .map(|key| vec![("X-Api-Key", key)])
                .unwrap_or_default();
            let mut body = body;
            body["order_id"] = json!(order);
            let (status, body, _) = app
                .send(
                    Method::POST,
                    "/api/v1/payments/public",
                    None,
                    &headers,
                    Some(body.to_string().into_bytes()),
                )
                .await;
            (status, body)
        }
    };
    let upi = json!({"method": "upi", "vpa": "user@okbank"});
    let card = json!({"method": "card", "card": {"number": "4111 1111 1111 1111",
        "expiry_month": "12", "expiry_year": "30", "cvv": "123", "holder_name": "A Shopper"}});

    for body in [&upi, &card] {
        let order = app.order(&merchant, 5000).await;
        let (status, payment) = pay(order.clone(), None, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{payment}");
        assert_eq!(payment["order_id"], order.as_str());
        assert_eq!(payment["status"], "pending");
    }
    // The order's own key still works.
    let order = app.order(&merchant, 5000).await;
    let (status, payment) = pay(order, Some(merchant.key.clone()), upi.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");

    // Refusals append nothing: another merchant's key is a 404 (its orders
    // are not the key's to see), an unknown key a 401, an unknown order a
    // 404, a suspended merchant's order a 401.
    let order = app.order(&merchant, 5000).await;
    let suspended = app.merchant(false).await;
    let suspended_order = app.order(&suspended, 5000).await;
    support::suspend_merchant(&app.store, suspended.id).await;
    let cases = [
        (
            order.clone(),
            Some(other.key.clone()),
            StatusCode::NOT_FOUND,
        ),
        (
            order.clone(),
            Some("key_unknown".into()),
            StatusCode::UNAUTHORIZED,
        ),
        ("order_AAAAAAAAAAAAAAAA".into(), None, StatusCode::NOT_FOUND),
        (suspended_order.clone(), None, StatusCode::UNAUTHORIZED),
        (
            suspended_order,
            Some(suspended.key.clone()),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (order, key, want) in cases {
        let before = app.event_count().await;
        let (status, body) = pay(order.clone(), key.clone(), upi.clone()).await;
        assert_eq!(status, want, "{order} with {key:?}: {body}");
        assert_eq!(app.event_count().await, before, "{order} with {key:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_a_clear_4xx_and_append_nothing() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    let other = app.merchant(false).await;
    let suspended = app.merchant(true).await;
    let wrong_secret = Merchant {
        secret: "nope".into(),
        ..dev_merchant()
    };
    let unknown_key = Merchant {
        key: "key_unknown".into(),
        ..dev_merchant()
    };

    let order = app.order(&merchant, 50000).await;
    let pending = app.upi_payment(&merchant, &order).await;
    let succeeded = app
        .upi_payment(&merchant, &app.order(&merchant, 50000).await)
        .await;
    app.record_outcome(&succeeded, true).await;
    let failed = app
        .upi_payment(&merchant, &app.order(&merchant, 50000).await)
        .await;
    app.record_outcome(&failed, false).await;
    let captured = app
        .upi_payment(&merchant, &app.order(&merchant, 50000).await)
        .await;
    app.record_outcome(&captured, true).await;
    let (status, _) = app
        .post(
            &format!("/api/v1/payments/{captured}/capture"),
            &merchant,
            json!({"amount": 50000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let others_order = app.order(&other, 50000).await;
    let others_payment = app.upi_payment(&other, &others_order).await;
    app.record_outcome(&others_payment, true).await;

    // An idempotency key already used, for the "different body" case.
    let (status, _, _) = app
        .send(
            Method::POST,
            "/api/v1/payments",
            Some(&merchant),
            &[("Idempotency-Key", "reused-key")],
            Some(
                json!({"order_id": order, "method": "upi", "vpa": "a@b"})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let card = |number: &str, month: &str, year: &str, cvv: &str| {
        json!({"order_id": order, "method": "card", "card": {
            "number": number, "expiry_month": month, "expiry_year": year, "cvv": cvv,
            "holder_name": "A"}})
        .to_string()
    };
    let capture = |id: &str| format!("/api/v1/payments/{id}/capture");
    let refund = |id: &str| format!("/api/v1/payments/{id}/refunds");
    let huge = format!(
        r#"{{"amount": 500, "receipt": "{}"}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    let many_notes: serde_json::Map<String, Value> =
        (0..16).map(|i| (format!("k{i}"), json!("v"))).collect();
    let long_key = "k".repeat(256);

    struct Case<'a> {
        name: &'a str,
        method: Method,
        path: String,
        who: Option<&'a Merchant>,
        headers: Vec<(&'a str, &'a str)>,
        body: Option<String>,
        status: StatusCode,
        code: &'a str,
        /// The `field` the error must name, when the case checks it.
        field: Option<&'a str>,
    }
    impl<'a> Case<'a> {
        fn field(self, field: &'a str) -> Self {
            Self {
                field: Some(field),
                ..self
            }
        }
    }
    let post = |name: &'static str, path: &str, body: &str, status: u16, code: &'static str| Case {
        name,
        method: Method::POST,
        path: path.to_string(),
        who: Some(&merchant),
        headers: vec![],
        body: Some(body.to_string()),
        status: StatusCode::from_u16(status).unwrap(),
        code,
        field: None,
    };
    let orders = "/api/v1/orders";
    let payments = "/api/v1/payments";
    let upi = |vpa: &str| json!({"order_id": order, "method": "upi", "vpa": vpa}).to_string();
    let bad = "BAD_REQUEST_ERROR";
    let mut cases = vec![
        post("empty body", orders, "", 400, bad),
        post("malformed JSON", orders, "{\"amount\": ", 400, bad),
        post("JSON array", orders, "[1, 2]", 400, bad),
        post("JSON null", orders, "null", 400, bad),
        post("missing amount", orders, "{}", 400, bad),
        post(
            "amount as a string",
            orders,
            r#"{"amount": "500"}"#,
            400,
            bad,
        ),
        post("amount 0", orders, r#"{"amount": 0}"#, 400, bad),
        post("amount 99", orders, r#"{"amount": 99}"#, 400, bad),
        post("negative amount", orders, r#"{"amount": -100}"#, 400, bad),
        post(
            "amount above i64",
            orders,
            r#"{"amount": 9223372036854775808}"#,
            400,
            bad,
        ),
        post(
            "fractional amount",
            orders,
            r#"{"amount": 100.5}"#,
            400,
            bad,
        ),
        post(
            "unknown currency",
            orders,
            r#"{"amount": 500, "currency": "XYZ"}"#,
            400,
            bad,
        ),
        post(
            "lowercase currency",
            orders,
            r#"{"amount": 500, "currency": "inr"}"#,
            400,
            bad,
        ),
        post(
            "numeric currency",
            orders,
            r#"{"amount": 500, "currency": 356}"#,
            400,
            bad,
        ),
        post(
            "receipt too long",
            orders,
            &format!(r#"{{"amount": 500, "receipt": "{}"}}"#, "r".repeat(41)),
            400,
            bad,
        ),
        post(
            "notes not an object",
            orders,
            r#"{"amount": 500, "notes": "x"}"#,
            400,
            bad,
        ),
        post(
            "too many notes",
            orders,
            &json!({"amount": 500, "notes": many_notes}).to_string(),
            400,
            bad,
        ),
        post("a 10 MB body", orders, &huge, 413, bad),
        post(
            "unknown method",
            payments,
            &json!({"order_id": order, "method": "netbanking"}).to_string(),
            400,
            bad,
        ),
        post(
            "missing method",
            payments,
            &json!({"order_id": order}).to_string(),
            400,
            bad,
        ),
        post(
            "missing order_id",
            payments,
            r#"{"method": "upi", "vpa": "a@b"}"#,
            400,
            bad,
        ),
        post(
            "UPI without vpa",
            payments,
            &json!({"order_id": order, "method": "upi"}).to_string(),
            400,
            bad,
        ),
        post(
            "VPA without handle",
            payments,
            &upi("user@"),
            400,
            "INVALID_VPA",
        ),
        post(
            "VPA with a space",
            payments,
            &upi("us er@bank"),
            400,
            "INVALID_VPA",
        ),
        post(
            "VPA handle with a dot",
            payments,
            &upi("user@bank.com"),
            400,
            "INVALID_VPA",
        ),
        post(
            "card failing Luhn",
            payments,
            &card("4111111111111112", "12", "30", "123"),
            400,
            "INVALID_CARD",
        ),
        post(
            "card too short",
            payments,
            &card("411111111111", "12", "30", "123"),
            400,
            "INVALID_CARD",
        ),
        post(
            "card with letters",
            payments,
            &card("4111abcd11111111", "12", "30", "123"),
            400,
            "INVALID_CARD",
        ),
        post(
            "expired card",
            payments,
            &card("4111111111111111", "01", "2020", "123"),
            400,
            "EXPIRED_CARD",
        ),
        post(
            "expiry month 13",
            payments,
            &card("4111111111111111", "13", "30", "123"),
            400,
            "INVALID_CARD",
        ),
        post(
            "two-digit CVV",
            payments,
            &card("4111111111111111", "12", "30", "12"),
            400,
            "INVALID_CARD",
        ),
        post(
            "card method without card",
            payments,
            &json!({"order_id": order, "method": "card"}).to_string(),
            400,
            bad,
        ),
        post(
            "unknown order",
            payments,
            &json!({"order_id": "order_AAAAAAAAAAAAAAAA", "method": "upi", "vpa": "a@b"})
                .to_string(),
            404,
            "NOT_FOUND_ERROR",
        ),
        post(
            "malformed order id",
            payments,
            &json!({"order_id": "12345", "method": "upi", "vpa": "a@b"}).to_string(),
            404,
            "NOT_FOUND_ERROR",
        ),
        post(
            "another merchant's order",
            payments,
            &json!({"order_id": others_order, "method": "upi", "vpa": "a@b"}).to_string(),
            404,
            "NOT_FOUND_ERROR",
        ),
        post(
            "capture before success",
            &capture(&pending),
            r#"{"amount": 50000}"#,
            400,
            bad,
        ),
        post(
            "capture of a failed payment",
            &capture(&failed),
            r#"{"amount": 50000}"#,
            400,
            bad,
        ),
        post(
            "capture twice",
            &capture(&captured),
            r#"{"amount": 50000}"#,
            400,
            bad,
        ),
        post(
            "capture amount 0",
            &capture(&succeeded),
            r#"{"amount": 0}"#,
            400,
            bad,
        ),
        post(
            "capture above the amount",
            &capture(&succeeded),
            r#"{"amount": 50001}"#,
            400,
            bad,
        ),
        post(
            "capture without amount",
            &capture(&succeeded),
            "{}",
            400,
            bad,
        ),
        post(
            "capture of another merchant's payment",
            &capture(&others_payment),
            r#"{"amount": 50000}"#,
            404,
            "NOT_FOUND_ERROR",
        ),
        post(
            "capture of an unknown payment",
            &capture("pay_AAAAAAAAAAAAAAAA"),
            r#"{"amount": 50000}"#,
            404,
            "NOT_FOUND_ERROR",
        ),
        post(
            "refund before success",
            &refund(&pending),
            r#"{"amount": 100}"#,
            400,
            bad,
        ),
        post(
            "refund of a failed payment",
            &refund(&failed),
            r#"{"amount": 100}"#,
            400,
            bad,
        ),
        post(
            "refund over the amount",
            &refund(&succeeded),
            r#"{"amount": 50001}"#,
            400,
            bad,
        ),
        post(
            "refund amount 0",
            &refund(&succeeded),
            r#"{"amount": 0}"#,
            400,
            bad,
        ),
        post(
            "refund reason too long",
            &refund(&succeeded),
            &json!({"amount": 100, "reason": "r".repeat(256)}).to_string(),
            400,
            bad,
        ),
        post(
            "refund of another merchant's payment",
            &refund(&others_payment),
            r#"{"amount": 100}"#,
            404,
            "NOT_FOUND_ERROR",
        ),
        post(
            "unknown endpoint",
            "/api/v1/nothing",
            "{}",
            404,
            "NOT_FOUND_ERROR",
        ),
        // Amounts above the maximum (8 digits in minor units).
        post(
            "amount one above the maximum",
            orders,
            r#"{"amount": 100000000}"#,
            400,
            bad,
        )
        .field("amount"),
        post(
            "amount i64::MAX",
            orders,
            r#"{"amount": 9223372036854775807}"#,
            400,
            bad,
        )
        .field("amount"),
        post(
            "amount i64::MAX in JPY",
            orders,
            r#"{"amount": 9223372036854775807, "currency": "JPY"}"#,
            400,
            bad,
        )
        .field("amount"),
        post(
            "capture amount i64::MAX",
            &capture(&succeeded),
            r#"{"amount": 9223372036854775807}"#,
            400,
            bad,
        )
        .field("amount"),
        post(
            "refund amount i64::MAX",
            &refund(&succeeded),
            r#"{"amount": 9223372036854775807}"#,
            400,
            bad,
        )
        .field("amount"),
        // Notes numbers the store cannot keep exactly.
        post(
            "a decimal in notes",
            orders,
            r#"{"amount": 1000, "notes": {"k": 1.5}}"#,
            400,
            bad,
        )
        .field("notes"),
        post(
            "an exponent in notes",
            orders,
            r#"{"amount": 1000, "notes": {"k": 1e2}}"#,
            400,
            bad,
        )
        .field("notes"),
        post(
            "an integer beyond 64 bits in notes",
            orders,
            r#"{"amount": 1000, "notes": {"k": 18446744073709551616}}"#,
            400,
            bad,
        )
        .field("notes"),
        post(
            "an integer beyond i64 in notes",
            orders,
            r#"{"amount": 1000, "notes": {"k": 9223372036854775808}}"#,
            400,
            bad,
        )
        .field("notes"),
        // NUL characters, which PostgreSQL text and jsonb cannot hold.
        post(
            "NUL in the receipt",
            orders,
            r#"{"amount": 1000, "receipt": "r\u0000"}"#,
            400,
            bad,
        )
        .field("receipt"),
        post(
            "NUL in a notes key",
            orders,
            r#"{"amount": 1000, "notes": {"k\u0000": "v"}}"#,
            400,
            bad,
        )
        .field("notes"),
        post(
            "NUL in a notes value",
            orders,
            r#"{"amount": 1000, "notes": {"k": "\u0000"}}"#,
            400,
            bad,
        )
        .field("notes.k"),
        post(
            "NUL in the currency",
            orders,
            r#"{"amount": 1000, "currency": "INR\u0000"}"#,
            400,
            bad,
        )
        .field("currency"),
        post("NUL in the VPA", payments, &upi("user\u{0}@bank"), 400, bad).field("vpa"),
        post(
            "NUL in the order id",
            payments,
            &json!({"order_id": format!("{order}\u{0}"), "method": "upi", "vpa": "a@b"})
                .to_string(),
            400,
            bad,
        )
        .field("order_id"),
        post(
            "NUL in the card holder name",
            payments,
            &json!({"order_id": order, "method": "card", "card": {
                "number": "4111111111111111", "expiry_month": "12", "expiry_year": "30",
                "cvv": "123", "holder_name": "A\u{0}"}})
            .to_string(),
            400,
            bad,
        )
        .field("card.holder_name"),
        post(
            "card holder name too long",
            payments,
            &json!({"order_id": order, "method": "card", "card": {
                "number": "4111111111111111", "expiry_month": "12", "expiry_year": "30",
                "cvv": "123", "holder_name": "n".repeat(256)}})
            .to_string(),
            400,
            bad,
        )
        .field("card.holder_name"),
        post(
            "NUL in the refund reason",
            &refund(&succeeded),
            r#"{"amount": 100, "reason": "why\u0000"}"#,
            400,
            bad,
        )
        .field("reason"),
        // Path ids that are not UTF-8 once percent-decoded.
        post(
            "capture of an undecodable id",
            "/api/v1/payments/%ff/capture",
            r#"{"amount": 100}"#,
            400,
            bad,
        )
        .field("id"),
        post(
            "refund of an undecodable id",
            "/api/v1/payments/%ff%fe/refunds",
            r#"{"amount": 100}"#,
            400,
            bad,
        )
        .field("id"),
        post(
            "retry of an undecodable webhook id",
            "/api/v1/webhooks/%c3%28/retry",
            "",
            400,
            bad,
        )
        .field("id"),
    ];
    let auth = |name: &'static str,
                who: Option<&'static Merchant>,
                headers: Vec<(&'static str, &'static str)>| Case {
        name,
        method: Method::POST,
        path: orders.into(),
        who,
        headers,
        body: Some(r#"{"amount": 500}"#.into()),
        status: StatusCode::UNAUTHORIZED,
        code: "AUTHENTICATION_ERROR",
        field: None,
    };
    let wrong_secret: &'static Merchant = Box::leak(Box::new(wrong_secret));
    let unknown_key: &'static Merchant = Box::leak(Box::new(unknown_key));
    let suspended: &'static Merchant = Box::leak(Box::new(suspended));
    cases.extend([
        auth("no credentials", None, vec![]),
        auth(
            "key without secret",
            None,
            vec![("X-Api-Key", seed::DEV_API_KEY)],
        ),
        auth("wrong secret", Some(wrong_secret), vec![]),
        auth("unknown key", Some(unknown_key), vec![]),
        auth("suspended merchant", Some(suspended), vec![]),
        auth(
            "HTTP Basic with a wrong secret",
            None,
            vec![("Authorization", "Basic a2V5X3Rlc3RfYWJjMTIzOm5vcGU=")],
        ),
        auth(
            "HTTP Basic that is not base64",
            None,
            vec![("Authorization", "Basic %%%")],
        ),
    ]);
    cases.push(Case {
        name: "idempotency key reused with a different body",
        method: Method::POST,
        path: payments.into(),
        who: Some(&merchant),
        headers: vec![("Idempotency-Key", "reused-key")],
        body: Some(upi("other@bank")),
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "IDEMPOTENCY_ERROR",
        field: None,
    });
    cases.push(Case {
        name: "idempotency key too long",
        method: Method::POST,
        path: payments.into(),
        who: Some(&merchant),
        headers: vec![("Idempotency-Key", &long_key)],
        body: Some(upi("a@b")),
        status: StatusCode::BAD_REQUEST,
        code: bad,
        field: None,
    });
    cases.push(Case {
        name: "GET on a command endpoint",
        method: Method::PUT,
        path: orders.into(),
        who: Some(&merchant),
        headers: vec![],
        body: Some("{}".into()),
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: bad,
        field: None,
    });
    assert!(cases.len() >= 40, "{} cases", cases.len());

    let mut failures = Vec::new();
    for case in cases {
        let before = app.event_count().await;
        let (status, body, _) = app
            .send(
                case.method,
                &case.path,
                case.who,
                &case.headers,
                case.body.map(String::into_bytes),
            )
            .await;
        let after = app.event_count().await;
        let code = body["error"]["code"].as_str().unwrap_or("<none>");
        let field = body["error"]["field"].as_str();
        let field_wrong = case.field.is_some_and(|wanted| field != Some(wanted));
        if status != case.status || code != case.code || after != before || field_wrong {
            failures.push(format!(
                "{}: got {status} {code} field {field:?} (+{} events), want {} {} field {:?}; body {body}",
                case.name,
                after - before,
                case.status,
                case.code,
                case.field,
            ));
        }
        let description = body["error"]["description"].as_str().unwrap_or("");
        assert!(!description.is_empty(), "{}: no description", case.name);
        assert!(
            !description.contains("4111"),
            "{}: card digits in {description}",
            case.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} bad-input cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_refunds_never_exceed_the_amount() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    let payment = app
        .upi_payment(&merchant, &app.order(&merchant, 50000).await)
        .await;
    app.record_outcome(&payment, true).await;

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let client = app.client.clone();
            let url = format!("{}/api/v1/payments/{payment}/refunds", app.base);
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("X-Api-Key", seed::DEV_API_KEY)
                    .header("X-Api-Secret", seed::DEV_API_SECRET)
                    .json(&json!({"amount": 1500}))
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let body: Value = response.json().await.unwrap();
                (status, body)
            })
        })
        .collect();
    let mut accepted = 0i64;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => accepted += body["amount"].as_i64().unwrap(),
            StatusCode::BAD_REQUEST => {
                assert_eq!(
                    body["error"]["description"],
                    "Refund amount exceeds available amount"
                )
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(accepted <= 50000, "refunds accepted for {accepted}");
    assert_eq!(accepted, 33 * 1500, "every refund that fits is accepted");
    let state = runner::load::<PaymentAggregate>(&app.store, payment.parse::<PaymentId>().unwrap())
        .await
        .unwrap()
        .state
        .unwrap();
    assert_eq!(state.amount_refund_pending, accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_twenty_parallel_requests_one_payment() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    let order = app.order(&merchant, 50000).await;
    let body = json!({"order_id": order, "method": "upi", "vpa": "user@bank"}).to_string();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let client = app.client.clone();
            let url = format!("{}/api/v1/payments", app.base);
            let body = body.clone();
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("X-Api-Key", seed::DEV_API_KEY)
                    .header("X-Api-Secret", seed::DEV_API_SECRET)
                    .header("Idempotency-Key", "same-key-20")
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                (response.status(), response.text().await.unwrap())
            })
        })
        .collect();
    let mut answers = HashSet::new();
    for task in tasks {
        let (status, text) = task.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{text}");
        answers.insert(text);
    }
    assert_eq!(
        answers.len(),
        1,
        "every duplicate got the identical response"
    );
    let created: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = 'PaymentCreated'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(created, 1);

    // Later: same key and body → the same answer, still no new events.
    let before = app.event_count().await;
    let (status, replay, headers) = app
        .send(
            Method::POST,
            "/api/v1/payments",
            Some(&merchant),
            &[("Idempotency-Key", "same-key-20")],
            Some(body.clone().into_bytes()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        replay.to_string(),
        serde_json::from_str::<Value>(answers.iter().next().unwrap())
            .unwrap()
            .to_string()
    );
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(app.event_count().await, before);

    // Keys are per merchant: another merchant may use the same key.
    let other = app.merchant(false).await;
    let other_order = app.order(&other, 1000).await;
    let (status, _, _) = app
        .send(
            Method::POST,
            "/api/v1/payments",
            Some(&other),
            &[("Idempotency-Key", "same-key-20")],
            Some(
                json!({"order_id": other_order, "method": "upi", "vpa": "u@b"})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_takes_no_new_payment() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    let order = app.order(&merchant, 50000).await;
    let payment = app.upi_payment(&merchant, &order).await;
    app.record_outcome(&payment, true).await;
    let metadata = EventMetadata {
        actor: "system:acquirer".into(),
        ..EventMetadata::default()
    };
    let order_id: OrderId = order.parse().unwrap();
    runner::execute::<OrderAggregate, _>(&app.store, &order_id, &metadata, |_| {
        Ok(paystream_domain::order::MarkOrderPaid {
            payment_id: payment.parse().unwrap(),
            at: Utc::now(),
        }
        .into())
    })
    .await
    .unwrap();
    let before = app.event_count().await;
    let (status, body) = app
        .post(
            "/api/v1/payments",
            &merchant,
            json!({"order_id": order, "method": "upi", "vpa": "a@b"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(app.event_count().await, before);
    let state = runner::load::<PaymentAggregate>(&app.store, payment.parse::<PaymentId>().unwrap())
        .await
        .unwrap()
        .state
        .unwrap();
    assert_eq!(state.status, PaymentStatus::Success);
}

/// 99 999 999 minor units (8 digits) is the largest amount: an order, its
/// capture and a full refund at it go through; one more is refused (the bad
/// input test has those).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maximum_amount_is_accepted_for_orders_captures_and_refunds() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    for currency in ["INR", "JPY", "KWD"] {
        let (status, order) = app
            .post(
                "/api/v1/orders",
                &merchant,
                json!({"amount": 99_999_999, "currency": currency}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        assert_eq!(order["amount"], 99_999_999);
        let order_id = order["id"].as_str().unwrap();
        let payment_id = app.upi_payment(&merchant, order_id).await;
        app.record_outcome(&payment_id, true).await;
        let (status, captured) = app
            .post(
                &format!("/api/v1/payments/{payment_id}/capture"),
                &merchant,
                json!({"amount": 99_999_999}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{captured}");
        let (status, refund) = app
            .post(
                &format!("/api/v1/payments/{payment_id}/refunds"),
                &merchant,
                json!({"amount": 99_999_999}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{refund}");
        assert_eq!(refund["amount"], 99_999_999);
    }
    let (status, body) = app
        .post("/api/v1/orders", &merchant, json!({"amount": 100_000_000}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "BAD_REQUEST_ERROR");
    assert_eq!(body["error"]["field"], "amount");
    assert_eq!(
        body["error"]["description"],
        "amount must be at most 99999999 (999999.99 INR)"
    );
}

/// Notes keep strings, i64 integers and booleans exactly as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_keep_strings_integers_and_booleans_as_sent() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    let notes = json!({
        "text": "1.5",
        "big": "18446744073709551616",
        "min": i64::MIN,
        "max": i64::MAX,
        "flag": false,
        "unicode": "é€😀\u{1}",
    });
    let (status, order) = app
        .post(
            "/api/v1/orders",
            &merchant,
            json!({"amount": 1000, "notes": notes}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["notes"], notes);
    let id: OrderId = order["id"].as_str().unwrap().parse().unwrap();
    let stored = runner::load::<OrderAggregate>(&app.store, &id)
        .await
        .unwrap()
        .state
        .unwrap();
    assert_eq!(Value::Object(stored.notes.unwrap()), notes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_command() {
    let app = spawn_app().await;
    let (status, document, _) = app
        .send(Method::GET, "/api/v1/openapi.json", None, &[], None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/orders",
        "/api/v1/payments",
        "/api/v1/payments/public",
        "/api/v1/payments/{id}/capture",
        "/api/v1/payments/{id}/refunds",
    ] {
        assert!(
            document["paths"][path]["post"].is_object(),
            "{path} missing"
        );
    }
    assert!(document["components"]["schemas"]["PaymentView"].is_object());
    assert!(document["components"]["securitySchemes"]["api_key"].is_object());
    // The order body says what it accepts: the amount's bounds, and notes
    // values that are strings, 64-bit integers or booleans (no decimals).
    let schemas = &document["components"]["schemas"];
    let order = &schemas["CreateOrderBody"]["properties"];
    assert_eq!(order["amount"]["maximum"], 99_999_999, "{order}");
    assert_eq!(order["amount"]["minimum"], 100, "{order}");
    let notes = order["notes"].to_string();
    assert!(notes.contains("#/components/schemas/NoteValue"), "{notes}");
    let note_types: Vec<String> = schemas["NoteValue"]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", schemas["NoteValue"]))
        .iter()
        .map(|variant| variant["type"].to_string())
        .collect();
    assert_eq!(
        note_types,
        [r#""string""#, r#""integer""#, r#""boolean""#],
        "{}",
        schemas["NoteValue"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_template_and_report_the_relay() {
    let app = spawn_app().await;
    let merchant = dev_merchant();
    let (status, order) = app
        .post("/api/v1/orders", &merchant, json!({"amount": 5000}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let (status, _) = app
        .post("/api/v1/orders", &merchant, json!({"amount": 1}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let id = order["id"].as_str().unwrap();
    let (status, _) = app
        .post(
            &format!("/api/v1/payments/{id}/capture"),
            &merchant,
            json!({"amount": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The backlog counts the committed events below the store's horizon,
    // which a transaction still open anywhere in the cluster (another
    // test's) holds back for a moment: scrape until the order is in it.
    let scrape = || async {
        let response = app
            .client
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        response.text().await.unwrap()
    };
    let backlog_of = |text: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix("relay_backlog_events "))
            .unwrap()
            .parse()
            .unwrap()
    };
    let text = paystream_store::testing::wait_until(
        Duration::from_secs(10),
        "the order in the relay backlog",
        || async {
            let text = scrape().await;
            (backlog_of(&text) >= 1).then_some(text)
        },
    )
    .await;
    for line in [
        "command_api_http_requests_total{method=\"POST\",route=\"/api/v1/orders\",status=\"201\"} 1\n",
        "command_api_http_requests_total{method=\"POST\",route=\"/api/v1/orders\",status=\"400\"} 1\n",
        // The template, never the raw id.
        "command_api_http_requests_total{method=\"POST\",route=\"/api/v1/payments/{id}/capture\",status=\"404\"} 1\n",
        "command_api_database_up 1\n",
        // Every cache shows its bound.
        "command_api_cache_capacity{cache=\"stream_heads\"} 100000\n",
        "command_api_cache_capacity{cache=\"credentials\"} 10000\n",
        // No relay runs in this app: the order waits, unpublished.
        "relay_position 0\n",
    ] {
        assert!(text.contains(line), "{line} not in:\n{text}");
    }
    assert!(!text.contains(id), "raw ids must not become labels");
    assert!(backlog_of(&text) >= 1, "{text}");
    // The order's head and the merchant's credentials are remembered.
    for cache in ["stream_heads", "credentials"] {
        let entries: u64 = text
            .lines()
            .find_map(|line| {
                line.strip_prefix(&format!("command_api_cache_entries{{cache=\"{cache}\"}} "))
            })
            .unwrap()
            .parse()
            .unwrap();
        assert!(entries >= 1, "{cache}: {text}");
    }
}

/// Every answer carries the request's id: the edge's (or a client's) when it
/// looks like an id, a fresh one otherwise; the logs of the request carry
/// the same id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_the_request_id() {
    let app = spawn_app().await;
    let id_of = |response: &reqwest::Response| {
        response
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let given = app
        .client
        .get(format!("{}/health", app.base))
        .header("X-Request-Id", "edge-0192.a:1")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&given).as_deref(), Some("edge-0192.a:1"));
    let refused = app
        .client
        .get(format!("{}/api/v1/nothing", app.base))
        .header("X-Request-Id", "not an id")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let fresh = id_of(&refused).expect("a fresh id");
    assert_eq!(fresh.len(), 32, "{fresh}");
    assert!(fresh.bytes().all(|b| b.is_ascii_hexdigit()), "{fresh}");
}
