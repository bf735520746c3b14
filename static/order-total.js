// The running total under an event's ticket form: for the quantities chosen, one line per
// ticket type ("2 × €30.00 = €60.00") and the sum, updated as the buyer types. Amounts are
// added up in minor units (integers) and only formatted with Intl.NumberFormat. Without
// JavaScript the form's "Update total" button asks the server for the same lines.
(function () {
  "use strict";
  var box = document.querySelector("[data-order-total]");
  if (!box || !window.Intl) return;
  var form = box.closest("form");
  var list = box.querySelector("[data-order-lines]");
  var sumNode = box.querySelector("[data-order-sum]");
  var button = form.querySelector("[data-update-total]");
  if (button) button.hidden = true;
  var formats = {};
  function money(minor, currency) {
    if (!formats[currency]) formats[currency] = new Intl.NumberFormat("en", { style: "currency", currency: currency });
    var f = formats[currency];
    var digits = f.resolvedOptions().maximumFractionDigits;
    return f.format(minor / Math.pow(10, digits));
  }
  function update() {
    var lines = [];
    var sums = {};
    var order = [];
    form.querySelectorAll("[data-ticket-type]").forEach(function (li) {
      var input = li.querySelector("input[type=number]");
      if (!input) return;
      var raw = input.value.trim();
      if (!/^\d+$/.test(raw)) return;
      var qty = parseInt(raw, 10);
      var max = parseInt(li.getAttribute("data-max"), 10);
      if (qty <= 0 || qty > max) return;
      var price = parseInt(li.getAttribute("data-price-minor"), 10);
      var currency = li.getAttribute("data-currency");
      var name = li.querySelector(".tt-name").textContent;
      var line = price * qty;
      if (!(currency in sums)) {
        sums[currency] = 0;
        order.push(currency);
      }
      sums[currency] += line;
      lines.push(name + ": " + qty + " × " + money(price, currency) + " = " + money(line, currency));
    });
    list.textContent = "";
    lines.forEach(function (text) {
      var li = document.createElement("li");
      li.textContent = text;
      list.appendChild(li);
    });
    sumNode.textContent = "";
    if (!order.length) {
      sumNode.textContent = "No tickets chosen yet.";
      return;
    }
    sumNode.appendChild(document.createTextNode("Total: "));
    var strong = document.createElement("strong");
    strong.textContent = order.map(function (c) { return money(sums[c], c); }).join(" + ");
    sumNode.appendChild(strong);
  }
  form.addEventListener("input", update);
  update();
})();
