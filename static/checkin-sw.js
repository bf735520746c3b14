// The check-in service worker (served as /admin/checkin-sw.js, scope /admin/checkin): the
// check-in pages and the site's static files come from the network when there is one (and
// are cached then), from the cache when there is not. Posts, the attendee list (kept in
// IndexedDB by checkin.js) and everything else go straight to the network.
"use strict";
var CACHE = "door-checkin-v1";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (e) { e.waitUntil(self.clients.claim()); });

// The check-in page asks for its own page and files to be cached.
self.addEventListener("message", function (e) {
  var urls = e.data && Array.isArray(e.data.cache) ? e.data.cache : [];
  var own = urls.filter(function (u) { return typeof u === "string" && u.charAt(0) === "/"; });
  var reply = function (cached) {
    if (e.ports && e.ports[0]) e.ports[0].postMessage({ cached: cached });
  };
  e.waitUntil(caches.open(CACHE)
    .then(function (c) { return c.addAll(own); })
    .then(function () { reply(true); }, function () { reply(false); }));
});

self.addEventListener("fetch", function (e) {
  var req = e.request;
  if (req.method !== "GET") return;
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  var page = /^\/admin\/checkin(\/\d+)?$/.test(url.pathname);
  if (!page && url.pathname.indexOf("/static/") !== 0) return;
  e.respondWith(
    fetch(req).then(function (res) {
      // A redirect (to the login page) is not the page asked for: not cached.
      if (res.ok && !res.redirected && res.type === "basic") {
        var copy = res.clone();
        caches.open(CACHE).then(function (c) { return c.put(req, copy); });
      }
      return res;
    }).catch(function () {
      return caches.match(req).then(function (hit) {
        return hit || caches.match(url.pathname, { ignoreSearch: true }).then(function (any) {
          return any || new Response("Offline, and this page is not on this device yet.", { status: 503, headers: { "Content-Type": "text/plain; charset=utf-8" } });
        });
      });
    })
  );
});
