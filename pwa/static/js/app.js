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
  // A refusal that brings its form back as typed with the reason (409 marked X-Form-Refused: the car's details a
  // contract is being drafted from) is shown in place like a 422's errors, not as a failed request.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status === 409 && xhr.getResponseHeader("X-Form-Refused")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSwap", function () {
    var bar = document.getElementById("request-error");
    if (bar) bar.hidden = true;
  });

  // An image marked data-retry that fails to arrive (a poor network; the contract service still rasterising a
  // page under load) is asked for again, three times with growing pauses, instead of staying broken. The
  // `attempt` parameter makes it a new request (a failed image is not fetched again for the same address).
  document.addEventListener("error", function (event) {
    var img = event.target;
    if (!img || img.tagName !== "IMG" || !img.hasAttribute("data-retry")) return;
    var tries = Number(img.dataset.tries || 0);
    if (tries >= 3) return;
    img.dataset.tries = String(tries + 1);
    var url = new URL(img.getAttribute("src"), location.href);
    url.searchParams.set("attempt", String(tries + 1));
    setTimeout(function () { img.src = url.pathname + url.search; }, 1000 * Math.pow(3, tries));
  }, true);  // error events do not bubble: listen while they are captured

  // Show when the network is gone (the quote cannot be recalculated offline).
  function netstatus() {
    var bar = document.getElementById("netstatus");
    if (bar) bar.hidden = navigator.onLine;
  }
  window.addEventListener("online", netstatus);
  window.addEventListener("offline", netstatus);
  document.addEventListener("DOMContentLoaded", netstatus);

  // Application steps survive the network going away: a form marked data-offline-queue that cannot be
  // sent is kept on this device (localStorage) with an idempotency key and sent when back online; the
  // server applies each key once, so a replay never saves twice.
  var QUEUE = "leaseline-outbox";
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "k" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }
  function loadQueue() {
    try { return JSON.parse(localStorage.getItem(QUEUE) || "[]"); } catch (e) { return []; }
  }
  function saveQueue(items) { localStorage.setItem(QUEUE, JSON.stringify(items)); }
  // A step the server refused once sent from the queue, where its form was not on the page to show it as typed:
  // kept here (one per form, the latest) so that what was typed is filled back into the form when its page is next
  // opened, until that form is saved or queued again (or the person signs out); a week at most.
  var REFUSED = "leaseline-refused", REFUSED_KEPT = 7 * 24 * 3600 * 1000;
  function loadRefused() {
    try {
      return JSON.parse(localStorage.getItem(REFUSED) || "[]").filter(function (i) {
        return Date.now() - (i.at || 0) < REFUSED_KEPT;
      });
    } catch (e) { return []; }
  }
  function forgetRefused(slot) {
    var items = loadRefused().filter(function (i) { return i.slot !== slot; });
    if (items.length) localStorage.setItem(REFUSED, JSON.stringify(items));
    else localStorage.removeItem(REFUSED);
  }
  function keepRefused(item, reason) {
    var items = loadRefused().filter(function (i) { return i.slot !== item.slot; });
    items.push({ slot: item.slot, url: item.url, body: item.body, reason: reason, at: Date.now() });
    localStorage.setItem(REFUSED, JSON.stringify(items));
  }
  function enqueue(form, key) {
    var body = new URLSearchParams(new FormData(form)).toString();
    var items = loadQueue().filter(function (i) { return i.slot !== form.dataset.offlineQueue; });
    items.push({ slot: form.dataset.offlineQueue, url: form.getAttribute("action"), body: body, key: key });
    saveQueue(items);  // one pending copy per form: the latest answers replace an older unsent copy
    forgetRefused(form.dataset.offlineQueue);  // newer answers than the refused ones
    var note = form.querySelector("[data-offline-note]");
    if (note) note.hidden = false;
  }
  // What the server's answer to a step sent from the queue means for it.
  //  - "delivered": saved (2xx, not a redirect to the sign-in page) or refused with field errors (422), saved as
  //    typed: the person sees them when they open the step.
  //  - "refused": any other 4xx but 408/429 (409: the step can no longer be changed; 403, 404, 413) is a final
  //    answer — the same post would get it again — so the step leaves the queue, never sent again, and the refusal
  //    is shown as for a live post.
  //  - "kept": the server's trouble (5xx), 408/429, no answer, a redirect to the sign-in page, 401, and 400 (the CSRF
  //    refusal of a session that ended while the phone was offline: signing in again sends it) — tried again after
  //    growing pauses, so nothing typed is lost.
  function outcome(response) {
    var status = response.status;
    if (response.redirected) return "kept";
    if ((status >= 200 && status < 300) || status === 422) return "delivered";
    if (status >= 402 && status < 500 && status !== 408 && status !== 429) return "refused";
    return "kept";
  }
  // Pauses between tries of a step kept in the queue: 1 s, doubling, at most a minute; back to 1 s once the
  // server answers, and at once when the phone comes back online.
  var RETRY_FIRST = 1000, RETRY_MOST = 60000;
  var retryIn = RETRY_FIRST, retryTimer = null;
  var flushing = false;
  function flush() {
    if (flushing || !navigator.onLine) return;
    var items = loadQueue();
    if (!items.length) return;
    flushing = true;
    clearTimeout(retryTimer);
    var item = items[0];
    var kept = true;
    fetch(item.url, {
      method: "POST", body: item.body, credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": csrfToken(),
                 "Idempotency-Key": item.key, "HX-Request": "true" }
    }).then(function (response) {
      var result = outcome(response);
      if (result === "kept") return;
      kept = false;
      saveQueue(loadQueue().filter(function (i) { return i.key !== item.key; }));
      document.dispatchEvent(new CustomEvent("leaseline:sent", { detail: { slot: item.slot, status: response.status } }));
      document.querySelectorAll("[data-offline-note]").forEach(function (n) { n.hidden = true; });
      if (result === "delivered") delivered(item, response);
      else refused(item, response);
    }).catch(function () { /* still offline: keep it */ }).then(function () {
      flushing = false;
      if (!loadQueue().length || !navigator.onLine) return;  // coming back online flushes again
      if (kept) {
        retryTimer = setTimeout(flush, retryIn);
        retryIn = Math.min(retryIn * 2, RETRY_MOST);
      } else {
        retryIn = RETRY_FIRST;
        retryTimer = setTimeout(flush, 0);  // the next step in the queue
      }
    });
  }
  // A step sent from the queue goes on as if its button had just been pressed (issue 17 §7): on that step's page,
  // to what follows (the server's HX-Redirect), saying it was sent; refused fields replace the form. Elsewhere
  // the page says it was sent.
  var SENT = "leaseline-sent";
  function showSent() {
    var note = document.getElementById("sent-note");
    if (note) note.hidden = false;
  }
  function queuedForm(item) {
    var form = document.querySelector("form[data-offline-queue]");
    return form && form.dataset.offlineQueue === item.slot ? form : null;
  }
  function delivered(item, response) {
    var form = queuedForm(item);
    var next = response.headers.get("HX-Redirect");
    if (form && next) {
      sessionStorage.setItem(SENT, "1");
      location.assign(next);
    } else if (form && response.status === 422 && window.htmx) {
      response.text().then(function (html) { window.htmx.swap(form, html, { swapStyle: "outerHTML" }); });
    } else {
      showSent();
    }
  }
  // A refused step is shown as a live post's refusal is: on its page, a refusal that brings the form back as typed
  // with the reason (409 marked X-Form-Refused) replaces the form; otherwise the answer's reason (its alert, or
  // the error page's heading) in a bar under the header (#sent-refused), never "sent", and what was typed is kept
  // (keepRefused) for the form: filled back now if it is on this page, else when its page is next opened, which
  // the bar links to.
  function refused(item, response) {
    var form = queuedForm(item);
    return response.text().then(function (html) {
      if (form && response.headers.get("X-Form-Refused") && window.htmx) {
        window.htmx.swap(form, html, { swapStyle: "outerHTML" });
        return;
      }
      var answer = new DOMParser().parseFromString(html, "text/html");
      var reason = null;
      ["#step-form [role=alert]", "main h1", "h1"].some(function (selector) {
        reason = answer.querySelector(selector);
        return reason && reason.textContent.trim();
      });
      var said = (reason && reason.textContent.trim()) || String(response.status);
      keepRefused(item, said);
      if (form) fillRefused(form);
      var bar = document.getElementById("sent-refused");
      if (!bar) {
        bar = document.createElement("div");
        bar.id = "sent-refused";
        bar.className = "netstatus error";
        bar.setAttribute("role", "alert");
        bar.setAttribute("data-testid", "sent-refused");
        var after = document.getElementById("sent-note") || document.getElementById("netstatus");
        if (after) after.insertAdjacentElement("afterend", bar);
        else document.body.insertBefore(bar, document.body.firstChild);
      }
      bar.textContent = said;
      var note = document.getElementById("sent-note");
      if (!form && note && note.dataset.refusedOpen) {  // the step's page, where it is filled back (GET of its action)
        var open = document.createElement("a");
        open.href = item.url;
        open.textContent = note.dataset.refusedOpen;
        open.setAttribute("data-testid", "sent-refused-open");
        bar.appendChild(document.createTextNode(" "));
        bar.appendChild(open);
      }
      bar.hidden = false;
      bar.scrollIntoView({ block: "nearest" });
    });
  }
  // What was typed in a refused step, back in its form (the page's own CSRF token kept), with why it was refused.
  function fillRefused(form) {
    var kept = loadRefused().filter(function (i) { return i.slot === form.dataset.offlineQueue; })[0];
    if (!kept || form.querySelector("[data-refused-filled]")) return;
    new URLSearchParams(kept.body).forEach(function (value, name) {
      if (name === "csrf_token") return;
      Array.prototype.forEach.call(form.elements, function (field) {
        if (field.name !== name) return;
        if (field.type === "checkbox" || field.type === "radio") field.checked = field.value === value;
        else if (field.type !== "file") field.value = value;
      });
    });
    var said = document.createElement("p");
    said.className = "field-error";
    said.setAttribute("role", "alert");
    said.setAttribute("data-refused-filled", "");
    said.setAttribute("data-testid", "refused-filled");
    var note = document.getElementById("sent-note");
    said.textContent = kept.reason + (note && note.dataset.refusedFilled ? " " + note.dataset.refusedFilled : "");
    form.insertBefore(said, form.firstChild);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-offline-queue]").forEach(fillRefused);
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (sessionStorage.getItem(SENT)) {
      sessionStorage.removeItem(SENT);
      showSent();
    }
  });
  document.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.dataset && form.dataset.offlineQueue) {
      form.dataset.key = uuid();
      event.detail.headers["Idempotency-Key"] = form.dataset.key;
    }
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.dataset && form.dataset.offlineQueue && !navigator.onLine) {
      event.preventDefault();
      enqueue(form, form.dataset.key || uuid());
    }
  });
  // A step saved online makes an older unsent copy of it obsolete (it must not overwrite the newer answers). Saved:
  // any 2xx (htmx leaves `successful` unset on an answer that redirects: HX-Redirect, the step's usual answer).
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt, xhr = event.detail.xhr;
    var saved = event.detail.successful || (xhr && xhr.status >= 200 && xhr.status < 300);
    if (form && form.dataset && form.dataset.offlineQueue && saved) {
      saveQueue(loadQueue().filter(function (i) { return i.slot !== form.dataset.offlineQueue; }));
      forgetRefused(form.dataset.offlineQueue);  // saved: the refused answers are no longer needed
    }
  });
  // Signing out on a shared showroom tablet leaves nothing of the customer's answers behind.
  document.addEventListener("submit", function (event) {
    var action = event.target && event.target.getAttribute && event.target.getAttribute("action");
    if (action && /\/logout$/.test(action)) {
      localStorage.removeItem(QUEUE);
      localStorage.removeItem(REFUSED);
    }
  });
  document.addEventListener("htmx:sendError", function (event) {
    var form = event.detail.elt;
    if (form && form.dataset && form.dataset.offlineQueue) enqueue(form, form.dataset.key || uuid());
  });
  window.addEventListener("online", function () {
    retryIn = RETRY_FIRST;
    flush();
  });
  document.addEventListener("DOMContentLoaded", function () {
    flush();
    // One key per page load for "start" forms: a double tap or a retry makes one application.
    document.querySelectorAll("form[data-idempotent] input[name=idempotency_key]").forEach(function (input) {
      if (!input.value) input.value = uuid();
    });
  });

  // A button marked data-disable-on-submit (pay, confirm with the bank, a privacy request...) cannot be pressed
  // twice while its form is on its way: its form's marked buttons are disabled and the pressed one is aria-busy.
  // After the submit event, not during it: the browser collects the form's fields after the event, and a disabled
  // button's name=value (result=complete) would be left out. Forms htmx sends (default prevented) are htmx's.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form || !form.querySelectorAll) return;
    var buttons = form.querySelectorAll("[data-disable-on-submit]");
    if (!buttons.length) return;
    var pressed = event.submitter;
    setTimeout(function () {
      buttons.forEach(function (button) {
        if (button.disabled) return;  // disabled by the page itself (a step not yet possible): left as it is
        button.disabled = true;
        button.setAttribute("data-submit-disabled", "");
      });
      if (pressed && pressed.hasAttribute("data-submit-disabled")) pressed.setAttribute("aria-busy", "true");
    }, 0);
  });
  // Back to a page kept in the back-forward cache: the buttons disabled above can be pressed again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("[data-submit-disabled]").forEach(function (button) {
      button.disabled = false;
      button.removeAttribute("data-submit-disabled");
      button.removeAttribute("aria-busy");
    });
  });

  if ("serviceWorker" in navigator) {
    window.addEventListener("load", function () {
      navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () { /* optional */ });
    });
  }
})();
