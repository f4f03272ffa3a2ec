//! Given / when / then for every merchant command and rejection.

use super::*;
use crate::testing::{given, time};

fn merchant_id() -> crate::id::MerchantId {
    "550e8400-e29b-41d4-a716-446655440000".parse().unwrap()
}

fn register() -> RegisterMerchant {
    RegisterMerchant {
        merchant_id: merchant_id(),
        name: "Test Merchant".to_owned(),
        email: "test@example.com".to_owned(),
        password_hash: Some("$argon2id$v=19$hash".to_owned()),
        api_key: "key_test_abc123".to_owned(),
        api_secret_hash: "$argon2id$v=19$secret".to_owned(),
        webhook_secret: "whsec_test_abc123".to_owned(),
        fee_bps: 200,
        at: time(0),
    }
}

fn registered() -> MerchantEvent {
    MerchantRegistered {
        merchant_id: merchant_id(),
        name: "Test Merchant".to_owned(),
        email: "test@example.com".to_owned(),
        password_hash: Some("$argon2id$v=19$hash".to_owned()),
        api_key: "key_test_abc123".to_owned(),
        api_secret_hash: "$argon2id$v=19$secret".to_owned(),
        webhook_secret: "whsec_test_abc123".to_owned(),
        fee_bps: 200,
        registered_at: time(0),
    }
    .into()
}

fn configured(url: &str, events: &[&str]) -> MerchantEvent {
    WebhookEndpointConfigured {
        url: Some(url.to_owned()),
        events: events.iter().map(|name| (*name).to_owned()).collect(),
    }
    .into()
}

fn configure(url: Option<&str>, events: &[&str]) -> MerchantCommand {
    ConfigureWebhook {
        url: url.map(str::to_owned),
        events: events.iter().map(|name| (*name).to_owned()).collect(),
    }
    .into()
}

fn suspended() -> MerchantEvent {
    MerchantSuspended {
        reason: "fraud review".to_owned(),
    }
    .into()
}

fn disabled() -> MerchantEvent {
    WebhookEndpointDisabled {
        reason: "gone".to_owned(),
    }
    .into()
}

fn invalid(field: &'static str, message: &str) -> crate::DomainError {
    crate::DomainError::invalid(field, message)
}

// ---- RegisterMerchant ----------------------------------------------------

#[test]
fn register_merchant() {
    let state = given::<MerchantAggregate>([])
        .when(register().into())
        .then([registered()]);
    let merchant = state.unwrap();
    assert!(merchant.is_active());
    assert_eq!(merchant.api_key, "key_test_abc123");
    assert_eq!(merchant.fee_bps, 200);
    assert_eq!(merchant.webhook.secret, "whsec_test_abc123");
    assert_eq!(merchant.webhook.url, None);
    assert!(!merchant.webhook.enabled);
}

#[test]
fn register_without_password() {
    let command = RegisterMerchant {
        password_hash: None,
        ..register()
    };
    let MerchantEvent::MerchantRegistered(mut expected) = registered() else {
        unreachable!()
    };
    expected.password_hash = None;
    given::<MerchantAggregate>([])
        .when(command.into())
        .then([expected.into()]);
}

#[test]
fn register_rejects_an_existing_merchant() {
    given::<MerchantAggregate>([registered()])
        .when(register().into())
        .then_error(crate::DomainError::MerchantAlreadyRegistered);
}

#[test]
fn register_rejects_bad_inputs() {
    let cases: Vec<(RegisterMerchant, crate::DomainError)> = vec![
        (
            RegisterMerchant {
                name: " ".to_owned(),
                ..register()
            },
            invalid("name", "name must not be empty"),
        ),
        (
            RegisterMerchant {
                name: "n".repeat(256),
                ..register()
            },
            invalid("name", "name must be at most 255 characters"),
        ),
        (
            RegisterMerchant {
                email: "not-an-email".to_owned(),
                ..register()
            },
            invalid("email", "email must be a valid e-mail address"),
        ),
        (
            RegisterMerchant {
                password_hash: Some(String::new()),
                ..register()
            },
            invalid("password_hash", "password_hash must not be empty"),
        ),
        (
            RegisterMerchant {
                api_key: String::new(),
                ..register()
            },
            invalid("api_key", "api_key must not be empty"),
        ),
        (
            RegisterMerchant {
                api_secret_hash: String::new(),
                ..register()
            },
            invalid("api_secret_hash", "api_secret_hash must not be empty"),
        ),
        (
            RegisterMerchant {
                webhook_secret: String::new(),
                ..register()
            },
            invalid("webhook_secret", "webhook_secret must not be empty"),
        ),
        (
            RegisterMerchant {
                fee_bps: 10_001,
                ..register()
            },
            invalid("fee_bps", "fee_bps must be at most 10000"),
        ),
    ];
    for (command, expected) in cases {
        given::<MerchantAggregate>([])
            .when(command.into())
            .then_error(expected);
    }
    // The bound itself is fine.
    let state = given::<MerchantAggregate>([]).when(
        RegisterMerchant {
            fee_bps: 10_000,
            ..register()
        }
        .into(),
    );
    let MerchantEvent::MerchantRegistered(mut expected) = registered() else {
        unreachable!()
    };
    expected.fee_bps = 10_000;
    state.then([expected.into()]);
}

// ---- RotateApiKeys -------------------------------------------------------

fn rotate(api_key: &str) -> MerchantCommand {
    RotateApiKeys {
        api_key: api_key.to_owned(),
        api_secret_hash: "$argon2id$new".to_owned(),
    }
    .into()
}

#[test]
fn rotate_api_keys() {
    let state = given::<MerchantAggregate>([registered()])
        .when(rotate("key_live_new"))
        .then([MerchantApiKeysRotated {
            api_key: "key_live_new".to_owned(),
            api_secret_hash: "$argon2id$new".to_owned(),
        }
        .into()]);
    let merchant = state.unwrap();
    assert_eq!(merchant.api_key, "key_live_new");
    assert_eq!(merchant.api_secret_hash, "$argon2id$new");
}

#[test]
fn rotate_api_keys_rejections() {
    given::<MerchantAggregate>([])
        .when(rotate("key_live_new"))
        .then_error(crate::DomainError::MerchantNotFound);
    given::<MerchantAggregate>([registered()])
        .when(rotate(""))
        .then_error(invalid("api_key", "api_key must not be empty"));
    given::<MerchantAggregate>([registered()])
        .when(
            RotateApiKeys {
                api_key: "key_live_new".to_owned(),
                api_secret_hash: " ".to_owned(),
            }
            .into(),
        )
        .then_error(invalid(
            "api_secret_hash",
            "api_secret_hash must not be empty",
        ));
    given::<MerchantAggregate>([registered()])
        .when(rotate("key_test_abc123"))
        .then_error(invalid(
            "api_key",
            "api_key must differ from the current key",
        ));
}

// ---- SuspendMerchant / ReactivateMerchant ----------------------------------

#[test]
fn suspend_merchant() {
    let state = given::<MerchantAggregate>([registered()])
        .when(
            SuspendMerchant {
                reason: "fraud review".to_owned(),
            }
            .into(),
        )
        .then([suspended()]);
    let merchant = state.unwrap();
    assert_eq!(merchant.status, MerchantStatus::Suspended);
    assert_eq!(merchant.suspension_reason.as_deref(), Some("fraud review"));
    assert!(!merchant.is_active());
}

#[test]
fn suspend_rejections() {
    let suspend = || {
        MerchantCommand::from(SuspendMerchant {
            reason: "x".to_owned(),
        })
    };
    given::<MerchantAggregate>([])
        .when(suspend())
        .then_error(crate::DomainError::MerchantNotFound);
    given::<MerchantAggregate>([registered(), suspended()])
        .when(suspend())
        .then_error(crate::DomainError::MerchantAlreadySuspended);
    given::<MerchantAggregate>([registered()])
        .when(
            SuspendMerchant {
                reason: "r".repeat(256),
            }
            .into(),
        )
        .then_error(invalid("reason", "reason must be at most 255 characters"));
}

#[test]
fn reactivate_merchant() {
    let state = given::<MerchantAggregate>([registered(), suspended()])
        .when(ReactivateMerchant.into())
        .then([MerchantReactivated {}.into()]);
    let merchant = state.unwrap();
    assert!(merchant.is_active());
    assert_eq!(merchant.suspension_reason, None);
}

#[test]
fn reactivate_rejections() {
    given::<MerchantAggregate>([])
        .when(ReactivateMerchant.into())
        .then_error(crate::DomainError::MerchantNotFound);
    given::<MerchantAggregate>([registered()])
        .when(ReactivateMerchant.into())
        .then_error(crate::DomainError::MerchantNotSuspended);
}

// ---- ConfigureWebhook ----------------------------------------------------

#[test]
fn configure_webhook_deduplicates_events() {
    let state = given::<MerchantAggregate>([registered()])
        .when(configure(
            Some("https://shop.example.com/hooks"),
            &["payment.success", "refund.processed", "payment.success"],
        ))
        .then([configured(
            "https://shop.example.com/hooks",
            &["payment.success", "refund.processed"],
        )]);
    let webhook = state.unwrap().webhook;
    assert!(webhook.enabled);
    assert_eq!(
        webhook.endpoint_for("payment.success"),
        Some("https://shop.example.com/hooks")
    );
    assert_eq!(webhook.endpoint_for("payment.failed"), None);
    assert_eq!(
        webhook.endpoint_for("webhook.test"),
        Some("https://shop.example.com/hooks")
    );
}

#[test]
fn configure_webhook_with_no_events_subscribes_to_all() {
    let state = given::<MerchantAggregate>([registered()])
        .when(configure(Some("http://localhost:4000/hook"), &[]))
        .then([configured("http://localhost:4000/hook", &[])]);
    let webhook = state.unwrap().webhook;
    for event in crate::webhook::WEBHOOK_EVENTS {
        assert_eq!(
            webhook.endpoint_for(event),
            Some("http://localhost:4000/hook")
        );
    }
}

#[test]
fn configure_webhook_without_url_removes_the_endpoint() {
    let state =
        given::<MerchantAggregate>([registered(), configured("https://a.example.com/h", &[])])
            .when(configure(None, &[]))
            .then([WebhookEndpointConfigured {
                url: None,
                events: Vec::new(),
            }
            .into()]);
    let webhook = state.unwrap().webhook;
    assert!(!webhook.enabled);
    assert_eq!(webhook.endpoint_for("payment.success"), None);
}

#[test]
fn configure_webhook_with_the_same_settings_is_a_no_op() {
    given::<MerchantAggregate>([
        registered(),
        configured("https://a.example.com/h", &["payment.success"]),
    ])
    .when(configure(
        Some("https://a.example.com/h"),
        &["payment.success"],
    ))
    .then_nothing();
    given::<MerchantAggregate>([registered()])
        .when(configure(None, &[]))
        .then_nothing();
}

#[test]
fn configure_webhook_again_re_enables_a_disabled_endpoint() {
    let state = given::<MerchantAggregate>([
        registered(),
        configured("https://a.example.com/h", &[]),
        disabled(),
    ])
    .when(configure(Some("https://a.example.com/h"), &[]))
    .then([configured("https://a.example.com/h", &[])]);
    let webhook = state.unwrap().webhook;
    assert!(webhook.enabled);
    assert_eq!(webhook.disabled_reason, None);
}

#[test]
fn configure_webhook_rejections() {
    given::<MerchantAggregate>([])
        .when(configure(Some("https://a.example.com/h"), &[]))
        .then_error(crate::DomainError::MerchantNotFound);
    given::<MerchantAggregate>([registered()])
        .when(configure(Some("ftp://a.example.com/h"), &[]))
        .then_error(invalid("url", "url must be an absolute http or https URL"));
    for url in [
        "http://localhost.:8083/",
        "http://metadata.google.internal/",
        "http://metadata/",
    ] {
        let error = given::<MerchantAggregate>([registered()])
            .when(configure(Some(url), &[]))
            .then_error_code("BAD_REQUEST_ERROR");
        assert_eq!(error.field(), Some("url"), "{url}");
    }
    let long_url = format!("https://a.example.com/{}", "x".repeat(2048));
    given::<MerchantAggregate>([registered()])
        .when(configure(Some(&long_url), &[]))
        .then_error(invalid("url", "url must be at most 2048 characters"));
    let error = given::<MerchantAggregate>([registered()])
        .when(configure(
            Some("https://a.example.com/h"),
            &["payment.success", "payment.refunded"],
        ))
        .then_error_code("BAD_REQUEST_ERROR");
    assert_eq!(error.field(), Some("events"));
    given::<MerchantAggregate>([registered()])
        .when(configure(
            Some("https://a.example.com/h"),
            &["webhook.test"],
        ))
        .then_error_code("BAD_REQUEST_ERROR");
}

// ---- RegenerateWebhookSecret -----------------------------------------------

#[test]
fn regenerate_webhook_secret_keeps_the_previous_one_during_the_overlap() {
    let state = given::<MerchantAggregate>([registered()])
        .when(
            RegenerateWebhookSecret {
                secret: "whsec_new".to_owned(),
                previous_valid_until: time(3_600),
            }
            .into(),
        )
        .then([WebhookSecretRegenerated {
            secret: "whsec_new".to_owned(),
            previous_secret: "whsec_test_abc123".to_owned(),
            previous_valid_until: time(3_600),
        }
        .into()]);
    let webhook = state.unwrap().webhook;
    assert_eq!(
        webhook.signing_secrets(time(10)),
        ["whsec_new", "whsec_test_abc123"]
    );
    assert_eq!(
        webhook.signing_secrets(time(3_599)),
        ["whsec_new", "whsec_test_abc123"]
    );
    assert_eq!(webhook.signing_secrets(time(3_600)), ["whsec_new"]);
}

#[test]
fn regenerate_webhook_secret_rejections() {
    let regenerate = |secret: &str| {
        MerchantCommand::from(RegenerateWebhookSecret {
            secret: secret.to_owned(),
            previous_valid_until: time(60),
        })
    };
    given::<MerchantAggregate>([])
        .when(regenerate("whsec_new"))
        .then_error(crate::DomainError::MerchantNotFound);
    given::<MerchantAggregate>([registered()])
        .when(regenerate(""))
        .then_error(invalid("secret", "secret must not be empty"));
    given::<MerchantAggregate>([registered()])
        .when(regenerate("whsec_test_abc123"))
        .then_error(invalid(
            "secret",
            "secret must differ from the current secret",
        ));
}

// ---- DisableWebhookEndpoint ------------------------------------------------

#[test]
fn disable_webhook_endpoint() {
    let state =
        given::<MerchantAggregate>([registered(), configured("https://a.example.com/h", &[])])
            .when(
                DisableWebhookEndpoint {
                    reason: "gone".to_owned(),
                }
                .into(),
            )
            .then([disabled()]);
    let webhook = state.unwrap().webhook;
    assert!(!webhook.enabled);
    assert_eq!(webhook.disabled_reason.as_deref(), Some("gone"));
    assert_eq!(webhook.endpoint_for("payment.success"), None);
    assert_eq!(webhook.url.as_deref(), Some("https://a.example.com/h"));
}

#[test]
fn disable_webhook_endpoint_is_idempotent() {
    let disable = || {
        MerchantCommand::from(DisableWebhookEndpoint {
            reason: "gone".to_owned(),
        })
    };
    given::<MerchantAggregate>([
        registered(),
        configured("https://a.example.com/h", &[]),
        disabled(),
    ])
    .when(disable())
    .then_nothing();
    given::<MerchantAggregate>([registered()])
        .when(disable())
        .then_nothing();
}

#[test]
fn disable_webhook_endpoint_rejections() {
    given::<MerchantAggregate>([])
        .when(
            DisableWebhookEndpoint {
                reason: "gone".to_owned(),
            }
            .into(),
        )
        .then_error(crate::DomainError::MerchantNotFound);
    given::<MerchantAggregate>([registered(), configured("https://a.example.com/h", &[])])
        .when(
            DisableWebhookEndpoint {
                reason: "g".repeat(256),
            }
            .into(),
        )
        .then_error(invalid("reason", "reason must be at most 255 characters"));
}

// ---- Secrets stay out of Debug output --------------------------------------

#[test]
fn debug_output_redacts_secrets() {
    let state = given::<MerchantAggregate>([registered()])
        .when(rotate("key_live_new"))
        .then([MerchantApiKeysRotated {
            api_key: "key_live_new".to_owned(),
            api_secret_hash: "$argon2id$new".to_owned(),
        }
        .into()]);
    let outputs = [
        format!("{state:?}"),
        format!("{:?}", registered()),
        format!("{:?}", MerchantCommand::from(register())),
        format!("{:?}", rotate("key")),
        format!(
            "{:?}",
            MerchantCommand::from(RegenerateWebhookSecret {
                secret: "whsec_new".to_owned(),
                previous_valid_until: time(1)
            })
        ),
    ];
    for output in outputs {
        assert!(!output.contains("whsec_"), "{output}");
        assert!(!output.contains("$argon2id"), "{output}");
    }
}

#[test]
fn events_before_registration_are_ignored() {
    let state = crate::replay::<MerchantAggregate>(&[suspended(), disabled()]);
    assert_eq!(state, None);
}
