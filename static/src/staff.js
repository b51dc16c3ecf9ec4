// The staff organization page: draws each meter's daily chart (Chart.js, static/vendor) from the
// JSON the server rendered beside it. Without JavaScript the page shows the same figures as a
// table per chart. Unlike the portal's, nothing here is live: staff sessions have no usage socket.
(function () {
  "use strict";
  if (!window.Chart) return;
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    const source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    const data = JSON.parse(source.textContent);
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{
          label: data.label,
          // Chart positions need numbers; the exact figures are the server's text (table).
          data: data.values.map(function (v) { return v === null ? null : Number(v); }),
          backgroundColor: "#1f4b99",
        }],
      },
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } } },
    });
  });
})();
