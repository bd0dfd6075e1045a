// jetflow dashboard: renders the JSON snapshots pushed over /ws (see docs/dashboard.md).
// No framework, no build step, nothing loaded from elsewhere. Every value from the stream is
// written with textContent, never as HTML: collection names come from the network.
"use strict";

(function () {
  const state = {
    updates: 0,          // snapshots rendered
    renderTimes: [],     // performance.now() of the last renders (tests read it)
    snapshot: null,      // the last snapshot
    connected: false,
  };
  window.jetflowDashboard = state;

  const $ = (id) => document.getElementById(id);
  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const percent = new Intl.NumberFormat("en-US", { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });

  function fmtInt(value) { return value === null || value === undefined ? "–" : integer.format(value); }
  function fmtRate(value) { return value === null || value === undefined ? "–" : decimal.format(value); }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const sign = seconds < 0 ? "−" : "";
    let s = Math.abs(seconds);
    if (s < 10) return sign + s.toFixed(1) + " s";
    if (s < 120) return sign + Math.round(s) + " s";
    const units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
    const parts = [];
    for (const [name, size] of units) {
      if (s >= size && parts.length < 2) {
        const count = Math.floor(s / size);
        parts.push(count + " " + name);
        s -= count * size;
      }
    }
    return sign + parts.join(" ");
  }

  function setText(id, text) {
    const node = $(id);
    if (node.textContent !== text) node.textContent = text;
  }

  function cell(text, className, field) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    if (field) td.dataset.field = field;
    return td;
  }

  function fillTable(id, rows) {
    const body = $(id).tBodies[0];
    body.replaceChildren(...rows);
  }

  function row(key, cells) {
    const tr = document.createElement("tr");
    tr.dataset.key = key;
    tr.append(...cells);
    return tr;
  }

  function render(snap) {
    state.snapshot = snap;
    state.updates += 1;
    state.renderTimes.push(performance.now());
    if (state.renderTimes.length > 1000) state.renderTimes.shift();

    setText("source", snap.source || "");
    const badge = $("state");
    const stateText = snap.has_source ? snap.state + (snap.error ? ": " + snap.error : "") : "server only";
    setText("state", stateText);
    badge.className = "badge " + (snap.has_source ? snap.state : "");
    setText("updated", "updated " + new Date(snap.now_us / 1000).toLocaleTimeString("en-GB"));
    setText("interval", String(snap.interval_s));

    $("events-panel").hidden = !snap.has_source;
    $("no-source").hidden = !!snap.has_source;
    if (snap.has_source) renderEvents(snap);
    renderServer(snap.server);
    document.body.dataset.tick = String(snap.tick);
    document.body.dataset.state = snap.state;
  }

  function renderEvents(snap) {
    const totals = snap.totals, rates = snap.rates;
    setText("total-events", fmtInt(totals.events));
    setText("other-items", totals.other_items ? "+ " + fmtInt(totals.other_items) + " items that are not events" : "");
    setText("rate-events", fmtRate(rates.events));
    setText("rate-window", "over the last " + rates.window_s.toFixed(1) + " s");
    setText("total-collections", fmtInt(totals.collections));

    const labels = {
      relay: "lag behind the relay",
      jetstream: "lag behind Jetstream",
      event: "age of the latest event",
      wall: "lag (needs relay time)",
    };
    setText("lag-label", labels[snap.time_basis] || "lag");
    if (snap.lag) {
      setText("lag", fmtDuration(snap.lag.lag_s));
      setText("latest-time", "latest event " + (snap.lag.latest_time || ""));
    } else {
      setText("lag", "–");
      setText("latest-time", snap.time_basis === "wall" ? "decode with time=\"relay\"" : "no events yet");
    }

    drawHistory(snap.history);
    setText("history-seconds", String(snap.history.length));

    fillTable("kinds", Object.entries(totals.by_kind).map(([kind, count]) => row(kind, [
      cell(kind, "key", "kind"),
      cell(fmtInt(count), "num", "events"),
      cell(fmtRate(rates.by_kind[kind] || 0), "num", "rate"),
    ])));

    const stack = $("operation-bar");
    stack.replaceChildren(...snap.operations.map((op) => {
      const part = document.createElement("div");
      part.className = "op-" + (["create", "update", "delete"].includes(op.operation) ? op.operation : "other");
      part.style.width = (op.share * 100).toFixed(2) + "%";
      part.title = op.operation + " " + percent.format(op.share);
      return part;
    }));
    fillTable("operations", snap.operations.map((op) => row(op.operation, [
      cell(op.operation, "key", "operation"),
      cell(fmtInt(op.events), "num", "events"),
      cell(percent.format(op.share), "num", "share"),
      cell(fmtRate(op.rate), "num", "rate"),
    ])));

    const most = Math.max(1, ...snap.top_collections.map((c) => c.events));
    fillTable("collections", snap.top_collections.map((c) => {
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = ((c.events / most) * 100).toFixed(2) + "%";
      const barCell = document.createElement("td");
      barCell.className = "bar-cell";
      barCell.append(bar);
      return row(c.collection, [
        cell(c.collection, "key", "collection"),
        cell(fmtInt(c.events), "num", "events"),
        cell(fmtRate(c.rate), "num", "rate"),
        barCell,
      ]);
    }));
  }

  function drawHistory(values) {
    const canvas = $("history");
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth * ratio, height = canvas.clientHeight * ratio;
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    if (!values.length) return;
    const top = Math.max(1, ...values);
    const step = width / Math.max(values.length - 1, 1);
    ctx.beginPath();
    values.forEach((value, index) => {
      const x = index * step, y = height - 4 * ratio - (value / top) * (height - 16 * ratio);
      if (index === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.strokeStyle = "#3b9eff";
    ctx.lineWidth = 2 * ratio;
    ctx.stroke();
    ctx.fillStyle = "#8b98a5";
    ctx.font = 11 * ratio + "px system-ui, sans-serif";
    ctx.fillText("max " + integer.format(top) + "/s", 4 * ratio, 12 * ratio);
  }

  function renderServer(server) {
    const panel = $("server-panel");
    panel.hidden = !server;
    if (!server) return;
    setText("server-url", server.url);
    const status = $("server-status");
    status.textContent = server.ok ? "ok" : "error" + (server.error ? ": " + server.error : "");
    status.className = "badge " + (server.ok ? "ok" : "error");
    setText("server-subscribers", fmtInt(server.subscribers));
    setText("server-relay", server.relay_connected === null ? "–" : server.relay_connected ? "connected" : "disconnected");
    setText("server-emitted-rate", fmtRate(server.emitted_rate));
    setText("server-emitted-total", server.emitted_total === null ? "" : fmtInt(server.emitted_total) + " in all");
    setText("server-dropped", fmtInt(server.dropped_total));
    setText("server-rejected", server.rejected_total === null ? "" : fmtInt(server.rejected_total) + " refused requests");
    const details = [
      ["last relay seq", fmtInt(server.last_seq)],
      ["events delivered (closed connections)", fmtInt(server.delivered_total)],
      ["events replayed from the store", fmtInt(server.replayed_total)],
      ["server memory", server.memory_bytes === null ? "–" : (server.memory_bytes / 1048576).toFixed(1) + " MiB"],
      ["last scrape", server.age_s === null ? "never" : fmtDuration(server.age_s) + " ago"],
    ];
    for (const [reason, count] of Object.entries(server.dropped)) {
      details.push(["dropped: " + reason, fmtInt(count)]);
    }
    fillTable("server-details", details.map(([name, value]) => row(name, [
      cell(name, "", "name"),
      cell(value, "num", "value"),
    ])));
  }

  function setConnection(text, cls) {
    const node = $("connection");
    node.textContent = text;
    node.className = "badge " + cls;
  }

  let retry = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + "/ws");
    socket.onopen = () => {
      retry = 500;
      state.connected = true;
      setConnection("live", "connected");
    };
    socket.onmessage = (message) => {
      try {
        render(JSON.parse(message.data));
      } catch (error) {
        console.error("jetflow dashboard: cannot render a snapshot", error);
      }
    };
    socket.onclose = () => {
      state.connected = false;
      setConnection("disconnected, retrying", "disconnected");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 5000);
    };
  }

  connect();
})();
