//! HTTP plumbing shared by every route: errors, the JSON body and path
//! extractors, authentication, idempotency and the response shapes.

pub mod auth;
pub mod error;
pub mod idempotency;
pub mod json;
pub mod metrics;
pub mod path;
pub mod response;
pub mod session;
pub mod views;
