//! A webhook receiver on 127.0.0.1:0 whose answers the test scripts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub headers: HashMap<String, String>,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// The answer to request number `n` (0-based).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub delay: Duration,
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }
}

type Script = Arc<dyn Fn(usize) -> Answer + Send + Sync>;

#[derive(Clone)]
struct Shared {
    received: Arc<Mutex<Vec<Received>>>,
    script: Script,
    /// Requests open now, and the most ever open at once.
    open: Arc<Mutex<(usize, usize)>>,
}

/// Counts a request as open while it lives (also when the client hangs up).
struct Open(Arc<Mutex<(usize, usize)>>);

impl Open {
    fn enter(open: &Arc<Mutex<(usize, usize)>>) -> Self {
        let mut counts = open.lock().unwrap();
        counts.0 += 1;
        counts.1 = counts.1.max(counts.0);
        Self(open.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.lock().unwrap().0 -= 1;
    }
}

pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    open: Arc<Mutex<(usize, usize)>>,
}

impl Receiver {
    /// Answers 200 to everything.
    pub async fn ok() -> Self {
        Self::start(|_| Answer::status(200)).await
    }

    pub async fn start(script: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(Mutex::new((0, 0)));
        let shared = Shared {
            received: received.clone(),
            script: Arc::new(script),
            open: open.clone(),
        };
        let app = Router::new()
            .route("/hook", post(handle))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            received,
            open,
        }
    }

    /// The most requests that were ever open at the same time.
    pub fn max_open(&self) -> usize {
        self.open.lock().unwrap().1
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

async fn handle(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let _open = Open::enter(&shared.open);
    let n = {
        let mut received = shared.received.lock().unwrap();
        received.push(Received {
            at: Instant::now(),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        value.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body,
        });
        received.len() - 1
    };
    let answer = (shared.script)(n);
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let mut response_headers = HeaderMap::new();
    for (name, value) in answer.headers {
        response_headers.insert(name, value.parse().unwrap());
    }
    (
        StatusCode::from_u16(answer.status).unwrap(),
        response_headers,
        format!("answer {n}"),
    )
}
