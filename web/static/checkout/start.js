// Starts the hosted checkout (a file of its own: the page's
// Content-Security-Policy allows no inline script).
import init, { start_checkout } from "/checkout/paystream_web.js";

await init({ module_or_path: "/checkout/paystream_web_bg.wasm" });
document.getElementById("checkout").textContent = "";
start_checkout();
