// The ID card step (pwa/templates/applications/id_card.html, issue 17 §10): each side's chosen photo is shown in the
// card's outline, with 重拍 (retake: the picker again, the new photo replaces the old), and which side it shows is
// asked at once of the server (id_card_side.check: a reduced copy, nothing stored there), so that a back chosen for
// the front is said before the upload ("这张是国徽面，请拍人像面"), with an offer to use it as the other side.
// While a photo is known to be of the wrong side the upload button waits. The reduced copy the check looked at
// takes the camera's file's place in its input, so the upload sends it (~0.2 MB, not 3–5 MB: issue 17 §3, the
// ID step's time); a browser that cannot decode the file or set an input's files uploads the file itself, which
// the server reduces. Without JavaScript the form posts both photos as it always did, and the server checks
// everything on upload either way.
(function () {
  "use strict";
  var LONGEST = 1280;  // px: nothing needs more (the server reads the card at 856 × 540, and finds it in the photo)
  var answers = new WeakMap();  // File → {front: answer, back: answer}: a photo moved or chosen again is not re-sent
  var asked = new WeakMap();  // slot → the File its latest question is about (an older answer is ignored)
  var copies = new WeakSet();  // the reduced copies this page made: not reduced again

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }
  function formOf(el) { return el.closest("form[data-id-card]"); }
  function slots(form) { return Array.prototype.slice.call(form.querySelectorAll("[data-side]")); }
  function inputOf(slot) { return slot.querySelector("input[type=file]"); }
  function otherSlot(slot) {
    return slots(formOf(slot)).filter(function (s) { return s !== slot; })[0];
  }

  // {blob: a JPEG of at most LONGEST px, upright (the camera's EXIF orientation applied), smaller: whether the photo
  // was larger}; the file itself if the browser cannot decode it (the server then says what is wrong with it)
  async function reduced(file) {
    try {
      var bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
      var scale = Math.min(1, LONGEST / Math.max(bitmap.width, bitmap.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      if (bitmap.close) bitmap.close();
      var blob = await new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", 0.9); });
      return { blob: blob || file, smaller: !!blob && scale < 1 };
    } catch (e) {
      return { blob: file, smaller: false };
    }
  }

  // the photo to check and upload: a photo larger than LONGEST px is replaced in its input by its reduced copy (the
  // upload then sends that), unless another photo was chosen meanwhile or the browser cannot set an input's files
  async function shrunk(slot, file) {
    if (copies.has(file)) return { blob: file, file: file };
    var made = await reduced(file);
    if (!made.smaller) return { blob: made.blob, file: file };
    var input = inputOf(slot);
    if (!input.files || input.files[0] !== file) return { blob: made.blob, file: file };
    try {
      var name = (file.name || "photo").replace(/\.[^.]*$/, "") + ".jpg";
      var copy = new File([made.blob], name, { type: "image/jpeg", lastModified: file.lastModified });
      var list = new DataTransfer();
      list.items.add(copy);
      input.files = list.files;
      copies.add(copy);
      return { blob: copy, file: copy };
    } catch (e) {
      return { blob: made.blob, file: file };  // the upload sends the camera's file: the server reduces it
    }
  }

  function say(slot, state, message) {
    var verdict = slot.querySelector("[data-verdict]");
    slot.dataset.state = state;
    verdict.className = "id-verdict id-verdict-" + state;
    verdict.textContent = message || "";
    verdict.hidden = !message;
    var swap = slot.querySelector("[data-swap]");
    swap.hidden = state !== "wrong";
    gate(formOf(slot));
  }

  // the upload waits while a photo is known to be of the other side (the server would refuse it after the read)
  function gate(form) {
    var wrong = form.querySelector("[data-side][data-state=wrong]");
    var button = form.querySelector("button[type=submit]");
    var note = form.querySelector("[data-blocked-note]");
    if (button) button.disabled = !!wrong;
    if (note) {
      note.textContent = wrong ? form.dataset.blocked : "";
      note.hidden = !wrong;
    }
  }

  function preview(slot, file) {
    var img = slot.querySelector("[data-preview]");
    if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
    delete img.dataset.url;
    slot.querySelector("[data-actions]").hidden = !file;
    slot.classList.toggle("id-side-chosen", !!file);
    if (!file) {
      img.hidden = true;
      img.removeAttribute("src");
      return;
    }
    img.dataset.url = URL.createObjectURL(file);
    img.src = img.dataset.url;
    img.hidden = false;
  }

  function show(slot, answer) {
    if (answer.ok) say(slot, "ok", answer.message);
    else if (answer.code === "wrong_side") say(slot, "wrong", answer.message);
    else say(slot, "retake", answer.message);
  }

  async function check(slot, file) {
    var side = slot.dataset.side;
    var known = answers.get(file);
    if (known && known[side]) { show(slot, known[side]); return; }
    asked.set(slot, file);
    say(slot, "checking", formOf(slot).dataset.checking);
    var photo = await shrunk(slot, file);
    if (asked.get(slot) !== file || !slot.isConnected) return;  // another photo was chosen meanwhile
    file = photo.file;  // the reduced copy, when it took the camera's file's place
    asked.set(slot, file);
    var answer = null, status = 0;
    try {
      var data = new FormData();
      data.append("side", side);
      data.append("photo", photo.blob, "photo.jpg");
      var response = await fetch(formOf(slot).dataset.sideUrl, {
        method: "POST", body: data, credentials: "same-origin", headers: { "X-CSRFToken": csrf() }
      });
      status = response.status;
      if (/json/.test(response.headers.get("Content-Type") || "")) answer = await response.json();
    } catch (e) {
      answer = null;  // offline, or the page went away: the upload checks it
    }
    if (asked.get(slot) !== file || !slot.isConnected) return;  // another photo was chosen meanwhile
    if (status === 200 && answer) {
      var kept = answers.get(file) || {};
      kept[side] = answer;
      answers.set(file, kept);
      show(slot, answer);
    } else if (status === 422 && answer && answer.message) {
      say(slot, "retake", answer.message);  // not a photo we can use (empty, too small, not an image)
    } else {
      say(slot, "unchecked", (answer && answer.message) || formOf(slot).dataset.unchecked);
    }
  }

  function chosen(slot) {
    var input = inputOf(slot);
    var file = input.files && input.files[0];
    asked.delete(slot);
    preview(slot, file || null);
    if (file) {
      check(slot, file);
    } else {
      say(slot, "empty", "");
    }
  }

  // the two sides' photos change places (the back was chosen for the front, or both were exchanged)
  function swap(slot) {
    var other = otherSlot(slot);
    var mine = inputOf(slot), theirs = inputOf(other);
    try {
      var a = new DataTransfer(), b = new DataTransfer();
      if (theirs.files && theirs.files[0]) a.items.add(theirs.files[0]);
      if (mine.files && mine.files[0]) b.items.add(mine.files[0]);
      mine.files = a.files;
      theirs.files = b.files;
    } catch (e) {
      slot.querySelector("[data-swap]").hidden = true;  // a browser that cannot move files: retake is left
      return;
    }
    chosen(slot);
    chosen(other);
    (other.querySelector("[data-verdict]") || other).scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("form[data-id-card] input[type=file]")) return;
    chosen(input.closest("[data-side]"));
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("form[data-id-card] [data-retake], form[data-id-card] [data-swap]");
    if (!button) return;
    var slot = button.closest("[data-side]");
    if (button.hasAttribute("data-retake")) inputOf(slot).click();  // the picker again: the new photo replaces this one
    else swap(slot);
  });
  // a page restored from the back-forward cache shows what its inputs still hold
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-id-card] [data-side]").forEach(function (slot) {
      if (inputOf(slot).files && inputOf(slot).files.length) chosen(slot);
    });
  });
})();
