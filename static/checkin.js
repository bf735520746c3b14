// Door check-in in the browser. Without this file the page works by its forms; with it:
// - the phone camera scans QR codes where the browser has BarcodeDetector;
// - the event's attendee list is downloaded into IndexedDB and the page itself cached (by
//   the service worker /admin/checkin-sw.js), so that when the network drops, tickets are
//   still checked here: the QR signature verified with the event's Ed25519 public key
//   (WebCrypto), the decision mirroring ticketing_domain::door::decide, valid scans queued;
// - when the network is back, the queue is sent to /admin/checkin/<event>/sync (the first
//   scan to reach the server wins; a later one is reported as a duplicate here).
(function () {
  "use strict";
  var code = document.getElementById("code");
  var form = document.getElementById("door-form");
  var root = document.getElementById("door");

  // Camera scanning.
  var button = document.getElementById("scan");
  var video = document.getElementById("camera");
  if (button && video && code && "BarcodeDetector" in window && navigator.mediaDevices) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
        video.srcObject = stream;
        video.hidden = false;
        video.play();
        var timer = setInterval(function () {
          detector.detect(video).then(function (found) {
            if (!found.length) return;
            clearInterval(timer);
            stream.getTracks().forEach(function (t) { t.stop(); });
            video.hidden = true;
            code.value = found[0].rawValue;
            form.requestSubmit();
          }).catch(function () {});
        }, 300);
      }).catch(function () { button.hidden = true; });
    });
  }

  if (!root || !form || !code || !("indexedDB" in window)) return;
  var eventId = root.getAttribute("data-event");
  var csrf = root.getAttribute("data-csrf");
  var banner = document.getElementById("door-offline");
  var state = document.getElementById("door-offline-state");

  function deviceId() {
    var id = localStorage.getItem("door-device");
    if (!id) {
      id = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).slice(0, 64);
      localStorage.setItem("door-device", id);
    }
    return id;
  }

  // IndexedDB: "lists" (the attendee list per event) and "queue" (offline scans to send).
  var dbPromise = new Promise(function (resolve, reject) {
    var req = indexedDB.open("door-checkin", 1);
    req.onupgradeneeded = function () {
      var db = req.result;
      db.createObjectStore("lists", { keyPath: "event" });
      db.createObjectStore("queue", { keyPath: "id", autoIncrement: true }).createIndex("event", "event");
    };
    req.onsuccess = function () { resolve(req.result); };
    req.onerror = function () { reject(req.error); };
  });

  function tx(store, mode, work) {
    return dbPromise.then(function (db) {
      return new Promise(function (resolve, reject) {
        var t = db.transaction(store, mode);
        var result = work(t.objectStore(store));
        t.oncomplete = function () { resolve(result && "result" in result ? result.result : result); };
        t.onerror = function () { reject(t.error); };
      });
    });
  }

  function getList() { return tx("lists", "readonly", function (s) { return s.get(eventId); }); }
  function queued() { return tx("queue", "readonly", function (s) { return s.index("event").getAll(eventId); }); }

  function say(text) {
    if (state) state.textContent = text;
  }

  // The counts from the downloaded list and this device's queued scans.
  function renderCounts(list, queue) {
    var count = document.getElementById("door-count");
    if (!count || !list) return;
    var mine = (queue || []).map(function (q) { return normalize(q.code.split(".")[0]); });
    var usable = list.attendees.filter(function (a) { return a.usability === "valid"; });
    var isIn = function (a) { return !!a.checked_in_at || mine.indexOf(a.code) >= 0; };
    count.textContent = "";
    count.appendChild(el("strong", null, String(usable.filter(isIn).length)));
    count.appendChild(document.createTextNode(" of " + usable.length + " checked in"));
    var types = document.querySelector(".door-types");
    if (!types) return;
    var names = [];
    usable.forEach(function (a) { if (names.indexOf(a.ticket_type) < 0) names.push(a.ticket_type); });
    types.textContent = "";
    names.forEach(function (n) {
      var of = usable.filter(function (a) { return a.ticket_type === n; });
      types.appendChild(el("li", null, n + ": " + of.filter(isIn).length + " of " + of.length));
    });
  }

  function download() {
    return fetch("/admin/checkin/" + eventId + "/attendees.json", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) {
        if (!res.ok || (res.headers.get("Content-Type") || "").indexOf("json") < 0) throw new Error("list not available");
        return res.json();
      })
      .then(function (list) {
        return tx("lists", "readwrite", function (s) { s.put({ event: eventId, list: list }); }).then(function () {
          root.setAttribute("data-list", "ready");
          queued().then(function (q) { renderCounts(list, q); });
          say("Attendee list downloaded (" + list.attendees.length + " tickets): this device can check tickets in offline.");
          return list;
        });
      });
  }

  // Asks the service worker to cache this event's page and its files (the worker fetches
  // them, so that leaving the page does not cut the caching short); true once they are.
  function cacheShell() {
    if (!("serviceWorker" in navigator)) return Promise.resolve(false);
    var urls = ["/admin/checkin/" + eventId];
    document.querySelectorAll("link[rel=stylesheet], link[rel=manifest], script[src]").forEach(function (el) {
      urls.push(el.getAttribute("href") || el.getAttribute("src"));
    });
    return navigator.serviceWorker.ready.then(function (reg) {
      return new Promise(function (resolve) {
        var channel = new MessageChannel();
        channel.port1.onmessage = function (e) { resolve(!!(e.data && e.data.cached)); };
        reg.active.postMessage({ cache: urls }, [channel.port2]);
        setTimeout(function () { resolve(false); }, 10000);
      });
    });
  }

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register(root.getAttribute("data-sw"), { scope: "/admin/checkin" }).catch(function () {});
  }

  // The same normalisation as ticketing_core::tokens::normalize_code.
  function normalize(typed) {
    return typed.replace(/[\s-]/g, "").toUpperCase().replace(/O/g, "0").replace(/[IL]/g, "1");
  }

  function fromB64url(s) {
    var b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
    var out = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
    return out;
  }

  // true / false for a signed payload; null when this browser cannot verify Ed25519.
  function verify(publicKey, codeText, sig) {
    var bytes;
    try { bytes = fromB64url(sig); } catch (e) { return Promise.resolve(false); }
    if (bytes.length !== 64) return Promise.resolve(false);
    return crypto.subtle.importKey("raw", fromB64url(publicKey), { name: "Ed25519" }, false, ["verify"])
      .then(function (key) { return crypto.subtle.verify({ name: "Ed25519" }, key, bytes, new TextEncoder().encode(codeText)); })
      .catch(function () { return null; });
  }

  // Mirrors ticketing_domain::door::decide (and DoorResult::message).
  function decide(list, a, already) {
    if (!a) return { kind: "unknown", tone: "red", verdict: "Refused", message: "No ticket has this code." };
    if (a.usability !== "valid") return { kind: a.usability, tone: "red", verdict: "Refused", message: a.refused_message };
    if (already) return { kind: "already", tone: "red", verdict: "Already checked in", message: "Already checked in: " + a.name + " (at " + already + ")." };
    if (a.waiver === "unsigned") {
      return list.policy === "sign_at_door"
        ? { kind: "waiver_unsigned", tone: "amber", verdict: "Valid — waiver not signed", message: "Valid — waiver not signed: " + a.name + " must sign the waiver before entry. Signing needs the network: sign when it is back, or refuse entry." }
        : { kind: "waiver_unsigned", tone: "amber", verdict: "Refused — waiver not signed", message: "Entry refused until the waiver is signed: " + a.name + "." };
    }
    return { kind: "valid", tone: "green", verdict: "Valid", message: "Valid: " + a.name + " — welcome!" };
  }

  function when(iso, tz) {
    try {
      return new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short", timeZone: tz }).format(new Date(iso));
    } catch (e) { return iso; }
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function show(r, a) {
    var old = document.getElementById("door-result");
    if (old) old.remove();
    var panel = el("section", "door-result door-" + r.tone);
    panel.id = "door-result";
    panel.setAttribute("aria-labelledby", "door-result-title");
    var inner = el("div", "door-result-inner");
    var icon = el("p", "door-icon", r.tone === "green" ? "✓" : r.tone === "amber" ? "!" : "✕");
    icon.setAttribute("aria-hidden", "true");
    var title = el("h2", "door-verdict", r.verdict + " (offline)");
    title.id = "door-result-title";
    var msg = el("p", "door-message", r.message);
    msg.setAttribute("data-result", r.kind);
    msg.setAttribute("data-tone", r.tone);
    msg.setAttribute("data-offline", "true");
    var who = el("dl", "door-who");
    [["Attendee", a ? a.name : "—"], ["Ticket", a && a.ticket_type ? a.ticket_type : "—"]].forEach(function (p) {
      var d = el("div");
      d.appendChild(el("dt", null, p[0]));
      d.appendChild(el("dd", null, p[1]));
      who.appendChild(d);
    });
    var nextP = el("p", "door-next");
    var next = el("button", "door-next-button", "Next ticket");
    next.type = "button";
    next.id = "door-next";
    next.addEventListener("click", nextTicket);
    nextP.appendChild(next);
    [icon, title, msg, who, nextP].forEach(function (n) { inner.appendChild(n); });
    panel.appendChild(inner);
    root.insertBefore(panel, root.querySelector("#door-offline"));
    next.focus();
  }

  function nextTicket(e) {
    if (e) e.preventDefault();
    var panel = document.getElementById("door-result");
    if (panel) panel.remove();
    code.value = "";
    code.focus();
  }

  var nextLink = document.getElementById("door-next");
  if (nextLink) {
    nextLink.addEventListener("click", function (e) {
      if (!navigator.onLine) nextTicket(e);
    });
  }

  function checkOffline(input) {
    return Promise.all([getList(), queued()]).then(function (got) {
      var stored = got[0];
      var queue = got[1] || [];
      if (!stored) {
        show({ kind: "no_list", tone: "red", verdict: "Cannot check", message: "This device has no attendee list for the event: connect to the network once first." }, null);
        return;
      }
      var list = stored.list;
      var parts = input.trim().split(".");
      var c = normalize(parts[0]);
      var a = list.attendees.find(function (x) { return x.code === c; }) || null;
      var check = parts.length > 1 ? verify(list.public_key, c, parts.slice(1).join(".")) : Promise.resolve(true);
      return check.then(function (genuine) {
        if (genuine === false || (parts.length > 1 && !a && genuine !== true)) {
          show({ kind: "forged", tone: "red", verdict: "Refused", message: "Forged ticket: this QR code's signature is not the event's." }, null);
          return;
        }
        var mine = queue.find(function (q) { return normalize(q.code.split(".")[0]) === c; });
        var already = a && a.checked_in_at ? when(a.checked_in_at, list.event.timezone) : mine ? when(mine.scanned_at, list.event.timezone) : null;
        var r = decide(list, a, already);
        if (r.kind === "valid") {
          return tx("queue", "readwrite", function (s) {
            s.add({ event: eventId, code: input.trim(), scanned_at: new Date().toISOString() });
          }).then(queued).then(function (q) {
            renderCounts(list, q);
            show(r, a);
          });
        }
        show(r, a);
      });
    });
  }

  form.addEventListener("submit", function (e) {
    if (navigator.onLine) return;
    e.preventDefault();
    checkOffline(code.value);
  });

  var syncing = false;
  function sync() {
    if (syncing || !navigator.onLine) return Promise.resolve();
    syncing = true;
    return queued().then(function (queue) {
      if (!queue || !queue.length) return;
      return fetch("/admin/checkin/" + eventId + "/sync", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
        body: JSON.stringify({ device: deviceId(), scans: queue.map(function (q) { return { code: q.code, scanned_at: q.scanned_at }; }) })
      }).then(function (res) {
        if (!res.ok) throw new Error("sync refused: " + res.status);
        return res.json();
      }).then(function (answer) {
        return tx("queue", "readwrite", function (s) { queue.forEach(function (q) { s.delete(q.id); }); }).then(function () {
          banner.hidden = false;
          banner.textContent = "";
          var ok = answer.results.filter(function (r) { return r.outcome === "checked_in"; }).length;
          banner.appendChild(el("p", null, "Offline scans sent: " + answer.results.length + " (" + ok + " checked in)."));
          var ul = el("ul");
          answer.results.filter(function (r) { return r.outcome !== "checked_in"; }).forEach(function (r) {
            var li = el("li", null, r.message);
            li.setAttribute("data-sync", r.outcome);
            ul.appendChild(li);
          });
          if (ul.children.length) banner.appendChild(ul);
          banner.setAttribute("data-synced", String(answer.results.length));
        });
      });
    }).then(function () { return download(); }).catch(function () {}).then(function () { syncing = false; });
  }

  window.addEventListener("online", function () {
    say("Back online: sending offline scans.");
    sync();
  });
  window.addEventListener("offline", function () {
    say("Offline: tickets are checked against this device's attendee list and sent when the network is back.");
  });

  if (navigator.onLine) {
    sync()
      .then(function () { return root.getAttribute("data-list") ? null : download(); })
      .then(cacheShell)
      .then(function (cached) {
        if (!cached) return;
        root.setAttribute("data-offline-ready", "true");
        say("This page and the attendee list are saved on this device: it keeps checking tickets offline.");
      }, function () {});
  } else {
    getList().then(function (s) { say(s ? "Offline: checking against the attendee list on this device." : "Offline, and no attendee list on this device."); });
  }
})();
