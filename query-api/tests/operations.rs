//! Health, the OpenAPI document, and the job status read from the real
//! acquirer (its JetStream consumer) and the real event store.

mod support;

use std::time::Duration;

use paystream_command_api::acquirer::outcome::ProcessingMode;
use paystream_command_api::acquirer::{self, AcquirerConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::apps::{dev_merchant, spawn_apps, spawn_apps_with, Apps, Options};
use support::{admin_database_url, jetstream_at, nats_url, wait_until};

async fn jobs(apps: &Apps) -> Value {
    let (status, body) = apps.get("/api/v1/test/jobs/status", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_status_follows_the_real_acquirer() {
    let apps = spawn_apps_with(Options {
        projector: true,
        ..Options::default()
    })
    .await;
    let merchant = dev_merchant();

    // No acquirer consumer yet: stopped, nothing done.
    assert_eq!(
        jobs(&apps).await,
        json!({"pending": 0, "processing": 0, "completed": 0, "failed": 0, "worker_status": "stopped"})
    );

    let jetstream = jetstream_at(&nats_url()).await;
    let acquirer = acquirer::spawn(
        apps.store.clone(),
        jetstream.clone(),
        apps.command_config.relay(),
        AcquirerConfig {
            consumer_name: apps.query_config.acquirer_consumer.clone(),
            mode: ProcessingMode::Test {
                // Long enough to see both payments in flight even when the
                // relay lags (a writing transaction anywhere in the cluster
                // holds its horizon back, and CI runs the other tests beside
                // this one: 3 s, then 8 s, were not always enough).
                delay: Duration::from_secs(15),
                payment_success: true,
            },
            // Longer than the delay: the acquirer holds each message for it.
            ack_wait: Duration::from_secs(20),
            ..AcquirerConfig::default()
        },
    );
    wait_until(Duration::from_secs(10), "the acquirer to pull", || async {
        (jobs(&apps).await["worker_status"] == "running").then_some(())
    })
    .await;

    // One payment that succeeds, one that fails (magic VPA): while they wait
    // out their delay they are in flight.
    let paid_order = apps.order(&merchant, 50000).await;
    let paid = apps.upi_payment(&merchant, &paid_order).await;
    let failed_order = apps.order(&merchant, 50000).await;
    let (status, body) = apps
        .post(
            "/api/v1/payments",
            &merchant,
            json!({"order_id": failed_order, "method": "upi", "vpa": "fail@upi"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let failed = body["id"].as_str().unwrap().to_string();
    let in_flight = wait_until(
        Duration::from_secs(14),
        "both payments in flight",
        || async {
            let status = jobs(&apps).await;
            (status["processing"] == 2).then_some(status)
        },
    )
    .await;
    assert_eq!(in_flight["pending"], 0, "{in_flight}");
    assert_eq!(in_flight["worker_status"], "running");
    assert_eq!(in_flight["completed"], 0);

    for (payment, outcome) in [(&paid, "success"), (&failed, "failed")] {
        wait_until(Duration::from_secs(30), "the outcome", || async {
            let (_, body) = apps
                .get(&format!("/api/v1/payments/{payment}/public"), None)
                .await;
            (body["status"] == outcome).then_some(())
        })
        .await;
    }
    // A refund, processed by the same worker.
    let refund = apps.refund(&merchant, &paid, 1000).await;
    wait_until(Duration::from_secs(20), "the refund", || async {
        let body = apps
            .get_ok(&format!("/api/v1/refunds/{refund}"), &merchant)
            .await;
        (body["status"] == "processed").then_some(())
    })
    .await;

    // The queue drains; the outcomes reach the read models.
    let done = wait_until(Duration::from_secs(20), "the queue to drain", || async {
        let status = jobs(&apps).await;
        (status["processing"] == 0 && status["pending"] == 0 && status["completed"] == 3)
            .then_some(status)
    })
    .await;
    assert_eq!(
        done,
        json!({"pending": 0, "processing": 0, "completed": 3, "failed": 1, "worker_status": "running"})
    );
    acquirer.abort();
    let _ = jetstream
        .delete_stream(&apps.command_config.nats.events_stream)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_openapi_document_for_the_whole_api() {
    let apps = spawn_apps().await;
    let (status, document) = apps.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = &document["paths"];
    for (path, method) in [
        // Commands.
        ("/api/v1/orders", "post"),
        ("/api/v1/payments", "post"),
        ("/api/v1/payments/public", "post"),
        ("/api/v1/payments/{id}/capture", "post"),
        ("/api/v1/payments/{id}/refunds", "post"),
        ("/api/v1/auth/login", "post"),
        // Queries.
        ("/health", "get"),
        ("/api/v1/orders/{id}", "get"),
        ("/api/v1/orders/{id}/public", "get"),
        ("/api/v1/orders/{id}/events", "get"),
        ("/api/v1/payments/{id}", "get"),
        ("/api/v1/payments/{id}/public", "get"),
        ("/api/v1/payments/public/{id}", "get"),
        ("/api/v1/payments/{id}/events", "get"),
        ("/api/v1/refunds/{id}", "get"),
        ("/api/v1/refunds/{id}/events", "get"),
        ("/api/v1/test/jobs/status", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    let as_of = paths["/api/v1/payments/{id}"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|parameter| parameter["name"] == "as_of" && parameter["in"] == "query");
    assert!(as_of, "as_of is documented");
    let components = &document["components"];
    for schema in [
        "PaymentView",
        "PublicPaymentView",
        "History",
        "JobsStatus",
        "ErrorBody",
    ] {
        assert!(
            components["schemas"][schema].is_object(),
            "{schema} missing"
        );
    }
    for scheme in ["api_key", "api_secret", "basic"] {
        assert!(
            components["securitySchemes"][scheme].is_object(),
            "{scheme} missing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_database_and_nats() {
    let apps = spawn_apps().await;
    // NATS connects in the background (the service starts without it).
    let health = wait_until(Duration::from_secs(5), "NATS to connect", || async {
        let (status, health) = apps.get("/health", None).await;
        assert_eq!(status, StatusCode::OK, "{health}");
        (health["nats"] == "connected").then_some(health)
    })
    .await;
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["database"], "connected");
    assert_eq!(health["nats"], "connected");
    assert_eq!(health["service"], "query-api");
    assert!(chrono::DateTime::parse_from_rfc3339(health["timestamp"].as_str().unwrap()).is_ok());

    // The database goes away: 503, in the same shape.
    let name = apps.database.url.rsplit('/').next().unwrap().to_string();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_database_url())
        .await
        .expect("admin connection");
    sqlx::query(&format!("drop database {name} with (force)"))
        .execute(&mut admin)
        .await
        .expect("drop the test database");
    let (status, health) = apps.get("/health", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["status"], "unhealthy");
    assert_eq!(health["database"], "disconnected");
    // Reads fail cleanly too, in the contract's error format.
    let (status, body) = apps
        .get("/api/v1/orders/order_AAAAAAAAAAAAAAAA/public", None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
}
