// Leaseline PWA glue. Loaded with `defer`, no inline script (strict CSP). Everything works without it.
(function () {
  "use strict";
  document.documentElement.classList.replace("no-js", "js");

  // The down-payment readout follows the slider at once; the server's quote follows via htmx.
  var yuan = new Intl.NumberFormat("zh-CN", { maximumFractionDigits: 0 });
  document.addEventListener("input", function (event) {
    var el = event.target;
    if (el && el.id === "down") {
      var out = document.getElementById("down-out");
      var price = Number(el.dataset.price || 0);
      if (out) out.textContent = el.value + "% · ¥" + yuan.format(Math.round(price * Number(el.value) / 100));
    }
  });

  // A range input fires `input` while dragging and `change` on release: the form requotes on the (debounced)
  // `input` alone, so the release must not trigger a second identical request and history entry.
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "down") event.stopPropagation();
  }, true);

  // After htmx pushes a new URL, the language switch must return to it (not to the page first loaded).
  document.addEventListener("htmx:pushedIntoHistory", function () {
    var next = document.querySelector("form.lang input[name=next]");
    if (next) next.value = location.pathname + location.search;
  });

  // A request that fails leaves the previous figures on screen: mark them stale and say so.
  function requestFailed() {
    var results = document.getElementById("results");
    if (results) results.classList.add("stale");
    var bar = document.getElementById("request-error");
    if (bar) bar.hidden = false;
  }
  document.addEventListener("htmx:responseError", requestFailed);
  document.addEventListener("htmx:sendError", requestFailed);
  document.addEventListener("htmx:afterSwap", function () {
    var bar = document.getElementById("request-error");
    if (bar) bar.hidden = true;
  });

  // Show when the network is gone (the quote cannot be recalculated offline).
  function netstatus() {
    var bar = document.getElementById("netstatus");
    if (bar) bar.hidden = navigator.onLine;
  }
  window.addEventListener("online", netstatus);
  window.addEventListener("offline", netstatus);
  document.addEventListener("DOMContentLoaded", netstatus);

  if ("serviceWorker" in navigator) {
    window.addEventListener("load", function () {
      navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () { /* optional */ });
    });
  }
})();
