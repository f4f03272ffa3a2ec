//! Paystream webhook dispatcher: consumes finalized payment and refund events,
//! signs and sends webhooks on a durable retry schedule, and records every
//! attempt as an event.
//!
//! Not built yet: it arrives with the webhook issue. The signing functions
//! already live in `paystream_domain::signature`.
