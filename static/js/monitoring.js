/* Fills in the worker row after the page rendered (a worker ping may take up to a second). */
(function () {
  "use strict";
  var cell = document.getElementById("workers-state");
  if (!cell) return;
  fetch(cell.dataset.url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (s) {
    var badge = document.createElement("span");
    badge.className = "badge " + (s.ok ? "badge-ok" : "badge-bad");
    badge.textContent = s.ok ? "ok" : "failing";
    cell.replaceChildren(badge);
    var detail = document.getElementById("workers-detail");
    detail.textContent = s.detail + (s.workers && s.workers.length ? ": " + s.workers.join(", ") : "");
  }).catch(function () { cell.textContent = "unknown"; });
})();
