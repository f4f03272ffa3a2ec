//! `GET /api/v1/merchants` (the read model, with the real projector) and
//! `GET /api/v1/merchants/{id}` (folded from the stream: read your writes),
//! for staff only; never a secret.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use paystream_domain::dev as seed;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::apps::{dev_merchant, spawn_apps, spawn_apps_with, Apps, Options};
use support::oversight::{
    assert_bad, assert_unauthorized, command, get, get_ok, get_raw, login, As, AUDITOR,
    MERCHANT_USER, STAFF,
};
use support::wait_until;

/// Nothing secret in a merchant answer.
fn assert_no_secrets(text: &str) {
    for secret in [
        "secret_hash",
        "password",
        "webhook_secret",
        "whsec_",
        seed::DEV_API_SECRET,
        "\"secret\"",
        "previous_secret",
        "$argon2",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

/// Creates a merchant through the staff API; its id and the event position.
async fn create_merchant(apps: &Apps, staff: &str, name: &str) -> (String, i64) {
    let email = format!("{}@example.com", uuid::Uuid::now_v7().simple());
    let (status, position, body) = command(
        apps,
        Method::POST,
        "/api/v1/merchants",
        As::Session(staff),
        json!({"name": name, "email": email, "fee_bps": 150}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().unwrap().to_string(),
        position.expect("X-Event-Position"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_by_id_reflects_every_command_at_once() {
    let apps = spawn_apps().await;
    let staff = login(&apps, STAFF).await;
    let who = As::Session(&staff);

    // The seeded merchant.
    let dev = seed::DEV_MERCHANT_ID;
    let (status, _, text) = get_raw(&apps, &format!("/api/v1/merchants/{dev}"), who).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_no_secrets(&text);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["id"], dev.to_string());
    assert_eq!(body["email"], seed::DEV_MERCHANT_EMAIL);
    assert_eq!(body["api_key"], seed::DEV_API_KEY);
    assert_eq!(body["fee_bps"], seed::DEV_FEE_BPS);
    assert_eq!(body["status"], "active");
    assert!(body.get("suspension_reason").is_none(), "{body}");
    let keys: HashSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from([
            "id",
            "name",
            "email",
            "status",
            "api_key",
            "fee_bps",
            "webhook_url",
            "checkout_origins",
            "created_at",
            "updated_at"
        ])
    );

    // A new merchant is readable the moment its creation is acknowledged
    // (no projector runs here at all).
    let (id, _) = create_merchant(&apps, &staff, "Acme Stores").await;
    let created = get_ok(&apps, &format!("/api/v1/merchants/{id}"), who).await;
    assert_eq!(created["name"], "Acme Stores");
    assert_eq!(created["fee_bps"], 150);
    assert_eq!(created["status"], "active");
    assert_eq!(created["webhook_url"], Value::Null);
    // created_at: the registration's time; updated_at: the last event's.
    let parse = |value: &Value| DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap();
    assert!(
        parse(&created["updated_at"]) >= parse(&created["created_at"]),
        "{created}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before_suspension = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let (status, _, body) = command(
        &apps,
        Method::POST,
        &format!("/api/v1/merchants/{id}/suspend"),
        who,
        json!({"reason": "Excessive chargebacks"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, _, text) = get_raw(&apps, &format!("/api/v1/merchants/{id}"), who).await;
    assert_no_secrets(&text);
    let suspended: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(suspended["status"], "suspended", "{suspended}");
    assert_eq!(suspended["suspension_reason"], "Excessive chargebacks");
    let created_at =
        DateTime::parse_from_rfc3339(suspended["created_at"].as_str().unwrap()).unwrap();
    let updated_at =
        DateTime::parse_from_rfc3339(suspended["updated_at"].as_str().unwrap()).unwrap();
    assert!(updated_at > created_at, "{suspended}");

    // As it was before the suspension.
    let at = before_suspension.to_rfc3339().replace('+', "%2B");
    let then = get_ok(&apps, &format!("/api/v1/merchants/{id}?as_of={at}"), who).await;
    assert_eq!(then["status"], "active", "{then}");
    // Before it existed: 404.
    let (status, body) = get(
        &apps,
        &format!("/api/v1/merchants/{id}?as_of=2001-01-01T00:00:00Z"),
        who,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_bad(
        &apps,
        &format!("/api/v1/merchants/{id}?as_of=soon"),
        who,
        "as_of",
    )
    .await;

    // Unknown and malformed ids are 404s.
    for unknown in [
        uuid::Uuid::now_v7().to_string(),
        "not-a-uuid".to_string(),
        "pay_H8sK3jD9s2L1pQr5".to_string(),
    ] {
        let (status, body) = get(&apps, &format!("/api/v1/merchants/{unknown}"), who).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], "NOT_FOUND_ERROR");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchants_are_for_staff_only() {
    let apps = spawn_apps().await;
    let auditor = login(&apps, AUDITOR).await;
    let merchant_user = login(&apps, MERCHANT_USER).await;
    let merchant = dev_merchant();
    let one = format!("/api/v1/merchants/{}", seed::DEV_MERCHANT_ID);
    for path in ["/api/v1/merchants", one.as_str()] {
        assert_unauthorized(&apps, path, As::Nobody).await;
        assert_unauthorized(&apps, path, As::Merchant(&merchant)).await;
        assert_unauthorized(&apps, path, As::Session(&merchant_user)).await;
        assert_unauthorized(&apps, path, As::Session(&auditor)).await;
        assert_unauthorized(&apps, path, As::Session("forged")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merchant_list_pages_through_the_read_model() {
    let apps = spawn_apps_with(Options {
        projector: true,
        ..Options::default()
    })
    .await;
    let staff = login(&apps, STAFF).await;
    let who = As::Session(&staff);
    let mut created = Vec::new();
    for n in 0..3 {
        let (id, _) = create_merchant(&apps, &staff, &format!("Shop {n}")).await;
        created.push(id);
    }
    let (status, suspend_position, body) = command(
        &apps,
        Method::POST,
        &format!("/api/v1/merchants/{}/suspend", created[1]),
        who,
        json!({"reason": "Fraud review"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let suspend_position = suspend_position.expect("X-Event-Position");

    // X-Min-Position: the list waits (at most 5 s) until the projection has
    // the writes, else answers 503 PROJECTION_BEHIND; the first 200 has them.
    // (A writing transaction anywhere in the cluster can hold the relay's
    // horizon back past 5 s on a busy test machine: ask again then.)
    let text = wait_until(
        Duration::from_secs(30),
        "the list to reach the suspension",
        || async {
            let response = apps
                .client
                .get(format!("{}/api/v1/merchants?limit=100", apps.query))
                .bearer_auth(&staff)
                .header("X-Min-Position", suspend_position.to_string())
                .send()
                .await
                .unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                assert!(text.contains("PROJECTION_BEHIND"), "{text}");
                return None;
            }
            assert_eq!(status, StatusCode::OK, "{text}");
            Some(text)
        },
    )
    .await;
    assert_no_secrets(&text);
    let page: Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|merchant| merchant["id"].as_str().unwrap())
        .collect();
    for id in &created {
        assert!(ids.contains(&id.as_str()), "{id} missing: {page}");
    }
    assert!(ids.contains(&seed::DEV_MERCHANT_ID.to_string().as_str()));
    // Newest first.
    let newest: Vec<&str> = created.iter().rev().map(String::as_str).collect();
    assert_eq!(&ids[..3], &newest[..], "{page}");
    let first = &page["data"][0];
    assert_eq!(first["name"], "Shop 2");
    assert_eq!(first["fee_bps"], 150);
    assert_eq!(first["status"], "active");

    // The suspension was projected before the answer (X-Min-Position).
    let suspended = get_ok(&apps, "/api/v1/merchants?status=suspended", who).await;
    assert_eq!(
        suspended["data"].as_array().unwrap().len(),
        1,
        "{suspended}"
    );
    assert_eq!(suspended["data"][0]["id"], created[1].as_str());
    assert_eq!(suspended["data"][0]["suspension_reason"], "Fraud review");
    let active = get_ok(&apps, "/api/v1/merchants?status=active&limit=100", who).await;
    assert!(active["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|merchant| merchant["status"] == "active" && merchant["id"] != created[1].as_str()));

    // The list's rows say what a read by id says.
    for merchant in page["data"].as_array().unwrap() {
        let id = merchant["id"].as_str().unwrap();
        let one = get_ok(&apps, &format!("/api/v1/merchants/{id}"), who).await;
        let mut listed = merchant.clone();
        listed
            .as_object_mut()
            .unwrap()
            .retain(|_, value| !value.is_null());
        let mut folded = one.clone();
        folded
            .as_object_mut()
            .unwrap()
            .retain(|_, value| !value.is_null());
        assert_eq!(listed, folded, "list and read by id differ");
    }

    // Page by page, one at a time: every merchant exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/merchants?limit=1&cursor={cursor}"),
            None => "/api/v1/merchants?limit=1".to_string(),
        };
        let page = get_ok(&apps, &path, who).await;
        assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
        seen.push(page["data"][0]["id"].as_str().unwrap().to_string());
        if page["has_more"] == false {
            assert_eq!(page["next_cursor"], Value::Null);
            break;
        }
        cursor = Some(page["next_cursor"].as_str().unwrap().to_string());
        assert!(seen.len() < 20, "runaway paging");
    }
    assert_eq!(seen, ids, "paging one by one gives the same list");

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("status=closed", "status"),
        ("cursor=zz", "cursor"),
        ("cursor=abcd", "cursor"),
        ("status=active&status=suspended", "status"),
    ] {
        assert_bad(&apps, &format!("/api/v1/merchants?{query}"), who, field).await;
    }
    let response = apps
        .client
        .get(format!("{}/api/v1/merchants", apps.query))
        .bearer_auth(&staff)
        .header("X-Min-Position", "-5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "X-Min-Position");
}

/// `GET /api/v1/auth/session` names the session's user and role (the
/// dashboard shows each role its pages from it); API keys are no session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_says_who_and_which_role() {
    let apps = spawn_apps().await;
    for (user, role, merchant) in [
        (STAFF, "staff", None),
        (AUDITOR, "auditor", None),
        (
            MERCHANT_USER,
            "merchant",
            Some(seed::DEV_MERCHANT_ID.to_string()),
        ),
    ] {
        let token = login(&apps, user).await;
        let body = get_ok(&apps, "/api/v1/auth/session", As::Session(&token)).await;
        assert_eq!(body["email"], user.0, "{body}");
        assert_eq!(body["role"], role, "{body}");
        assert_eq!(
            body["merchant_id"].as_str().map(str::to_owned),
            merchant,
            "{body}"
        );
    }
    assert_unauthorized(&apps, "/api/v1/auth/session", As::Nobody).await;
    assert_unauthorized(&apps, "/api/v1/auth/session", As::Session("forged")).await;
    assert_unauthorized(&apps, "/api/v1/auth/session", As::Merchant(&dev_merchant())).await;
}

/// `GET /api/v1/merchant`: a merchant reads its own account (its key,
/// never a secret), by API credentials or by its users' session; staff and
/// auditor sessions have no account of their own there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_reads_its_own_account() {
    let apps = spawn_apps().await;
    let merchant = dev_merchant();
    let user = login(&apps, MERCHANT_USER).await;
    for who in [As::Merchant(&merchant), As::Session(&user)] {
        let (status, _, text) = get_raw(&apps, "/api/v1/merchant", who).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_no_secrets(&text);
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["id"], seed::DEV_MERCHANT_ID.to_string());
        assert_eq!(body["api_key"], seed::DEV_API_KEY);
        assert_eq!(body["status"], "active");
    }
    assert_unauthorized(&apps, "/api/v1/merchant", As::Nobody).await;
    for overseer in [STAFF, AUDITOR] {
        let token = login(&apps, overseer).await;
        assert_unauthorized(&apps, "/api/v1/merchant", As::Session(&token)).await;
    }
}
