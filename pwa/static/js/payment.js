// The production payment form: Stripe.js's Payment Element (https://docs.stripe.com/payments/payment-element) for
// the line in <section data-payment-element>, whose data- attributes carry the publishable key, the PaymentIntent's
// client secret, the return URL and the locale (no inline script: strict CSP). Loaded with `defer` after
// https://js.stripe.com/v3/. On success Stripe.js sends the browser to the return URL, where the server asks Stripe
// how it went; an error (a declined card, an incomplete form) is shown here, and the customer simply tries again
// with the same PaymentIntent. The button stays disabled while confirming, so a double tap confirms once.
// A PaymentIntent waiting for the customer's bank (3-D Secure, [data-payment-next-action]) is confirmed with
// stripe.handleNextAction (https://docs.stripe.com/js/payment_intents/handle_next_action), or paid with another card
// through the same element: the same PaymentIntent, so it is charged once. A card error is worded from the page's
// table (data-declines: Stripe's decline_code, else its code, in the customer's language), never its raw code.
(function () {
  "use strict";
  var box = document.querySelector("[data-payment-element]");
  if (!box) return;
  var form = box.querySelector("form");
  var button = box.querySelector("[data-payment-submit]");
  var error = box.querySelector("[data-payment-error]");
  var loading = box.querySelector("[data-payment-loading]");
  var waiting = box.querySelector("[data-payment-waiting]");
  var nextAction = box.querySelector("[data-payment-next-action]");
  var declines = {};
  try { declines = JSON.parse(box.dataset.declines || "{}"); } catch (ignored) { declines = {}; }

  // The customer's words for Stripe.js's error: a card's or the bank's refusal from the table, Stripe.js's own
  // (localised) message for anything else, such as an incomplete card number.
  function explain(failure) {
    if (!failure) return box.dataset.failed;
    var worded = declines[failure.decline_code] || declines[failure.code];
    if (worded) return worded;
    if (failure.type === "card_error") return declines.card_declined || box.dataset.failed;
    return failure.message || box.dataset.failed;
  }

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
    if (nextAction) nextAction.disabled = false;
  }

  // Stripe.js's error shown; once the bank's check failed the PaymentIntent no longer waits for it (Stripe moves it
  // back to requires_payment_method): only paying with another card is left.
  function failed(error) {
    if (error.code === "payment_intent_authentication_failure") {
      if (waiting) waiting.hidden = true;
      nextAction = null;
    }
    release(explain(error));
  }

  if (nextAction) {
    nextAction.disabled = false;
    nextAction.addEventListener("click", function () {
      if (busy) return;
      busy = true;
      nextAction.disabled = true;
      button.disabled = true;
      show("");
      stripe.handleNextAction({ clientSecret: box.dataset.clientSecret }).then(function (result) {
        if (result && result.error) {
          failed(result.error);
          return;
        }
        window.location.assign(box.dataset.returnUrl);  // the server asks Stripe how it went
      }, function () {
        release(box.dataset.failed);
      });
    });
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    busy = true;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    if (nextAction) nextAction.disabled = true;
    show("");
    stripe.confirmPayment({ elements: elements, confirmParams: { return_url: box.dataset.returnUrl } })
      .then(function (result) {
        // Without an error Stripe.js is sending the browser to the return URL: the button stays disabled.
        if (result && result.error) failed(result.error);
      }, function () {
        release(box.dataset.failed);
      });
  });
})();
