// The hold timer of the checkout and booking pages ([data-expires-at] inside .hold-timer):
// counts down the minutes and seconds left ("14:32 left"), adds the deadline in the buyer's
// own time zone when it is not the event's ("that is 18:30 your time (Europe/Berlin)"), and
// tells screen readers the time left once a minute (not every second). When time is up the
// timer says so; what was typed into the page stays. The server enforces the deadline
// either way.
(function () {
  "use strict";
  var nodes = Array.prototype.slice.call(document.querySelectorAll("[data-expires-at]"));
  if (!nodes.length) return;
  var buyerZone = "";
  try {
    buyerZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    buyerZone = "";
  }
  var timers = nodes.map(function (node) {
    var box = node.closest(".hold-timer") || node;
    var deadline = Date.parse(node.getAttribute("data-expires-at"));
    var eventZone = box.getAttribute("data-event-tz") || "";
    var slot = box.querySelector("[data-buyer-time]");
    if (slot && buyerZone && eventZone && buyerZone !== eventZone && !isNaN(deadline)) {
      try {
        var clock = new Intl.DateTimeFormat("en-GB", {
          hour: "2-digit",
          minute: "2-digit",
          timeZone: buyerZone,
        }).format(new Date(deadline));
        slot.textContent = ", that is " + clock + " your time (" + buyerZone + ")";
        slot.hidden = false;
      } catch (e) {
        slot.hidden = true;
      }
    }
    return { node: node, box: box, deadline: deadline, live: box.querySelector("[data-left-live]"), minute: -1 };
  });
  function tick() {
    var now = Date.now();
    timers = timers.filter(function (t) {
      var left = Math.max(0, t.deadline - now);
      if (left > 0) {
        var minutes = Math.floor(left / 60000);
        var seconds = Math.floor((left % 60000) / 1000);
        t.node.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
        if (t.live && minutes !== t.minute) {
          // Announced when the minute changes, not at every second.
          if (t.minute !== -1) {
            t.live.textContent = minutes === 0 ? "Less than a minute left on your hold." : minutes + " minute" + (minutes === 1 ? "" : "s") + " left on your hold.";
          }
          t.minute = minutes;
        }
        return true;
      }
      var text = "Your hold has expired and the seats have been released. Nothing was charged.";
      if (document.querySelector("[data-details-form]")) {
        text += " What you typed stays here: send the form to try to hold the seats again.";
      }
      t.box.textContent = text;
      t.box.classList.add("hold-expired");
      t.box.setAttribute("role", "alert");
      return false;
    });
  }
  tick();
  setInterval(tick, 1000);
})();
