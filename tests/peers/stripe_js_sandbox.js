/*
 * STRIPE.JS SANDBOX: a test double of Stripe's hosted script https://js.stripe.com/v3/, for Leaseline's browser
 * tests only (tests/e2e/test_payment_element_browser.py). It is NOT Stripe.js and is never served to customers.
 *
 * js.stripe.com cannot be reached from the test machine, so the tests serve this file at that address with
 * Playwright's page.route (tests/common/stripe_element.py). It implements only what pwa/static/js/payment.js uses,
 * with Stripe.js's documented shapes (https://docs.stripe.com/js):
 *
 *   Stripe(publishableKey)                       -> stripe
 *   stripe.elements({clientSecret, locale})      -> elements
 *   elements.create("payment")                   -> element (the Payment Element)
 *   element.mount(domElement | selector)         renders a visible test form (no iframe) choosing one of Stripe's
 *                                                test PaymentMethods: pm_card_visa (succeeds) or
 *                                                pm_card_chargeCustomerFail (declined)
 *   element.on("ready" | "change", handler)      "ready" after mounting, "change" when the choice changes
 *   stripe.confirmPayment({elements, confirmParams: {return_url}})
 *       POSTs https://api.stripe.com/v1/payment_intents/<id>/confirm with the publishable key and the client
 *       secret, as Stripe.js does (the tests answer that address from localstripe: StripeApiEdge). On success it
 *       sends the browser to return_url?payment_intent=…&payment_intent_client_secret=…&redirect_status=…, as
 *       Stripe.js does by default; on an error it resolves {error: {type, code, decline_code, message}}.
 *
 * Everything else of Stripe.js (other Elements, wallets, 3-D Secure dialogs, Alipay / WeChat Pay redirects and QR
 * codes, appearance, fraud signals) is absent.
 */
(function () {
  "use strict";
  var API = "https://api.stripe.com/v1";
  var CHOICES = [
    ["pm_card_visa", "Visa 4242 4242 4242 4242 (succeeds)"],
    ["pm_card_chargeCustomerFail", "Visa 4000 0000 0000 0341 (declined)"],
  ];

  function intentId(clientSecret) {
    var match = /^(pi_[A-Za-z0-9]+)_secret_/.exec(clientSecret || "");
    if (!match) throw new Error("Stripe.js sandbox: not a PaymentIntent client secret");
    return match[1];
  }

  function PaymentElement(elements) {
    this.elements = elements;
    this.handlers = { ready: [], change: [] };
    this.select = null;
  }
  PaymentElement.prototype.on = function (name, handler) {
    (this.handlers[name] = this.handlers[name] || []).push(handler);
    return this;
  };
  PaymentElement.prototype.emit = function (name, event) {
    (this.handlers[name] || []).forEach(function (handler) { handler(event); });
  };
  PaymentElement.prototype.mount = function (target) {
    var host = typeof target === "string" ? document.querySelector(target) : target;
    var self = this;
    var box = document.createElement("fieldset");
    box.setAttribute("data-testid", "stripe-sandbox");
    var legend = document.createElement("legend");
    legend.textContent = "Stripe.js sandbox (test double) — test card";
    var select = document.createElement("select");
    select.setAttribute("data-testid", "stripe-sandbox-card");
    select.setAttribute("aria-label", "Test card");
    CHOICES.forEach(function (choice) {
      var option = document.createElement("option");
      option.value = choice[0];
      option.textContent = choice[1];
      select.appendChild(option);
    });
    select.addEventListener("change", function () {
      self.emit("change", { elementType: "payment", complete: true, empty: false, value: { type: "card" } });
    });
    box.appendChild(legend);
    box.appendChild(select);
    host.appendChild(box);
    this.select = select;
    setTimeout(function () { self.emit("ready", { elementType: "payment" }); }, 0);
  };

  window.Stripe = function (publishableKey) {
    if (!/^pk_(test|live)_/.test(publishableKey || "")) throw new Error("Stripe.js sandbox: not a publishable key");
    return {
      elements: function (options) {
        var elements = { clientSecret: options && options.clientSecret, locale: options && options.locale,
                         element: null };
        intentId(elements.clientSecret);
        elements.create = function (type) {
          if (type !== "payment") throw new Error("Stripe.js sandbox: only the Payment Element");
          elements.element = new PaymentElement(elements);
          return elements.element;
        };
        return elements;
      },
      confirmPayment: function (options) {
        var elements = options.elements;
        var returnUrl = options.confirmParams && options.confirmParams.return_url;
        if (!elements || !elements.element || !elements.element.select || !returnUrl) {
          return Promise.resolve({ error: { type: "invalid_request_error", message: "Missing elements or return_url" } });
        }
        var secret = elements.clientSecret;
        var body = new URLSearchParams({ key: publishableKey, client_secret: secret,
                                         payment_method: elements.element.select.value, return_url: returnUrl });
        return fetch(API + "/payment_intents/" + intentId(secret) + "/confirm", { method: "POST", body: body })
          .then(function (response) { return response.json(); })
          .then(function (answer) {
            if (answer.error) return { error: answer.error };
            var status = answer.status === "succeeded" || answer.status === "requires_capture" ? "succeeded"
              : answer.status === "processing" ? "processing" : "failed";
            var url = new URL(returnUrl);
            url.searchParams.set("payment_intent", answer.id);
            url.searchParams.set("payment_intent_client_secret", secret);
            url.searchParams.set("redirect_status", status);
            window.location.assign(url.toString());
            return new Promise(function () {});  // Stripe.js does not resolve while the browser leaves
          });
      },
    };
  };
})();
