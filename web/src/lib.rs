//! Paystream web: the Yew dashboard, the hosted checkout and `checkout.js`.
//!
//! Not built yet. It will reuse `paystream-domain` for ids, money and the
//! card/VPA validation, compiled to wasm32.
