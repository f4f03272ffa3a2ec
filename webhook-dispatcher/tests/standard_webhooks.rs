//! Webhook signatures checked the way a merchant checks them: with only the
//! strings the API shows (`GET /api/v1/webhooks/config`, the regenerate and
//! merchant-creation answers), the official Standard Webhooks libraries
//! (Python package and Rust crate `standardwebhooks`) and Python's `hmac`.
//! The real command API, query API, relay and dispatcher deliver to a small
//! axum receiver.

mod support;

use std::time::Duration;

use paystream_webhook_dispatcher::spawn;
use serde_json::Value;
use support::apis::{Apis, Credentials};
use support::receiver::{Received, Receiver};
use support::verifiers::{python_verifies, python_verifies_hex, rust_verifies};
use support::{wait_until, TestEnv};

/// Everything a delivery needs, running.
struct Stack {
    apis: Apis,
    receiver: Receiver,
    _dispatcher: paystream_webhook_dispatcher::Dispatcher,
    _env: TestEnv,
}

impl Stack {
    async fn start() -> Self {
        let env = TestEnv::start().await;
        let apis = Apis::start(&env).await;
        let dispatcher = spawn(env.store.clone(), env.jetstream.clone(), env.settings())
            .expect("start the dispatcher");
        let receiver = Receiver::ok().await;
        Self {
            apis,
            receiver,
            _dispatcher: dispatcher,
            _env: env,
        }
    }

    /// Sends a test webhook and waits for it to arrive.
    async fn test_webhook(&self, merchant: &Credentials) -> Received {
        let before = self.receiver.count();
        self.apis.send_test_webhook(merchant).await;
        wait_until(Duration::from_secs(20), "the test webhook", || async {
            self.receiver.received().into_iter().nth(before)
        })
        .await
    }
}

/// The two strings the config shows.
fn shown(config: &Value) -> (String, String) {
    let text = |field: &str| {
        config[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} in {config}"))
            .to_owned()
    };
    (text("secret"), text("standard_webhooks_secret"))
}

/// Every independent verifier accepts `received` with what was shown.
fn assert_verified(secret: &str, library_secret: &str, received: &Received) {
    assert_eq!(received.json()["event"], "webhook.test");
    assert!(
        python_verifies(library_secret, received),
        "the Python standardwebhooks library refused {library_secret}"
    );
    assert!(
        rust_verifies(library_secret, received),
        "the standardwebhooks crate refused {library_secret}"
    );
    assert!(
        python_verifies_hex(secret, received),
        "X-Webhook-Signature is not the hex HMAC keyed with {secret}"
    );
}

#[tokio::test]
async fn a_generated_secret_works_as_shown_in_the_official_libraries() {
    let stack = Stack::start().await;
    let (merchant, created) = stack.apis.create_merchant().await;
    stack
        .apis
        .configure_webhook(&merchant, &stack.receiver.url)
        .await;
    let (secret, library_secret) = shown(&stack.apis.webhook_config(&merchant).await);
    // One string for everything: the one shown when the merchant was created.
    assert_eq!(secret, created["webhook_secret"]);
    assert_eq!(library_secret, created["standard_webhooks_secret"]);
    assert_eq!(library_secret, secret);

    let received = stack.test_webhook(&merchant).await;
    assert_verified(&secret, &library_secret, &received);
    // The verifiers do refuse: another generated-looking secret fails.
    let other = "whsec_AD2SsFh6Y9rsOXQxziVD4aHXqjE8dtaUmmbnHGNFvU4=";
    assert!(!python_verifies(other, &received));
    assert!(!rust_verifies(other, &received));
    assert!(!python_verifies_hex(other, &received));
}

#[tokio::test]
async fn the_seeded_secret_works_through_the_shown_standard_webhooks_secret() {
    let stack = Stack::start().await;
    let merchant = Credentials::seeded();
    stack
        .apis
        .configure_webhook(&merchant, &stack.receiver.url)
        .await;
    let (secret, library_secret) = shown(&stack.apis.webhook_config(&merchant).await);
    assert_eq!(secret, "whsec_test_abc123");
    assert_eq!(library_secret, "whsec_d2hzZWNfdGVzdF9hYmMxMjM=");

    let received = stack.test_webhook(&merchant).await;
    assert_verified(&secret, &library_secret, &received);
    // Its tail is not base64: the libraries cannot take the secret itself,
    // which is why the API shows the other string.
    assert!(!python_verifies(&secret, &received));
    assert!(!rust_verifies(&secret, &received));
}

#[tokio::test]
async fn during_a_rotation_the_old_and_the_new_shown_strings_both_verify() {
    let stack = Stack::start().await;
    let merchant = Credentials::seeded();
    stack
        .apis
        .configure_webhook(&merchant, &stack.receiver.url)
        .await;
    // From the seeded (legacy) secret to a generated one, then to another
    // generated one: each time the previous secret keeps signing.
    let mut old = shown(&stack.apis.webhook_config(&merchant).await);
    for round in 0..2 {
        let regenerated = stack.apis.regenerate_webhook_secret(&merchant).await;
        let new = shown(&stack.apis.webhook_config(&merchant).await);
        assert_eq!(new.0, regenerated["webhook_secret"], "round {round}");
        assert_eq!(
            new.1, regenerated["standard_webhooks_secret"],
            "round {round}"
        );
        assert_eq!(new.1, new.0, "round {round}: a generated secret is base64");
        assert_ne!(new.0, old.0);

        let received = stack.test_webhook(&merchant).await;
        let signatures = received.header("webhook-signature");
        assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
        assert_verified(&new.0, &new.1, &received);
        for verifies in [python_verifies, rust_verifies] {
            assert!(verifies(&old.1, &received), "round {round}: old {}", old.1);
        }
        // `X-Webhook-Signature` carries the current secret only.
        assert!(!python_verifies_hex(&old.0, &received), "round {round}");
        old = new;
    }
}
