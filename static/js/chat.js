/* Chat over the WebSocket ws/chat/<session>/: token events grow the answer, tool_call events list the
   tools, the final event carries the authoritative answer and its metadata. Everything from the server is
   inserted as text (textContent), never as HTML. Falls back to POST /api/v1/chat when the socket is down. */
(function () {
  "use strict";
  var form = document.getElementById("chat-form");
  if (!form) return;
  var log = document.getElementById("chat-log");
  var input = document.getElementById("chat-input");
  var send = document.getElementById("chat-send");
  var status = document.getElementById("chat-status");
  var conn = document.getElementById("conn-state");
  var sessionId = form.dataset.session;
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var ws = null, current = null, pending = [];
  var chartCount = 0;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function scroll() { log.scrollTop = log.scrollHeight; }
  function setConn(text, cls) { conn.textContent = text; conn.className = "badge " + cls; }

  function bubble(role, text) {
    var b = el("div", "msg msg-" + role);
    b.dataset.role = role;
    b.appendChild(el("span", "msg-text", text || ""));
    log.appendChild(b);
    scroll();
    return b;
  }

  function findSeries(obj, depth) {
    if (!obj || typeof obj !== "object" || depth > 4) return null;
    if (Array.isArray(obj.points) && obj.points.length) return obj;
    for (var k in obj) { var s = findSeries(obj[k], depth + 1); if (s) return s; }
    return null;
  }
  function findLinks(obj, out, depth) {
    if (!obj || typeof obj !== "object" || depth > 4) return out;
    for (var k in obj) {
      var v = obj[k];
      if (typeof v === "string" && /url|link|download/i.test(k) && /^(\/|https?:\/\/)/.test(v)) out.push(v);
      else if (typeof v === "object") findLinks(v, out, depth + 1);
    }
    return out;
  }
  function point(p) {
    if (Array.isArray(p)) return { x: String(p[0]).slice(0, 10), y: p[1] };
    return { x: String(p.period || p.period_start || p.start || p.label || "").slice(0, 10), y: p.mean !== undefined ? p.mean : p.value };
  }

  function chartFor(b, series, name) {
    if (typeof window.Chart === "undefined" || !window.BMSCharts) return;
    var pts = series.points.map(point);
    var id = "chat-chart-data-" + (++chartCount);
    var script = document.createElement("script");
    script.type = "application/json";
    script.id = id;
    script.textContent = JSON.stringify({ labels: pts.map(function (p) { return p.x; }),
      datasets: [{ label: series.target || name || "series", data: pts.map(function (p) { return p.y; }) }] });
    var box = el("div", "chart-box small");
    var canvas = document.createElement("canvas");
    canvas.dataset.chart = "line";
    canvas.dataset.source = id;
    canvas.setAttribute("aria-label", "Chart of " + (series.target || name || "the series"));
    box.appendChild(canvas);
    b.appendChild(script);
    b.appendChild(box);
    window.BMSCharts.draw(canvas);
  }

  function toolList(b) {
    var list = b.querySelector(".tool-calls");
    if (!list) { list = el("div", "tool-calls"); b.appendChild(list); }
    return list;
  }

  function decorate(b, meta) {
    meta = meta || {};
    var old = b.querySelector(".tool-calls"); if (old) old.remove();
    var calls = meta.tool_calls || [];
    var list = toolList(b);
    calls.forEach(function (c) {
      var d = el("details", "tool-call");
      d.appendChild(el("summary", null, "Tool: " + c.name + (c.error ? " (failed)" : "")));
      d.appendChild(el("div", "hint", "Arguments"));
      d.appendChild(el("pre", "mono", JSON.stringify(c.arguments || {}, null, 2)));
      d.appendChild(el("div", "hint", c.error ? "Error" : "Data"));
      d.appendChild(el("pre", "mono", JSON.stringify(c.error || c.result, null, 2)));
      list.appendChild(d);
      var series = findSeries(c.result, 0);
      if (series) chartFor(b, series, c.name);
      findLinks(c.result, [], 0).forEach(function (href) {
        var a = el("a", "btn btn-secondary btn-small", "Download export");
        a.href = href; a.setAttribute("download", "");
        b.appendChild(a);
      });
    });
    var m = el("div", "msg-meta");
    var model = meta.model_used || "";
    if (model === "offline" || meta.offline) m.appendChild(el("span", "badge badge-offline", "offline"));
    else if (model) m.appendChild(el("span", "badge", model));
    if (meta.cache_hit) m.appendChild(el("span", "badge badge-cached", "cached"));
    if (meta.grounding && meta.grounding.replaced) m.appendChild(el("span", "badge badge-warn", "checked against data"));
    if (meta.tokens_used !== undefined) m.appendChild(el("span", null, meta.tokens_used + " tokens"));
    if (meta.latency_ms !== undefined) m.appendChild(el("span", null, Math.round(meta.latency_ms) + " ms"));
    if (calls.length) m.appendChild(el("span", null, calls.length + " tool call" + (calls.length > 1 ? "s" : "")));
    b.appendChild(m);
    scroll();
  }

  function count(b, name) { b.dataset[name] = String(Number(b.dataset[name] || 0) + 1); }

  function onEvent(ev) {
    if (!current) current = bubble("assistant", "");
    var text = current.querySelector(".msg-text");
    if (ev.type === "token") count(current, "tokenEvents");
    if (ev.type === "tool_call") count(current, "toolEvents");
    if (ev.type === "token") {
      text.textContent += ev.text || "";
      status.textContent = "Answering…";
    } else if (ev.type === "tool_call") {
      var item = el("div", "hint tool-live", "Calling " + ev.name + "(" + JSON.stringify(ev.arguments || {}) + ")" + (ev.cached ? " · cached" : ""));
      toolList(current).appendChild(item);
      status.textContent = "Looking up data with " + ev.name + "…";
    } else if (ev.type === "final") {
      text.textContent = ev.response;
      decorate(current, ev.metadata);
      finish("");
    } else if (ev.type === "error") {
      text.textContent = (ev.error && ev.error.message) || "Something went wrong.";
      current.classList.add("alert-error");
      finish("");
    }
    scroll();
  }

  function finish(msg) {
    current = null;
    send.disabled = false;
    status.textContent = msg;
    input.focus();
    if (pending.length) ask(pending.shift());
  }

  function viaHttp(message) {
    fetch(form.dataset.api, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ message: message, session_id: sessionId })
    }).then(function (r) { return r.json(); }).then(function (body) {
      if (body.error) onEvent({ type: "error", error: body.error });
      else onEvent({ type: "final", response: body.response, metadata: body.metadata });
    }).catch(function () { onEvent({ type: "error", error: { message: "The server could not be reached." } }); });
  }

  function ask(message) {
    send.disabled = true;
    bubble("user", message);
    current = bubble("assistant", "");
    status.textContent = "Thinking…";
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ message: message }));
    else viaHttp(message);
  }

  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(proto + location.host + "/ws/chat/" + encodeURIComponent(sessionId) + "/");
    ws.onopen = function () { setConn("live", "badge-ok"); };
    ws.onclose = function (e) {
      // 4401/4403/4404: the server refused this socket and says why (chat/consumers.py).
      var refused = e.code >= 4400 && e.code < 4500 && e.reason;
      setConn(refused ? "offline: " + e.reason : "offline (HTTP fallback)", "badge-warn");
      ws = null;
    };
    ws.onmessage = function (e) { try { onEvent(JSON.parse(e.data)); } catch (err) { /* ignore malformed */ } };
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var message = input.value.trim();
    if (!message) return;
    input.value = "";
    if (current) pending.push(message); else ask(message);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });

  // Past answers: add their tool calls and badges from the stored metadata.
  var history = JSON.parse(document.getElementById("chat-history").textContent || "[]");
  var bubbles = log.querySelectorAll(".msg");
  history.forEach(function (m, i) { if (m.role === "assistant" && bubbles[i]) decorate(bubbles[i], m.metadata); });
  connect();
  input.focus();
})();
