/* Draws every <canvas data-chart="line|bar|scatter" data-source="json-script-id" data-path="a.b">.
   Data comes from Django's json_script (never HTML), shaped {labels: [...], datasets: [{label, data}]}. */
(function () {
  "use strict";
  var PALETTE = ["#1f4fbf", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c", "#0c8599", "#e67700", "#495057",
    "#5c940d", "#a61e4d", "#364fc7", "#087f5b"];

  function pick(obj, path) {
    if (!path) return obj;
    return path.split(".").reduce(function (o, k) { return o == null ? o : o[k]; }, obj);
  }

  function draw(canvas) {
    var src = document.getElementById(canvas.dataset.source);
    if (!src) return;
    var data = pick(JSON.parse(src.textContent), canvas.dataset.path);
    var box = canvas.closest(".chart-box");
    if (!data || !data.datasets || data.datasets.length === 0) {
      if (box) box.insertAdjacentHTML("afterend", '<p class="empty">No data to chart yet.</p>');
      canvas.remove();
      return;
    }
    if (typeof window.Chart === "undefined") {
      if (box) box.insertAdjacentHTML("afterend", '<p class="chart-fallback">Charts need Chart.js (run <code>npm install</code>).</p>');
      return;
    }
    var type = canvas.dataset.chart || "line";
    var datasets = data.datasets.map(function (ds, i) {
      var colour = ds.color || PALETTE[i % PALETTE.length];
      return Object.assign({ borderColor: colour, backgroundColor: colour + (type === "bar" ? "cc" : "33"),
        borderWidth: 2, pointRadius: type === "scatter" ? 4 : 0, tension: 0.25, spanGaps: true }, ds);
    });
    var yLabel = canvas.dataset.ylabel || "";
    var xLabel = canvas.dataset.xlabel || "";
    var chart = new window.Chart(canvas, {
      type: type,
      data: { labels: data.labels, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: type === "scatter" ? "nearest" : "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
        scales: {
          x: Object.assign({ title: { display: !!xLabel, text: xLabel } }, type === "scatter" ? { type: "linear" } : { ticks: { maxTicksLimit: 12 } }),
          y: { title: { display: !!yLabel, text: yLabel }, beginAtZero: canvas.dataset.zero === "1" }
        }
      }
    });
    var points = datasets.reduce(function (n, ds) { return n + ds.data.filter(function (v) { return v !== null; }).length; }, 0);
    canvas.dataset.points = String(points);
    canvas.setAttribute("role", "img");
    return chart;
  }

  window.BMSCharts = { draw: draw };
  function init() { document.querySelectorAll("canvas[data-chart]").forEach(draw); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
