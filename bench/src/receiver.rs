//! The merchants' webhook endpoints: one small server, one path per
//! merchant (`/hooks/{index}`), verifying both signatures of every request
//! with that merchant's secret as the API showed it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use paystream_domain::signature;
use tokio::task::JoinHandle;

/// One webhook as received.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub event: String,
    pub payment_id: String,
    pub refund_id: Option<String>,
    pub at: SystemTime,
}

#[derive(Debug, Default)]
struct Shared {
    /// Webhook secret per merchant index.
    secrets: RwLock<HashMap<usize, String>>,
    arrivals: Mutex<Vec<Arrival>>,
    bad_signatures: AtomicU64,
    unreadable: AtomicU64,
}

#[derive(Debug)]
pub struct Receiver {
    pub base: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/hooks/{index}", post(hook))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { base, shared, task })
    }

    /// The URL of merchant `index`'s endpoint, verified with `secret`.
    pub fn endpoint(&self, index: usize, secret: &str) -> String {
        self.shared
            .secrets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(index, secret.to_owned());
        format!("{}/hooks/{index}", self.base)
    }

    pub fn arrivals(&self) -> Vec<Arrival> {
        self.shared
            .arrivals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn count(&self) -> usize {
        self.shared
            .arrivals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Requests whose signatures did not verify, and unreadable bodies.
    pub fn refused(&self) -> (u64, u64) {
        (
            self.shared.bad_signatures.load(Ordering::Relaxed),
            self.shared.unreadable.load(Ordering::Relaxed),
        )
    }
}

fn verified(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    };
    let hex = signature::verify_hex(secret, body, header("x-webhook-signature"));
    let timestamp = header("webhook-timestamp").parse().unwrap_or_default();
    let standard = signature::verify_standard(
        secret,
        header("webhook-id"),
        timestamp,
        body,
        header("webhook-signature"),
    );
    hex && standard
}

async fn hook(
    State(shared): State<Arc<Shared>>,
    Path(index): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let secret = shared
        .secrets
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&index)
        .cloned();
    let Some(secret) = secret else {
        return StatusCode::NOT_FOUND;
    };
    if !verified(&secret, &headers, &body) {
        shared.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        shared.unreadable.fetch_add(1, Ordering::Relaxed);
        return StatusCode::BAD_REQUEST;
    };
    let event = json["event"].as_str().unwrap_or_default().to_owned();
    let data = &json["data"];
    let (payment_id, refund_id) = match data.get("refund") {
        Some(refund) => (
            refund["payment_id"].as_str().unwrap_or_default().to_owned(),
            refund["id"].as_str().map(str::to_owned),
        ),
        None => (
            data["payment"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            None,
        ),
    };
    shared
        .arrivals
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(Arrival {
            event,
            payment_id,
            refund_id,
            at: SystemTime::now(),
        });
    StatusCode::OK
}
