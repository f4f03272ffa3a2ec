// The web front ends in a real headless browser (Debian's Chromium, driven
// by playwright-core, which downloads nothing), against the real services
// through nginx. Run by `deploy/dev test` (smoke), or by hand:
//
//   NODE_PATH=~/.cache/paystream/web-tools/node_modules \
//   PAYSTREAM_WEB_BASE=http://127.0.0.1:8000 node web/tests/browser.cjs
//
// Env: PAYSTREAM_WEB_BASE (the edge), PAYSTREAM_WEB_KEY / _SECRET (the
// seeded dev merchant), CHROMIUM (/usr/bin/chromium).
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

async function checkoutAlone(browser) {
  const order = await api("POST", "/api/v1/orders", { amount: 50000, currency: "INR" });
  const context = await browser.newContext();
  const page = await context.newPage();
  const started = Date.now();
  await page.goto(`${base}/checkout?order_id=${order.id}&key=${key}`);
  await page.locator(tid("pay-button")).waitFor({ state: "visible", timeout: 10000 });
  results.checkout_interactive_ms = Date.now() - started;
  for (const id of ["checkout-container", "order-summary", "order-amount", "order-id", "payment-methods",
                    "method-upi", "method-card", "upi-form", "vpa-input", "pay-button"]) {
    assert.equal(await page.locator(tid(id)).count(), 1, `${id} on the checkout`);
  }
  assert.equal(await page.locator(tid("order-amount")).innerText(), "500.00 INR");
  assert.equal(await page.locator(tid("order-id")).innerText(), order.id);

  // The domain's own VPA rule, in the browser: no request, the field named.
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

  // A declined card (the acquirer's magic number): the failure state, the
  // API's description, and retry back to the form.
  await page.locator(tid("card-number-input")).fill("4000 0000 0000 0002");
  await page.locator(tid("pay-button")).click();
  await page.locator(tid("error-state")).waitFor({ timeout: 30000 });
  assert.match(await page.locator(tid("error-message")).innerText(), /declined/i);
  await page.locator(tid("retry-button")).click();
  await page.locator(tid("payment-methods")).waitFor({ timeout: 5000 });

  // 375 px wide: nothing overflows sideways.
  await page.setViewportSize({ width: 375, height: 740 });
  const overflow = await page.evaluate(() => document.scrollingElement.scrollWidth);
  assert.ok(overflow <= 375, `the checkout is ${overflow}px wide at 375px`);
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
  await page.locator(tid("password-input")).fill("test123");
  await page.locator(tid("login-button")).click();
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

  const row = page.locator(tid("transaction-row"), { has: page.locator(`${tid("payment-id")}:has-text("${paymentId}")`) });
  await row.waitFor({ timeout: 10000 });
  assert.equal(await row.locator(tid("amount")).innerText(), "500.00 INR");
  assert.equal(await row.locator(tid("method")).innerText(), "card");
  assert.equal(await row.locator(tid("status")).innerText(), "success");

  // The payment's timeline, and time travel from created to paid.
  await row.locator(`${tid("payment-id")} a`).click();
  await page.locator(tid("event-timeline")).waitFor({ timeout: 10000 });
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

  // Filters: only failed payments (the declined card above), then any.
  await page.goto(`${base}/dashboard/transactions`);
  await page.locator(tid("transactions-table")).waitFor({ timeout: 10000 });
  await page.locator(tid("status-filter")).selectOption("failed");
  await page.waitForFunction(() => {
    const cells = [...document.querySelectorAll('[data-test-id="transaction-row"] [data-test-id="status"]')];
    return cells.length > 0 && cells.every((cell) => cell.textContent === "failed");
  }, null, { timeout: 10000 });

  // Balance and ledger: the capture above posted entries.
  await page.goto(`${base}/dashboard/balance`);
  await page.locator(tid("ledger-table")).waitFor({ timeout: 10000 });
  assert.ok(await page.locator(tid("ledger-entry")).count() >= 2, "capture and fee entries");
  assert.match(await page.locator(tid("balance-amount")).first().innerText(), /^-?\d+\.\d{2} INR$/);

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

  // The API docs page and its snippets.
  await page.goto(`${base}/dashboard/docs`);
  await page.locator(tid("api-docs")).waitFor({ timeout: 10000 });
  for (const id of ["section-create-order", "code-snippet-create-order", "section-sdk-integration",
                    "code-snippet-sdk", "section-webhook-verification", "code-snippet-webhook"]) {
    assert.equal(await page.locator(tid(id)).count(), 1, `${id} on the docs page`);
  }
  assert.match(await page.locator(tid("code-snippet-sdk")).innerText(), /new PaymentGateway/);
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
  await staff.page.locator(tid("create-merchant-button")).click();
  await staff.page.locator(tid("created-merchant")).waitFor({ timeout: 10000 });
  assert.match(await staff.page.locator(tid("created-api-key")).innerText(), /^key_/);
  assert.match(await staff.page.locator(tid("created-api-secret")).innerText(), /^secret_/);
  const row = staff.page.locator(tid("merchant-row"), { has: staff.page.locator(`${tid("merchant-email")}:has-text("${email}")`) });
  await row.waitFor({ timeout: 10000 });
  await row.locator(tid("rotate-keys-button")).click();
  await staff.page.locator(`${tid("created-merchant")}:has-text("New credentials")`).waitFor({ timeout: 10000 });
  await row.locator(tid("suspend-button")).click();
  await row.locator(`${tid("merchant-status")}:has-text("suspended")`).waitFor({ timeout: 10000 });
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

  // The dashboard at 375 px: the page itself does not overflow (tables
  // scroll inside their section).
  await auditor.page.setViewportSize({ width: 375, height: 740 });
  const width = await auditor.page.evaluate(() => document.scrollingElement.scrollWidth);
  assert.ok(width <= 375, `the dashboard is ${width}px wide at 375px`);
  await auditor.context.close();
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
  });
  try {
    await checkoutAlone(browser);
    const paymentId = await sdkOnExamplePage(browser);
    await dashboard(browser, paymentId);
    await staffAndAuditor(browser, paymentId);
  } finally {
    await browser.close();
  }
  console.log(`browser: ok ${JSON.stringify(results)}`);
})().catch((error) => {
  console.error(`browser: FAILED\n${error.stack || error}`);
  process.exit(1);
});
