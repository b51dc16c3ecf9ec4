// Live usage on the organization page: the server renders the figures; this keeps them fresh
// over the websocket (/ws/usage/), reconnecting with backoff. Without JavaScript the page works.
(function () {
  const section = document.getElementById("usage");
  if (!section || !("WebSocket" in window)) return;
  const status = section.querySelector("[data-live-status]");
  let delay = 1000;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + section.dataset.ws);
    socket.onopen = function () { delay = 1000; if (status) status.textContent = "live"; };
    socket.onmessage = function (message) {
      const data = JSON.parse(message.data);
      if (data.type !== "usage") return;
      for (const [code, value] of Object.entries(data.meters)) {
        const cell = section.querySelector('[data-meter="' + CSS.escape(code) + '"]');
        if (cell) cell.textContent = value === null ? "—" : value;
      }
    };
    socket.onclose = function () {
      if (status) status.textContent = "reconnecting…";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
