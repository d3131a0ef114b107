// The plan builder when the network comes and goes (issue 17 §7). Loaded with `defer` by plans/builder.html only;
// app.js marks the figures stale when a quote fails. The rule here: the plan that can be applied for or sent is
// always the plan of the figures on screen, and those figures always end up being the choice on screen.
(function () {
  "use strict";

  function builder() { return document.getElementById("builder"); }
  function results() { return document.getElementById("results"); }
  function inBuilder(el) { var form = builder(); return !!(form && el && form.contains(el)); }

  // From the moment a choice changes until its figures arrive, the plan shown is not the plan chosen: its
  // actions are switched off and point nowhere (a link loses its href, a button its value). The server's
  // answer replaces #results whole, with actions for the new plan; a failed answer leaves them off.
  function holdPlan() {
    var box = results();
    if (!box) return;
    box.querySelectorAll("[data-plan-action]").forEach(function (el) {
      if (el.tagName === "A") el.removeAttribute("href");
      else { el.disabled = true; el.removeAttribute("value"); }
      el.setAttribute("aria-disabled", "true");
    });
  }
  document.addEventListener("change", function (event) { if (inBuilder(event.target)) holdPlan(); });
  // the slider's `change` is stopped by app.js (it requotes on `input`): its `input` holds the plan instead
  document.addEventListener("input", function (event) { if (inBuilder(event.target)) holdPlan(); });

  // Ask for the figures of the choice on screen again (the form's own request: its values, its URL).
  function requote() {
    var form = builder();
    if (form && window.htmx) window.htmx.trigger(form, "change");
  }
  function stale() {
    var box = results();
    return !!(box && box.classList.contains("stale"));
  }

  // Back online: the figures of a choice made while offline are fetched without another tap.
  window.addEventListener("online", function () { if (stale()) requote(); });

  // Tapping the chip already chosen fires no `change`: after a failure, that tap is the person's retry. A click
  // on a radio that was not chosen is followed by its `change` (which requotes by itself), so only a click
  // that no `change` followed asks again.
  var changed = false;
  document.addEventListener("change", function () { changed = true; }, true);
  document.addEventListener("click", function (event) {
    var el = event.target;
    if (!inBuilder(el) || el.type !== "radio" || !stale()) return;
    changed = false;
    setTimeout(function () { if (!changed) { holdPlan(); requote(); } }, 0);
  });
})();
