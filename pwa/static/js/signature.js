// The customer's handwritten signature: drawn with a finger or a pen on a <canvas data-signature>, kept as a
// PNG data URL in the form's hidden "signature" field (restored after a failed attempt, so nothing is lost).
(function () {
  "use strict";
  function setUp(canvas) {
    var form = canvas.closest("form");
    var field = form.querySelector("input[name=signature]");
    var clear = form.querySelector("[data-signature-clear]");
    var ctx = canvas.getContext("2d");
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
    form.addEventListener("submit", save);
  }
  document.querySelectorAll("canvas[data-signature]").forEach(setUp);
  // A refused signing came back at #sign-error: the error takes the focus, so that it is read out where the person is.
  var error = document.getElementById("sign-error");
  if (error) { error.focus(); }
})();
