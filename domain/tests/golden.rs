//! Golden JSON for every stored event type and version.
//!
//! `tests/golden/<EventType>.v<N>.json` holds the payload of a fixed sample
//! event, pretty-printed with sorted keys and a trailing newline. The test
//! fails when a file is missing or differs, so any change to a stored shape
//! shows up in review. Older versions stay in the folder forever: each file is
//! also parsed back through `from_stored`, so their upcasters stay tested.
//!
//! Regenerate after an intended change with
//! `UPDATE_GOLDEN=1 cargo test -p paystream-domain --test golden`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use paystream_domain::merchant::{
    CheckoutOriginsSet, MerchantApiKeysRotated, MerchantEvent, MerchantReactivated,
    MerchantRegistered, MerchantSuspended, WebhookEndpointConfigured, WebhookEndpointDisabled,
    WebhookSecretRegenerated,
};
use paystream_domain::order::{OrderAttempted, OrderCreated, OrderEvent, OrderPaid};
use paystream_domain::payment::{
    PaymentCaptured, PaymentCreated, PaymentEvent, PaymentFailed, PaymentMethod, PaymentSucceeded,
    RefundCreated, RefundProcessed,
};
use paystream_domain::validation::CardNetwork;
use paystream_domain::webhook::{
    WebhookAttemptRecorded, WebhookDelivered, WebhookDeliveryEvent, WebhookDeliveryFailed,
    WebhookDeliveryScheduled, WebhookRetryRequested, WebhookRetryScheduled,
};
use paystream_domain::{Currency, DomainEvent, MerchantId, UpcastError};

/// Any event of any aggregate, so one list can hold every sample.
#[derive(Debug, Clone, PartialEq)]
enum AnyEvent {
    Merchant(MerchantEvent),
    Order(OrderEvent),
    Payment(PaymentEvent),
    Webhook(WebhookDeliveryEvent),
}

impl AnyEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Merchant(event) => event.event_type(),
            Self::Order(event) => event.event_type(),
            Self::Payment(event) => event.event_type(),
            Self::Webhook(event) => event.event_type(),
        }
    }

    fn schema_version(&self) -> u16 {
        match self {
            Self::Merchant(event) => event.schema_version(),
            Self::Order(event) => event.schema_version(),
            Self::Payment(event) => event.schema_version(),
            Self::Webhook(event) => event.schema_version(),
        }
    }

    fn to_payload(&self) -> Value {
        match self {
            Self::Merchant(event) => event.to_payload(),
            Self::Order(event) => event.to_payload(),
            Self::Payment(event) => event.to_payload(),
            Self::Webhook(event) => event.to_payload(),
        }
    }

    fn from_stored(event_type: &str, version: u16, payload: Value) -> Result<Self, UpcastError> {
        if MerchantEvent::EVENT_TYPES.contains(&event_type) {
            MerchantEvent::from_stored(event_type, version, payload).map(Self::Merchant)
        } else if OrderEvent::EVENT_TYPES.contains(&event_type) {
            OrderEvent::from_stored(event_type, version, payload).map(Self::Order)
        } else if PaymentEvent::EVENT_TYPES.contains(&event_type) {
            PaymentEvent::from_stored(event_type, version, payload).map(Self::Payment)
        } else if WebhookDeliveryEvent::EVENT_TYPES.contains(&event_type) {
            WebhookDeliveryEvent::from_stored(event_type, version, payload).map(Self::Webhook)
        } else {
            Err(UpcastError::UnknownEventType {
                event_type: event_type.to_owned(),
            })
        }
    }
}

fn all_event_types() -> Vec<&'static str> {
    [
        MerchantEvent::EVENT_TYPES,
        OrderEvent::EVENT_TYPES,
        PaymentEvent::EVENT_TYPES,
        WebhookDeliveryEvent::EVENT_TYPES,
    ]
    .concat()
}

const WEBHOOK_BODY: &str = concat!(
    r#"{"event":"payment.success","timestamp":1748772127,"#,
    r#""data":{"payment":{"id":"pay_H8sK3jD9s2L1pQr5"}}}"#
);

fn time(rfc3339: &str) -> DateTime<Utc> {
    rfc3339.parse().unwrap()
}

fn merchant_id() -> MerchantId {
    "550e8400-e29b-41d4-a716-446655440000".parse().unwrap()
}

/// One fixed sample per event type, with optional fields filled in.
fn samples() -> Vec<AnyEvent> {
    let payment_id = || "pay_H8sK3jD9s2L1pQr5".parse().unwrap();
    let order_id = || "order_Kd8s2LqP0xZ7mN3v".parse().unwrap();
    let refund_id = || "rfnd_4fT9wQ2eR7yU1iO6".parse().unwrap();
    let Value::Object(notes) = json!({ "customer_ref": "C-1029", "priority": 2, "gift": true })
    else {
        unreachable!()
    };
    let notes: Map<String, Value> = notes;
    vec![
        AnyEvent::Merchant(
            MerchantRegistered {
                merchant_id: merchant_id(),
                name: "Test Merchant".to_owned(),
                email: "test@example.com".to_owned(),
                password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned()),
                api_key: "key_test_abc123".to_owned(),
                api_secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$c2VjcmV0".to_owned(),
                webhook_secret: "whsec_test_abc123".to_owned(),
                fee_bps: 200,
                registered_at: time("2025-06-01T10:00:00Z"),
            }
            .into(),
        ),
        AnyEvent::Merchant(
            MerchantApiKeysRotated {
                api_key: "key_live_9fK2mQ".to_owned(),
                api_secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bmV3".to_owned(),
            }
            .into(),
        ),
        AnyEvent::Merchant(
            MerchantSuspended {
                reason: "chargeback review".to_owned(),
            }
            .into(),
        ),
        AnyEvent::Merchant(MerchantReactivated {}.into()),
        AnyEvent::Merchant(
            WebhookEndpointConfigured {
                url: Some("https://shop.example.com/webhooks".to_owned()),
                events: vec!["payment.success".to_owned(), "refund.processed".to_owned()],
            }
            .into(),
        ),
        AnyEvent::Merchant(
            WebhookSecretRegenerated {
                secret: "whsec_live_Zx81".to_owned(),
                previous_secret: "whsec_test_abc123".to_owned(),
                previous_valid_until: time("2025-06-02T10:00:00Z"),
            }
            .into(),
        ),
        AnyEvent::Merchant(
            WebhookEndpointDisabled {
                reason: "gone".to_owned(),
            }
            .into(),
        ),
        AnyEvent::Merchant(
            CheckoutOriginsSet {
                origins: vec!["https://shop.example.com".to_owned()],
            }
            .into(),
        ),
        AnyEvent::Order(
            OrderCreated {
                order_id: order_id(),
                merchant_id: merchant_id(),
                amount: 50_000,
                currency: Currency::INR,
                receipt: Some("receipt#1029".to_owned()),
                notes: Some(notes),
                created_at: time("2025-06-01T10:01:00Z"),
            }
            .into(),
        ),
        AnyEvent::Order(
            OrderAttempted {
                payment_id: payment_id(),
                attempted_at: time("2025-06-01T10:02:00Z"),
            }
            .into(),
        ),
        AnyEvent::Order(
            OrderPaid {
                payment_id: payment_id(),
                paid_at: time("2025-06-01T10:02:07Z"),
            }
            .into(),
        ),
        AnyEvent::Payment(
            PaymentCreated {
                payment_id: payment_id(),
                order_id: order_id(),
                merchant_id: merchant_id(),
                amount: 50_000,
                currency: Currency::INR,
                method: PaymentMethod::Card,
                vpa: None,
                card_network: Some(CardNetwork::Visa),
                card_last4: Some("1111".to_owned()),
                created_at: time("2025-06-01T10:02:00Z"),
            }
            .into(),
        ),
        AnyEvent::Payment(
            PaymentSucceeded {
                succeeded_at: time("2025-06-01T10:02:07Z"),
            }
            .into(),
        ),
        AnyEvent::Payment(
            PaymentFailed {
                error_code: "PAYMENT_FAILED".to_owned(),
                error_description: "Payment processing failed".to_owned(),
                failed_at: time("2025-06-01T10:02:07Z"),
            }
            .into(),
        ),
        AnyEvent::Payment(
            PaymentCaptured {
                amount: 50_000,
                captured_at: time("2025-06-01T10:05:00Z"),
            }
            .into(),
        ),
        AnyEvent::Payment(
            RefundCreated {
                refund_id: refund_id(),
                payment_id: payment_id(),
                amount: 20_000,
                reason: Some("Customer requested".to_owned()),
                created_at: time("2025-06-01T11:00:00Z"),
            }
            .into(),
        ),
        AnyEvent::Payment(
            RefundProcessed {
                refund_id: refund_id(),
                processed_at: time("2025-06-01T11:00:04Z"),
            }
            .into(),
        ),
        AnyEvent::Webhook(
            WebhookDeliveryScheduled {
                delivery_id: "whd_Q1w2E3r4T5y6U7i8".parse().unwrap(),
                merchant_id: merchant_id(),
                event: "payment.success".to_owned(),
                source_event_id: Uuid::from_u128(0x0197_2a4b_3c00_7d1e_8f20_3a4b_5c6d_7e8f),
                url: "https://shop.example.com/webhooks".to_owned(),
                body: WEBHOOK_BODY.to_owned(),
                retry_intervals_seconds: vec![0, 60, 300, 1_800, 7_200],
                scheduled_at: time("2025-06-01T10:02:07Z"),
                next_attempt_at: time("2025-06-01T10:02:07Z"),
            }
            .into(),
        ),
        AnyEvent::Webhook(
            WebhookAttemptRecorded {
                attempt: 1,
                attempted_at: time("2025-06-01T10:02:08Z"),
                status_code: Some(503),
                response_body_excerpt: "Service Unavailable".to_owned(),
                latency_ms: 231,
                error: None,
                retry_after_seconds: Some(120),
            }
            .into(),
        ),
        AnyEvent::Webhook(
            WebhookDelivered {
                delivered_at: time("2025-06-01T10:04:08Z"),
            }
            .into(),
        ),
        AnyEvent::Webhook(
            WebhookRetryScheduled {
                next_attempt_at: time("2025-06-01T10:04:08Z"),
            }
            .into(),
        ),
        AnyEvent::Webhook(
            WebhookDeliveryFailed {
                reason: "exhausted".to_owned(),
                failed_at: time("2025-06-01T12:38:08Z"),
            }
            .into(),
        ),
        AnyEvent::Webhook(
            WebhookRetryRequested {
                requested_at: time("2025-06-01T13:00:00Z"),
                next_attempt_at: time("2025-06-01T13:00:00Z"),
            }
            .into(),
        ),
    ]
}

/// Objects with keys in sorted order, whatever map type serde_json was built with.
fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, sort_keys(value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

fn render(payload: Value) -> String {
    let mut text = serde_json::to_string_pretty(&sort_keys(payload)).unwrap();
    text.push('\n');
    text
}

/// Read at run time (cargo sets it for tests), so a test binary built from
/// another checkout sharing the target directory still reads this one's files.
fn golden_dir() -> PathBuf {
    Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests")
    .join("golden")
}

fn file_name(event_type: &str, version: u16) -> String {
    format!("{event_type}.v{version}.json")
}

/// `PaymentCreated.v1.json` → `("PaymentCreated", 1)`.
fn parse_file_name(name: &str) -> Option<(&str, u16)> {
    let stem = name.strip_suffix(".json")?;
    let (event_type, version) = stem.rsplit_once(".v")?;
    Some((event_type, version.parse().ok()?))
}

#[test]
fn every_event_type_has_exactly_one_sample() {
    let sampled: Vec<&str> = samples().iter().map(AnyEvent::event_type).collect();
    let unique: BTreeSet<&str> = sampled.iter().copied().collect();
    assert_eq!(
        unique.len(),
        sampled.len(),
        "duplicate samples: {sampled:?}"
    );
    let known: BTreeSet<&str> = all_event_types().into_iter().collect();
    assert_eq!(unique, known, "samples and event lists differ");
}

/// One test, so that an `UPDATE_GOLDEN=1` run writes every file before any is read back.
#[test]
fn golden_files_match_the_samples_and_parse() {
    check_or_update_files();
    check_every_file_parses();
}

fn check_or_update_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|value| value == "1");
    let dir = golden_dir();
    if update {
        fs::create_dir_all(&dir).unwrap();
    }
    let mut problems = Vec::new();
    for sample in samples() {
        let path = dir.join(file_name(sample.event_type(), sample.schema_version()));
        let rendered = render(sample.to_payload());
        let current = fs::read_to_string(&path).ok();
        if update {
            if current.as_deref() != Some(rendered.as_str()) {
                fs::write(&path, &rendered).unwrap();
                eprintln!("updated {}", path.display());
            }
            continue;
        }
        match current {
            None => problems.push(format!(
                "missing {} (run with UPDATE_GOLDEN=1)",
                path.display()
            )),
            Some(text) if text != rendered => problems.push(format!(
                "{} differs from the current serialization:\n--- file\n{text}--- now\n{rendered}",
                path.display()
            )),
            Some(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "golden files out of date:\n{}",
        problems.join("\n")
    );
}

fn check_every_file_parses() {
    let samples = samples();
    let mut problems = Vec::new();
    let mut seen = 0;
    for entry in fs::read_dir(golden_dir()).expect("tests/golden exists") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some((event_type, version)) = parse_file_name(&name) else {
            problems.push(format!("{name}: not named <EventType>.v<N>.json"));
            continue;
        };
        seen += 1;
        let payload: Value = match serde_json::from_str(&fs::read_to_string(&path).unwrap()) {
            Ok(payload) => payload,
            Err(error) => {
                problems.push(format!("{name}: not JSON: {error}"));
                continue;
            }
        };
        match AnyEvent::from_stored(event_type, version, payload) {
            Err(error) => problems.push(format!("{name}: {error}")),
            Ok(parsed) => {
                let sample = samples
                    .iter()
                    .find(|sample| sample.event_type() == event_type);
                // A file at the current version must be exactly the sample.
                if let Some(sample) = sample.filter(|sample| sample.schema_version() == version) {
                    if parsed != *sample {
                        problems.push(format!("{name}: parses to {parsed:?}, expected {sample:?}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        seen >= samples.len(),
        "only {seen} golden files for {} event types",
        samples.len()
    );
}

#[test]
fn samples_round_trip_through_their_stored_form() {
    for sample in samples() {
        let parsed = AnyEvent::from_stored(
            sample.event_type(),
            sample.schema_version(),
            sample.to_payload(),
        );
        assert_eq!(parsed.as_ref(), Ok(&sample));
    }
}

#[test]
fn unknown_types_and_future_versions_are_errors() {
    assert!(matches!(
        AnyEvent::from_stored("PaymentRefunded", 1, json!({})),
        Err(UpcastError::UnknownEventType { .. })
    ));
    for sample in samples() {
        let future = sample.schema_version() + 1;
        assert!(matches!(
            AnyEvent::from_stored(sample.event_type(), future, sample.to_payload()),
            Err(UpcastError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            AnyEvent::from_stored(sample.event_type(), 0, sample.to_payload()),
            Err(UpcastError::UnsupportedVersion { .. })
        ));
    }
    assert!(matches!(
        PaymentEvent::from_stored("PaymentCaptured", 1, json!({ "amount": "lots" })),
        Err(UpcastError::InvalidPayload { .. })
    ));
}
