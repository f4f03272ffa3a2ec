//! The API as a client sees it through the edge: merchants' key and secret,
//! staff by Bearer token.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};

/// A merchant's API credentials and webhook secret.
#[derive(Debug, Clone)]
pub struct Merchant {
    pub id: String,
    pub key: String,
    pub secret: String,
    pub webhook_secret: String,
}

/// Who a request is made as.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    Merchant(&'a Merchant),
    Bearer(&'a str),
    Anonymous,
}

/// One answer: status, JSON body (`Null` when not JSON), `X-Event-Position`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub position: Option<i64>,
}

impl Answer {
    /// The error code of a non-2xx answer (`HTTP_<status>` when the body
    /// has none).
    pub fn error_code(&self) -> String {
        self.body["error"]["code"]
            .as_str()
            .map_or_else(|| format!("HTTP_{}", self.status), str::to_owned)
    }
}

#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(512)
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
    ) -> Result<Answer, reqwest::Error> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        request = match auth {
            Auth::Merchant(merchant) => request
                .header("X-Api-Key", &merchant.key)
                .header("X-Api-Secret", &merchant.secret),
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Anonymous => request,
        };
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let position = response
            .headers()
            .get("x-event-position")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        let bytes = response.bytes().await?;
        Ok(Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            position,
        })
    }

    pub async fn post(
        &self,
        path: &str,
        auth: Auth<'_>,
        body: &Value,
    ) -> Result<Answer, reqwest::Error> {
        self.send(reqwest::Method::POST, path, auth, Some(body))
            .await
    }

    pub async fn get(&self, path: &str, auth: Auth<'_>) -> Result<Answer, reqwest::Error> {
        self.send(reqwest::Method::GET, path, auth, None).await
    }

    /// A staff session's token (the dev profile's seeded staff login).
    pub async fn staff_token(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let answer = self
            .post(
                "/api/v1/auth/login",
                Auth::Anonymous,
                &json!({"email": email, "password": password}),
            )
            .await?;
        anyhow::ensure!(answer.status == 200, "staff login: {}", answer.body);
        answer.body["token"]
            .as_str()
            .map(str::to_owned)
            .context("login answer without token")
    }

    /// A new merchant, created by staff.
    pub async fn create_merchant(
        &self,
        token: &str,
        name: &str,
        email: &str,
    ) -> anyhow::Result<Merchant> {
        let answer = self
            .post(
                "/api/v1/merchants",
                Auth::Bearer(token),
                &json!({"name": name, "email": email}),
            )
            .await?;
        anyhow::ensure!(answer.status == 201, "create merchant: {}", answer.body);
        let field = |name: &str| {
            answer.body[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("merchant answer without {name}: {}", answer.body))
        };
        Ok(Merchant {
            id: field("id")?,
            key: field("api_key")?,
            secret: field("api_secret")?,
            webhook_secret: field("webhook_secret")?,
        })
    }

    /// Points the merchant's webhooks at `url` (`None` removes the endpoint).
    pub async fn configure_webhook(
        &self,
        merchant: &Merchant,
        url: Option<&str>,
    ) -> anyhow::Result<()> {
        let answer = self
            .send(
                reqwest::Method::PUT,
                "/api/v1/webhooks/config",
                Auth::Merchant(merchant),
                Some(&json!({"url": url})),
            )
            .await?;
        anyhow::ensure!(answer.status == 200, "configure webhook: {}", answer.body);
        Ok(())
    }
}
