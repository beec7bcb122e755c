/* Progress polling: [data-poll-url] is fetched every 1.5 s (JSON with done/total/percent/status/finished);
   the bar and fields update, and the page reloads once the job has finished so the server renders the result. */
(function () {
  "use strict";
  var box = document.querySelector("[data-poll-url]");
  if (!box || box.dataset.pollDone === "1") return;
  function tick() {
    fetch(box.dataset.pollUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) { setTimeout(tick, 3000); return; }
        var bar = box.querySelector("[data-poll-bar]");
        if (bar && s.percent !== undefined) bar.style.width = s.percent + "%";
        var status = box.querySelector('[data-poll-field="status"]');
        if (status && s.status) { status.textContent = s.status; status.className = "badge badge-" + s.status; }
        var count = box.querySelector('[data-poll-field="count"]');
        if (count && s.total !== undefined) count.textContent = s.done + " / " + s.total;
        if (s.finished) { window.location.reload(); return; }
        setTimeout(tick, 1500);
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 1000);
})();
