//! Invariant 11: a card number (beyond its last 4 digits) and a CVV never
//! reach the store, the logs, NATS or an error message. The real binary
//! runs with trace logging; then its logs, the events table and a dump of
//! the JetStream stream are searched.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::{nats_url, unique_name, wait_until, TestDatabase};

const NUMBER: &str = "378282246310005"; // an Amex test number
const NUMBER_SPACED: &str = "3782 822463 10005";
const CVV: &str = "7319";

/// Occurrences of `needle` not embedded in a longer run of letters or digits.
fn standalone_hits(haystack: &str, needle: &str) -> usize {
    let bytes = haystack.as_bytes();
    haystack
        .match_indices(needle)
        .filter(|(start, _)| {
            let before = start.checked_sub(1).map(|i| bytes[i]);
            let after = bytes.get(start + needle.len()).copied();
            !before.is_some_and(|b| b.is_ascii_alphanumeric())
                && !after.is_some_and(|b| b.is_ascii_alphanumeric())
        })
        .count()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_numbers_and_cvvs_reach_no_store_log_or_stream() {
    let database = TestDatabase::create().await;
    let name = unique_name("t");
    let stream_name = name.to_uppercase();
    let port = free_port();
    let log_path = std::env::temp_dir().join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_command-api"))
        .env("RUST_LOG", "trace")
        .env("PAYSTREAM_PROFILE", "dev")
        .env("PAYSTREAM_DATABASE_URL", &database.url)
        .env("PAYSTREAM_NATS_URL", nats_url())
        .env("PAYSTREAM_COMMAND_API_ADDR", format!("127.0.0.1:{port}"))
        .env("PAYSTREAM_EVENTS_STREAM", &stream_name)
        .env("PAYSTREAM_EVENTS_SUBJECT_PREFIX", format!("{name}.events"))
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start command-api");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_until(
        Duration::from_secs(30),
        "command-api to answer /health",
        || async {
            client
                .get(format!("{base}/health"))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
        },
    )
    .await;

    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .header("X-Api-Key", "key_test_abc123")
            .header("X-Api-Secret", "secret_test_xyz789")
            .json(&body)
            .send()
    };
    let order: Value = post("/api/v1/orders", json!({"amount": 50000}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let card = |number: &str, month: &str| {
        json!({"order_id": order["id"], "method": "card", "card": {
            "number": number, "expiry_month": month, "expiry_year": "2031",
            "cvv": CVV, "holder_name": "Card Holder"}})
    };
    let accepted = post("/api/v1/payments", card(NUMBER_SPACED, "11"))
        .await
        .unwrap();
    assert_eq!(accepted.status(), 201);
    let accepted: Value = accepted.json().await.unwrap();
    assert_eq!(accepted["card_last4"], "0005");
    assert_eq!(accepted["card_network"], "amex");
    // Rejected ones too: the number and CVV must not come back in errors.
    for bad in [
        card(NUMBER, "13"),
        card(NUMBER, "01")
            .to_string()
            .replace("2031", "2020")
            .parse()
            .unwrap(),
    ] {
        let response = post("/api/v1/payments", bad).await.unwrap();
        assert_eq!(response.status(), 400);
        let text = response.text().await.unwrap();
        assert_eq!(standalone_hits(&text, NUMBER), 0, "{text}");
        assert_eq!(standalone_hits(&text, CVV), 0, "{text}");
    }

    // Wait until the relay has published everything to JetStream.
    let store = &database.store;
    let events: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let nats = async_nats::connect(nats_url()).await.unwrap();
    let jetstream = async_nats::jetstream::new(nats);
    wait_until(
        Duration::from_secs(30),
        "the relay to publish every event",
        || async {
            let mut stream = jetstream.get_stream(&stream_name).await.ok()?;
            let info = stream.info().await.ok()?;
            (info.state.messages as i64 >= events).then_some(())
        },
    )
    .await;
    let mut dump = String::new();
    let mut stream = jetstream.get_stream(&stream_name).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await.unwrap();
        dump.push_str(&format!(
            "{:?} {}\n",
            message.headers,
            String::from_utf8_lossy(&message.payload)
        ));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let stored: Vec<String> = sqlx::query_scalar("select row_to_json(e)::text from events e")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let stored = stored.join("\n");
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "trace logging was on"
    );
    assert!(
        dump.contains("PaymentCreated"),
        "the dump holds the payment"
    );
    assert!(
        stored.contains("card_last4") && stored.contains("\"0005\""),
        "{stored}"
    );
    for (place, text) in [
        ("events table", &stored),
        ("logs", &logs),
        ("NATS stream", &dump),
    ] {
        for secret in [NUMBER, "3782 822463 10005", "822463", CVV] {
            assert_eq!(
                standalone_hits(text, secret),
                0,
                "{secret:?} found in the {place}"
            );
        }
    }
    jetstream.delete_stream(&stream_name).await.unwrap();
    let _ = std::fs::remove_file(&log_path);
}
