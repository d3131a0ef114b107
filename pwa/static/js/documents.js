// The applicant's documents page (pwa/templates/documents/mine.html): a photo taken or files chosen are sent at
// once, without a second tap on "add these pages"; the form's buttons are disabled while it goes, so a second tap
// sends nothing twice. Without JavaScript the form works as it is (choose, then tap the button).
(function () {
  "use strict";
  document.querySelectorAll("form[data-documents-upload]").forEach(function (form) {
    form.addEventListener("change", function (event) {
      var input = event.target;
      if (input.type === "file" && input.files && input.files.length) {
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", function () {
      form.querySelectorAll("button").forEach(function (button) { button.disabled = true; });
      form.setAttribute("aria-busy", "true");
    });
  });
  // 送出: disabled once pressed, so a double tap sends once
  document.querySelectorAll("form[data-documents-send]").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("button").forEach(function (button) { button.disabled = true; });
      form.setAttribute("aria-busy", "true");
    });
  });
})();
