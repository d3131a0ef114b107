/* The salesperson's invitation page: copy the customer's link, or hand it to the device's share sheet (WeChat,
 * SMS…) through the Web Share API where the browser has it (https://developer.mozilla.org/docs/Web/API/
 * Navigator/share); without it, Share copies too. The link itself stays a plain, selectable <a> for any browser
 * this script does not run in. */
(function () {
  "use strict";
  var box = document.querySelector(".share-actions[data-link]");
  if (!box) { return; }
  var link = box.getAttribute("data-link");
  var note = box.querySelector("[data-copied]");

  function say(text) {
    note.textContent = text;
  }
  function copyByHand() {
    /* navigator.clipboard needs a secure context (the showroom's http://192.168.x.x is not one): select the link
       and ask for the legacy copy command instead */
    var field = document.createElement("textarea");
    field.value = link;
    field.setAttribute("readonly", "");
    field.className = "offscreen";
    document.body.appendChild(field);
    field.select();
    var done = false;
    try { done = document.execCommand("copy"); } catch (e) { done = false; }
    document.body.removeChild(field);
    return done;
  }
  function copy() {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(link).then(function () { say(note.getAttribute("data-text")); },
        function () { say(note.getAttribute(copyByHand() ? "data-text" : "data-failed")); });
      return;
    }
    say(note.getAttribute(copyByHand() ? "data-text" : "data-failed"));
  }
  function share() {
    if (!navigator.share) { copy(); return; }
    navigator.share({ title: box.getAttribute("data-title"), url: link }).catch(function (error) {
      if (error && error.name !== "AbortError") { copy(); }  /* dismissed by the user: nothing to do */
    });
  }
  box.querySelector("[data-copy]").addEventListener("click", copy);
  box.querySelector("[data-share]").addEventListener("click", share);
})();
