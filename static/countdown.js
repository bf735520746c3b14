// Counts down the minutes left on a hold ([data-expires-at]); the server enforces the deadline.
(function () {
  "use strict";
  var nodes = document.querySelectorAll("[data-expires-at]");
  if (!nodes.length) return;
  function tick() {
    var now = Date.now();
    nodes.forEach(function (node) {
      var left = Math.max(0, Date.parse(node.getAttribute("data-expires-at")) - now);
      var minutes = Math.floor(left / 60000);
      var seconds = Math.floor((left % 60000) / 1000);
      node.textContent = left > 0 ? minutes + ":" + (seconds < 10 ? "0" : "") + seconds : "expired — reload the page";
    });
  }
  tick();
  setInterval(tick, 1000);
})();
