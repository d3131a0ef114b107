/* Face check: camera preview, a random challenge (blink, turn left/right), a few frames per step, one
   neutral selfie; sent as one multipart POST with the CSRF header. Falls back to a file input. */
(function () {
  "use strict";
  var FRAMES_PER_STEP = 4, STEP_MS = 1800, NEUTRAL_MS = 1200;

  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function text(root, key) {
    var t = root.querySelector("template[data-texts]");
    var el = t && t.content.querySelector('[data-t="' + key + '"]');
    return el ? el.textContent : key;
  }
  function grab(video) {
    var canvas = document.createElement("canvas");
    var w = video.videoWidth || 640, h = video.videoHeight || 480;
    var scale = Math.min(1, 960 / Math.max(w, h));
    canvas.width = Math.round(w * scale); canvas.height = Math.round(h * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", 0.9); });
  }
  function csrf() {
    var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    return headers["X-CSRFToken"] || "";
  }

  async function run(root) {
    var video = root.querySelector("[data-video]"), prompt = root.querySelector("[data-prompt]");
    var button = root.querySelector("[data-start]");
    var steps = (root.getAttribute("data-challenge") || "").split(",").filter(Boolean);
    var stream;
    button.disabled = true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user", width: 1280, height: 960 }, audio: false });
    } catch (e) {
      prompt.textContent = text(root, "nocamera");
      button.disabled = false;
      return;
    }
    video.hidden = false;
    root.classList.add("filming");
    // the instruction, the picture and the progress fit a 360×640 screen together: bring them all into view
    root.scrollIntoView({ block: "start", behavior: "instant" });
    video.srcObject = stream;
    await video.play().catch(function () {});
    var form = new FormData();
    prompt.textContent = text(root, "start");
    await sleep(NEUTRAL_MS);
    form.append("frame:neutral", await grab(video), "neutral.jpg");
    for (var i = 0; i < steps.length; i++) {
      var step = steps[i];
      prompt.textContent = text(root, step);
      var li = root.querySelector('[data-step="' + step + '"]');
      if (li) { li.classList.add("current"); }
      for (var n = 0; n < FRAMES_PER_STEP; n++) {
        await sleep(STEP_MS / FRAMES_PER_STEP);
        form.append("frame:" + step, await grab(video), step + n + ".jpg");
      }
      if (li) { li.classList.remove("current"); li.classList.add("done"); }
    }
    prompt.textContent = text(root, "start");
    await sleep(600);
    form.append("selfie", await grab(video), "selfie.jpg");
    stream.getTracks().forEach(function (t) { t.stop(); });
    root.classList.remove("filming");
    video.hidden = true;
    prompt.textContent = text(root, "sending");
    var html = "";
    try {
      var response = await fetch(root.getAttribute("data-post"), {
        method: "POST", body: form, credentials: "same-origin",
        headers: { "X-CSRFToken": csrf(), "HX-Request": "true" }
      });
      html = await response.text();
    } catch (e) {
      html = "";
    }
    var section = document.getElementById("face");
    var holder = document.createElement("div");
    holder.innerHTML = html;
    var fresh = holder.querySelector("#face");
    if (!fresh) {  // the network failed, or an error page came back: say so and let the person try again
      prompt.textContent = text(root, "failed");
      button.disabled = false;
      return;
    }
    if (section && fresh) {
      section.replaceWith(fresh);
      if (window.htmx) { window.htmx.process(fresh); }
      bind();
    }
  }

  function bind() {
    document.querySelectorAll("[data-camera]").forEach(function (root) {
      var button = root.querySelector("[data-start]");
      if (!button || button.dataset.bound) { return; }
      button.dataset.bound = "1";
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        root.querySelector("[data-prompt]").textContent = text(root, "nocamera");
        button.hidden = true;
        return;
      }
      button.addEventListener("click", function () { run(root); });
    });
  }
  document.addEventListener("DOMContentLoaded", bind);
})();
