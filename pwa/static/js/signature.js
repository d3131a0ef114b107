// The customer's handwritten signature: drawn with a finger or a pen on a <canvas data-signature>, kept as a
// PNG data URL in the form's hidden "signature" field (restored after a failed attempt, so nothing is lost).
// The form's sign button is disabled while its request runs (as payment.js does for paying): a double tap signs
// once and shows the signed contract, not a second answer (the server takes the same press twice anyway).
// A form that htmx brings in later (the contract page's signing part) gets its pad too.
(function () {
  "use strict";
  function setUp(canvas) {
    var form = canvas.closest("form");
    var field = form.querySelector("input[name=signature]");
    var clear = form.querySelector("[data-signature-clear]");
    // toDataURL reads the pixels back after every stroke: a canvas kept for reading avoids Chrome's slow readback
    // (and its console warning about willReadFrequently)
    var ctx = canvas.getContext("2d", { willReadFrequently: true });
    var drawing = false, drawn = false, last = null;

    function fit() {
      var ratio = window.devicePixelRatio || 1;
      var width = canvas.clientWidth;
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(width * 0.4 * ratio);
      canvas.style.height = Math.round(width * 0.4) + "px";
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.lineWidth = 3; ctx.lineCap = "round"; ctx.lineJoin = "round"; ctx.strokeStyle = "#10183c";
    }
    function point(event) {
      var box = canvas.getBoundingClientRect();
      return { x: event.clientX - box.left, y: event.clientY - box.top };
    }
    function save() { field.value = drawn ? canvas.toDataURL("image/png") : ""; }

    fit();
    if (field.value.indexOf("data:image/png;base64,") === 0) {  // the signature of a failed attempt
      var image = new Image();
      image.onload = function () { ctx.drawImage(image, 0, 0, canvas.clientWidth, canvas.clientWidth * 0.4); };
      image.src = field.value;
      drawn = true;
    }
    canvas.addEventListener("pointerdown", function (event) {
      drawing = true; last = point(event); canvas.setPointerCapture(event.pointerId); event.preventDefault();
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) { return; }
      var p = point(event);
      ctx.beginPath(); ctx.moveTo(last.x, last.y); ctx.lineTo(p.x, p.y); ctx.stroke();
      last = p; drawn = true; event.preventDefault();
    });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (name) {
      canvas.addEventListener(name, function () { if (drawing) { drawing = false; save(); } });
    });
    if (clear) {
      clear.addEventListener("click", function () {
        ctx.clearRect(0, 0, canvas.width, canvas.height); drawn = false; save();
      });
    }
    var busy = false;
    function submitting(on) {
      busy = on;
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        button.disabled = on;
        if (on) { button.setAttribute("aria-busy", "true"); } else { button.removeAttribute("aria-busy"); }
      });
    }
    form.addEventListener("submit", function (event) {
      if (busy) { event.preventDefault(); return; }  // the second tap of a double tap: the first is on its way
      save();
      submitting(true);
    });
    // Back to this page from the browser's history (bfcache): the request is long answered, the button usable.
    window.addEventListener("pageshow", function (event) { if (event.persisted) { submitting(false); } });
  }
  function init(root) {
    if (!root.querySelectorAll) { return; }
    root.querySelectorAll("canvas[data-signature]").forEach(function (canvas) {
      if (!canvas.hasAttribute("data-signing")) { canvas.setAttribute("data-signing", ""); setUp(canvas); }
    });
  }
  init(document);
  // The signing form brought in later by htmx (the contract page's #signing, once the key terms are explained)
  document.addEventListener("htmx:load", function (event) { init(event.target); });
  // A refused signing came back at #sign-error: the error takes the focus, so that it is read out where the person is.
  var error = document.getElementById("sign-error");
  if (error) { error.focus(); }
})();
