// The web front ends in a real headless browser (Debian's Chromium, driven
// by playwright-core, which downloads nothing), against the real services
// through nginx. Run by `deploy/dev test` (smoke), or by hand:
//
//   NODE_PATH=~/.cache/paystream/web-tools/node_modules \
//   PAYSTREAM_WEB_BASE=http://127.0.0.1:8000 node web/tests/browser.cjs
//
// Env: PAYSTREAM_WEB_BASE (the edge), PAYSTREAM_WEB_KEY / _SECRET (the
// seeded dev merchant), CHROMIUM (/usr/bin/chromium),
// PAYSTREAM_WEB_DASHBOARD_BASE / PAYSTREAM_WEB_CHECKOUT_BASE (the edge's
// compatibility ports, checked when set), PAYSTREAM_WEB_SCREENSHOTS (where
// each page's screenshot goes; default .run/screenshots).
"use strict";

const assert = require("node:assert/strict");
const { chromium } = require("playwright-core");

const base = process.env.PAYSTREAM_WEB_BASE || "http://127.0.0.1:8000";
const key = process.env.PAYSTREAM_WEB_KEY || "key_test_abc123";
const secret = process.env.PAYSTREAM_WEB_SECRET || "secret_test_xyz789";
const auth = { "X-Api-Key": key, "X-Api-Secret": secret, "Content-Type": "application/json" };

async function api(method, path, body) {
  const response = await fetch(base + path, { method, headers: auth, body: body && JSON.stringify(body) });
  const json = await response.json();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

const tid = (id) => `[data-test-id="${id}"]`;
const results = {};

const fs = require("node:fs");
const path = require("node:path");
const shotsDir = process.env.PAYSTREAM_WEB_SCREENSHOTS || path.join(".run", "screenshots");
fs.mkdirSync(shotsDir, { recursive: true });
// A screenshot of the whole page, kept as a test artifact.
async function shot(page, name) {
  await page.screenshot({ path: path.join(shotsDir, `${name}.png`), fullPage: true });
}

// Every request a page sends to the API, so a test can say none was sent.
function apiRequests(page) {
  const sent = [];
  page.on("request", (request) => {
    if (new URL(request.url()).pathname.startsWith("/api/")) sent.push(`${request.method()} ${new URL(request.url()).pathname}`);
  });
  return sent;
}

// Presses Tab until the element with this test id has the focus (at most
// `limit` times): the page can be walked with the keyboard.
async function tabTo(page, id, limit = 25) {
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.getAttribute("data-test-id"));
    if (focused === id) return;
  }
  assert.fail(`${id} is not reachable with Tab`);
}

// The page is no wider than its viewport (tables scroll inside their section).
async function assertFits(page, what) {
  const viewport = page.viewportSize().width;
  const width = await page.evaluate(() => document.scrollingElement.scrollWidth);
  assert.ok(width <= viewport, `${what} is ${width}px wide at ${viewport}px`);
}

async function checkoutAlone(browser) {
  const order = await api("POST", "/api/v1/orders", { amount: 50000, currency: "INR" });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const sent = apiRequests(page);
  const started = Date.now();
  await page.goto(`${base}/checkout?order_id=${order.id}&key=${key}`);
  await page.locator(tid("pay-button")).waitFor({ state: "visible", timeout: 10000 });
  results.checkout_interactive_ms = Date.now() - started;
  await shot(page, "checkout-desktop");
  for (const id of ["checkout-container", "order-summary", "order-amount", "order-id", "payment-methods",
                    "method-upi", "method-card", "upi-form", "vpa-input", "pay-button"]) {
    assert.equal(await page.locator(tid(id)).count(), 1, `${id} on the checkout`);
  }
  assert.equal(await page.locator(tid("order-amount")).innerText(), "500.00 INR");
  assert.equal(await page.locator(tid("order-id")).innerText(), order.id);

  // The domain's own VPA rule, in the browser: no request, the field named.
  const before = sent.length;
  await page.locator(tid("vpa-input")).fill("not-a-vpa");
  await page.locator(tid("pay-button")).click();
  await page.locator("#vpa-error").waitFor({ timeout: 5000 });
  assert.equal(await page.locator(tid("processing-state")).count(), 0);

  // Card form: its test ids, and the Luhn check.
  await page.locator(tid("method-card")).click();
  for (const id of ["card-form", "card-number-input", "expiry-input", "cvv-input", "cardholder-name-input"]) {
    assert.equal(await page.locator(tid(id)).count(), 1, `${id} on the card form`);
  }
  await page.locator(tid("card-number-input")).fill("4111 1111 1111 1112");
  await page.locator(tid("expiry-input")).fill("12/30");
  await page.locator(tid("cvv-input")).fill("123");
  await page.locator(tid("pay-button")).click();
  await page.locator("#card_number-error").waitFor({ timeout: 5000 });
  // Neither refusal sent anything: the browser's own log of requests.
  assert.deepEqual(sent.slice(before), [], "client-side validation sent a request");

  // A declined card (the acquirer's magic number): the failure state, the
  // API's description, and retry back to the form.
  await page.locator(tid("card-number-input")).fill("4000 0000 0000 0002");
  await page.locator(tid("pay-button")).click();
  await page.locator(tid("error-state")).waitFor({ timeout: 30000 });
  assert.ok(sent.slice(before).includes("POST /api/v1/payments/public"), `the valid card was sent: ${sent}`);
  assert.match(await page.locator(tid("error-message")).innerText(), /declined/i);
  await shot(page, "checkout-declined");
  await page.locator(tid("retry-button")).click();
  await page.locator(tid("payment-methods")).waitFor({ timeout: 5000 });

  // 375 px wide: nothing overflows sideways.
  await page.setViewportSize({ width: 375, height: 740 });
  await assertFits(page, "the checkout");
  await shot(page, "checkout-mobile");
  await context.close();
}

// The checkout with the keyboard alone: Tab to the card method, choose it,
// fill the form field by field, submit with Enter, and the payment succeeds.
async function checkoutByKeyboard(browser) {
  const order = await api("POST", "/api/v1/orders", { amount: 12345, currency: "INR" });
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/checkout?order_id=${order.id}&key=${key}`);
  await page.locator(tid("pay-button")).waitFor({ state: "visible", timeout: 10000 });
  await tabTo(page, "method-card");
  await page.keyboard.press("Enter");
  await page.locator(tid("card-form")).waitFor({ timeout: 5000 });
  await tabTo(page, "card-number-input");
  await page.keyboard.type("4111 1111 1111 1111");
  await tabTo(page, "expiry-input", 3);
  await page.keyboard.type("12/30");
  await tabTo(page, "cvv-input", 3);
  await page.keyboard.type("123");
  await tabTo(page, "cardholder-name-input", 3);
  await page.keyboard.type("Key Board");
  await page.keyboard.press("Enter");
  await page.locator(tid("success-state")).waitFor({ timeout: 30000 });
  await shot(page, "checkout-success");
  await context.close();
}

// Clients of the original design find the dashboard on :3000 (at /) and the
// checkout on :3001.
async function compatibilityPorts(browser) {
  const dashboardBase = process.env.PAYSTREAM_WEB_DASHBOARD_BASE;
  const checkoutBase = process.env.PAYSTREAM_WEB_CHECKOUT_BASE;
  if (!dashboardBase || !checkoutBase) {
    console.log("browser: compatibility ports not set, skipped");
    return;
  }
  const context = await browser.newContext();
  const page = await context.newPage();
  for (const root of [`${dashboardBase}/`, `${dashboardBase}/dashboard`]) {
    await page.goto(root);
    await page.waitForURL(/\/login$/, { timeout: 10000 });
    await page.locator(tid("login-form")).waitFor({ timeout: 10000 });
  }
  const sdk = await fetch(`${checkoutBase}/checkout.js`);
  assert.equal(sdk.status, 200);
  assert.match(await sdk.text(), /PaymentGateway/);
  const health = await fetch(`${checkoutBase}/health`);
  assert.equal(health.status, 200);
  assert.ok((await health.json()).status, "health has a status");
  assert.equal((await fetch(`${checkoutBase}/checkout.html`)).status, 200);
  const order = await api("POST", "/api/v1/orders", { amount: 10000, currency: "INR" });
  await page.goto(`${checkoutBase}/checkout?order_id=${order.id}&key=${key}`);
  assert.equal(await page.locator(tid("order-id")).innerText({ timeout: 10000 }), order.id);
  await context.close();
}

// The original design's checkout link carries no key: the order names its
// merchant. Card and UPI through to success, and a declined card through to
// the failure state and a retry, on the edge and on the checkout's own port.
async function checkoutWithoutKey(browser) {
  const bases = [base, process.env.PAYSTREAM_WEB_CHECKOUT_BASE].filter(Boolean);
  for (const at of bases) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const open = async () => {
      const order = await api("POST", "/api/v1/orders", { amount: 2500, currency: "INR" });
      await page.goto(`${at}/checkout?order_id=${order.id}`);
      await page.locator(tid("pay-button")).waitFor({ state: "visible", timeout: 10000 });
      return order;
    };
    const card = async (number) => {
      await page.locator(tid("method-card")).click();
      await page.locator(tid("card-number-input")).fill(number);
      await page.locator(tid("expiry-input")).fill("12/30");
      await page.locator(tid("cvv-input")).fill("123");
      await page.locator(tid("cardholder-name-input")).fill("No Key");
      await page.locator(tid("pay-button")).click();
    };
    await open();
    await card("4111 1111 1111 1111");
    await page.locator(tid("success-state")).waitFor({ timeout: 30000 });
    await open();
    await page.locator(tid("vpa-input")).fill("shopper@okbank");
    await page.locator(tid("pay-button")).click();
    await page.locator(tid("success-state")).waitFor({ timeout: 30000 });
    await open();
    await card("4000 0000 0000 0002");
    await page.locator(tid("error-state")).waitFor({ timeout: 30000 });
    assert.match(await page.locator(tid("error-message")).innerText(), /declined/i);
    await page.locator(tid("retry-button")).click();
    await card("4111 1111 1111 1111");
    await page.locator(tid("success-state")).waitFor({ timeout: 30000 });
    await context.close();
  }
  results.checkout_without_key = bases.length;
}

// Pages of someone else's on this machine: another port of the dashboard's
// host, and another host of the same site. Chromium maps *.paystream.test to
// loopback (see the launch), and dash.paystream.test and evil.paystream.test
// are one site, so SameSite cookies go along to the dashboard's host.
function hostileServer() {
  const http = require("node:http");
  const server = http.createServer((request, response) => {
    const url = new URL(request.url, "http://x");
    const target = url.searchParams.get("target") || "";
    const body = url.searchParams.get("body") || "";
    let page = "";
    if (url.pathname === "/form") {
      page = `<form id="f" method="POST" action="${target}" enctype="text/plain">` +
        `<input name='${body.replace(/'/g, "&#39;")}' value=''></form>` +
        `<script>document.getElementById("f").submit()</script>`;
    } else if (url.pathname === "/fetch") {
      page = `<script>fetch(${JSON.stringify(target)}, {method: "POST", mode: "no-cors", credentials: "include",` +
        ` headers: {"Content-Type": "text/plain"}, body: ${JSON.stringify(body)}})` +
        `.then(() => document.title = "sent", () => document.title = "failed")</script>`;
    } else if (url.pathname === "/frame") {
      page = `<iframe id="f" src="${target}" width="400" height="600"></iframe>` +
        `<script>window.got = []; addEventListener("message", (e) => window.got.push(e.data))</script>`;
    }
    response.writeHead(200, { "Content-Type": "text/html" });
    response.end(`<!doctype html><html><body>${page}</body></html>`);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// Cross-site request forgery from the other pages: form POSTs and fetches
// with credentials against suspend, rotate-keys, create-merchant, capture
// and refund, with a staff and a merchant user's session cookie. Each is
// refused (403 or 415), and nothing changes.
async function crossOriginCommands(browser, server) {
  const port = server.address().port;
  const edge = new URL(base);
  const dashboard = `http://dash.paystream.test:${edge.port}`;
  // Same site: the browser sends the session cookie, and our Origin check
  // refuses (403), or the content type does (415). Another site: the
  // browser keeps the SameSite=Strict cookie back, so it is a 401.
  const others = [
    [`http://dash.paystream.test:${port}`, /^(403|415) /],
    [`http://evil.paystream.test:${port}`, /^(403|415) /],
    [`http://127.0.0.1:${port}`, /^(401|403|415) /],
  ];
  const context = await browser.newContext();
  const page = await context.newPage();
  const statuses = [];
  page.on("response", (response) => {
    if (new URL(response.url()).pathname.startsWith("/api/") && response.request().method() === "POST") {
      statuses.push(`${response.status()} ${new URL(response.url()).pathname}`);
    }
  });
  const login = async (email, password) => {
    await page.goto(`${dashboard}/login`);
    await page.locator(tid("email-input")).fill(email);
    await page.locator(tid("password-input")).fill(password);
    await page.locator(tid("login-button")).click();
    await page.locator(tid("dashboard")).waitFor({ timeout: 10000 }).catch(async (error) => {
      await shot(page, "cross-origin-login-failed");
      throw error;
    });
  };
  const attack = async (targets) => {
    for (const [origin, refused] of others) {
      for (const [path, body] of targets) {
        for (const kind of ["form", "fetch"]) {
          const before = statuses.length;
          await page.goto(`${origin}/${kind}?target=${encodeURIComponent(dashboard + path)}&body=${encodeURIComponent(body)}`);
          for (let i = 0; i < 50 && statuses.length === before; i++) await page.waitForTimeout(100);
          const seen = statuses.slice(before);
          assert.equal(seen.length, 1, `${kind} from ${origin} to ${path}: ${seen}`);
          assert.match(seen[0], refused, `${kind} from ${origin} to ${path}: ${seen}`);
        }
      }
    }
  };
  const merchantId = "550e8400-e29b-41d4-a716-446655440000";
  await login("admin@example.com", "admin123");
  await attack([
    [`/api/v1/merchants/${merchantId}/suspend`, '{"reason":"csrf"}'],
    [`/api/v1/merchants/${merchantId}/rotate-keys`, "{}"],
    ["/api/v1/merchants", '{"name":"Evil","email":"evil@example.com","password":"evilevil1"}'],
  ]);
  // A payment to capture and refund, as the merchant user.
  const order = await api("POST", "/api/v1/orders", { amount: 5000, currency: "INR" });
  const payment = await api("POST", "/api/v1/payments", { order_id: order.id, method: "upi", vpa: "success@upi" });
  for (let i = 0; i < 100; i++) {
    if ((await api("GET", `/api/v1/payments/${payment.id}`)).status === "success") break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await login("test@example.com", "test123");
  await attack([
    [`/api/v1/payments/${payment.id}/capture`, '{"amount":5000}'],
    [`/api/v1/payments/${payment.id}/refunds`, '{"amount":100}'],
    ["/api/v1/merchant/rotate-keys", "{}"],
  ]);
  // Nothing happened: the keys still work (not rotated, not suspended), no
  // merchant was created, the payment is neither captured nor refunded.
  const after = await api("GET", `/api/v1/payments/${payment.id}`);
  assert.equal(after.captured, false, JSON.stringify(after));
  assert.equal(after.amount_refunded || 0, 0, JSON.stringify(after));
  const refunds = await api("GET", `/api/v1/payments/${payment.id}/refunds`);
  assert.equal((refunds.data || refunds).length, 0, JSON.stringify(refunds));
  await context.close();
  const staff = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: "admin@example.com", password: "admin123" }),
  }).then((response) => response.json());
  const merchants = await fetch(`${base}/api/v1/merchants?limit=100`, { headers: { Authorization: `Bearer ${staff.token}` } })
    .then((response) => response.json());
  assert.ok(!merchants.data.some((merchant) => merchant.email === "evil@example.com"), "a merchant was created");
  results.cross_origin_refused = statuses.length;
}

// Framing: another origin can frame neither the checkout nor the login
// page, and receives no message. (The example shop, an allowed origin,
// frames the checkout and gets its result: sdkOnExamplePage.)
async function framing(browser, server) {
  const port = server.address().port;
  const order = await api("POST", "/api/v1/orders", { amount: 3000, currency: "INR" });
  const context = await browser.newContext();
  const page = await context.newPage();
  for (const target of [`${base}/checkout?order_id=${order.id}&embedded=true`, `${base}/login`]) {
    await page.goto(`http://127.0.0.1:${port}/frame?target=${encodeURIComponent(target)}`);
    await page.waitForTimeout(1500);
    const frame = page.frames().find((candidate) => candidate !== page.mainFrame());
    const loaded = frame ? await frame.locator("[data-test-id]").count().catch(() => 0) : 0;
    assert.equal(loaded, 0, `${target} rendered inside another origin's page`);
    assert.deepEqual(await page.evaluate(() => window.got), [], "a message reached another origin");
  }
  await context.close();
}

async function sdkOnExamplePage(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/example`);
  await page.locator("#pay").click();
  await page.locator(`#payment-gateway-modal${tid("payment-modal")}`).waitFor({ timeout: 5000 });
  assert.equal(await page.locator(tid("close-modal-button")).count(), 1);
  const src = await page.locator(`iframe${tid("payment-iframe")}`).getAttribute("src");
  assert.match(src, /\/checkout\?order_id=order_[A-Za-z0-9]{16}&embedded=true/);
  const frame = page.frameLocator(tid("payment-iframe"));
  await frame.locator(tid("method-card")).click();
  await frame.locator(tid("card-number-input")).fill("4111 1111 1111 1111");
  await frame.locator(tid("expiry-input")).fill("12/30");
  await frame.locator(tid("cvv-input")).fill("123");
  await frame.locator(tid("cardholder-name-input")).fill("A Shopper");
  const paid = Date.now();
  await frame.locator(tid("pay-button")).click();
  // onSuccess ran on the merchant's page with the payment id, and closed the modal.
  await page.locator("#result[data-payment-id]").waitFor({ timeout: 30000 });
  results.pay_to_on_success_ms = Date.now() - paid;
  const paymentId = await page.locator("#result").getAttribute("data-payment-id");
  assert.match(paymentId, /^pay_[A-Za-z0-9]{16}$/);
  assert.equal(await page.locator(tid("payment-modal")).count(), 0);
  const payment = await api("GET", `/api/v1/payments/${paymentId}`);
  assert.equal(payment.status, "success");
  assert.equal(payment.method, "card");
  assert.equal(payment.card_last4, "1111");
  results.payment_id = paymentId;

  // The close button and onClose.
  await page.locator("#pay").click();
  await page.locator(tid("payment-modal")).waitFor({ timeout: 5000 });
  await page.locator(tid("close-modal-button")).click();
  await page.locator(tid("payment-modal")).waitFor({ state: "detached", timeout: 5000 });
  await context.close();
  return paymentId;
}

async function setRange(locator, value) {
  await locator.evaluate((input, to) => {
    input.value = String(to);
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }, value);
}

async function dashboard(browser, paymentId) {
  const context = await browser.newContext();
  const page = await context.newPage();
  // Without a session the dashboard sends you to the login page.
  await page.goto(`${base}/dashboard`);
  await page.waitForURL(/\/login$/, { timeout: 10000 });
  await page.locator(tid("email-input")).fill("test@example.com");
  await page.locator(tid("password-input")).fill("wrong");
  await page.locator(tid("login-button")).click();
  await page.locator(`${tid("login-form")} [role=alert]`).waitFor({ timeout: 10000 });
  // The right password, with the keyboard alone.
  await page.goto(`${base}/login`);
  await page.locator(tid("login-form")).waitFor({ timeout: 10000 });
  await shot(page, "login");
  await tabTo(page, "email-input");
  await page.keyboard.type("test@example.com");
  await tabTo(page, "password-input", 2);
  await page.keyboard.type("test123");
  await page.keyboard.press("Enter");
  await page.locator(tid("transactions-table")).waitFor({ timeout: 10000 });
  // The session is the HttpOnly cookie: nothing in localStorage, nothing
  // the page's script can read.
  assert.equal(await page.evaluate(() => window.localStorage.length), 0);
  assert.equal(await page.evaluate(() => document.cookie), "");

  // The overview's stats cards, from GET /api/v1/stats.
  await page.locator(tid("stats-container")).waitFor({ timeout: 10000 });
  assert.ok(Number(await page.locator(tid("total-transactions")).innerText()) >= 1);
  assert.match(await page.locator(tid("total-amount")).innerText(), /^\d+\.\d{2} INR$/);
  assert.match(await page.locator(tid("success-rate")).innerText(), /^\d+\.\d{2}%$/);
  assert.equal(await page.locator(tid("api-key")).innerText(), key);
  assert.equal(await page.locator(`${tid("volume-chart")} rect`).count() >= 1, true);

  // The conversion funnel over all time shows what the API counts.
  await page.locator(tid("funnel-period")).selectOption("0");
  const funnel = await api("GET", "/api/v1/stats/funnel");
  assert.ok(funnel.stages.find((stage) => stage.stage === "paid").count >= 1, "the SDK's payment is paid");
  const counts = funnel.stages.map((stage) => String(stage.count));
  await page.waitForFunction((expected) => {
    const shown = [...document.querySelectorAll('[data-test-id="funnel-stage"] [data-test-id="funnel-count"]')];
    return JSON.stringify(shown.map((cell) => cell.textContent)) === JSON.stringify(expected);
  }, counts, { timeout: 10000 });
  const stages = await page.locator(tid("funnel-stage")).evaluateAll((items) => items.map((item) => item.dataset.stage));
  assert.deepEqual(stages, ["orders_created", "payment_attempted", "paid", "captured", "refunded"]);
  assert.match(await page.locator(tid("conversion-rate")).innerText(), /\d+\.\d{2}%$/);
  await shot(page, "dashboard-overview");

  // The checkout origins: the seeded ones are listed; a bad line is refused
  // in the page by the domain's rule (no request); a new list is saved and
  // is what the public order view names; then the seeded list comes back.
  const card = page.locator(tid("checkout-origins"));
  const seeded = (await api("GET", "/api/v1/merchant")).checkout_origins;
  assert.ok(seeded.length >= 1, "the dev merchant has checkout origins");
  assert.deepEqual(await card.locator(tid("checkout-origin")).allInnerTexts(), seeded);
  const input = card.locator(tid("checkout-origins-input"));
  const sent = apiRequests(page);
  await input.fill("https://shop.example/pay");
  await card.locator(tid("save-checkout-origins-button")).click();
  await card.locator("[role=alert]").waitFor({ timeout: 5000 });
  assert.deepEqual(sent, [], "a bad origin was sent");
  const shop = `shop-${Date.now()}.example`;
  await input.fill([...seeded, `https://${shop.toUpperCase()}:443/`].join("\n"));
  await card.locator(tid("save-checkout-origins-button")).click();
  await card.locator("[role=status]").waitFor({ timeout: 10000 }).catch(async (error) => {
    await shot(page, "checkout-origins-failed");
    throw error;
  });
  assert.deepEqual(await card.locator(tid("checkout-origin")).allInnerTexts(), [...seeded, `https://${shop}`]);
  const probe = await api("POST", "/api/v1/orders", { amount: 1000, currency: "INR" });
  const view = await fetch(`${base}/api/v1/orders/${probe.id}/public`).then((response) => response.json());
  assert.deepEqual(view.checkout_origins, [...seeded, `https://${shop}`]);
  await input.fill(seeded.join("\n"));
  await card.locator(tid("save-checkout-origins-button")).click();
  await page.waitForFunction((count) => document.querySelectorAll('[data-test-id="checkout-origin"]').length === count,
    seeded.length, { timeout: 10000 });

  const row = page.locator(tid("transaction-row"), { has: page.locator(`${tid("payment-id")}:has-text("${paymentId}")`) });
  await row.waitFor({ timeout: 10000 });
  assert.equal(await row.locator(tid("amount")).innerText(), "500.00 INR");
  assert.equal(await row.locator(tid("method")).innerText(), "card");
  assert.equal(await row.locator(tid("status")).innerText(), "success");

  // The payment's timeline, and time travel from created to paid. The
  // dashboard routes in the browser: the click loads no new document.
  await page.evaluate(() => { window.sameDocument = true; });
  await row.locator(`${tid("payment-id")} a`).click();
  await page.locator(tid("event-timeline")).waitFor({ timeout: 10000 });
  assert.equal(await page.evaluate(() => window.sameDocument), true, "the link reloaded the page");
  assert.equal(new URL(page.url()).pathname, `/dashboard/payments/${paymentId}`);
  const types = await page.locator(`${tid("timeline-event")} ${tid("event-type")}`).allInnerTexts();
  assert.deepEqual(types.slice(0, 2), ["PaymentCreated", "PaymentSucceeded"]);
  assert.match(await page.locator(`${tid("timeline-event")} ${tid("event-hash")}`).first().getAttribute("title"), /^[0-9a-f]{64}$/);
  const slider = page.locator(tid("time-travel-slider"));
  const status = page.locator(tid("as-of-status"));
  await setRange(slider, 0);
  await page.waitForFunction(() => document.querySelector('[data-test-id="as-of-status"]')?.textContent === "pending", null, { timeout: 10000 });
  await setRange(slider, 1);
  await page.waitForFunction(() => document.querySelector('[data-test-id="as-of-status"]')?.textContent === "success", null, { timeout: 10000 });
  assert.equal(await status.innerText(), "success");
  await shot(page, "dashboard-payment-timeline");

  // Capture, then refunds: the API's own words for what it refuses.
  await page.locator(tid("capture-button")).click();
  await page.locator(".notice:has-text('Captured')").waitFor({ timeout: 10000 });
  await page.locator(tid("refund-amount-input")).fill("1.234");
  await page.locator(tid("refund-button")).click();
  await page.locator(`${tid("action-error")}:has-text("decimals")`).waitFor({ timeout: 5000 });
  await page.locator(tid("refund-amount-input")).fill("600");
  await page.locator(tid("refund-button")).click();
  await page.locator(`${tid("action-error")}:has-text("Refund amount exceeds available amount")`).waitFor({ timeout: 10000 });
  await page.locator(tid("refund-amount-input")).fill("1.00");
  await page.locator(tid("refund-reason-input")).fill("browser test");
  await page.locator(tid("refund-button")).click();
  await page.locator(".notice:has-text('Refund rfnd_')").waitFor({ timeout: 10000 });
  await page.waitForFunction(() => [...document.querySelectorAll('[data-test-id="event-type"]')]
    .some((cell) => cell.textContent === "PaymentCaptured"), null, { timeout: 10000 });

  // Back goes to the overview, still in the same document.
  await page.goBack();
  await page.locator(tid("stats-container")).waitFor({ timeout: 10000 });
  assert.equal(await page.evaluate(() => window.sameDocument), true, "back reloaded the page");

  // Filters: only failed payments (the declined card above), then any.
  await page.goto(`${base}/dashboard/transactions`);
  await page.locator(tid("transactions-table")).waitFor({ timeout: 10000 });
  await page.locator(tid("status-filter")).selectOption("failed");
  await page.waitForFunction(() => {
    const cells = [...document.querySelectorAll('[data-test-id="transaction-row"] [data-test-id="status"]')];
    return cells.length > 0 && cells.every((cell) => cell.textContent === "failed");
  }, null, { timeout: 10000 });
  await shot(page, "dashboard-transactions");

  // The refunds list holds the refund above.
  await page.goto(`${base}/dashboard/refunds`);
  await page.locator(tid("refund-row")).first().waitFor({ timeout: 10000 });
  await shot(page, "dashboard-refunds");

  // Balance and ledger: the capture above posted entries.
  await page.goto(`${base}/dashboard/balance`);
  await page.locator(tid("ledger-table")).waitFor({ timeout: 10000 });
  assert.ok(await page.locator(tid("ledger-entry")).count() >= 2, "capture and fee entries");
  assert.match(await page.locator(tid("balance-amount")).first().innerText(), /^-?\d+\.\d{2} INR$/);
  await shot(page, "dashboard-balance");

  // Webhooks: save an endpoint, send a test event, see it in the log, open
  // its attempts.
  await page.goto(`${base}/dashboard/webhooks`);
  await page.locator(tid("webhook-config-form")).waitFor({ timeout: 10000 });
  assert.match(await page.locator(tid("webhook-secret")).innerText(), /^whsec_/);
  await page.locator(tid("webhook-url-input")).fill("http://127.0.0.1:9/paystream-hook");
  await page.locator(tid("save-webhook-button")).click();
  await page.locator(".notice:has-text('saved')").waitFor({ timeout: 10000 });
  await page.locator(tid("test-webhook-button")).click();
  const test = page.locator(tid("webhook-log-item"), { has: page.locator(`${tid("webhook-event")}:has-text("webhook.test")`) });
  await test.first().waitFor({ timeout: 15000 });
  for (const id of ["webhook-status", "webhook-attempts", "webhook-last-attempt", "webhook-response-code", "retry-webhook-button"]) {
    assert.equal(await test.first().locator(tid(id)).count(), 1, `${id} in a log item`);
  }
  await test.first().locator(`${tid("webhook-event")} button`).click();
  await page.locator(tid("webhook-attempts-detail")).waitFor({ timeout: 10000 });
  await shot(page, "dashboard-webhooks");

  // The API docs page and its snippets.
  await page.goto(`${base}/dashboard/docs`);
  await page.locator(tid("api-docs")).waitFor({ timeout: 10000 });
  for (const id of ["section-create-order", "code-snippet-create-order", "section-sdk-integration",
                    "code-snippet-sdk", "section-webhook-verification", "code-snippet-webhook"]) {
    assert.equal(await page.locator(tid(id)).count(), 1, `${id} on the docs page`);
  }
  assert.match(await page.locator(tid("code-snippet-sdk")).innerText(), /new PaymentGateway/);
  await shot(page, "dashboard-docs");

  // Every merchant page at 375 px, once each has loaded.
  await page.setViewportSize({ width: 375, height: 740 });
  for (const [name, ready] of [["", "stats-container"], ["transactions", "transactions-table"],
                               [`payments/${paymentId}`, "event-timeline"], ["refunds", "refunds-table"],
                               ["webhooks", "webhook-logs-table"], ["balance", "ledger-table"], ["docs", "api-docs"]]) {
    await page.goto(`${base}/dashboard/${name}`);
    await page.locator(tid(ready)).waitFor({ timeout: 10000 });
    await assertFits(page, `/dashboard/${name}`);
    await shot(page, `mobile-dashboard-${name.split("/")[0] || "overview"}`);
  }
  await context.close();
}

async function loginAs(browser, email, password) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/login`);
  await page.locator(tid("email-input")).fill(email);
  await page.locator(tid("password-input")).fill(password);
  await page.locator(tid("login-button")).click();
  await page.locator(tid("dashboard")).waitFor({ timeout: 10000 });
  return { context, page };
}

async function staffAndAuditor(browser, paymentId) {
  // Staff: create a merchant, whose key and secret are shown once; suspend it.
  const staff = await loginAs(browser, "admin@example.com", "admin123");
  await staff.page.locator(tid("merchants-table")).waitFor({ timeout: 10000 });
  const email = `shop-${Date.now()}@example.com`;
  await staff.page.locator(tid("merchant-name-input")).fill("Browser Shop");
  await staff.page.locator(tid("merchant-email-input")).fill(email);
  await staff.page.locator(tid("merchant-password-input")).fill("shop-password-1");
  await staff.page.locator(tid("create-merchant-button")).click();
  await staff.page.locator(tid("created-merchant")).waitFor({ timeout: 10000 });
  assert.match(await staff.page.locator(tid("created-api-key")).innerText(), /^key_/);
  assert.match(await staff.page.locator(tid("created-api-secret")).innerText(), /^secret_/);
  const row = staff.page.locator(tid("merchant-row"), { has: staff.page.locator(`${tid("merchant-email")}:has-text("${email}")`) });
  await row.waitFor({ timeout: 10000 });
  const firstKey = await staff.page.locator(tid("created-api-key")).innerText();
  await row.locator(tid("rotate-keys-button")).click();
  await staff.page.waitForFunction((old) => {
    const shown = document.querySelector('[data-test-id="created-api-key"]');
    return shown && shown.textContent.startsWith("key_") && shown.textContent !== old;
  }, firstKey, { timeout: 10000 });
  let shop = {
    "X-Api-Key": await staff.page.locator(tid("created-api-key")).innerText(),
    "X-Api-Secret": await staff.page.locator(tid("created-api-secret")).innerText(),
  };
  const shopOrders = (headers = shop) => fetch(`${base}/api/v1/orders`, { headers });
  assert.equal((await shopOrders()).status, 200, "the new pair works");
  await shot(staff.page, "dashboard-merchants");
  // A status within 10 s (credential lookups are cached for 2 s).
  const becomes = async (headers, status) => {
    const deadline = Date.now() + 10000;
    let answer;
    while ((answer = await shopOrders(headers)).status !== status && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return answer;
  };

  // The new merchant's own user: a new secret on demand, shown once.
  const owner = await loginAs(browser, email, "shop-password-1");
  await owner.page.locator(tid("api-credentials")).waitFor({ timeout: 10000 });
  assert.equal(await owner.page.locator(tid("api-key")).innerText(), shop["X-Api-Key"]);
  await owner.page.locator(tid("roll-keys-button")).click();
  await owner.page.locator(tid("confirm-roll-keys-button")).click();
  await owner.page.waitForFunction(() => document.querySelector('code[data-test-id="api-secret"]')?.textContent.startsWith("secret_"),
    null, { timeout: 10000 });
  const rolled = {
    "X-Api-Key": await owner.page.locator(tid("api-key")).innerText(),
    "X-Api-Secret": await owner.page.locator(tid("api-secret")).innerText(),
  };
  assert.notEqual(rolled["X-Api-Key"], shop["X-Api-Key"]);
  await shot(owner.page, "dashboard-new-secret");
  assert.equal((await becomes(shop, 401)).status, 401, "the previous pair after a new one");
  assert.equal((await shopOrders(rolled)).status, 200, "the rolled pair works");
  shop = rolled;
  await owner.context.close();
  await row.locator(tid("suspend-button")).click();
  await row.locator(`${tid("merchant-status")}:has-text("suspended")`).waitFor({ timeout: 10000 });
  // Its API calls now get 401.
  const refused = await becomes(shop, 401);
  assert.equal(refused.status, 401, "a suspended merchant's API call");
  assert.equal((await refused.json()).error.code, "AUTHENTICATION_ERROR");
  await staff.page.setViewportSize({ width: 375, height: 740 });
  await assertFits(staff.page, "the merchants page");
  // Staff see no merchant pages.
  assert.equal(await staff.page.locator('a[href="/dashboard/transactions"]').count(), 0);
  await staff.context.close();

  // Auditor: verify the event store.
  const auditor = await loginAs(browser, "auditor@example.com", "auditor123");
  await auditor.page.locator(tid("verify-button")).click();
  await auditor.page.locator(tid("verify-report")).waitFor({ timeout: 30000 });
  const verdict = await auditor.page.locator(tid("verify-result")).innerText();
  assert.ok(verdict === "intact" || verdict === "incomplete", `verify says ${verdict}`);
  assert.equal(await auditor.page.locator(tid("create-merchant-form")).count(), 0);
  // Any object's history, by id: the shopper's payment.
  await auditor.page.locator(tid("object-id-input")).fill(paymentId);
  await auditor.page.locator(tid("history-button")).click();
  await auditor.page.locator(`${tid("object-history")} ${tid("event-type")}:has-text("PaymentCreated")`).waitFor({ timeout: 10000 });
  await shot(auditor.page, "dashboard-audit");

  // The audit page at 375 px.
  await auditor.page.setViewportSize({ width: 375, height: 740 });
  await assertFits(auditor.page, "the audit page");
  await auditor.context.close();
}

// Every page runs under its Content-Security-Policy: a violation shows in
// the console ("Refused to …", "Content Security Policy"). The hostile
// tests' own refusals are expected and not counted.
const cspViolations = [];
function watchCsp(context) {
  context.on("console", (message) => {
    if (/Content[ -]Security[ -]Policy|Refused to (load|execute|apply|evaluate|compile|connect)/i.test(message.text())) {
      cspViolations.push(`${message.location().url}: ${message.text()}`);
    }
  });
  return context;
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      ...(process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : []),
      "--host-resolver-rules=MAP *.paystream.test 127.0.0.1",
    ],
  });
  const newContext = browser.newContext.bind(browser);
  const watched = { newContext: async (options) => watchCsp(await newContext(options)) };
  const server = await hostileServer();
  // PAYSTREAM_WEB_ONLY=name,name runs only those sections (while working
  // on one); the default is all of them, in this order.
  const only = (process.env.PAYSTREAM_WEB_ONLY || "").split(",").filter(Boolean);
  const run = (name) => only.length === 0 || only.includes(name);
  try {
    if (run("checkoutAlone")) await checkoutAlone(watched);
    if (run("checkoutWithoutKey")) await checkoutWithoutKey(watched);
    if (run("checkoutByKeyboard")) await checkoutByKeyboard(watched);
    if (run("compatibilityPorts")) await compatibilityPorts(watched);
    if (run("dashboard")) {
      const paymentId = await sdkOnExamplePage(watched);
      await dashboard(watched, paymentId);
      await staffAndAuditor(watched, paymentId);
    }
    if (run("crossOriginCommands")) await crossOriginCommands(browser, server);
    if (run("framing")) await framing(browser, server);
    assert.deepEqual(cspViolations, [], "CSP violations in the console");
  } finally {
    server.close();
    await browser.close();
  }
  console.log(`browser: ok ${JSON.stringify(results)}`);
})().catch((error) => {
  console.error(`browser: FAILED\n${error.stack || error}`);
  process.exit(1);
});
