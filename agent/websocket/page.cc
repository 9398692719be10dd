#include "agent/websocket/page.h"

namespace edgespool::agent::websocket {

namespace {

// Kept small and dependency-free: plain DOM, textContent only (a payload is
// never parsed as HTML).
constexpr char kPage[] = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgespool</title>
<style>
body{font:14px system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{background:#1f3a5f;color:#fff;padding:10px 16px;display:flex;gap:16px;align-items:center}
header h1{font-size:18px;margin:0}
#conn{padding:2px 8px;border-radius:4px;background:#888}
#conn.open{background:#2e8540}#conn.closed{background:#b3261e}
main{display:grid;grid-template-columns:320px 1fr;gap:12px;padding:12px}
section{background:#fff;border-radius:6px;padding:10px;box-shadow:0 1px 2px #0002}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 6px;border-bottom:1px solid #eee;vertical-align:top}
#messages td.p{font-family:monospace;word-break:break-all}
.src-downlink{color:#1f5fbf}.src-uplink{color:#7a3fb0}
form{display:flex;gap:6px;flex-wrap:wrap;margin-bottom:8px}input{font:inherit;padding:3px}
</style></head><body>
<header><h1>edgespool</h1><span id="node"></span><span id="conn">connecting</span>
<span id="count">0 messages</span></header>
<main>
<section><h2>Status</h2><table id="status"><tbody></tbody></table>
<h2 style="margin-top:12px">Downlink sessions</h2><table id="sessions"><tbody></tbody></table></section>
<section><h2>Live messages</h2>
<form id="settings"><input id="token" type="password" placeholder="token" size="14">
<input id="down" placeholder="downlink filters" size="14"><input id="up" placeholder="uplink filters" size="14">
<button>Connect</button></form>
<table id="messages"><thead><tr><th>source</th><th>seq</th><th>topic</th><th>payload</th></tr></thead>
<tbody></tbody></table><p id="note"></p></section>
</main>
<script>
"use strict";
const params = new URLSearchParams(location.hash.slice(1));
const $ = (id) => document.getElementById(id);
$("token").value = params.get("token") || sessionStorage.getItem("es-token") || "";
$("down").value = params.has("down") ? params.get("down") : "#";
$("up").value = params.has("up") ? params.get("up") : "#";
let ws = null, received = 0, retry = 500, upAcks = false;
const list = (v) => v.split(",").map((s) => s.trim()).filter((s) => s);
function row(tbody, cells, cls) {
  const tr = document.createElement("tr");
  if (cls) tr.className = cls;
  for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
  return tr;
}
function showStatus(st) {
  $("node").textContent = st.node || "";
  const rows = [["online", st.online], ["uplink", st.uplink && st.uplink.state],
    ["pending", st.pending && st.pending.messages], ["sent", st.totals && st.totals.sent],
    ["rate msg/s", st.rate_msgs_per_s], ["journal fill", st.journal && st.journal.fill],
    ["downlink inbox", st.downlink && st.downlink.inbox && st.downlink.inbox.messages],
    ["uptime s", st.uptime_s]];
  const tb = $("status").tBodies[0]; tb.replaceChildren();
  for (const r of rows) tb.appendChild(row(tb, [r[0], String(r[1] === undefined ? "-" : r[1])]));
  const sb = $("sessions").tBodies[0]; sb.replaceChildren();
  for (const s of (st.downlink && st.downlink.sessions) || []) {
    if (!s.name || s.name.startsWith("anonymous-")) continue;
    sb.appendChild(row(sb, [s.name, s.attached ? "attached" : "detached", "at " + s.position, s.inflight + " in flight"]));
  }
}
function showMessage(m) {
  received++;
  $("count").textContent = received + (received === 1 ? " message" : " messages");
  const payload = m.payload !== undefined ? m.payload : "base64:" + m.payload_b64;
  const tb = $("messages").tBodies[0];
  tb.insertBefore(row(tb, [m.source, String(m.seq), m.topic, payload], "src-" + m.source), tb.firstChild);
  while (tb.rows.length > 200) tb.deleteRow(-1);
}
function connect() {
  const token = $("token").value;
  if (token) sessionStorage.setItem("es-token", token);
  const protocols = ["edgespool.v1"];
  if (token) protocols.push("bearer." + token);
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws", protocols);
  ws.onopen = () => {
    retry = 500;
    $("conn").textContent = "connected"; $("conn").className = "open";
    ws.send(JSON.stringify({type: "subscribe", session: params.get("session") || "",
      filters: list($("down").value), uplink: list($("up").value), status: true}));
  };
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === "subscribed") {
      upAcks = "uplink_position" in m;  // a named session's uplink is resumable: acked
    } else if (m.type === "message") {
      showMessage(m);
      if (m.source === "downlink") ws.send(JSON.stringify({type: "ack", seq: m.seq}));
      if (m.source === "uplink" && upAcks) {
        ws.send(JSON.stringify({type: "ack", source: "uplink", seq: m.seq}));
      }
    } else if (m.type === "status") {
      showStatus(m.status);
    } else if (m.type === "dropped") {
      $("note").textContent = m.total + " uplink messages dropped (read too slowly, or no longer stored)";
    } else if (m.type === "error") {
      $("note").textContent = "error: " + m.code + ": " + m.message;
    }
  };
  ws.onclose = (ev) => {
    $("conn").textContent = "closed " + ev.code + (ev.reason ? " " + ev.reason : "");
    $("conn").className = "closed";
    if (ev.code === 4401 || ev.code === 4403) return;  // retrying will not help
    setTimeout(connect, retry); retry = Math.min(retry * 2, 10000);
  };
}
$("settings").onsubmit = (ev) => { ev.preventDefault(); if (ws) { ws.onclose = null; ws.close(); } connect(); };
connect();
</script></body></html>
)html";

}  // namespace

std::string_view PageHtml() { return std::string_view(kPage, sizeof(kPage) - 1); }

}  // namespace edgespool::agent::websocket
