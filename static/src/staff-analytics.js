// The staff analytics page: draws its charts (Chart.js, static/vendor) from the JSON the server
// rendered beside each canvas. The page's tables hold the exact figures; without JavaScript they
// are all there is.
(function () {
  "use strict";
  const palette = ["#1f4b99", "#2e8b57", "#6a5acd", "#e69500", "#c0392b"];

  function brand() {
    return getComputedStyle(document.documentElement).getPropertyValue("--brand").trim() || palette[0];
  }

  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    if (!window.Chart) return;
    const source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    const data = JSON.parse(source.textContent);
    const line = canvas.dataset.chart === "chart-mrr";
    new window.Chart(canvas, {
      type: line ? "line" : "bar",
      data: {
        labels: data.labels,
        datasets: data.datasets.map(function (set, i) {
          return {
            label: set.label,
            // Chart positions need numbers; the exact figures are the server's text (tables).
            data: set.values.map(function (v) { return v === null ? null : Number(v); }),
            backgroundColor: data.datasets.length > 1 ? palette[i % palette.length] : brand(),
            borderColor: data.datasets.length > 1 ? palette[i % palette.length] : brand(),
          };
        }),
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { legend: { display: data.datasets.length > 1 } },
        scales: {
          x: { stacked: !!data.stacked, ticks: { autoSkip: true, maxRotation: 0 } },
          y: { stacked: !!data.stacked, beginAtZero: true },
        },
      },
    });
  });
})();
