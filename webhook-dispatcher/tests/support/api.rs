//! The real command API (dev profile, in this process, on port 0) over a
//! test environment's database: as many instances as a test wants, each
//! with its own memory, as separate command-api processes would have.

use std::time::Duration;

use paystream_command_api::config::{Config, Profile, Secret};
use paystream_command_api::seed;
use paystream_command_api::startup::Application;
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

use super::{unique_name, TestEnv};

/// One command-api instance, called as the dev profile's seeded merchant.
#[derive(Debug, Clone)]
pub struct CommandApi {
    pub base: String,
    client: reqwest::Client,
}

impl CommandApi {
    /// Starts an instance without relay or acquirer (the environment
    /// relays; tests record outcomes themselves).
    pub async fn start(env: &TestEnv) -> Self {
        let name = unique_name("api");
        let config = Config {
            profile: Profile::Dev,
            database_url: Secret::new(env.database_url.clone()),
            database_max_connections: 4,
            nats_url: super::nats_url(),
            http_addr: "127.0.0.1:0".parse().expect("address"),
            events_stream: name.to_uppercase(),
            events_subject_prefix: format!("{name}.events"),
            relay: false,
            acquirer: false,
            relay_batch_size: 500,
        };
        let app = Application::build(config).await.expect("build command-api");
        let base = format!("http://{}", app.local_addr().expect("bound"));
        tokio::spawn(app.run_until_stopped());
        Self {
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    /// A request as the seeded merchant: `(status, JSON body)`.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("X-Api-Key", seed::DEV_API_KEY)
            .header("X-Api-Secret", seed::DEV_API_SECRET);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("command-api answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// `PUT /api/v1/webhooks/config`; panics unless 200.
    pub async fn configure(&self, body: Value) -> Value {
        let (status, answer) = self
            .call(reqwest::Method::PUT, "/api/v1/webhooks/config", Some(body))
            .await;
        assert_eq!(status, 200, "configure webhook: {answer}");
        answer
    }

    /// An order and a UPI payment through the API; the payment's id.
    pub async fn payment(&self) -> String {
        let (status, order) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/orders",
                Some(json!({"amount": 50000})),
            )
            .await;
        assert_eq!(status, 201, "create order: {order}");
        let (status, payment) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/payments",
                Some(json!({"order_id": order["id"], "method": "upi", "vpa": "shopper@upi"})),
            )
            .await;
        assert_eq!(status, 201, "create payment: {payment}");
        payment["id"].as_str().expect("payment id").to_owned()
    }
}
