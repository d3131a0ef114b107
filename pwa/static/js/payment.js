// The production payment form: Stripe.js's Payment Element (https://docs.stripe.com/payments/payment-element) for
// the line in <section data-payment-element>, whose data- attributes carry the publishable key, the PaymentIntent's
// client secret, the return URL and the locale (no inline script: strict CSP). Loaded with `defer` after
// https://js.stripe.com/v3/. On success Stripe.js sends the browser to the return URL, where the server asks Stripe
// how it went; an error (a declined card, an incomplete form) is shown here, and the customer simply tries again
// with the same PaymentIntent. The button stays disabled while confirming, so a double tap confirms once.
(function () {
  "use strict";
  var box = document.querySelector("[data-payment-element]");
  if (!box) return;
  var form = box.querySelector("form");
  var button = box.querySelector("[data-payment-submit]");
  var error = box.querySelector("[data-payment-error]");
  var loading = box.querySelector("[data-payment-loading]");

  function show(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  if (typeof window.Stripe !== "function") {  // js.stripe.com blocked or unreachable
    if (loading) loading.hidden = true;
    show(box.dataset.unavailable);
    return;
  }
  var stripe = window.Stripe(box.dataset.publishableKey);
  var elements = stripe.elements({ clientSecret: box.dataset.clientSecret, locale: box.dataset.locale || "auto" });
  var element = elements.create("payment");
  var busy = false;
  element.on("ready", function () {
    if (loading) loading.hidden = true;
    button.disabled = false;
  });
  element.on("change", function () { if (!busy) show(""); });
  element.mount(box.querySelector("[data-payment-mount]"));

  function release(message) {
    show(message);
    busy = false;
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    busy = true;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    show("");
    stripe.confirmPayment({ elements: elements, confirmParams: { return_url: box.dataset.returnUrl } })
      .then(function (result) {
        // Without an error Stripe.js is sending the browser to the return URL: the button stays disabled.
        if (result && result.error) release(result.error.message || box.dataset.failed);
      }, function () {
        release(box.dataset.failed);
      });
  });
})();
