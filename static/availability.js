// Live seats-left on an event page: listens to the server's availability stream and updates
// the numbers, sold-out states and quantity limits. Without JavaScript the page shows the
// numbers as they were when it loaded.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.EventSource) return;
  var source = new EventSource(script.getAttribute("data-source"));
  source.addEventListener("availability", function (msg) {
    var data;
    try { data = JSON.parse(msg.data); } catch (e) { return; }
    Object.keys(data.ticket_types || {}).forEach(function (id) {
      var left = data.ticket_types[id];
      var item = document.querySelector('[data-ticket-type="' + id + '"]');
      if (!item) return;
      var counter = item.querySelector('[data-seats-left="' + id + '"]');
      if (counter) counter.textContent = String(left);
      var input = item.querySelector('input[type="number"]');
      if (input) {
        var max = parseInt(item.getAttribute("data-max"), 10) || left;
        input.max = String(Math.min(max, left));
      }
      if (item.classList.contains("state-on_sale") || item.classList.contains("state-sold_out")) {
        item.classList.toggle("state-sold_out", left === 0);
        item.classList.toggle("state-on_sale", left > 0);
      }
    });
    var baskets = document.querySelector("[data-in-baskets]");
    if (baskets && typeof data.in_baskets === "number") {
      var n = data.in_baskets;
      baskets.hidden = n === 0;
      baskets.textContent = n === 0 ? "" : n + (n === 1 ? " seat is" : " seats are") +
        " in other buyers' baskets. Seats that are not bought in time become free again.";
    }
  });
  // The link this page was opened with is no longer the event's: stop listening.
  source.addEventListener("closed", function () { source.close(); });
  window.addEventListener("pagehide", function () { source.close(); });
})();
