// Leaseline service worker: precache the shell, network-first for pages, cache-first for static assets,
// and the offline page when the network is gone. Bump VERSION when the shell changes.
//
// Personal data never enters these caches: pages, htmx fragments, documents and the API always come from the
// network and are never stored; only /static/ files and the shell below are. The shell is fetched without
// cookies (credentials "omit"): the worker installs or updates while someone may be signed in, and the
// offline page rendered for them would carry their name (and that session's form token) into Cache Storage,
// which outlives sign-out. v2: drops a v1 cache that may hold such a page.
const VERSION = "leaseline-shell-v2";
const SHELL = [
  "/offline",
  "/static/css/app.css",
  "/static/js/app.js",
  "/static/vendor/htmx-2.0.11.min.js",
  "/static/icons/icon-192.png",
  "/static/icons/icon-512.png",
  "/static/icons/maskable-512.png",
  "/static/icons/favicon-32.png",
  "/manifest.webmanifest",
];

self.addEventListener("install", (event) => {
  const anonymous = SHELL.map((path) => new Request(path, { credentials: "omit" }));
  event.waitUntil(caches.open(VERSION).then((cache) => cache.addAll(anonymous)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith("/api/")) return;

  if (url.pathname.startsWith("/static/")) {
    // Stale-while-revalidate: answer from the cache at once, refresh it from the network behind, so a
    // deployment's CSS/JS reaches installed apps on the next load without bumping VERSION by hand.
    event.respondWith(
      caches.open(VERSION).then((cache) =>
        cache.match(request).then((hit) => {
          const fresh = fetch(request)
            .then((response) => {
              // what the server marks no-store (anything personal, bff/caching.py) is not kept here either
              const noStore = /(^|,)\s*no-store\b/i.test(response.headers.get("Cache-Control") || "");
              if (response.ok && !noStore) cache.put(request, response.clone());
              return response;
            })
            .catch(() => hit);
          if (hit) {
            event.waitUntil(fresh);
            return hit;
          }
          return fresh;
        })
      )
    );
    return;
  }
  if (request.mode === "navigate") {
    // Pages: always the network (quotes must be fresh); the offline page when it is unreachable.
    event.respondWith(fetch(request).catch(() => caches.match("/offline")));
  }
});
