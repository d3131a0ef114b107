/* /verify: the visitor's browser checks the evidence-log proof itself, trusting nothing the server computed.
 * 0. The opened record (the clear entry, shown because the visitor holds the signed file) must be the signing
 *    of this file: one of the signings we log (SIGNINGS: the contract, its handover record, a settlement
 *    certificate, a schedule annex), its sha256 the file's.
 * 1. Recompute the commitment SHA-256("leaseline.cn/evidence/commitment/v1" 0x00 || salt || entry), the public
 *    leaf {"commitment":"<hex>","v":2} and its leaf hash SHA-256(0x00 || leaf) (contract/ledger/commitments.py),
 *    then the Merkle root from it and its audit path (RFC 9162 §2.1.3.2), with the browser's own SHA-256
 *    (WebCrypto); compare with the signed checkpoint's root.
 * 2. Check the checkpoint's Ed25519 signature over its body (the C2SP checkpoint text plus the timestamp
 *    line, as contract/ledger/checkpoint.py signs it) with the log's public key shown on the page.
 * The verdict goes into [data-proof-result] (role=status). A browser without Ed25519 in WebCrypto gets steps
 * 0 and 1 and a plain note for step 2. */
(function () {
  "use strict";
  var box = document.querySelector("[data-proof]");
  if (!box) { return; }
  var out = box.querySelector("[data-proof-result]");

  function hex(text) {
    var bytes = new Uint8Array(text.length / 2);
    for (var i = 0; i < bytes.length; i++) { bytes[i] = parseInt(text.substr(2 * i, 2), 16); }
    return bytes;
  }
  function b64(text) {
    var raw = atob(text), bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes;
  }
  function toHex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }
  function concat(parts) {
    var size = parts.reduce(function (n, p) { return n + p.length; }, 0), out = new Uint8Array(size), at = 0;
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }
  function sha256(data) {
    return crypto.subtle.digest("SHA-256", data).then(function (d) { return new Uint8Array(d); });
  }
  var TAG = new TextEncoder().encode("leaseline.cn/evidence/commitment/v1\u0000");
  /* the public leaf of an opened entry: its commitment in the one canonical JSON spelling */
  async function leafOf(entry, salt) {
    var commitment = await sha256(concat([TAG, salt, entry]));
    return new TextEncoder().encode('{"commitment":"' + toHex(commitment) + '","v":2}');
  }
  // the evidence kinds that record the signing of a document (contract/ledger: contract, handover,
  // servicing_documents)
  var SIGNINGS = ["contract_signed", "handover_signed", "settlement_certificate_signed", "schedule_annex_signed"];
  function recordsThisFile(entry) {
    try {
      var record = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(entry));
      return SIGNINGS.indexOf(record.kind) >= 0 && record.data.sha256 === box.dataset.fileSha256;
    } catch (e) {
      return false;
    }
  }
  function node(left, right) {  // SHA-256(0x01 || left || right)
    var data = new Uint8Array(65);
    data[0] = 1; data.set(left, 1); data.set(right, 33);
    return crypto.subtle.digest("SHA-256", data).then(function (d) { return new Uint8Array(d); });
  }
  /* RFC 9162 §2.1.3.2: the root from a leaf hash, its index, the tree size and the audit path. */
  async function rootFrom(leaf, index, size, path) {
    if (index >= size) { return null; }
    var fn = index, sn = size - 1, r = leaf;
    for (var i = 0; i < path.length; i++) {
      if (sn === 0) { return null; }
      var p = path[i];
      if (fn % 2 === 1 || fn === sn) {
        r = await node(p, r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await node(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 ? r : null;
  }
  async function signatureHolds() {
    var body = box.dataset.origin + "\n" + box.dataset.checkpointSize + "\n" +
      btoa(String.fromCharCode.apply(null, hex(box.dataset.root))) + "\ntimestamp " + box.dataset.timestamp + "\n";
    try {
      var key = await crypto.subtle.importKey("raw", b64(box.dataset.publicKey), { name: "Ed25519" }, false,
                                              ["verify"]);
      return await crypto.subtle.verify({ name: "Ed25519" }, key, b64(box.dataset.signature),
                                        new TextEncoder().encode(body));
    } catch (e) {
      return null;  // no Ed25519 in this browser's WebCrypto
    }
  }
  function say(ok, key) {
    var line = document.createElement("p");
    line.className = ok === true ? "ok" : ok === false ? "bad" : "small";
    line.dataset.check = key;
    line.dataset.passed = String(ok);
    line.textContent = (ok === true ? "✓ " : ok === false ? "✗ " : "") + box.dataset["say" + key + (
      ok === true ? "Ok" : ok === false ? "Bad" : "Unknown")];
    out.appendChild(line);
  }
  async function check() {
    if (!window.crypto || !crypto.subtle) { out.textContent = box.dataset.sayNoCrypto; return; }
    var path = [];
    box.querySelectorAll("[data-path-hash]").forEach(function (li) { path.push(hex(li.dataset.pathHash)); });
    var entry = b64(box.dataset.entry);
    say(recordsThisFile(entry), "Entry");
    var leaf = await sha256(concat([new Uint8Array([0]), await leafOf(entry, hex(box.dataset.salt))]));
    var root = await rootFrom(leaf, Number(box.dataset.index), Number(box.dataset.treeSize), path);
    say(root !== null && toHex(root) === box.dataset.root && box.dataset.treeSize === box.dataset.checkpointSize,
        "Root");
    say(await signatureHolds(), "Signature");
    out.dataset.state = "done";
  }
  check();
})();
