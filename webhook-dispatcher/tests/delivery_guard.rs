//! The SSRF guard at delivery time: URLs stored straight through the domain
//! (as if configured when their host was still allowed: DNS answers change)
//! are refused before any request, by the same address rule the command API
//! applies at configuration time, with the system's ports as configured.

mod support;

use std::time::Duration;

use paystream_domain::validation::SystemPorts;
use paystream_domain::webhook::{WebhookDelivery, WebhookDeliveryStatus};
use paystream_webhook_dispatcher::{spawn, Settings};
use support::receiver::Receiver;
use support::{wait_until, TestEnv};

/// `url`'s first delivery (payment.created), once final.
async fn first_delivery(env: &TestEnv, url: &str) -> WebhookDelivery {
    let merchant = env.merchant("whsec_test_abc123", Some(url)).await;
    env.payment(merchant).await;
    wait_until(
        Duration::from_secs(20),
        &format!("the delivery to {url} to be final"),
        || async {
            env.deliveries(merchant).await.into_iter().find(|d| {
                d.event == "payment.created" && d.status != WebhookDeliveryStatus::Pending
            })
        },
    )
    .await
}

async fn assert_refused(env: &TestEnv, url: &str, reason: &str) {
    let delivery = first_delivery(env, url).await;
    assert_eq!(delivery.status, WebhookDeliveryStatus::Failed, "{url}");
    assert_eq!(
        delivery.last_status_code, None,
        "{url}: no request was made"
    );
    let error = delivery.last_error.unwrap_or_default();
    assert!(error.contains(reason), "{url}: {error}");
}

#[tokio::test]
async fn dev_refuses_private_addresses_and_the_services_ports_at_delivery() {
    let env = TestEnv::start().await;
    let settings = Settings {
        retry_intervals: vec![0],
        ..env.settings()
    };
    assert!(settings.allow_private, "the dev policy");
    let _dispatcher = spawn(env.store.clone(), env.jetstream.clone(), settings).unwrap();
    let receiver = Receiver::ok().await;
    let port = receiver
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/hook");
    for url in [
        "http://10.0.0.1/hook".to_owned(),
        "http://192.168.1.10/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        format!("http://0.0.0.0:{port}/hook"),
    ] {
        assert_refused(&env, &url, "forbidden address").await;
    }
    for url in [
        "http://127.0.0.1:8081/hook",
        "http://localhost:8082/hook",
        "http://[::1]:8083/hook",
        "http://2130706433:8084/hook",
        "http://[::ffff:127.0.0.1]:8081/hook",
    ] {
        assert_refused(&env, url, "which Paystream itself listens on").await;
    }
    assert_eq!(receiver.count(), 0);
    // Loopback on another port, in any spelling, is delivered.
    let delivery = first_delivery(&env, &format!("http://127.1:{port}/hook")).await;
    assert_eq!(delivery.status, WebhookDeliveryStatus::Success);
    assert!(receiver.count() >= 1);
}

#[tokio::test]
async fn production_refuses_every_spelling_of_loopback_at_delivery() {
    let env = TestEnv::start().await;
    let settings = Settings {
        allow_private: false,
        retry_intervals: vec![0],
        ..env.settings()
    };
    let _dispatcher = spawn(env.store.clone(), env.jetstream.clone(), settings).unwrap();
    let receiver = Receiver::ok().await;
    let port = receiver
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/hook");
    for host in [
        "127.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "[::ffff:127.0.0.1]",
        "[::1]",
        "0",
    ] {
        assert_refused(
            &env,
            &format!("http://{host}:{port}/hook"),
            "forbidden address",
        )
        .await;
    }
    assert_eq!(receiver.count(), 0);
}

fn port_of(receiver: &Receiver) -> u16 {
    receiver
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/hook")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn dev_refuses_the_configured_system_ports_at_delivery() {
    let env = TestEnv::start().await;
    // A real server on a port the system is configured to listen on (it
    // stands for the edge), beside the smoke run's moved ports.
    let edge = Receiver::ok().await;
    let edge_port = port_of(&edge);
    let mut ports = vec![edge_port];
    ports.extend([18081, 18082, 18083, 18084, 18085, 13000, 13001]);
    let settings = Settings {
        retry_intervals: vec![0],
        system_ports: SystemPorts::new(ports.iter().copied()),
        ..env.settings()
    };
    assert!(settings.allow_private, "the dev policy");
    let _dispatcher = spawn(env.store.clone(), env.jetstream.clone(), settings).unwrap();
    for host in ["127.0.0.1", "localhost", "127.1", "[::ffff:127.0.0.1]"] {
        assert_refused(
            &env,
            &format!("http://{host}:{edge_port}/hook"),
            &format!("uses port {edge_port}, which Paystream itself listens on"),
        )
        .await;
    }
    for port in &ports[1..] {
        assert_refused(
            &env,
            &format!("http://127.0.0.1:{port}/hook"),
            "which Paystream itself listens on",
        )
        .await;
    }
    assert_eq!(edge.count(), 0, "nothing reached the system's port");
    // A port outside the configured set is delivered to.
    let receiver = Receiver::ok().await;
    assert!(!ports.contains(&port_of(&receiver)));
    let delivery = first_delivery(&env, &receiver.url).await;
    assert_eq!(delivery.status, WebhookDeliveryStatus::Success);
    assert!(receiver.count() >= 1);
    assert_eq!(edge.count(), 0);
}
