/*
 * Paystream checkout SDK (no dependencies).
 *
 *   <script src="https://<paystream>/checkout.js"></script>
 *   const checkout = new PaymentGateway({
 *     key: "key_test_abc123",           // the merchant's publishable API key
 *     orderId: "order_…",               // created by the merchant's server
 *     onSuccess: (data) => {},           // data.paymentId
 *     onFailure: (data) => {},           // data.paymentId, code, description
 *     onClose: () => {},
 *   });
 *   checkout.open();                     // checkout.close() removes it
 *
 * The hosted checkout runs in an iframe from the origin this script came
 * from; only messages from that origin are believed.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src).origin : window.location.origin;

  function PaymentGateway(options) {
    if (!(this instanceof PaymentGateway)) {
      return new PaymentGateway(options);
    }
    options = options || {};
    this.key = options.key;
    this.orderId = options.orderId;
    this.onSuccess = typeof options.onSuccess === "function" ? options.onSuccess : function () {};
    this.onFailure = typeof options.onFailure === "function" ? options.onFailure : function () {};
    this.onClose = typeof options.onClose === "function" ? options.onClose : function () {};
    this.modal = null;
    this.listener = null;
  }

  PaymentGateway.prototype.open = function () {
    if (this.modal) {
      return;
    }
    if (!this.key || !this.orderId) {
      throw new Error("PaymentGateway needs key and orderId");
    }
    var self = this;

    var modal = document.createElement("div");
    modal.id = "payment-gateway-modal";
    modal.setAttribute("data-test-id", "payment-modal");
    modal.setAttribute("role", "dialog");
    modal.setAttribute("aria-modal", "true");
    modal.setAttribute("aria-label", "Payment");
    modal.style.cssText =
      "position:fixed;inset:0;z-index:2147483647;display:flex;align-items:center;" +
      "justify-content:center;background:rgba(15,23,42,.55)";

    var frame = document.createElement("div");
    frame.style.cssText =
      "position:relative;width:min(420px,100vw);height:min(640px,100vh);background:#fff;" +
      "border-radius:12px;overflow:hidden;box-shadow:0 20px 50px rgba(0,0,0,.3)";

    var iframe = document.createElement("iframe");
    iframe.setAttribute("data-test-id", "payment-iframe");
    iframe.title = "Paystream checkout";
    iframe.src =
      base + "/checkout?order_id=" + encodeURIComponent(this.orderId) +
      "&embedded=true&key=" + encodeURIComponent(this.key);
    iframe.style.cssText = "border:0;width:100%;height:100%";
    iframe.setAttribute("allow", "payment");

    var close = document.createElement("button");
    close.type = "button";
    close.setAttribute("data-test-id", "close-modal-button");
    close.setAttribute("aria-label", "Close");
    close.textContent = "\u00d7";
    close.style.cssText =
      "position:fixed;top:12px;right:12px;width:40px;height:40px;border:0;border-radius:20px;" +
      "background:rgba(15,23,42,.8);color:#fff;font-size:24px;line-height:1;cursor:pointer";
    close.addEventListener("click", function () {
      self.close();
      self.onClose();
    });

    frame.appendChild(iframe);
    modal.appendChild(frame);
    modal.appendChild(close);

    this.listener = function (event) {
      if (event.origin !== base || event.source !== iframe.contentWindow) {
        return;
      }
      var message = event.data || {};
      if (message.type === "payment_success") {
        self.onSuccess(message.data || {});
      } else if (message.type === "payment_failed") {
        self.onFailure(message.data || {});
      } else if (message.type === "close_modal") {
        self.close();
        self.onClose();
      }
    };
    window.addEventListener("message", this.listener);
    document.body.appendChild(modal);
    this.modal = modal;
  };

  PaymentGateway.prototype.close = function () {
    if (this.listener) {
      window.removeEventListener("message", this.listener);
      this.listener = null;
    }
    if (this.modal && this.modal.parentNode) {
      this.modal.parentNode.removeChild(this.modal);
    }
    this.modal = null;
  };

  window.PaymentGateway = PaymentGateway;
})();
