//! The merchant-facing lists and feeds over real HTTP, PostgreSQL and NATS:
//! cursor lists of orders, payments and refunds (filled by the real
//! projector), a payment's refunds, the webhook log, one delivery and the
//! webhook configuration, the merchant event feed, stats, `X-Min-Position`,
//! tenant isolation, and who may read histories.
//!
//! Outcomes the acquirer and the webhook dispatcher record in production are
//! recorded here through the same domain commands, with the same metadata
//! (the merchant's id), so these tests do not wait for them.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::join_all;
use paystream_domain::order::{MarkOrderPaid, OrderAggregate};
use paystream_domain::payment::{
    PaymentAggregate, ProcessRefund, RecordPaymentFailure, RecordPaymentSuccess,
};
use paystream_domain::webhook::{RecordWebhookAttempt, WebhookDeliveryAggregate};
use paystream_domain::{PaymentId, RefundId, WebhookDeliveryId};
use paystream_store::runner;
use paystream_store::EventMetadata;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::apps::{dev_merchant, spawn_apps, spawn_apps_with, Apps, Merchant, Options};
use support::wait_until;

// ---- helpers -----------------------------------------------------------------

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
enum Auth<'a> {
    None,
    Keys(&'a Merchant),
    Bearer(&'a str),
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: Value,
    headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// `X-Event-Position` of a command's answer.
    fn position(&self) -> i64 {
        self.headers
            .get("x-event-position")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no X-Event-Position: {}", self.body))
    }
}

async fn call(
    apps: &Apps,
    method: Method,
    url: String,
    auth: Auth<'_>,
    body: Option<Value>,
    headers: &[(&str, String)],
) -> Reply {
    let mut request = apps.client.request(method, url);
    match auth {
        Auth::None => {}
        Auth::Keys(merchant) => {
            request = request
                .header("X-Api-Key", &merchant.key)
                .header("X-Api-Secret", &merchant.secret);
        }
        Auth::Bearer(token) => request = request.bearer_auth(token),
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        body,
        headers,
    }
}

/// `GET` from the query API.
async fn get(apps: &Apps, path: &str, auth: Auth<'_>) -> Reply {
    call(
        apps,
        Method::GET,
        format!("{}{path}", apps.query),
        auth,
        None,
        &[],
    )
    .await
}

/// `GET` from the query API that must answer 200.
async fn get_ok(apps: &Apps, path: &str, merchant: &Merchant) -> Value {
    let reply = get(apps, path, Auth::Keys(merchant)).await;
    assert_eq!(reply.status, StatusCode::OK, "GET {path}: {}", reply.body);
    reply.body
}

/// `GET` from the query API with `X-Min-Position`.
async fn get_at(apps: &Apps, path: &str, merchant: &Merchant, position: i64) -> Reply {
    call(
        apps,
        Method::GET,
        format!("{}{path}", apps.query),
        Auth::Keys(merchant),
        None,
        &[("X-Min-Position", position.to_string())],
    )
    .await
}

/// `GET` with `X-Min-Position` from a client that retries while the answer
/// is 503 `PROJECTION_BEHIND` (as the error asks). The query API's own bound
/// is 5 s; a long writing transaction anywhere in the PostgreSQL cluster
/// (another test's, a benchmark's) holds every relay back longer than that
/// on a shared machine, so the test allows 60 s in all.
async fn get_fresh(apps: &Apps, path: &str, merchant: &Merchant, position: i64) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = get_at(apps, path, merchant, position).await;
        let behind = reply.status == StatusCode::SERVICE_UNAVAILABLE
            && reply.body["error"]["code"] == "PROJECTION_BEHIND";
        if !behind || Instant::now() > deadline {
            return reply;
        }
    }
}

/// A command to the command API that must succeed.
async fn command(
    apps: &Apps,
    method: Method,
    path: &str,
    merchant: &Merchant,
    body: Value,
) -> Reply {
    let reply = call(
        apps,
        method.clone(),
        format!("{}{path}", apps.command),
        Auth::Keys(merchant),
        Some(body),
        &[],
    )
    .await;
    assert!(
        reply.status.is_success(),
        "{method} {path}: {} {}",
        reply.status,
        reply.body
    );
    reply
}

fn assert_error(reply: &Reply, status: StatusCode, code: &str, field: Option<&str>, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.body);
    assert_eq!(reply.body["error"]["code"], code, "{what}: {}", reply.body);
    assert!(
        reply.body["error"]["description"]
            .as_str()
            .is_some_and(|text| !text.is_empty()),
        "{what}: {}",
        reply.body
    );
    if let Some(field) = field {
        assert_eq!(
            reply.body["error"]["field"], field,
            "{what}: {}",
            reply.body
        );
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_string())
        .collect()
}

fn moment(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a timestamp"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Walks a cursor list to its end, `limit` at a time; every page but the
/// last is full and has a cursor, the last has none.
async fn walk(apps: &Apps, path: &str, merchant: &Merchant, limit: usize) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut url = format!("{path}{separator}limit={limit}");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page = get_ok(apps, &url, merchant).await;
        let data = page["data"].as_array().expect("data").clone();
        assert!(data.len() <= limit, "{url}: {page}");
        items.extend(data.iter().cloned());
        if page["has_more"] == true {
            assert_eq!(data.len(), limit, "{url}: a page before the last is full");
            cursor = Some(
                page["next_cursor"]
                    .as_str()
                    .expect("next_cursor")
                    .to_string(),
            );
        } else {
            assert_eq!(page["next_cursor"], Value::Null, "{url}: {page}");
            return items;
        }
    }
    panic!("{path}: the walk does not end");
}

/// Newest first: `created_at` descending, then id descending.
fn assert_newest_first(items: &[Value], what: &str) {
    for pair in items.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let key = |item: &Value| {
            (
                moment(&item["created_at"]),
                item["id"].as_str().unwrap().to_string(),
            )
        };
        assert!(key(a) >= key(b), "{what}: {a} before {b}");
    }
}

fn acquirer_metadata(merchant: &Merchant) -> EventMetadata {
    EventMetadata {
        merchant_id: Some(merchant.id),
        actor: "system:acquirer".into(),
        ..EventMetadata::default()
    }
}

/// What the acquirer records for a payment (with the merchant's id, as it
/// does); returns the position of the last event.
async fn settle(
    apps: &Apps,
    merchant: &Merchant,
    order_id: &str,
    payment_id: &str,
    success: bool,
) -> i64 {
    let payment: PaymentId = payment_id.parse().expect("payment id");
    let metadata = acquirer_metadata(merchant);
    if success {
        runner::execute::<OrderAggregate, _>(&apps.store, order_id, &metadata, |_| {
            Ok(MarkOrderPaid {
                payment_id: payment.clone(),
                at: Utc::now(),
            }
            .into())
        })
        .await
        .expect("mark the order paid");
    }
    let executed = runner::execute::<PaymentAggregate, _>(&apps.store, &payment, &metadata, |_| {
        Ok(if success {
            RecordPaymentSuccess { at: Utc::now() }.into()
        } else {
            RecordPaymentFailure {
                error_code: "PAYMENT_FAILED".into(),
                error_description: "Payment declined by the bank".into(),
                at: Utc::now(),
            }
            .into()
        })
    })
    .await
    .expect("record the outcome");
    executed.position.expect("appended").0
}

async fn process_refund(
    apps: &Apps,
    merchant: &Merchant,
    payment_id: &str,
    refund_id: &str,
) -> i64 {
    let payment: PaymentId = payment_id.parse().expect("payment id");
    let refund: RefundId = refund_id.parse().expect("refund id");
    let executed = runner::execute::<PaymentAggregate, _>(
        &apps.store,
        &payment,
        &acquirer_metadata(merchant),
        |_| {
            Ok(ProcessRefund {
                refund_id: refund.clone(),
                at: Utc::now(),
            }
            .into())
        },
    )
    .await
    .expect("process the refund");
    executed.position.expect("appended").0
}

/// What the dispatcher records for one attempt.
async fn record_attempt(
    apps: &Apps,
    merchant: &Merchant,
    delivery_id: &str,
    attempt: u32,
    status_code: Option<u16>,
) -> i64 {
    let delivery: WebhookDeliveryId = delivery_id.parse().expect("delivery id");
    let metadata = EventMetadata {
        merchant_id: Some(merchant.id),
        actor: "system:webhook-dispatcher".into(),
        ..EventMetadata::default()
    };
    let executed =
        runner::execute::<WebhookDeliveryAggregate, _>(&apps.store, &delivery, &metadata, |_| {
            Ok(RecordWebhookAttempt {
                attempt,
                at: Utc::now(),
                status_code,
                response_body_excerpt: format!("answer {attempt}"),
                latency_ms: 12,
                error: status_code
                    .is_none()
                    .then(|| "connection refused".to_string()),
                retry_after_seconds: None,
            }
            .into())
        })
        .await
        .expect("record the attempt");
    executed.position.expect("appended").0
}

async fn order(apps: &Apps, merchant: &Merchant, amount: i64, currency: &str) -> Reply {
    command(
        apps,
        Method::POST,
        "/api/v1/orders",
        merchant,
        json!({"amount": amount, "currency": currency, "receipt": "r", "notes": {"k": "v"}}),
    )
    .await
}

async fn upi_payment(apps: &Apps, merchant: &Merchant, order_id: &str) -> Reply {
    command(
        apps,
        Method::POST,
        "/api/v1/payments",
        merchant,
        json!({"order_id": order_id, "method": "upi", "vpa": "user@okbank"}),
    )
    .await
}

async fn card_payment(apps: &Apps, merchant: &Merchant, order_id: &str) -> Reply {
    command(
        apps,
        Method::POST,
        "/api/v1/payments",
        merchant,
        json!({"order_id": order_id, "method": "card", "card": {
            "number": "4111 1111 1111 1111", "expiry_month": 12, "expiry_year": 2099,
            "cvv": "123", "holder_name": "A Shopper"}}),
    )
    .await
}

async fn refund(apps: &Apps, merchant: &Merchant, payment_id: &str, amount: i64) -> Reply {
    command(
        apps,
        Method::POST,
        &format!("/api/v1/payments/{payment_id}/refunds"),
        merchant,
        json!({"amount": amount, "reason": "asked"}),
    )
    .await
}

async fn login(apps: &Apps, email: &str, password: &str) -> String {
    let reply = call(
        apps,
        Method::POST,
        format!("{}/api/v1/auth/login", apps.command),
        Auth::None,
        Some(json!({"email": email, "password": password})),
        &[],
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "login {email}: {}",
        reply.body
    );
    reply.body["token"].as_str().expect("token").to_string()
}

fn with_projector() -> Options {
    Options {
        projector: true,
        ..Options::default()
    }
}

/// A shop's worth of objects, and what the lists must show.
#[derive(Debug, Default)]
struct Shop {
    orders: Vec<String>,
    /// Payment id → (order id, method, final status).
    payments: BTreeMap<String, (String, &'static str, &'static str)>,
    /// Refund id → (payment id, status).
    refunds: BTreeMap<String, (String, &'static str)>,
    /// The position of the last event written.
    position: i64,
}

/// 12 orders; 9 paid for (5 UPI successes, 2 card failures, 2 UPI pending);
/// 3 refunds of successes, 2 of them processed.
async fn open_shop(apps: &Apps, merchant: &Merchant) -> Shop {
    let mut shop = Shop::default();
    for index in 0..12 {
        let created = order(apps, merchant, 10_000 + index, "INR").await;
        shop.position = created.position();
        shop.orders
            .push(created.body["id"].as_str().unwrap().to_string());
    }
    for (index, order_id) in shop.orders.clone().iter().take(9).enumerate() {
        let (method, status) = match index {
            0..=4 => ("upi", "success"),
            5 | 6 => ("card", "failed"),
            _ => ("upi", "pending"),
        };
        let created = if method == "card" {
            card_payment(apps, merchant, order_id).await
        } else {
            upi_payment(apps, merchant, order_id).await
        };
        shop.position = created.position();
        let payment_id = created.body["id"].as_str().unwrap().to_string();
        if status != "pending" {
            shop.position =
                settle(apps, merchant, order_id, &payment_id, status == "success").await;
        }
        shop.payments
            .insert(payment_id, (order_id.clone(), method, status));
    }
    let succeeded: Vec<String> = shop
        .payments
        .iter()
        .filter(|(_, (_, _, status))| *status == "success")
        .map(|(id, _)| id.clone())
        .take(3)
        .collect();
    for (index, payment_id) in succeeded.iter().enumerate() {
        let created = refund(apps, merchant, payment_id, 1_000).await;
        shop.position = created.position();
        let refund_id = created.body["id"].as_str().unwrap().to_string();
        let status = if index < 2 {
            shop.position = process_refund(apps, merchant, payment_id, &refund_id).await;
            "processed"
        } else {
            "pending"
        };
        shop.refunds.insert(refund_id, (payment_id.clone(), status));
    }
    shop
}

// ---- tests ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_parameter_is_a_400_naming_its_field() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    let cases: &[(&str, &str)] = &[
        ("/api/v1/orders?limit=0", "limit"),
        ("/api/v1/orders?limit=101", "limit"),
        ("/api/v1/orders?limit=ten", "limit"),
        ("/api/v1/orders?limit=-5", "limit"),
        ("/api/v1/orders?cursor=not-a-cursor", "cursor"),
        ("/api/v1/orders?cursor=0123", "cursor"),
        ("/api/v1/orders?status=shipped", "status"),
        ("/api/v1/orders?status=created&status=paid", "status"),
        ("/api/v1/orders?created_from=yesterday", "created_from"),
        ("/api/v1/orders?created_to=2025-01-01", "created_to"),
        (
            "/api/v1/orders?created_from=2025-02-01T00:00:00Z&created_to=2025-01-01T00:00:00Z",
            "created_to",
        ),
        ("/api/v1/payments?status=SUCCESS", "status"),
        ("/api/v1/payments?method=cash", "method"),
        ("/api/v1/payments?order_id=42", "order_id"),
        ("/api/v1/payments?limit=1000", "limit"),
        ("/api/v1/payments?created_to=soon", "created_to"),
        ("/api/v1/refunds?status=done", "status"),
        (
            "/api/v1/refunds?payment_id=order_NXhj67fGH2jk9mPq",
            "payment_id",
        ),
        ("/api/v1/refunds?cursor=zz", "cursor"),
        ("/api/v1/webhooks?limit=0", "limit"),
        ("/api/v1/webhooks?limit=101", "limit"),
        ("/api/v1/webhooks?offset=-1", "offset"),
        ("/api/v1/webhooks?offset=first", "offset"),
        ("/api/v1/events?after=-1", "after"),
        ("/api/v1/events?after=later", "after"),
        ("/api/v1/events?limit=0", "limit"),
        ("/api/v1/events?limit=1001", "limit"),
        ("/api/v1/stats?from=2025-13-01", "from"),
        ("/api/v1/stats?to=31-01-2025", "to"),
        ("/api/v1/stats?from=2025-02-01&to=2025-01-01", "to"),
        ("/api/v1/stats?currency=XXY", "currency"),
        ("/api/v1/stats?currency=inr", "currency"),
        ("/api/v1/stats/funnel?from=2025-02-30", "from"),
        ("/api/v1/stats/funnel?to=yesterday", "to"),
        ("/api/v1/stats/funnel?from=2025-02-01&to=2025-01-01", "to"),
    ];
    let replies = join_all(
        cases
            .iter()
            .map(|(path, _)| get(&apps, path, Auth::Keys(&merchant))),
    )
    .await;
    for ((path, field), reply) in cases.iter().zip(&replies) {
        assert_error(
            reply,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST_ERROR",
            Some(field),
            path,
        );
    }
    // A cursor of one list is refused by another (no projector here, so the
    // payments cursor comes from the encoding itself rather than a page).
    let foreign = paystream_query_api::listing::Cursor::encode("payments", Utc::now(), "pay_x");
    let reply = get(
        &apps,
        &format!("/api/v1/orders?cursor={foreign}"),
        Auth::Keys(&merchant),
    )
    .await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST_ERROR",
        Some("cursor"),
        "foreign cursor",
    );

    // X-Min-Position must be a position.
    for bad in ["abc", "-1", "1.5"] {
        let reply = call(
            &apps,
            Method::GET,
            format!("{}/api/v1/payments", apps.query),
            Auth::Keys(&merchant),
            None,
            &[("X-Min-Position", bad.to_string())],
        )
        .await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST_ERROR",
            Some("X-Min-Position"),
            bad,
        );
    }

    // Every endpoint wants credentials.
    let payment_path = format!("/api/v1/payments/{}/refunds", "pay_H8sK3jD9s2L1pQr5");
    for path in [
        "/api/v1/orders",
        "/api/v1/payments",
        "/api/v1/refunds",
        payment_path.as_str(),
        "/api/v1/webhooks",
        "/api/v1/webhooks/config",
        "/api/v1/webhooks/whd_Q2w3E4r5T6y7U8i9",
        "/api/v1/events",
        "/api/v1/stats",
        "/api/v1/stats/funnel",
    ] {
        let reply = get(&apps, path, Auth::None).await;
        assert_error(
            &reply,
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_ERROR",
            None,
            path,
        );
    }
    // Unknown parameters are ignored; empty ones count as absent.
    let reply = get(
        &apps,
        "/api/v1/orders?colour=blue&status=&limit=",
        Auth::Keys(&merchant),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_min_position_answers_503_when_the_projection_is_not_running() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    let position = order(&apps, &merchant, 5_000, "INR").await.position();
    let started = Instant::now();
    let paths = [
        "/api/v1/orders",
        "/api/v1/payments",
        "/api/v1/refunds",
        "/api/v1/webhooks",
        "/api/v1/stats",
    ];
    let replies = join_all(
        paths
            .iter()
            .map(|path| get_at(&apps, path, &merchant, position)),
    )
    .await;
    for (path, reply) in paths.iter().zip(&replies) {
        assert_error(
            reply,
            StatusCode::SERVICE_UNAVAILABLE,
            "PROJECTION_BEHIND",
            None,
            path,
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(4_500),
        "it waited its bound first: {:?}",
        started.elapsed()
    );
    // Without the header the (empty) read model answers at once; position 0
    // is always reached.
    for path in paths {
        get_ok(&apps, path, &merchant).await;
        let reply = get_at(&apps, path, &merchant, 0).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
    }
    // A position no append can have been handed yet (positions are
    // `(xid << 20) + index`: this one is a million transactions ahead) is a
    // 400 at once, not a 5 s wait and a 503.
    for beyond in [position + (1 << 40), i64::MAX] {
        let started = Instant::now();
        for path in paths {
            let reply = get_at(&apps, path, &merchant, beyond).await;
            assert_error(
                &reply,
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST_ERROR",
                Some("X-Min-Position"),
                path,
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "refused at once: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_walks_see_every_object_once_and_filters_select() {
    let apps = spawn_apps_with(with_projector()).await;
    let merchant = dev_merchant();
    let shop = open_shop(&apps, &merchant).await;

    // X-Min-Position: the lists reflect every write once it answers.
    for path in ["/api/v1/orders", "/api/v1/payments", "/api/v1/refunds"] {
        let reply = get_fresh(
            &apps,
            &format!("{path}?limit=100"),
            &merchant,
            shop.position,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
    }

    // Orders: 12, newest first; new orders created during a walk do not
    // disturb it (they sort before its start).
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("/api/v1/orders?limit=5&cursor={cursor}"),
            None => "/api/v1/orders?limit=5".to_string(),
        };
        let page = get_ok(&apps, &url, &merchant).await;
        walked.extend(page["data"].as_array().unwrap().iter().cloned());
        let late = order(&apps, &merchant, 777, "INR").await.position();
        let reply = get_fresh(&apps, "/api/v1/orders?limit=1", &merchant, late).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(walked.len(), 12, "{walked:?}");
    assert_newest_first(&walked, "orders");
    let mut expected = shop.orders.clone();
    expected.reverse();
    assert_eq!(ids(&walked), expected, "newest first, each once");
    // Items are the by-id views.
    for item in &walked {
        let id = item["id"].as_str().unwrap();
        assert_eq!(
            item,
            &get_ok(&apps, &format!("/api/v1/orders/{id}"), &merchant).await
        );
    }
    let statuses: Vec<&str> = walked
        .iter()
        .map(|item| item["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|status| **status == "paid").count(),
        5
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == "attempted")
            .count(),
        4
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == "created")
            .count(),
        3
    );
    let paid = walk(&apps, "/api/v1/orders?status=paid", &merchant, 2).await;
    assert_eq!(paid.len(), 5);
    assert!(paid.iter().all(|item| item["status"] == "paid"));
    let all_orders = walk(&apps, "/api/v1/orders", &merchant, 100).await;
    assert_eq!(
        all_orders.len(),
        12 + 3,
        "the orders created during the walk"
    );

    // Payments: 9, in every page size.
    for limit in [1, 4, 9, 100] {
        let walked = walk(&apps, "/api/v1/payments", &merchant, limit).await;
        assert_newest_first(&walked, "payments");
        let walked_ids: HashSet<String> = ids(&walked).into_iter().collect();
        assert_eq!(walked.len(), 9);
        assert_eq!(walked_ids, shop.payments.keys().cloned().collect());
    }
    let payments = walk(&apps, "/api/v1/payments", &merchant, 100).await;
    for item in &payments {
        let id = item["id"].as_str().unwrap();
        assert_eq!(
            item,
            &get_ok(&apps, &format!("/api/v1/payments/{id}"), &merchant).await
        );
        let (order_id, method, status) = &shop.payments[id];
        assert_eq!(item["order_id"], order_id.as_str());
        assert_eq!(item["method"], *method);
        assert_eq!(item["status"], *status);
    }
    let expect = |keep: &dyn Fn(&(String, &str, &str)) -> bool| -> HashSet<String> {
        shop.payments
            .iter()
            .filter(|(_, facts)| keep(facts))
            .map(|(id, _)| id.clone())
            .collect()
    };
    for (query, wanted) in [
        ("status=success", expect(&|facts| facts.2 == "success")),
        ("status=failed", expect(&|facts| facts.2 == "failed")),
        ("status=pending", expect(&|facts| facts.2 == "pending")),
        ("method=card", expect(&|facts| facts.1 == "card")),
        (
            "method=upi&status=success",
            expect(&|facts| facts.1 == "upi" && facts.2 == "success"),
        ),
        ("method=card&status=success", HashSet::new()),
    ] {
        let walked = walk(&apps, &format!("/api/v1/payments?{query}"), &merchant, 2).await;
        assert_eq!(
            ids(&walked).into_iter().collect::<HashSet<_>>(),
            wanted,
            "{query}"
        );
    }
    let (one_payment, (one_order, _, _)) = shop.payments.iter().next().unwrap();
    let by_order = walk(
        &apps,
        &format!("/api/v1/payments?order_id={one_order}"),
        &merchant,
        5,
    )
    .await;
    assert_eq!(ids(&by_order), [one_payment.as_str()]);
    let unknown_order = walk(
        &apps,
        "/api/v1/payments?order_id=order_AAAAAAAAAAAAAAAA",
        &merchant,
        5,
    )
    .await;
    assert!(unknown_order.is_empty());

    // created_from (inclusive) / created_to (exclusive), on the payments'
    // own timestamps (milliseconds in the view; the rows keep microseconds).
    let mut created: Vec<(DateTime<Utc>, String)> = payments
        .iter()
        .map(|item| {
            (
                moment(&item["created_at"]),
                item["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    created.sort();
    let (middle, _) = created[4].clone();
    let window_from = middle;
    let window_to = created[7].0;
    let in_window = walk(
        &apps,
        &format!(
            "/api/v1/payments?created_from={}&created_to={}",
            rfc3339(window_from),
            rfc3339(window_to)
        ),
        &merchant,
        2,
    )
    .await;
    for item in &in_window {
        let at = moment(&item["created_at"]);
        assert!(
            at >= window_from - chrono::Duration::milliseconds(1) && at < window_to,
            "{item}"
        );
    }
    // The views show milliseconds: when the neighbours fall in other
    // milliseconds than the bounds (nearly always), the window is exactly
    // payments 4, 5 and 6; else it holds at least those.
    let expected_window: HashSet<String> = created[4..7].iter().map(|(_, id)| id.clone()).collect();
    let got: HashSet<String> = ids(&in_window).into_iter().collect();
    if created[3].0 < window_from && created[6].0 < window_to {
        assert_eq!(got, expected_window);
    } else {
        assert!(
            got.is_superset(&expected_window),
            "{got:?} ⊇ {expected_window:?}"
        );
    }
    let future = rfc3339(Utc::now() + chrono::Duration::hours(1));
    assert!(walk(
        &apps,
        &format!("/api/v1/payments?created_from={future}"),
        &merchant,
        5
    )
    .await
    .is_empty());
    assert_eq!(
        walk(
            &apps,
            &format!("/api/v1/payments?created_to={future}"),
            &merchant,
            5
        )
        .await
        .len(),
        9
    );

    // Refunds: 3, and the views are the by-id views.
    let refunds = walk(&apps, "/api/v1/refunds", &merchant, 2).await;
    assert_newest_first(&refunds, "refunds");
    assert_eq!(
        ids(&refunds).into_iter().collect::<HashSet<_>>(),
        shop.refunds.keys().cloned().collect()
    );
    for item in &refunds {
        let id = item["id"].as_str().unwrap();
        assert_eq!(
            item,
            &get_ok(&apps, &format!("/api/v1/refunds/{id}"), &merchant).await
        );
        assert_eq!(item["status"], shop.refunds[id].1);
        assert_eq!(item["payment_id"], shop.refunds[id].0.as_str());
    }
    let processed = walk(&apps, "/api/v1/refunds?status=processed", &merchant, 1).await;
    assert_eq!(processed.len(), 2);
    assert!(processed
        .iter()
        .all(|item| item["status"] == "processed" && item["processed_at"].is_string()));
    let (refund_id, (payment_id, _)) = shop.refunds.iter().next().unwrap();
    let of_payment = walk(
        &apps,
        &format!("/api/v1/refunds?payment_id={payment_id}"),
        &merchant,
        5,
    )
    .await;
    assert_eq!(ids(&of_payment), [refund_id.as_str()]);

    // A payment's refunds, folded from its stream: read your writes.
    let second = refund(&apps, &merchant, payment_id, 500).await;
    let listed = get_ok(
        &apps,
        &format!("/api/v1/payments/{payment_id}/refunds"),
        &merchant,
    )
    .await;
    assert_eq!(listed["payment_id"], payment_id.as_str());
    assert_eq!(listed["count"], 2);
    assert_eq!(
        listed["data"][0], second.body,
        "the newest first, as the POST answered"
    );
    assert_eq!(
        listed["data"][1],
        get_ok(&apps, &format!("/api/v1/refunds/{refund_id}"), &merchant).await
    );
    let pending = shop
        .payments
        .iter()
        .find(|(_, facts)| facts.2 == "pending")
        .unwrap()
        .0;
    let none = get_ok(
        &apps,
        &format!("/api/v1/payments/{pending}/refunds"),
        &merchant,
    )
    .await;
    assert_eq!(none["data"], json!([]));
    assert_eq!(none["count"], 0);
    let reply = get(
        &apps,
        "/api/v1/payments/pay_AAAAAAAAAAAAAAAA/refunds",
        Auth::Keys(&merchant),
    )
    .await;
    assert_error(
        &reply,
        StatusCode::NOT_FOUND,
        "NOT_FOUND_ERROR",
        None,
        "unknown payment",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_merchant_sees_none_of_it_anywhere() {
    let apps = spawn_apps_with(with_projector()).await;
    let merchant = dev_merchant();
    let other = apps.merchant(false).await;
    let shop = open_shop(&apps, &merchant).await;
    command(
        &apps,
        Method::PUT,
        "/api/v1/webhooks/config",
        &merchant,
        json!({"url": "http://127.0.0.1:9/hooks"}),
    )
    .await;
    let test = command(
        &apps,
        Method::POST,
        "/api/v1/webhooks/test",
        &merchant,
        json!({}),
    )
    .await;
    let delivery_id = test.body["id"].as_str().unwrap().to_string();
    let position = record_attempt(&apps, &merchant, &delivery_id, 1, Some(500)).await;
    // The other merchant's own order, so its lists are not empty by accident.
    let own = order(&apps, &other, 2_000, "INR").await;
    let own_id = own.body["id"].as_str().unwrap().to_string();
    let position = position.max(own.position()).max(shop.position);

    // Both projections have caught up with everything.
    for path in [
        "/api/v1/orders",
        "/api/v1/payments",
        "/api/v1/refunds",
        "/api/v1/webhooks",
        "/api/v1/stats",
        "/api/v1/stats/funnel",
    ] {
        let reply = get_fresh(&apps, path, &other, position).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        let reply = get_fresh(&apps, path, &merchant, position).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
    }
    let orders = walk(&apps, "/api/v1/orders", &other, 100).await;
    assert_eq!(ids(&orders), [own_id.as_str()]);
    assert!(walk(&apps, "/api/v1/payments", &other, 100)
        .await
        .is_empty());
    assert!(walk(&apps, "/api/v1/refunds", &other, 100).await.is_empty());
    for filter in ["status=success", "method=upi"] {
        assert!(
            walk(&apps, &format!("/api/v1/payments?{filter}"), &other, 100)
                .await
                .is_empty()
        );
    }
    let (payment_id, (order_id, _, _)) = shop.payments.iter().next().unwrap();
    assert!(walk(
        &apps,
        &format!("/api/v1/payments?order_id={order_id}"),
        &other,
        100
    )
    .await
    .is_empty());
    assert!(walk(
        &apps,
        &format!("/api/v1/refunds?payment_id={payment_id}"),
        &other,
        100
    )
    .await
    .is_empty());
    // A cursor taken from the owner's list leads nowhere else.
    let page = get_ok(&apps, "/api/v1/payments?limit=1", &merchant).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let page = get_ok(&apps, &format!("/api/v1/payments?cursor={cursor}"), &other).await;
    assert_eq!(page["data"], json!([]));
    // Objects by id.
    for path in [
        format!("/api/v1/payments/{payment_id}/refunds"),
        format!("/api/v1/webhooks/{delivery_id}"),
    ] {
        let reply = get(&apps, &path, Auth::Keys(&other)).await;
        assert_error(
            &reply,
            StatusCode::NOT_FOUND,
            "NOT_FOUND_ERROR",
            None,
            &path,
        );
        get_ok(&apps, &path, &merchant).await;
    }
    // The webhook log.
    let log = get_ok(&apps, "/api/v1/webhooks", &other).await;
    assert_eq!(log["total"], 0);
    assert_eq!(log["data"], json!([]));
    assert_eq!(
        get_ok(&apps, "/api/v1/webhooks", &merchant).await["total"],
        1
    );
    // The configuration: each merchant its own.
    let config = get_ok(&apps, "/api/v1/webhooks/config", &other).await;
    assert_eq!(config["url"], Value::Null);
    assert_eq!(config["secret"], "whsec_other");
    assert_eq!(
        get_ok(&apps, "/api/v1/webhooks/config", &merchant).await["url"],
        "http://127.0.0.1:9/hooks"
    );
    // Stats: only its own order, no payments.
    let stats = get_ok(&apps, "/api/v1/stats", &other).await;
    assert_eq!(stats["total_transactions"], 0);
    assert_eq!(stats["total_amount"], 0);
    assert_eq!(stats["per_day"], json!([]));
    assert_eq!(
        get_ok(&apps, "/api/v1/stats", &merchant).await["total_transactions"],
        9
    );
    // The funnel: its one order, never the other merchant's.
    let funnel = get_ok(&apps, "/api/v1/stats/funnel", &other).await;
    assert_eq!(funnel["stages"][0]["count"], 1);
    assert_eq!(funnel["stages"][1]["count"], 0);
    // The feed: the other merchant's events only (once the cluster-wide
    // horizon has passed its order).
    let feed = wait_until(
        Duration::from_secs(60),
        "the other's order in its feed",
        || async {
            let feed = get_ok(&apps, "/api/v1/events?limit=1000", &other).await;
            (feed["data"] != json!([])).then_some(feed)
        },
    )
    .await;
    let streams: Vec<&str> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["stream_id"].as_str().unwrap())
        .collect();
    assert_eq!(streams, [format!("order-{own_id}")], "{feed}");
    let mine = get_ok(&apps, "/api/v1/events?limit=1000", &merchant).await;
    assert!(mine["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|event| event["stream_id"] != format!("order-{own_id}").as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_is_ordered_complete_redacted_and_never_behind_a_late_commit() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    let regenerated = command(
        &apps,
        Method::POST,
        "/api/v1/webhooks/regenerate-secret",
        &merchant,
        json!({}),
    )
    .await;
    let new_secret = regenerated.body["webhook_secret"]
        .as_str()
        .unwrap()
        .to_string();
    let created = order(&apps, &merchant, 5_000, "INR").await;
    let order_id = created.body["id"].as_str().unwrap().to_string();
    let payment = upi_payment(&apps, &merchant, &order_id).await;
    let payment_id = payment.body["id"].as_str().unwrap().to_string();
    settle(&apps, &merchant, &order_id, &payment_id, true).await;
    let refunded = refund(&apps, &merchant, &payment_id, 1_000).await;

    // The horizon is the whole cluster's: another test's transaction can
    // hold it back for a moment. Wait until the last event is readable.
    let last = refunded.position();
    wait_until(
        Duration::from_secs(60),
        "the refund in the feed",
        || async {
            let page = get_ok(
                &apps,
                &format!("/api/v1/events?after={}", last - 1),
                &merchant,
            )
            .await;
            (page["data"][0]["position"] == last).then_some(())
        },
    )
    .await;

    // Pages of 2, each event once, in position order.
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = get_ok(
            &apps,
            &format!("/api/v1/events?after={after}&limit=2"),
            &merchant,
        )
        .await;
        let data = page["data"].as_array().unwrap().clone();
        assert!(data.len() <= 2);
        after = page["next_after"].as_i64().expect("next_after");
        if data.is_empty() {
            assert_eq!(page["has_more"], false);
            break;
        }
        assert_eq!(after, data.last().unwrap()["position"].as_i64().unwrap());
        events.extend(data);
    }
    let positions: Vec<i64> = events
        .iter()
        .map(|event| event["position"].as_i64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "{positions:?}"
    );
    let event_ids: HashSet<&str> = events
        .iter()
        .map(|event| event["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(event_ids.len(), events.len());
    let types: Vec<&str> = events
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "MerchantRegistered",
            // The dev seed's checkout origins (the example shop's).
            "CheckoutOriginsSet",
            "WebhookSecretRegenerated",
            "OrderCreated",
            "PaymentCreated",
            "OrderAttempted",
            "OrderPaid",
            "PaymentSucceeded",
            "RefundCreated",
        ],
        "{events:?}"
    );
    for event in &events {
        for member in [
            "position",
            "event_id",
            "stream_id",
            "version",
            "type",
            "schema_version",
            "recorded_at",
            "payload",
        ] {
            assert!(!event[member].is_null(), "{member}: {event}");
        }
    }
    assert_eq!(events[3]["stream_id"], format!("order-{order_id}"));
    assert_eq!(events[3]["version"], 1);
    assert_eq!(events[8]["payload"]["refund_id"], refunded.body["id"]);
    // The positions are those the commands answered with.
    assert!(positions.contains(&created.position()));
    assert!(positions.contains(&refunded.position()));

    // Secrets never leave.
    let registered = &events[0]["payload"];
    assert_eq!(registered["api_key"], "key_test_abc123");
    for member in ["api_secret_hash", "webhook_secret"] {
        assert_eq!(registered[member], "[REDACTED]", "{registered}");
    }
    let rotated = &events[2]["payload"];
    assert_eq!(rotated["secret"], "[REDACTED]");
    assert_eq!(rotated["previous_secret"], "[REDACTED]");
    assert!(rotated["previous_valid_until"].is_string());
    let text = serde_json::to_string(&events).unwrap();
    let secret_hash = paystream_kit::http::auth::secret_hash("secret_test_xyz789");
    for secret in [
        "whsec_test_abc123",
        new_secret.as_str(),
        secret_hash.as_str(),
        "secret_test_xyz789",
    ] {
        assert!(!text.contains(secret), "{secret} leaked");
    }

    // A transaction that commits late holds the feed back: nothing appears
    // behind a position a reader has seen.
    let mut blocker = apps.database.connection().await;
    sqlx::query("begin").execute(&mut blocker).await.unwrap();
    sqlx::query("select pg_current_xact_id()")
        .execute(&mut blocker)
        .await
        .unwrap();
    let late = order(&apps, &merchant, 6_000, "INR").await;
    let page = get_ok(&apps, &format!("/api/v1/events?after={after}"), &merchant).await;
    assert_eq!(page["data"], json!([]), "behind the horizon: {page}");
    assert_eq!(
        page["next_after"], after,
        "an empty page keeps the position"
    );
    sqlx::query("rollback").execute(&mut blocker).await.unwrap();
    let page = wait_until(
        Duration::from_secs(60),
        "the late order in the feed",
        || async {
            let page = get_ok(&apps, &format!("/api/v1/events?after={after}"), &merchant).await;
            (page["data"] != json!([])).then_some(page)
        },
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["data"][0]["position"], late.position());
    assert_eq!(page["data"][0]["type"], "OrderCreated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_config_deliveries_and_log_read_back() {
    let apps = spawn_apps_with(with_projector()).await;
    let merchant = dev_merchant();
    let config = get_ok(&apps, "/api/v1/webhooks/config", &merchant).await;
    assert_eq!(
        config,
        json!({"url": null, "events": [], "enabled": false, "disabled_reason": null,
               "secret": "whsec_test_abc123",
               // The seeded secret is not base64: the official libraries
               // get base64 of its bytes.
               "standard_webhooks_secret": "whsec_d2hzZWNfdGVzdF9hYmMxMjM=",
               "previous_secret_valid_until": null})
    );
    let reply = get(&apps, "/api/v1/webhooks/config", Auth::Keys(&merchant)).await;
    assert_eq!(reply.headers["cache-control"], "no-store");

    // Read your writes after PUT and regenerate-secret.
    command(
        &apps,
        Method::PUT,
        "/api/v1/webhooks/config",
        &merchant,
        json!({"url": "http://127.0.0.1:9/hooks", "events": ["payment.success", "refund.processed"]}),
    )
    .await;
    let config = get_ok(&apps, "/api/v1/webhooks/config", &merchant).await;
    assert_eq!(config["url"], "http://127.0.0.1:9/hooks");
    assert_eq!(
        config["events"],
        json!(["payment.success", "refund.processed"])
    );
    assert_eq!(config["enabled"], true);
    let regenerated = command(
        &apps,
        Method::POST,
        "/api/v1/webhooks/regenerate-secret",
        &merchant,
        json!({}),
    )
    .await;
    let config = get_ok(&apps, "/api/v1/webhooks/config", &merchant).await;
    assert_eq!(config["secret"], regenerated.body["webhook_secret"]);
    // A generated secret is base64 already: the same string for the libraries.
    assert_eq!(config["standard_webhooks_secret"], config["secret"]);
    assert_eq!(
        config["standard_webhooks_secret"],
        regenerated.body["standard_webhooks_secret"]
    );
    assert_eq!(
        config["previous_secret_valid_until"],
        regenerated.body["previous_secret_valid_until"]
    );
    // A merchant's dashboard session reads it too.
    let token = login(&apps, "test@example.com", "test123").await;
    let reply = get(&apps, "/api/v1/webhooks/config", Auth::Bearer(&token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, config);

    // A test delivery, read back at once from its stream.
    let test = command(
        &apps,
        Method::POST,
        "/api/v1/webhooks/test",
        &merchant,
        json!({}),
    )
    .await;
    let delivery_id = test.body["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/webhooks/{delivery_id}");
    let delivery = get_ok(&apps, &path, &merchant).await;
    assert_eq!(delivery["id"], delivery_id.as_str());
    assert_eq!(delivery["event"], "webhook.test");
    assert_eq!(delivery["url"], "http://127.0.0.1:9/hooks");
    assert_eq!(delivery["status"], "pending");
    assert_eq!(delivery["attempts"], 0);
    assert_eq!(delivery["max_attempts"], 5);
    assert!(delivery["next_retry_at"].is_string());
    assert_eq!(delivery["attempt_log"], json!([]));
    let body: Value = serde_json::from_str(delivery["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["event"], "webhook.test");

    // Attempts as the dispatcher records them: a 500, a refused connection,
    // a 200; then a manual retry and one more attempt.
    record_attempt(&apps, &merchant, &delivery_id, 1, Some(500)).await;
    record_attempt(&apps, &merchant, &delivery_id, 2, None).await;
    record_attempt(&apps, &merchant, &delivery_id, 3, Some(200)).await;
    let delivery = get_ok(&apps, &path, &merchant).await;
    assert_eq!(delivery["status"], "success");
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["response_code"], 200);
    assert!(delivery["delivered_at"].is_string());
    let log = delivery["attempt_log"].as_array().unwrap();
    let summary: Vec<(u64, u64, Value)> = log
        .iter()
        .map(|attempt| {
            (
                attempt["round"].as_u64().unwrap(),
                attempt["attempt"].as_u64().unwrap(),
                attempt["status_code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [(1, 1, json!(500)), (1, 2, Value::Null), (1, 3, json!(200))]
    );
    assert_eq!(log[1]["error"], "connection refused");
    assert_eq!(log[0]["response_body_excerpt"], "answer 1");
    assert_eq!(log[0]["latency_ms"], 12);
    command(
        &apps,
        Method::POST,
        &format!("/api/v1/webhooks/{delivery_id}/retry"),
        &merchant,
        json!({}),
    )
    .await;
    let retried = get_ok(&apps, &path, &merchant).await;
    assert_eq!(retried["status"], "pending");
    assert_eq!(retried["attempts"], 0);
    assert_eq!(retried["attempt_log"].as_array().unwrap().len(), 3);
    let last = record_attempt(&apps, &merchant, &delivery_id, 1, Some(503)).await;
    let retried = get_ok(&apps, &path, &merchant).await;
    let log = retried["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 4);
    assert_eq!(
        (log[3]["round"].as_u64(), log[3]["attempt"].as_u64()),
        (Some(2), Some(1))
    );
    let versions: Vec<u64> = log
        .iter()
        .map(|attempt| attempt["version"].as_u64().unwrap())
        .collect();
    assert!(versions.windows(2).all(|pair| pair[0] < pair[1]));

    // The log, in the original gateway's shape, once the projection has it.
    let reply = get_fresh(&apps, "/api/v1/webhooks", &merchant, last).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let log = reply.body;
    assert_eq!(log["total"], 1);
    assert_eq!(log["limit"], 10);
    assert_eq!(log["offset"], 0);
    let item = &log["data"][0];
    let members: HashSet<&str> = item
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        members,
        [
            "id",
            "event",
            "status",
            "attempts",
            "created_at",
            "last_attempt_at",
            "response_code"
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(item["id"], delivery_id.as_str());
    assert_eq!(item["event"], "webhook.test");
    assert_eq!(item["status"], "pending");
    assert_eq!(item["attempts"], 1);
    assert_eq!(item["response_code"], 503);
    assert_eq!(item["last_attempt_at"], retried["last_attempt_at"]);
    assert_eq!(item["created_at"], retried["created_at"]);

    // limit and offset over several deliveries.
    let mut position = last;
    for _ in 0..4 {
        position = command(
            &apps,
            Method::POST,
            "/api/v1/webhooks/test",
            &merchant,
            json!({}),
        )
        .await
        .position();
    }
    assert_eq!(
        get_fresh(&apps, "/api/v1/webhooks", &merchant, position)
            .await
            .status,
        StatusCode::OK
    );
    let mut seen = Vec::new();
    for offset in [0, 2, 4] {
        let page = get_ok(
            &apps,
            &format!("/api/v1/webhooks?limit=2&offset={offset}"),
            &merchant,
        )
        .await;
        assert_eq!(page["total"], 5);
        assert_eq!(page["limit"], 2);
        assert_eq!(page["offset"], offset);
        seen.extend(ids(page["data"].as_array().unwrap()));
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 5);
    assert_eq!(seen[4], delivery_id, "the oldest last");
    let beyond = get_ok(&apps, "/api/v1/webhooks?offset=50", &merchant).await;
    assert_eq!(
        (
            beyond["total"].as_i64(),
            beyond["data"].as_array().map(Vec::len)
        ),
        (Some(5), Some(0))
    );
    let reply = get(
        &apps,
        "/api/v1/webhooks/whd_AAAAAAAAAAAAAAAA",
        Auth::Keys(&merchant),
    )
    .await;
    assert_error(
        &reply,
        StatusCode::NOT_FOUND,
        "NOT_FOUND_ERROR",
        None,
        "unknown delivery",
    );
    let reply = get(&apps, "/api/v1/webhooks/nonsense", Auth::Keys(&merchant)).await;
    assert_error(
        &reply,
        StatusCode::NOT_FOUND,
        "NOT_FOUND_ERROR",
        None,
        "malformed delivery id",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_sum_per_day_and_currency() {
    let apps = spawn_apps_with(with_projector()).await;
    let merchant = dev_merchant();
    // INR: 3 successes (10 000, 20 000, 30 000), 1 failure, 1 pending.
    // USD: 1 success (700).
    let mut position = 0;
    let mut days: BTreeMap<(String, &str), (i64, i64, i64, i64)> = BTreeMap::new();
    for (amount, currency, outcome) in [
        (10_000, "INR", Some(true)),
        (20_000, "INR", Some(true)),
        (30_000, "INR", Some(true)),
        (40_000, "INR", Some(false)),
        (50_000, "INR", None),
        (700, "USD", Some(true)),
    ] {
        let created = order(&apps, &merchant, amount, currency).await;
        let order_id = created.body["id"].as_str().unwrap().to_string();
        let payment = upi_payment(&apps, &merchant, &order_id).await;
        position = payment.position();
        let payment_id = payment.body["id"].as_str().unwrap().to_string();
        if let Some(success) = outcome {
            position = settle(&apps, &merchant, &order_id, &payment_id, success).await;
        }
        let day = moment(&payment.body["created_at"]).date_naive().to_string();
        let entry = days.entry((day, currency)).or_default();
        entry.0 += 1;
        if outcome == Some(true) {
            entry.1 += 1;
            entry.3 += amount;
        }
        if outcome == Some(false) {
            entry.2 += 1;
        }
    }
    let reply = get_fresh(&apps, "/api/v1/stats", &merchant, position).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let stats = reply.body;
    assert_eq!(stats["total_transactions"], 6);
    assert_eq!(stats["succeeded"], 4);
    assert_eq!(stats["failed"], 1);
    assert_eq!(stats["pending"], 1);
    assert_eq!(stats["currency"], "INR");
    assert_eq!(stats["total_amount"], 60_000);
    assert_eq!(stats["success_rate"], 66.67);
    assert_eq!(stats["by_currency"][0]["currency"], "INR");
    assert_eq!(stats["by_currency"][0]["total_transactions"], 5);
    assert_eq!(stats["by_currency"][0]["success_rate"], 60.0);
    assert_eq!(stats["by_currency"][1]["currency"], "USD");
    assert_eq!(stats["by_currency"][1]["total_amount"], 700);
    let per_day: Vec<(String, String, i64, i64, i64, i64)> = stats["per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|day| {
            (
                day["date"].as_str().unwrap().to_string(),
                day["currency"].as_str().unwrap().to_string(),
                day["total_transactions"].as_i64().unwrap(),
                day["succeeded"].as_i64().unwrap(),
                day["failed"].as_i64().unwrap(),
                day["total_amount"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, String, i64, i64, i64, i64)> = days
        .iter()
        .map(|((day, currency), (payments, succeeded, failed, volume))| {
            (
                day.clone(),
                currency.to_string(),
                *payments,
                *succeeded,
                *failed,
                *volume,
            )
        })
        .collect();
    assert_eq!(per_day, expected);

    let usd = get_ok(&apps, "/api/v1/stats?currency=USD", &merchant).await;
    assert_eq!(usd["currency"], "USD");
    assert_eq!(usd["total_amount"], 700);
    assert_eq!(usd["total_transactions"], 1);
    assert_eq!(usd["success_rate"], 100.0);
    let first_day = days.keys().next().unwrap().0.clone();
    let last_day = days.keys().last().unwrap().0.clone();
    let bounded = get_ok(
        &apps,
        &format!("/api/v1/stats?from={first_day}&to={last_day}"),
        &merchant,
    )
    .await;
    assert_eq!(bounded["total_transactions"], 6);
    assert_eq!(bounded["from"], first_day.as_str());
    let tomorrow = (Utc::now() + chrono::Duration::days(2)).date_naive();
    let empty = get_ok(&apps, &format!("/api/v1/stats?from={tomorrow}"), &merchant).await;
    assert_eq!(empty["total_transactions"], 0);
    assert_eq!(empty["total_amount"], 0);
    assert_eq!(empty["success_rate"], 0.0);
    assert_eq!(empty["per_day"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_funnel_follows_the_period_s_orders_to_capture_and_refund() {
    let apps = spawn_apps_with(with_projector()).await;
    let merchant = dev_merchant();
    // Seven orders: one without a payment, one whose payment is pending,
    // one failed then paid by a second payment, one failed only, and three
    // paid: captured, captured and refunded, refunded without a capture
    // (the refund still pending on a fourth, uncounted).
    let mut position = order(&apps, &merchant, 10_000, "INR").await.position();
    let mut paid = Vec::new();
    for outcomes in [
        vec![None],
        vec![Some(false), Some(true)],
        vec![Some(false)],
        vec![Some(true)],
        vec![Some(true)],
        vec![Some(true)],
    ] {
        let created = order(&apps, &merchant, 10_000, "INR").await;
        let order_id = created.body["id"].as_str().unwrap().to_string();
        for outcome in outcomes {
            let payment = card_payment(&apps, &merchant, &order_id).await;
            position = payment.position();
            let payment_id = payment.body["id"].as_str().unwrap().to_string();
            if let Some(success) = outcome {
                position = settle(&apps, &merchant, &order_id, &payment_id, success).await;
                if success {
                    paid.push(payment_id);
                }
            }
        }
    }
    let capture = |payment_id: String| {
        let apps = &apps;
        let merchant = &merchant;
        async move {
            command(
                apps,
                Method::POST,
                &format!("/api/v1/payments/{payment_id}/capture"),
                merchant,
                json!({"amount": 10_000}),
            )
            .await
            .position()
        }
    };
    position = position.max(capture(paid[1].clone()).await);
    position = position.max(capture(paid[2].clone()).await);
    for payment_id in [&paid[2], &paid[3]] {
        let refunded = refund(&apps, &merchant, payment_id, 1_000).await;
        let refund_id = refunded.body["id"].as_str().unwrap().to_string();
        position = position.max(process_refund(&apps, &merchant, payment_id, &refund_id).await);
    }
    position = position.max(refund(&apps, &merchant, &paid[0], 500).await.position());

    let reply = get_fresh(&apps, "/api/v1/stats/funnel", &merchant, position).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let funnel = reply.body;
    let steps: Vec<(String, i64, Value, f64)> = funnel["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| {
            (
                stage["stage"].as_str().unwrap().to_string(),
                stage["count"].as_i64().unwrap(),
                stage["of"].clone(),
                stage["rate"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("orders_created".to_string(), 7, Value::Null, 100.0),
            (
                "payment_attempted".to_string(),
                6,
                json!("orders_created"),
                85.71
            ),
            ("paid".to_string(), 4, json!("payment_attempted"), 66.67),
            ("captured".to_string(), 2, json!("paid"), 50.0),
            ("refunded".to_string(), 2, json!("paid"), 50.0),
        ]
    );
    assert_eq!(funnel["conversion_rate"], 57.14);
    assert_eq!(funnel["stages"][2]["of_created"], 57.14);

    // The period is the orders' creation day (UTC): today holds them all,
    // tomorrow none.
    let today = Utc::now().date_naive();
    let bounded = get_ok(
        &apps,
        &format!("/api/v1/stats/funnel?from={today}&to={today}"),
        &merchant,
    )
    .await;
    assert_eq!(bounded["stages"], funnel["stages"]);
    assert_eq!(bounded["from"], today.to_string());
    let tomorrow = today + chrono::Duration::days(1);
    let later = get_ok(
        &apps,
        &format!("/api/v1/stats/funnel?from={tomorrow}"),
        &merchant,
    )
    .await;
    assert_eq!(later["stages"][0]["count"], 0);
    assert_eq!(later["conversion_rate"], 0.0);
    let earlier = get_ok(
        &apps,
        &format!(
            "/api/v1/stats/funnel?to={}",
            today - chrono::Duration::days(1)
        ),
        &merchant,
    )
    .await;
    assert_eq!(earlier["stages"][0]["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_and_auditors_read_histories_and_as_of_but_not_plain_objects() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    let other = apps.merchant(false).await;
    let created = order(&apps, &merchant, 5_000, "INR").await;
    let order_id = created.body["id"].as_str().unwrap().to_string();
    let payment_id = upi_payment(&apps, &merchant, &order_id).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    settle(&apps, &merchant, &order_id, &payment_id, true).await;
    let refund_id = refund(&apps, &merchant, &payment_id, 1_000).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let now = rfc3339(Utc::now());

    let staff = login(&apps, "admin@example.com", "admin123").await;
    let auditor = login(&apps, "auditor@example.com", "auditor123").await;
    let shopkeeper = login(&apps, "test@example.com", "test123").await;
    for object in [
        format!("/api/v1/orders/{order_id}"),
        format!("/api/v1/payments/{payment_id}"),
        format!("/api/v1/refunds/{refund_id}"),
    ] {
        let owner_view = get_ok(&apps, &object, &merchant).await;
        for token in [&staff, &auditor] {
            let history = get(&apps, &format!("{object}/events"), Auth::Bearer(token)).await;
            assert_eq!(history.status, StatusCode::OK, "{object}: {}", history.body);
            assert_eq!(
                history.body,
                get_ok(&apps, &format!("{object}/events"), &merchant).await
            );
            let then = get(&apps, &format!("{object}?as_of={now}"), Auth::Bearer(token)).await;
            assert_eq!(then.status, StatusCode::OK, "{object}: {}", then.body);
            assert_eq!(then.body, owner_view);
            let plain = get(&apps, &object, Auth::Bearer(token)).await;
            assert_error(
                &plain,
                StatusCode::UNAUTHORIZED,
                "AUTHENTICATION_ERROR",
                None,
                &object,
            );
        }
        // The merchant's own dashboard session reads everything of its own.
        for path in [
            object.clone(),
            format!("{object}/events"),
            format!("{object}?as_of={now}"),
        ] {
            let reply = get(&apps, &path, Auth::Bearer(&shopkeeper)).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
            // Another merchant's credentials: not found.
            let reply = get(&apps, &path, Auth::Keys(&other)).await;
            assert_error(
                &reply,
                StatusCode::NOT_FOUND,
                "NOT_FOUND_ERROR",
                None,
                &path,
            );
        }
    }
    // Merchant lists, feed and stats are a merchant's: staff and auditors
    // are refused, a merchant session is served.
    for path in [
        "/api/v1/orders",
        "/api/v1/payments",
        "/api/v1/refunds",
        "/api/v1/webhooks",
        "/api/v1/webhooks/config",
        "/api/v1/events",
        "/api/v1/stats",
    ] {
        for token in [&staff, &auditor] {
            let reply = get(&apps, path, Auth::Bearer(token)).await;
            assert_error(
                &reply,
                StatusCode::UNAUTHORIZED,
                "AUTHENTICATION_ERROR",
                None,
                path,
            );
        }
        let reply = get(&apps, path, Auth::Bearer(&shopkeeper)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
    }
    // Its feed, through the session, up to the refund.
    wait_until(
        Duration::from_secs(60),
        "the refund in the feed",
        || async {
            let feed = get(&apps, "/api/v1/events", Auth::Bearer(&shopkeeper)).await;
            assert_eq!(feed.status, StatusCode::OK, "{}", feed.body);
            feed.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|event| event["payload"]["refund_id"] == refund_id.as_str())
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_has_every_list() {
    let apps = spawn_apps().await;
    let reply = get(&apps, "/api/v1/openapi.json", Auth::None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let paths = reply.body["paths"].as_object().unwrap();
    for path in [
        "/api/v1/orders",
        "/api/v1/payments",
        "/api/v1/refunds",
        "/api/v1/payments/{id}/refunds",
        "/api/v1/webhooks",
        "/api/v1/webhooks/{id}",
        "/api/v1/webhooks/config",
        "/api/v1/events",
        "/api/v1/stats",
    ] {
        assert!(paths[path]["get"].is_object(), "GET {path} missing");
    }
    // The command side's methods on shared paths are kept.
    assert!(paths["/api/v1/orders"]["post"].is_object());
    assert!(paths["/api/v1/webhooks/config"]["put"].is_object());
    let schemas = reply.body["components"]["schemas"].as_object().unwrap();
    for schema in [
        "WebhookLog",
        "WebhookDeliveryView",
        "WebhookSettingsView",
        "Feed",
        "Stats",
        "PaymentRefunds",
    ] {
        assert!(schemas.contains_key(schema), "{schema} missing");
    }
}
