// The portal dashboard: draws each meter's daily chart (Chart.js, static/vendor) from the JSON the
// server rendered beside it, and keeps the current period live. The live socket (/ws/usage/)
// says when the organization's usage changed; the panel is then fetched again with htmx, so the
// figures, the priced spend and the charts all come from the server as on first load. Without
// JavaScript the page shows the same figures, with a table per chart.
(function () {
  "use strict";
  const status = document.querySelector("[data-live-status]");
  let socket = null;
  let delay = 1000;
  let inFlight = false;
  let again = false;
  let reconnecting = false;

  function brand() {
    return getComputedStyle(document.documentElement).getPropertyValue("--brand").trim() || "#1f4b99";
  }

  function drawCharts(root) {
    if (!window.Chart) return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      const data = JSON.parse(source.textContent);
      const existing = window.Chart.getChart(canvas);
      if (existing) existing.destroy();
      new window.Chart(canvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: [{
            label: data.label,
            // Chart positions need numbers; the exact figures are the server's text (table).
            data: data.values.map(function (v) { return v === null ? null : Number(v); }),
            backgroundColor: brand(),
          }],
        },
        options: {
          animation: false,
          maintainAspectRatio: false,
          plugins: { legend: { display: false } },
          scales: { y: { beginAtZero: true }, x: { ticks: { autoSkip: true, maxRotation: 0 } } },
        },
      });
    });
  }

  function panel() { return document.getElementById("usage-panel"); }

  function refresh() {
    const current = panel();
    if (!current || !current.dataset.refresh || !window.htmx) return;
    if (inFlight) { again = true; return; }
    inFlight = true;
    window.htmx.ajax("GET", current.dataset.refresh, { target: "#usage-panel", swap: "outerHTML" }).finally(function () {
      inFlight = false;
      if (again) { again = false; refresh(); }
    });
  }

  function say(text) { if (status) status.textContent = text; }

  function connect() {
    const current = panel();
    if (!current || !current.dataset.ws || !("WebSocket" in window)) { say(""); return; }
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + current.dataset.ws);
    socket.onopen = function () { delay = 1000; say("Live: figures update as your usage arrives."); };
    socket.onmessage = function (message) {
      const data = JSON.parse(message.data);
      // The figures sent on connect matter only after a reconnect (events may have come
      // meanwhile); on first load the page is already current.
      if (data.type === "usage" && (data.changed || reconnecting)) { reconnecting = false; refresh(); }
    };
    socket.onclose = function (event) {
      socket = null;
      if (event.code === 4401 || event.code === 4403) { say("Live updates stopped: sign in again."); return; }
      if (!panel() || !panel().dataset.ws) return;  // switched to a past period
      say("Reconnecting…");
      reconnecting = true;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!window.Chart) return;
    event.detail.target.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const chart = window.Chart.getChart(canvas);
      if (chart) chart.destroy();
    });
  });
  document.addEventListener("htmx:afterSettle", function () {
    const current = panel();
    if (!current) return;
    drawCharts(current);
    // Past periods do not change: the socket is only open while the current one is shown.
    if (current.dataset.ws && !socket) connect();
    if (!current.dataset.ws && socket) { socket.onclose = null; socket.close(); socket = null; say(""); }
  });
  drawCharts(document);
  connect();
})();
