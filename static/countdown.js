// Counts down the minutes left on a hold ([data-expires-at]); when time is up, the hold's
// notice says so. The server enforces the deadline either way.
(function () {
  "use strict";
  var nodes = Array.prototype.slice.call(document.querySelectorAll("[data-expires-at]"));
  if (!nodes.length) return;
  function tick() {
    var now = Date.now();
    nodes = nodes.filter(function (node) {
      var left = Math.max(0, Date.parse(node.getAttribute("data-expires-at")) - now);
      if (left > 0) {
        var minutes = Math.floor(left / 60000);
        var seconds = Math.floor((left % 60000) / 1000);
        node.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
        return true;
      }
      var box = node.closest(".hold-timer") || node;
      box.textContent = "Your hold has expired and the seats have been released. Nothing was charged.";
      box.classList.add("hold-expired");
      box.setAttribute("role", "alert");
      return false;
    });
  }
  tick();
  setInterval(tick, 1000);
})();
