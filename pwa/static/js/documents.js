// The applicant's documents page (pwa/templates/documents/mine.html): a photo taken or files chosen are sent at
// once, without a second tap on "add these pages", ONE FILE PER REQUEST — a phone's gallery photos are 5–10 MB
// each, and several in one post would pass the size a post may carry (413). The form's buttons are disabled while
// it goes, so a second tap sends nothing twice. A file refused (422, 413) shows the page the server answered, with
// the reason beside the document. Without JavaScript the form works as it is (choose, then tap the button); with it,
// that button is hidden.
(function () {
  "use strict";

  function busy(form, on) {
    form.querySelectorAll("button").forEach(function (button) { button.disabled = on; });
    if (on) { form.setAttribute("aria-busy", "true"); } else { form.removeAttribute("aria-busy"); }
  }

  // the server's answer (the whole documents page, with the refusal beside the document) replaces the page's main
  function show(html) {
    var answered = new DOMParser().parseFromString(html, "text/html").querySelector("main");
    var main = document.querySelector("main");
    if (!answered || !main) { window.location.reload(); return; }
    main.replaceWith(answered);
    bind(answered);
    if (window.htmx) { window.htmx.process(answered); }
    var error = answered.querySelector(".field-error");
    if (error) { error.scrollIntoView({ block: "center" }); }
  }

  async function sendEach(form, input) {
    var files = Array.prototype.slice.call(input.files);
    var token = form.querySelector("[name=csrf_token]").value;
    var kind = form.querySelector("[name=kind]").value;
    var landed = window.location.pathname;
    busy(form, true);
    for (var i = 0; i < files.length; i++) {
      var data = new FormData();
      data.append("csrf_token", token);
      data.append("kind", kind);
      data.append("file", files[i], files[i].name);
      var response;
      try {
        response = await fetch(form.action, { method: "POST", body: data, credentials: "same-origin" });
      } catch (e) {
        busy(form, false);
        form.submit();  // the network is away: the browser's own post shows the offline page, nothing is lost here
        return;
      }
      if (!response.ok) { show(await response.text()); return; }
      landed = new URL(response.url).pathname;  // the documents page the post was redirected to
    }
    window.location.replace(landed + "#kind-" + kind);
    window.location.reload();
  }

  function bind(root) {
    root.querySelectorAll("form[data-documents-upload]").forEach(function (form) {
      // a photo taken or a file chosen is sent at once: "add these pages" (the form's own button, for a phone
      // without JavaScript) would only post the emptied inputs again and answer 请拍照或选择文件
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        (button.closest("p") || button).hidden = true;
      });
      form.addEventListener("change", function (event) {
        var input = event.target;
        if (input.type === "file" && input.files && input.files.length) {
          sendEach(form, input);
        }
      });
      form.addEventListener("submit", function () { busy(form, true); });
    });
    // 送出: disabled once pressed, so a double tap sends once
    root.querySelectorAll("form[data-documents-send]").forEach(function (form) {
      form.addEventListener("submit", function () { busy(form, true); });
    });
  }

  bind(document);
})();
