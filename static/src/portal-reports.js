// The portal's reports page: draws each meter's chart (Chart.js, static/vendor) from the JSON the
// server rendered beside it, one dataset per group. The exact figures are the table below each
// chart; without JavaScript the page shows the table alone.
(function () {
  "use strict";
  const palette = ["#1f4b99", "#c0392b", "#1b6e34", "#8a4b00", "#6c3483", "#117a8b", "#7f8c8d", "#b7950b", "#2e4053", "#a04000", "#196f3d", "#5b2c6f"];

  function draw() {
    if (!window.Chart) return;
    document.querySelectorAll("canvas[data-report-chart]").forEach(function (canvas) {
      const source = document.getElementById(canvas.dataset.reportChart);
      if (!source) return;
      const data = JSON.parse(source.textContent);
      new window.Chart(canvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: data.datasets.map(function (set, i) {
            return {
              label: set.label,
              // Chart positions need numbers; the exact figures are the server's text (table).
              data: set.values.map(function (v) { return v === null ? null : Number(v); }),
              backgroundColor: palette[i % palette.length],
            };
          }),
        },
        options: {
          animation: false,
          maintainAspectRatio: false,
          plugins: { legend: { display: data.datasets.length > 1 } },
          scales: { x: { stacked: true, ticks: { autoSkip: true, maxRotation: 0 } }, y: { stacked: true, beginAtZero: true } },
        },
      });
      canvas.dataset.drawn = "true";
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
