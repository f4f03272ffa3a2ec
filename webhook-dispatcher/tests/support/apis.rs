//! The real command API and query API (dev profile, in this process, on
//! port 0) over a test environment's database, called with the credentials a
//! merchant or a staff user holds, so that a test sees only what the API
//! shows.

use std::time::Duration;

use paystream_command_api::config::{Config as CommandConfig, Profile, Secret};
use paystream_command_api::startup::Application as CommandApplication;
use paystream_domain::dev as seed;
use paystream_query_api::config::Config as QueryConfig;
use paystream_query_api::startup::Application as QueryApplication;
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};

use super::{nats_url, unique_name, TestEnv};

/// A merchant's API key and secret.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub key: String,
    pub secret: String,
}

impl Credentials {
    /// The dev profile's seeded merchant (webhook secret `whsec_test_abc123`).
    pub fn seeded() -> Self {
        Self {
            key: seed::DEV_API_KEY.into(),
            secret: seed::DEV_API_SECRET.into(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Auth<'a> {
    None,
    Merchant(&'a Credentials),
    Session(&'a str),
}

#[derive(Debug)]
pub struct Apis {
    /// Base URL of the command API (writes).
    pub command: String,
    /// Base URL of the query API (reads).
    pub query: String,
    client: reqwest::Client,
}

impl Apis {
    /// Both APIs without relay or acquirer (the environment relays).
    pub async fn start(env: &TestEnv) -> Self {
        let name = unique_name("apis");
        let command_config = CommandConfig {
            runtime: paystream_kit::config::RuntimeArgs::new(Profile::Dev),
            database: paystream_kit::config::DatabaseArgs {
                database_url: paystream_kit::config::Secret::new(env.database_url.clone()),
                database_max_connections: 4,
            },
            nats: paystream_kit::config::NatsArgs {
                nats_url: nats_url(),
                events_stream: name.to_uppercase(),
                events_subject_prefix: format!("{name}.events"),
            },
            system_ports: paystream_kit::config::SystemPortsArgs::default(),
            http_addr: "127.0.0.1:0".parse().expect("address"),
            relay: false,
            acquirer: false,
            relay_batch_size: 500,
            browser: Default::default(),
            rate: Default::default(),
        };
        let query_config = QueryConfig {
            runtime: paystream_kit::config::RuntimeArgs::new(Profile::Dev),
            database: paystream_kit::config::DatabaseArgs {
                database_url: paystream_kit::config::Secret::new(env.database_url.clone()),
                database_max_connections: 4,
            },
            nats: paystream_kit::config::NatsArgs {
                nats_url: nats_url(),
                events_stream: command_config.nats.events_stream.clone(),
                events_subject_prefix: "paystream.events".into(),
            },
            http_addr: "127.0.0.1:0".parse().expect("address"),
            acquirer_consumer: unique_name("acquirer"),
            rate: Default::default(),
        };
        let command_app = CommandApplication::build(command_config)
            .await
            .expect("build command-api");
        let query_app = QueryApplication::build(query_config)
            .await
            .expect("build query-api");
        let command = format!("http://{}", command_app.local_addr().expect("bound"));
        let query = format!("http://{}", query_app.local_addr().expect("bound"));
        tokio::spawn(command_app.run_until_stopped());
        tokio::spawn(query_app.run_until_stopped());
        Self {
            command,
            query,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    async fn request(
        &self,
        method: Method,
        url: String,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, url);
        request = match auth {
            Auth::None => request,
            Auth::Merchant(merchant) => request
                .header("X-Api-Key", &merchant.key)
                .header("X-Api-Secret", &merchant.secret),
            Auth::Session(token) => request.header("Authorization", format!("Bearer {token}")),
        };
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A command as `merchant`; panics unless the status is `expected`.
    async fn command(
        &self,
        method: Method,
        path: &str,
        merchant: &Credentials,
        body: Option<Value>,
        expected: u16,
    ) -> Value {
        let (status, answer) = self
            .request(
                method.clone(),
                format!("{}{path}", self.command),
                Auth::Merchant(merchant),
                body,
            )
            .await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
        answer
    }

    /// `GET /api/v1/webhooks/config` from the query API, as the merchant
    /// (or its dashboard) reads it.
    pub async fn webhook_config(&self, merchant: &Credentials) -> Value {
        let (status, answer) = self
            .request(
                Method::GET,
                format!("{}/api/v1/webhooks/config", self.query),
                Auth::Merchant(merchant),
                None,
            )
            .await;
        assert_eq!(status, 200, "GET webhook config: {answer}");
        answer
    }

    /// `PUT /api/v1/webhooks/config` with `url` and every event.
    pub async fn configure_webhook(&self, merchant: &Credentials, url: &str) -> Value {
        self.configure(merchant, json!({"url": url, "events": []}))
            .await
    }

    /// `PUT /api/v1/webhooks/config` with `body`.
    pub async fn configure(&self, merchant: &Credentials, body: Value) -> Value {
        self.command(
            Method::PUT,
            "/api/v1/webhooks/config",
            merchant,
            Some(body),
            200,
        )
        .await
    }

    /// An order and a UPI payment; the payment's id.
    pub async fn payment(&self, merchant: &Credentials) -> String {
        let order = self
            .command(
                Method::POST,
                "/api/v1/orders",
                merchant,
                Some(json!({"amount": 50000})),
                201,
            )
            .await;
        let payment = self
            .command(
                Method::POST,
                "/api/v1/payments",
                merchant,
                Some(json!({"order_id": order["id"], "method": "upi", "vpa": "shopper@upi"})),
                201,
            )
            .await;
        payment["id"].as_str().expect("payment id").to_owned()
    }

    /// `POST /api/v1/webhooks/regenerate-secret`: the answer.
    pub async fn regenerate_webhook_secret(&self, merchant: &Credentials) -> Value {
        self.command(
            Method::POST,
            "/api/v1/webhooks/regenerate-secret",
            merchant,
            None,
            200,
        )
        .await
    }

    /// `POST /api/v1/webhooks/test`: the delivery's id.
    pub async fn send_test_webhook(&self, merchant: &Credentials) -> String {
        let answer = self
            .command(Method::POST, "/api/v1/webhooks/test", merchant, None, 201)
            .await;
        answer["id"].as_str().expect("delivery id").to_owned()
    }

    /// A merchant created by the seeded staff user: its credentials and the
    /// creation answer (secrets shown once).
    pub async fn create_merchant(&self) -> (Credentials, Value) {
        let (status, login) = self
            .request(
                Method::POST,
                format!("{}/api/v1/auth/login", self.command),
                Auth::None,
                Some(json!({
                    "email": seed::DEV_STAFF_EMAIL,
                    "password": seed::DEV_STAFF_PASSWORD,
                })),
            )
            .await;
        assert_eq!(status, 200, "staff login: {login}");
        let token = login["token"].as_str().expect("session token");
        let (status, created) = self
            .request(
                Method::POST,
                format!("{}/api/v1/merchants", self.command),
                Auth::Session(token),
                Some(json!({
                    "name": "Webhook Verifier Ltd",
                    "email": format!("{}@example.com", unique_name("m")),
                })),
            )
            .await;
        assert_eq!(status, 201, "create merchant: {created}");
        let credentials = Credentials {
            key: created["api_key"].as_str().expect("api_key").to_owned(),
            secret: created["api_secret"]
                .as_str()
                .expect("api_secret")
                .to_owned(),
        };
        (credentials, created)
    }
}
