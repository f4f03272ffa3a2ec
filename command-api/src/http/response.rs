//! A successful command's answer: status, JSON body and the global position
//! of its last event (`X-Event-Position`), so a client can ask the read side
//! to have caught up with it.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use paystream_store::Position;

pub const EVENT_POSITION: &str = "x-event-position";

#[derive(Debug, Clone, PartialEq)]
pub struct CommandResponse {
    pub status: StatusCode,
    pub body: Value,
    pub position: Option<Position>,
    /// Set when the response is a replay of an earlier one (idempotency).
    pub replayed: bool,
}

impl CommandResponse {
    pub fn new(status: StatusCode, body: Value, position: Option<Position>) -> Self {
        Self {
            status,
            body,
            position,
            replayed: false,
        }
    }
}

impl IntoResponse for CommandResponse {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(position) = self.position {
            if let Ok(value) = HeaderValue::from_str(&position.to_string()) {
                response.headers_mut().insert(EVENT_POSITION, value);
            }
        }
        if self.replayed {
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        response
    }
}
