//! Invariant 8: each delivery uses the endpoint configuration in force at
//! the event that caused it. A merchant changes its endpoint through the
//! real command API (this instance, or another one with memory of its own)
//! and creates a payment at once; the real dispatcher, warmed up with
//! deliveries under the old configuration, must use the new one for every
//! delivery of that payment.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use paystream_domain::dev as seed;
use paystream_domain::signature;
use paystream_domain::webhook::WebhookDeliveryStatus;
use paystream_domain::{MerchantId, PaymentId};
use paystream_webhook_dispatcher::{spawn, Dispatcher};
use serde_json::json;
use support::apis::{Apis, Credentials};
use support::receiver::{Answer, Received, Receiver};
use support::{wait_until, TestEnv};

const ALL: [&str; 3] = ["payment.created", "payment.pending", "payment.success"];

struct System {
    env: TestEnv,
    /// The instance the payments are made through.
    api: Apis,
    /// A second command-api instance (and query-api).
    other: Apis,
    _dispatcher: Dispatcher,
}

impl System {
    async fn start() -> Self {
        let env = TestEnv::start().await;
        let api = Apis::start(&env).await;
        let other = Apis::start(&env).await;
        let dispatcher =
            spawn(env.store.clone(), env.jetstream.clone(), env.settings()).expect("dispatcher");
        Self {
            env,
            api,
            other,
            _dispatcher: dispatcher,
        }
    }

    fn merchant(&self) -> MerchantId {
        MerchantId::from(seed::DEV_MERCHANT_ID)
    }

    /// A payment through the API, then its success recorded at once (as the
    /// acquirer would): three events to announce.
    async fn settled_payment(&self) -> String {
        let payment = self.api.payment(&Credentials::seeded()).await;
        let id: PaymentId = payment.parse().expect("payment id");
        self.env.succeed(self.merchant(), &id).await;
        payment
    }

    /// Every event handled and every scheduled delivery finished: nothing
    /// more will be sent.
    async fn settle(&self) {
        self.env.wait_consumed().await;
        wait_until(Duration::from_secs(30), "deliveries to finish", || async {
            self.env
                .deliveries(self.merchant())
                .await
                .iter()
                .all(|delivery| delivery.status != WebhookDeliveryStatus::Pending)
                .then_some(())
        })
        .await;
    }
}

fn about(received: &[Received], payment: &str) -> Vec<Received> {
    received
        .iter()
        .filter(|r| r.json()["data"]["payment"]["id"] == payment)
        .cloned()
        .collect()
}

fn events(received: &[Received]) -> BTreeSet<String> {
    received
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// Waits until `receiver` holds `names` for `payment`.
async fn received_all(receiver: &Receiver, payment: &str, names: &[&str]) {
    wait_until(
        Duration::from_secs(20),
        &format!("{names:?} of {payment}"),
        || async {
            let got = events(&about(&receiver.received(), payment));
            (got == set(names)).then_some(())
        },
    )
    .await;
}

/// Deliveries to `old` for a payment, warming the dispatcher's view of the
/// merchant with that configuration.
async fn warm(system: &System, old: &Receiver) {
    system
        .api
        .configure(&Credentials::seeded(), json!({"url": old.url}))
        .await;
    let warm = system.settled_payment().await;
    received_all(old, &warm, &ALL).await;
}

async fn url_change_applies_at_once(change_through: fn(&System) -> &Apis) {
    let system = System::start().await;
    let (old, new) = (Receiver::ok().await, Receiver::ok().await);
    warm(&system, &old).await;

    change_through(&system)
        .configure(&Credentials::seeded(), json!({"url": new.url}))
        .await;
    let payment = system.settled_payment().await;

    received_all(&new, &payment, &ALL).await;
    system.settle().await;
    assert!(
        about(&old.received(), &payment).is_empty(),
        "the old URL got {:?}",
        events(&about(&old.received(), &payment))
    );
    assert_eq!(about(&new.received(), &payment).len(), 3, "one each");
}

#[tokio::test]
async fn a_new_url_receives_every_delivery_of_the_next_payment() {
    url_change_applies_at_once(|system| &system.api).await;
}

#[tokio::test]
async fn a_new_url_set_through_another_command_api_applies_at_once() {
    url_change_applies_at_once(|system| &system.other).await;
}

#[tokio::test]
async fn a_rotated_secret_signs_the_next_payment() {
    let system = System::start().await;
    let endpoint = Receiver::ok().await;
    warm(&system, &endpoint).await;
    let before = endpoint.received();

    let rotated = system
        .other
        .regenerate_webhook_secret(&Credentials::seeded())
        .await;
    let secret = rotated["webhook_secret"].as_str().expect("new secret");
    assert_ne!(secret, seed::DEV_WEBHOOK_SECRET);
    let payment = system.settled_payment().await;

    received_all(&endpoint, &payment, &ALL).await;
    for received in about(&endpoint.received(), &payment) {
        assert!(
            signature::verify_hex(
                secret,
                &received.body,
                received.header("x-webhook-signature")
            ),
            "{} not signed with the new secret",
            received.json()["event"]
        );
    }
    // The warm-up deliveries were signed with the old one.
    assert!(before.iter().all(|received| signature::verify_hex(
        seed::DEV_WEBHOOK_SECRET,
        &received.body,
        received.header("x-webhook-signature")
    )));
}

#[tokio::test]
async fn a_new_events_filter_applies_to_the_next_payment() {
    let system = System::start().await;
    let endpoint = Receiver::ok().await;
    warm(&system, &endpoint).await;

    system
        .other
        .configure(
            &Credentials::seeded(),
            json!({"url": endpoint.url, "events": ["payment.success"]}),
        )
        .await;
    let payment = system.settled_payment().await;

    received_all(&endpoint, &payment, &["payment.success"]).await;
    system.settle().await;
    assert_eq!(
        events(&about(&endpoint.received(), &payment)),
        set(&["payment.success"])
    );
}

#[tokio::test]
async fn a_removed_endpoint_is_sent_nothing_more() {
    let system = System::start().await;
    let endpoint = Receiver::ok().await;
    warm(&system, &endpoint).await;

    system
        .other
        .configure(&Credentials::seeded(), json!({"url": null}))
        .await;
    let payment = system.settled_payment().await;

    system.settle().await;
    assert!(about(&endpoint.received(), &payment).is_empty());
}

#[tokio::test]
async fn an_endpoint_disabled_by_410_gone_is_sent_nothing_more() {
    let system = System::start().await;
    let gone = Receiver::start(|_| Answer::status(410)).await;
    system
        .api
        .configure(&Credentials::seeded(), json!({"url": gone.url}))
        .await;
    let first = system.api.payment(&Credentials::seeded()).await;
    let merchant_stream = format!("merchant-{}", seed::DEV_MERCHANT_ID);
    wait_until(
        Duration::from_secs(20),
        "the endpoint to be disabled",
        || async {
            system
                .env
                .stream_events(&merchant_stream)
                .await
                .iter()
                .any(|(event_type, _)| event_type == "WebhookEndpointDisabled")
                .then_some(())
        },
    )
    .await;

    let payment = system.settled_payment().await;

    system.settle().await;
    assert!(!about(&gone.received(), &first).is_empty());
    assert!(
        about(&gone.received(), &payment).is_empty(),
        "a disabled endpoint got {:?}",
        events(&about(&gone.received(), &payment))
    );
}
