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
 *                                                test PaymentMethods: pm_card_visa (succeeds),
 *                                                pm_card_chargeCustomerFail (declined) or
 *                                                pm_card_threeDSecure2Required (3-D Secure)
 *   element.on("ready" | "change", handler)      "ready" after mounting, "change" when the choice changes
 *   stripe.confirmPayment({elements, confirmParams: {return_url}})
 *       POSTs https://api.stripe.com/v1/payment_intents/<id>/confirm with the publishable key and the client
 *       secret, as Stripe.js does (the tests answer that address from localstripe: StripeApiEdge). On success it
 *       sends the browser to return_url?payment_intent=…&payment_intent_client_secret=…&redirect_status=…, as
 *       Stripe.js does by default; on an error it resolves {error: {type, code, decline_code, message}}. An
 *       intent that then requires_action gets the bank's check first, as Stripe.js runs it (below).
 *   stripe.handleNextAction({clientSecret})      the bank's check of an intent waiting for it; resolves
 *                                                {paymentIntent} or {error}
 *
 *   The bank's 3-D Secure check is a visible test dialog (data-testid stripe-sandbox-3ds, "Complete" / "Fail"), whose
 *   answer is POSTed to https://api.stripe.com/v1/payment_intents/<id>/_authenticate?success=true|false with the
 *   publishable key and the client secret: the endpoint of localstripe's own stand-in for Stripe.js (real Stripe.js
 *   talks to the bank's ACS instead); the tests answer it from localstripe. A failed check resolves Stripe.js's
 *   error {type: "invalid_request_error", code: "payment_intent_authentication_failure"}.
 *
 * Everything else of Stripe.js (other Elements, wallets, real 3-D Secure challenges, Alipay / WeChat Pay redirects and QR
 * codes, appearance, fraud signals) is absent.
 */
(function () {
  "use strict";
  var API = "https://api.stripe.com/v1";
  var CHOICES = [
    ["pm_card_visa", "Visa 4242 4242 4242 4242 (succeeds)"],
    ["pm_card_chargeCustomerFail", "Visa 4000 0000 0000 0341 (declined)"],
    ["pm_card_threeDSecure2Required", "Visa 4000 0025 0000 3155 (3-D Secure)"],
  ];
  var AUTHENTICATION_FAILED = {
    type: "invalid_request_error", code: "payment_intent_authentication_failure",
    message: "We are unable to authenticate your payment method. Please choose a different payment method and try again.",
  };

  function post(path, fields) {
    return fetch(API + path, { method: "POST", body: new URLSearchParams(fields) })
      .then(function (response) { return response.json(); });
  }

  // The bank's check: a test dialog; resolves true (complete) or false (fail) when the customer answers.
  function askTheBank() {
    return new Promise(function (resolve) {
      var dialog = document.createElement("fieldset");
      dialog.setAttribute("data-testid", "stripe-sandbox-3ds");
      dialog.setAttribute("role", "dialog");
      var legend = document.createElement("legend");
      legend.textContent = "Stripe.js sandbox — your bank's 3-D Secure check";
      dialog.appendChild(legend);
      [["complete", "Complete authentication", true], ["fail", "Fail authentication", false]].forEach(function (b) {
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = b[1];
        button.setAttribute("data-testid", "stripe-sandbox-3ds-" + b[0]);
        button.addEventListener("click", function () {
          dialog.remove();
          resolve(b[2]);
        });
        dialog.appendChild(button);
      });
      document.body.appendChild(dialog);
    });
  }

  // The check of the intent of ``secret``, answered: {paymentIntent} or {error}.
  function authenticate(publishableKey, secret) {
    return askTheBank().then(function (success) {
      return post("/payment_intents/" + intentId(secret) + "/_authenticate?success=" + success,
                  { key: publishableKey, client_secret: secret });
    }).then(function (answer) {
      if (answer.error) return { error: answer.error };
      if (answer.status === "requires_payment_method") return { error: AUTHENTICATION_FAILED };
      return { paymentIntent: answer };
    });
  }

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
            if (answer.status === "requires_action") return authenticate(publishableKey, secret);
            return { paymentIntent: answer };
          })
          .then(function (result) {
            if (result.error) return result;
            var answer = result.paymentIntent;
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
      handleNextAction: function (options) {
        return authenticate(publishableKey, options && options.clientSecret);
      },
    };
  };
})();
