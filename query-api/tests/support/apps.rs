//! The real command API and the real query API on port 0, over one database
//! of their own: writes go through the command API's HTTP, reads through the
//! query API's.

use std::time::Duration;

use chrono::Utc;
use paystream_command_api::config::{Config as CommandConfig, Profile, Secret};
use paystream_command_api::startup::Application as CommandApplication;
use paystream_domain::dev as seed;
use paystream_domain::merchant::{MerchantAggregate, RegisterMerchant, SuspendMerchant};
use paystream_domain::order::{MarkOrderPaid, OrderAggregate};
use paystream_domain::payment::{
    PaymentAggregate, ProcessRefund, RecordPaymentFailure, RecordPaymentSuccess,
};
use paystream_domain::{MerchantId, PaymentId, RefundId};
use paystream_kit::http::auth::{secret_hash, sync_credentials};
use paystream_projector::startup::Application as ProjectorApplication;
use paystream_projector::Config as ProjectorConfig;
use paystream_query_api::config::Config as QueryConfig;
use paystream_query_api::startup::Application as QueryApplication;
use paystream_store::runner;
use paystream_store::{EventMetadata, PgEventStore};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{nats_url, unique_name, TestDatabase};

/// Credentials of one merchant.
#[derive(Debug, Clone)]
pub struct Merchant {
    pub id: Uuid,
    pub key: String,
    pub secret: String,
}

/// The dev profile's seeded merchant.
pub fn dev_merchant() -> Merchant {
    Merchant {
        id: seed::DEV_MERCHANT_ID,
        key: seed::DEV_API_KEY.into(),
        secret: seed::DEV_API_SECRET.into(),
    }
}

#[derive(Debug)]
pub struct Apps {
    /// Base URL of the command API.
    pub command: String,
    /// Base URL of the query API.
    pub query: String,
    pub client: reqwest::Client,
    /// The command API's store (commands recorded "by the acquirer" go
    /// through it, as they would in the acquirer).
    pub store: PgEventStore,
    pub database: TestDatabase,
    pub command_config: CommandConfig,
    pub query_config: QueryConfig,
}

/// Settings of a pair of apps.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Run the command API's relay (on a JetStream stream of this test's own).
    pub relay: bool,
    /// Run the projector too (it needs the relay: turns it on).
    pub projector: bool,
}

/// Both APIs, dev profile, no relay and no acquirer.
pub async fn spawn_apps() -> Apps {
    spawn_apps_with(Options::default()).await
}

pub async fn spawn_apps_with(options: Options) -> Apps {
    let database = TestDatabase::create().await;
    let name = unique_name("q");
    let command_config = CommandConfig {
        runtime: paystream_kit::config::RuntimeArgs::new(Profile::Dev),
        database: paystream_kit::config::DatabaseArgs {
            database_url: paystream_kit::config::Secret::new(database.url.clone()),
            database_max_connections: 8,
        },
        nats: paystream_kit::config::NatsArgs {
            nats_url: nats_url(),
            events_stream: name.to_uppercase(),
            events_subject_prefix: format!("{name}.events"),
        },
        system_ports: paystream_kit::config::SystemPortsArgs::default(),
        http_addr: "127.0.0.1:0".parse().expect("address"),
        relay: options.relay || options.projector,
        acquirer: false,
        relay_batch_size: 500,
        browser: Default::default(),
        rate: Default::default(),
    };
    let query_config = QueryConfig {
        runtime: paystream_kit::config::RuntimeArgs::new(Profile::Dev),
        database: paystream_kit::config::DatabaseArgs {
            database_url: paystream_kit::config::Secret::new(database.url.clone()),
            database_max_connections: 8,
        },
        nats: paystream_kit::config::NatsArgs {
            nats_url: nats_url(),
            events_stream: command_config.nats.events_stream.clone(),
            events_subject_prefix: "paystream.events".into(),
        },
        http_addr: "127.0.0.1:0".parse().expect("address"),
        acquirer_consumer: format!("acquirer_{}", Uuid::now_v7().simple()),
        rate: Default::default(),
    };
    let command_app = CommandApplication::build(command_config.clone())
        .await
        .expect("build the command API");
    let query_app = QueryApplication::build(query_config.clone())
        .await
        .expect("build the query API");
    let command = format!("http://{}", command_app.local_addr().expect("bound"));
    let query = format!("http://{}", query_app.local_addr().expect("bound"));
    let store = command_app.state().store.clone();
    tokio::spawn(command_app.run_until_stopped());
    tokio::spawn(query_app.run_until_stopped());
    if options.projector {
        let projector = ProjectorApplication::build(ProjectorConfig {
            runtime: paystream_kit::config::RuntimeArgs::new(paystream_kit::config::Profile::Dev),
            database: paystream_kit::config::DatabaseArgs {
                database_url: paystream_kit::config::Secret::new(database.url.clone()),
                database_max_connections: 4,
            },
            nats: paystream_kit::config::NatsArgs {
                nats_url: nats_url(),
                events_stream: command_config.nats.events_stream.clone(),
                events_subject_prefix: command_config.nats.events_subject_prefix.clone(),
            },
            http_addr: "127.0.0.1:0".parse().expect("address"),
            consumer_name: format!("projector_{}", Uuid::now_v7().simple()),
            batch_size: 500,
        })
        .await
        .expect("build the projector");
        tokio::spawn(projector.run_until_stopped());
    }
    Apps {
        command,
        query,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client"),
        store,
        database,
        command_config,
        query_config,
    }
}

fn system_metadata() -> EventMetadata {
    EventMetadata {
        actor: "system:acquirer".into(),
        ..EventMetadata::default()
    }
}

impl Apps {
    /// Any request to `base`; the body comes back as JSON (or as a string
    /// when it is not JSON).
    pub async fn send(
        &self,
        method: Method,
        url: String,
        merchant: Option<&Merchant>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, url);
        if let Some(merchant) = merchant {
            request = request
                .header("X-Api-Key", &merchant.key)
                .header("X-Api-Secret", &merchant.secret);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// `GET` from the query API.
    pub async fn get(&self, path: &str, merchant: Option<&Merchant>) -> (StatusCode, Value) {
        self.send(Method::GET, format!("{}{path}", self.query), merchant, None)
            .await
    }

    /// `GET` that must answer 200.
    pub async fn get_ok(&self, path: &str, merchant: &Merchant) -> Value {
        let (status, body) = self.get(path, Some(merchant)).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// `POST` to the command API.
    pub async fn post(&self, path: &str, merchant: &Merchant, body: Value) -> (StatusCode, Value) {
        self.send(
            Method::POST,
            format!("{}{path}", self.command),
            Some(merchant),
            Some(body),
        )
        .await
    }

    pub async fn order(&self, merchant: &Merchant, amount: i64) -> String {
        let (status, body) = self
            .post(
                "/api/v1/orders",
                merchant,
                json!({"amount": amount, "currency": "INR", "receipt": "r-1", "notes": {"k": "v"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("order id").to_string()
    }

    pub async fn upi_payment(&self, merchant: &Merchant, order_id: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/payments",
                merchant,
                json!({"order_id": order_id, "method": "upi", "vpa": "user@okbank"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("payment id").to_string()
    }

    pub async fn capture(&self, merchant: &Merchant, payment_id: &str, amount: i64) {
        let (status, body) = self
            .post(
                &format!("/api/v1/payments/{payment_id}/capture"),
                merchant,
                json!({"amount": amount}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn refund(&self, merchant: &Merchant, payment_id: &str, amount: i64) -> String {
        let (status, body) = self
            .post(
                &format!("/api/v1/payments/{payment_id}/refunds"),
                merchant,
                json!({"amount": amount, "reason": "asked"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("refund id").to_string()
    }

    /// What the acquirer records for a payment, through the same commands:
    /// on success it claims the order, then records the success.
    pub async fn record_outcome(&self, order_id: &str, payment_id: &str, success: bool) {
        let payment: PaymentId = payment_id.parse().expect("payment id");
        if success {
            runner::execute::<OrderAggregate, _>(&self.store, order_id, &system_metadata(), |_| {
                Ok(MarkOrderPaid {
                    payment_id: payment.clone(),
                    at: Utc::now(),
                }
                .into())
            })
            .await
            .expect("mark the order paid");
        }
        runner::execute::<PaymentAggregate, _>(&self.store, &payment, &system_metadata(), |_| {
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
    }

    /// What the acquirer records for a refund.
    pub async fn process_refund(&self, payment_id: &str, refund_id: &str) {
        let payment: PaymentId = payment_id.parse().expect("payment id");
        let refund: RefundId = refund_id.parse().expect("refund id");
        runner::execute::<PaymentAggregate, _>(&self.store, &payment, &system_metadata(), |_| {
            Ok(ProcessRefund {
                refund_id: refund.clone(),
                at: Utc::now(),
            }
            .into())
        })
        .await
        .expect("process the refund");
    }

    /// Registers another merchant straight through the domain (as staff would).
    pub async fn merchant(&self, suspended: bool) -> Merchant {
        let registered = paystream_kit::testing::register_merchant(&self.store, suspended).await;
        Merchant {
            id: registered.id,
            key: registered.key,
            secret: registered.secret,
        }
    }
}
