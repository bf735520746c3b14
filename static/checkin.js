// Door check-in: scan a ticket's QR code with the phone camera where the browser has
// BarcodeDetector; typing the code always works.
(function () {
  "use strict";
  var button = document.getElementById("scan");
  var video = document.getElementById("camera");
  var code = document.getElementById("code");
  if (!button || !video || !code || !("BarcodeDetector" in window) || !navigator.mediaDevices) return;
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
          code.value = found[0].rawValue;
          code.form.submit();
        }).catch(function () {});
      }, 300);
    }).catch(function () { button.hidden = true; });
  });
})();
