// rosti web UI: the live parts only. Every page works without this file.
"use strict";

// Copy buttons.
document.addEventListener("click", function (e) {
  var b = e.target.closest("button.copy");
  if (!b || !navigator.clipboard) return;
  navigator.clipboard.writeText(b.dataset.copy).then(function () {
    var label = b.textContent;
    b.textContent = "Copied";
    setTimeout(function () { b.textContent = label; }, 1500);
  });
});

// The log tail: the page shows the last lines; the stream starts with the
// same lines and then follows new ones.
(function () {
  var log = document.getElementById("log");
  if (!log || !window.EventSource) return;
  var max = 1000, fresh = true;
  var src = new EventSource(log.dataset.src);
  src.onmessage = function (e) {
    if (fresh) { log.textContent = ""; fresh = false; }
    var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.appendChild(document.createTextNode(e.data + "\n"));
    while (log.childNodes.length > max) log.removeChild(log.firstChild);
    if (atEnd) log.scrollTop = log.scrollHeight;
  };
  src.onerror = function () { fresh = true; };
})();

// Live parts of a page (an app's status, the jobs and their progress) are
// fetched again every few seconds: elements marked data-refresh take their
// new content from the same page rendered anew.
(function () {
  var parts = document.querySelectorAll("[data-refresh][id]");
  if (!parts.length || !window.fetch || !window.DOMParser) return;
  setInterval(function () {
    if (document.hidden) return;
    fetch(location.pathname, { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) return;
      var next = new DOMParser().parseFromString(html, "text/html");
      parts.forEach(function (el) {
        var fresh = next.getElementById(el.id);
        if (fresh) el.innerHTML = fresh.innerHTML;
      });
    }).catch(function () {});
  }, 5000);
})();
