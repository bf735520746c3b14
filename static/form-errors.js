// A form that came back with messages: focus its error summary (the page scrolls to it, and
// a screen reader reads it), and let each of its links move the focus to the field itself.
(function () {
  "use strict";
  var summary = document.querySelector("[data-error-summary]");
  if (!summary) return;
  summary.focus();
  summary.addEventListener("click", function (e) {
    var link = e.target.closest("a[href^='#']");
    if (!link) return;
    var field = document.getElementById(link.getAttribute("href").slice(1));
    if (!field) return;
    e.preventDefault();
    field.focus();
    field.scrollIntoView({ block: "center" });
  });
})();
