//! Paystream web: the hosted checkout and the dashboard (Yew, compiled to
//! wasm), and `checkout.js` (`web/static/checkout.js`, plain JavaScript, no
//! dependencies).
//!
//! * [`checkout`]: the checkout's logic, pure and tested on every target:
//!   requests validated by `domain`'s own rules, outcomes, the messages to
//!   an embedding page;
//! * [`forms`]: what people type, as the API takes it (amounts in minor
//!   units, integer arithmetic only);
//! * `app` (wasm32 only): the pages, which render that logic.
//!
//! `deploy/web-build` builds `web/dist`, which nginx serves.

pub mod checkout;
pub mod forms;

#[cfg(target_arch = "wasm32")]
mod app;

#[cfg(all(target_arch = "wasm32", feature = "checkout"))]
pub use app::start_checkout;
#[cfg(all(target_arch = "wasm32", feature = "dashboard"))]
pub use app::start_dashboard;
