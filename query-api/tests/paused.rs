//! Read your writes while the projector is deliberately paused: a `GET` of
//! one object by id reflects every acknowledged command at once (it folds
//! the object's stream), while a list sent with the command's position as
//! `X-Min-Position` waits for the projection and answers 503 past its bound,
//! then sees the change once the projector resumes.
//!
//! The pause is a `SHARE` lock on `projection_checkpoints`, held in an open
//! transaction: the projector blocks at its next batch, before writing any
//! row. The lock takes no transaction id, so the relay's horizon (and with
//! it the publishing of events) is not held back.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::{Connection, Executor};
use support::apps::{dev_merchant, spawn_apps_with, Options};
use support::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_by_id_see_every_write_while_the_projector_is_paused() {
    let apps = spawn_apps_with(Options {
        projector: true,
        ..Options::default()
    })
    .await;
    let merchant = dev_merchant();
    // The projector is running and has caught up with the seed.
    let first = apps.order(&merchant, 10_000).await;
    wait_until(
        Duration::from_secs(30),
        "the first order in the list",
        || async {
            let (status, body) = apps.get("/api/v1/orders", Some(&merchant)).await;
            (status == StatusCode::OK && body.to_string().contains(&first)).then_some(())
        },
    )
    .await;

    // Pause it.
    let mut pause = apps.database.connection().await;
    let mut held = pause.begin().await.unwrap();
    held.execute("lock table projection_checkpoints in share mode")
        .await
        .unwrap();

    let order_id = apps.order(&merchant, 25_000).await;
    let payment_id = apps.upi_payment(&merchant, &order_id).await;
    apps.record_outcome(&order_id, &payment_id, true).await;
    apps.capture(&merchant, &payment_id, 25_000).await;
    let refund_id = apps.refund(&merchant, &payment_id, 5_000).await;

    // Reads by id: no 404, no stale status.
    let order = apps
        .get_ok(&format!("/api/v1/orders/{order_id}"), &merchant)
        .await;
    assert_eq!(order["status"], "paid", "{order}");
    let payment = apps
        .get_ok(&format!("/api/v1/payments/{payment_id}"), &merchant)
        .await;
    assert_eq!(payment["status"], "success", "{payment}");
    assert_eq!(payment["captured"], true, "{payment}");
    let refund = apps
        .get_ok(&format!("/api/v1/refunds/{refund_id}"), &merchant)
        .await;
    assert_eq!(refund["status"], "pending", "{refund}");
    let refunds = apps
        .get_ok(&format!("/api/v1/payments/{payment_id}/refunds"), &merchant)
        .await;
    assert_eq!(refunds["data"][0]["id"], refund_id.as_str(), "{refunds}");

    // The list has not seen the new order: the projector really is paused.
    let (status, list) = apps.get("/api/v1/orders?limit=100", Some(&merchant)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list.to_string().contains(&order_id), "{list}");

    // Its position, sent back, waits and then answers 503 past the bound.
    let (status, created, position) = create_order_with_position(&apps, &merchant).await;
    assert_eq!(status, StatusCode::CREATED);
    let response = apps
        .client
        .get(format!("{}/api/v1/orders", apps.query))
        .header("X-Api-Key", &merchant.key)
        .header("X-Api-Secret", &merchant.secret)
        .header("X-Min-Position", &position)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PROJECTION_BEHIND", "{body}");

    // Resume: the same query now waits for the projection and sees the order.
    held.rollback().await.unwrap();
    let response = apps
        .client
        .get(format!("{}/api/v1/orders?limit=100", apps.query))
        .header("X-Api-Key", &merchant.key)
        .header("X-Api-Secret", &merchant.secret)
        .header("X-Min-Position", &position)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let list: Value = response.json().await.unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|order| order["id"].as_str())
        .collect();
    assert!(ids.contains(&created.as_str()), "{list}");
    assert!(ids.contains(&order_id.as_str()), "{list}");
}

/// `POST /api/v1/orders`: (status, id, `X-Event-Position`).
async fn create_order_with_position(
    apps: &support::apps::Apps,
    merchant: &support::apps::Merchant,
) -> (StatusCode, String, String) {
    let response = apps
        .client
        .request(Method::POST, format!("{}/api/v1/orders", apps.command))
        .header("X-Api-Key", &merchant.key)
        .header("X-Api-Secret", &merchant.secret)
        .header("Content-Type", "application/json")
        .body(r#"{"amount": 7000}"#)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let position = response.headers()["x-event-position"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    (status, body["id"].as_str().unwrap().to_owned(), position)
}
