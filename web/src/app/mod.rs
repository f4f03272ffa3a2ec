//! The pages (wasm32 only).

mod api;
#[cfg(feature = "checkout")]
mod checkout;
#[cfg(feature = "dashboard")]
mod dashboard;

use wasm_bindgen::prelude::wasm_bindgen;

#[cfg(feature = "checkout")]
/// Mounts the hosted checkout on `#checkout`, from the page's query:
/// `order_id`, `key` (the merchant's publishable API key) and `embedded`.
#[wasm_bindgen]
pub fn start_checkout() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let search = window.location().search().unwrap_or_default();
    let query = web_sys::UrlSearchParams::new_with_str(&search).ok();
    let get = |name: &str| query.as_ref().and_then(|q| q.get(name)).unwrap_or_default();
    // The embedding page's origin: `location.ancestorOrigins[0]` where the
    // browser has it (a page's referrer policy cannot hide it), else the
    // referrer's origin.
    let ancestor = js_sys::Reflect::get(&window.location(), &"ancestorOrigins".into())
        .ok()
        .filter(|list| !list.is_undefined())
        .and_then(|list| js_sys::Reflect::get(&list, &0.into()).ok())
        .and_then(|origin| origin.as_string());
    let referrer = window
        .document()
        .map(|document| document.referrer())
        .unwrap_or_default();
    let props = checkout::Props {
        order_id: get("order_id"),
        key: get("key"),
        embedded: get("embedded") == "true",
        parent_origin: ancestor.or_else(|| crate::checkout::origin_of(&referrer)),
    };
    let Some(root) = window
        .document()
        .and_then(|document| document.get_element_by_id("checkout"))
    else {
        return;
    };
    yew::Renderer::<checkout::Checkout>::with_root_and_props(root, props).render();
}

#[cfg(feature = "dashboard")]
/// Mounts the dashboard on `#dashboard`: the login page at `/login`, else
/// the routed dashboard (`dashboard::Route`).
#[wasm_bindgen]
pub fn start_dashboard() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let path = window.location().pathname().unwrap_or_default();
    let Some(root) = window
        .document()
        .and_then(|document| document.get_element_by_id("dashboard"))
    else {
        return;
    };
    if path == "/login" {
        yew::Renderer::<dashboard::Login>::with_root(root).render();
        return;
    }
    yew::Renderer::<dashboard::Dashboard>::with_root(root).render();
}
