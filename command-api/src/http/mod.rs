//! The command API's own HTTP pieces: idempotency and the command response.
//! What both APIs share (errors, extractors, auth, sessions, metrics) is in
//! `paystream_kit::http`.

pub mod idempotency;
pub mod response;
