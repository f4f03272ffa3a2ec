#!/usr/bin/env python3
"""An example merchant's site (dev only): GET /example creates an order on
the server side, with the merchant's secret, and returns a page whose "Pay"
button opens the Paystream checkout SDK (checkout.js) for that order.

The secret never reaches the browser: the page gets only the order id and
the publishable key. Standard library only.

Env: PAYSTREAM_EXAMPLE_PORT (8085), PAYSTREAM_EXAMPLE_API (the API's base
URL, http://127.0.0.1:8000), PAYSTREAM_EXAMPLE_KEY / _SECRET (the seeded dev
merchant's), PAYSTREAM_EXAMPLE_AMOUNT (50000, minor units).
"""

import html
import json
import os
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PAYSTREAM_EXAMPLE_PORT", "8085"))
API = os.environ.get("PAYSTREAM_EXAMPLE_API", "http://127.0.0.1:8000").rstrip("/")
KEY = os.environ.get("PAYSTREAM_EXAMPLE_KEY", "key_test_abc123")
SECRET = os.environ.get("PAYSTREAM_EXAMPLE_SECRET", "secret_test_xyz789")
AMOUNT = int(os.environ.get("PAYSTREAM_EXAMPLE_AMOUNT", "50000"))

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Example shop</title>
  <style>
    body {{ font-family: system-ui, sans-serif; max-width: 480px; margin: 40px auto; padding: 0 16px; }}
    button {{ padding: 12px 20px; font: inherit; font-weight: 600; border: 0; border-radius: 8px;
              background: #2563eb; color: #fff; cursor: pointer; }}
    #result {{ margin-top: 16px; }}
  </style>
</head>
<body>
  <h1>Example shop</h1>
  <p>One Paystream T-shirt: <strong>{amount}</strong></p>
  <p>Order <code id="order-id">{order_id}</code></p>
  <button id="pay" type="button">Pay {amount}</button>
  <p id="result" role="status" aria-live="polite"></p>
  <script src="/checkout.js"></script>
  <script>
    const result = document.getElementById("result");
    document.getElementById("pay").addEventListener("click", () => {{
      const checkout = new PaymentGateway({{
        key: {key},
        orderId: {order_id_json},
        onSuccess: (data) => {{
          result.dataset.paymentId = data.paymentId;
          result.textContent = "Paid: " + data.paymentId;
          checkout.close();
        }},
        onFailure: (data) => {{ result.textContent = "Payment failed: " + (data.description || ""); }},
        onClose: () => {{ if (!result.textContent) result.textContent = "Checkout closed"; }},
      }});
      checkout.open();
    }});
  </script>
</body>
</html>
"""


def create_order():
    body = json.dumps({"amount": AMOUNT, "currency": "INR", "receipt": "example-shop"}).encode()
    request = urllib.request.Request(
        API + "/api/v1/orders",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Api-Key": KEY, "X-Api-Secret": SECRET},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def major(amount):
    return f"{amount // 100}.{amount % 100:02d} INR"


class Shop(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] != "/example":
            self.send_error(404)
            return
        try:
            order = create_order()
        except (urllib.error.URLError, OSError, ValueError) as error:
            self.send_response(502)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(f"could not create the order: {error}\n".encode())
            return
        page = PAGE.format(
            amount=html.escape(major(order["amount"])),
            order_id=html.escape(order["id"]),
            order_id_json=json.dumps(order["id"]),
            key=json.dumps(KEY),
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, fmt, *args):
        sys.stderr.write("example-merchant: " + fmt % args + "\n")


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", PORT), Shop).serve_forever()
