/* The resend countdown of a code screen (pwa/templates/_partials/_resend.html, issue 17 §8): the send button stays
 * disabled while the server would not text a new code (bff/resend.py RESEND_AFTER; the page says how many seconds
 * are left in data-countdown), and the text beside it counts them down, then hides. Once pressed it stays disabled
 * while its request runs (a double tap texts one code, as signature.js does for signing), and is usable again when
 * the page comes back from the browser's history (bfcache). Forms brought in later by htmx get theirs too. No
 * inline script or style: CSP allows only our own files. */
(function () {
  "use strict";

  function start(form) {
    var button = form.querySelector("[data-resend]");
    var text = form.querySelector("[data-countdown-text]");
    var left = parseInt(form.getAttribute("data-countdown"), 10) || 0;
    var template = text ? text.getAttribute("data-template") : "";
    var until = Date.now() + left * 1000;
    var busy = false;

    function tick() {
      var seconds = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      if (text) {
        text.textContent = template.replace("{s}", String(seconds));
        text.hidden = seconds === 0;
      }
      if (button) { button.disabled = busy || seconds > 0; }
      if (seconds > 0) { window.setTimeout(tick, 250); }
    }
    form.addEventListener("submit", function (event) {
      if (busy) { event.preventDefault(); return; }  // the second tap of a double tap: the first is on its way
      busy = true;
      tick();
    });
    // Back to this page from the browser's history (bfcache): the request is long answered, the button usable.
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) { busy = false; tick(); }
    });
    tick();
  }

  function init(root) {
    var forms = root.querySelectorAll ? root.querySelectorAll("form[data-countdown]") : [];
    for (var i = 0; i < forms.length; i++) {
      if (!forms[i].hasAttribute("data-counting")) {
        forms[i].setAttribute("data-counting", "");
        start(forms[i]);
      }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  } else {
    init(document);
  }
  document.addEventListener("htmx:load", function (event) { init(event.target); });
}());
