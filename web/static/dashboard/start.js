// Starts the dashboard (a file of its own: the page's
// Content-Security-Policy allows no inline script).
import init, { start_dashboard } from "/dashboard/paystream_web.js";

await init({ module_or_path: "/dashboard/paystream_web_bg.wasm" });
document.getElementById("dashboard").textContent = "";
start_dashboard();
