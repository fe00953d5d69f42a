// hcpg-sandbox console: plain JavaScript, no libraries, talks to the JSON API.
"use strict";
const $ = (id) => document.getElementById(id);
const tokenBox = $("token");
tokenBox.value = localStorage.getItem("hcpg-sandbox-token") || "";
tokenBox.addEventListener("change", () => {
  localStorage.setItem("hcpg-sandbox-token", tokenBox.value);
  ready().then(() => { refresh(); benchList(); loadScenarios(); });
});

async function api(method, path, body) {
  const headers = {};
  if (tokenBox.value) headers["Authorization"] = "Bearer " + tokenBox.value;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { json = { text }; }
  return { status: r.status, json };
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---------------------------------------------------------------- readiness
let profile = "";
async function ready() {
  const r = await api("GET", "/ready");
  profile = (r.json && r.json.profile) || "?";
  $("profile").textContent = "profile: " + profile;
  $("ready").textContent = r.status === 200 ? "ready" : (r.status === 401 ? "token needed" : "not ready");
  $("ready").className = "pill " + (r.status === 200 ? "up" : "down");
  document.querySelectorAll("button.pg").forEach((b) => { b.disabled = profile !== "postgres"; });
}

// ---------------------------------------------------------------- demos
const DETAIL_SKIP = new Set(["step", "source", "latency_ms", "value", "ok", "rows"]);
function showFlow(title, r) {
  $("result-title").textContent = title + " (HTTP " + r.status + (r.json.flow ? ", flow " + r.json.flow : "") + ")";
  const st = $("result-status");
  const ok = r.status === 200 && r.json.ok !== false;
  st.textContent = ok ? "OK" : "FAILED" + (r.json.error ? ": " + r.json.error : "");
  st.className = ok ? "ok" : "bad";
  const tb = $("result-steps").querySelector("tbody");
  tb.textContent = "";
  (r.json.steps || []).forEach((s, i) => {
    const tr = el("tr", s.ok === false ? "bad" : "ok");
    tr.dataset.step = s.step;
    tr.appendChild(el("td", "n", String(i + 1)));
    tr.appendChild(el("td", "step", s.step));
    tr.appendChild(el("td", "source src-" + (s.source || ""), s.source || ""));
    tr.appendChild(el("td", "latency", s.latency_ms !== undefined ? s.latency_ms.toFixed(3) : ""));
    let v = s.value !== undefined ? String(s.value) : "";
    if (s.value === undefined && s.rows)
      v = s.rows.map((row) => Object.keys(row).map((k) => k + "=" + row[k]).join(" ")).join("; ");
    tr.appendChild(el("td", "value", v));
    const d = {};
    Object.keys(s).forEach((k) => { if (!DETAIL_SKIP.has(k)) d[k] = s[k]; });
    tr.appendChild(el("td", "details", Object.keys(d).length ? JSON.stringify(d) : ""));
    tb.appendChild(tr);
  });
  if (!r.json.steps) {
    const tr = el("tr");
    tr.appendChild(el("td", "details", JSON.stringify(r.json)));
    tb.appendChild(tr);
  }
}

document.querySelectorAll("button[data-demo]").forEach((b) => {
  b.addEventListener("click", async () => {
    b.disabled = true;
    $("result-status").textContent = "running…";
    $("result-status").className = "";
    try {
      const r = await api("POST", b.dataset.demo, {});
      showFlow(b.textContent, r);
    } finally {
      b.disabled = b.classList.contains("pg") && profile !== "postgres";
      refresh();
    }
  });
});

$("btn-query").addEventListener("click", async () => {
  const table = $("q-table").value;
  const r = await api("POST", "/demo/query", { table, id: +$("q-id").value, node: $("q-node").value });
  if (r.status === 200) r.json = { ok: r.json.ok, steps: [Object.assign({ step: "query " + table }, r.json)] };
  showFlow("Query " + table, r);
  refresh();
});

// ---------------------------------------------------------------- raw ops
document.querySelectorAll("button[data-op]").forEach((b) => {
  b.addEventListener("click", async () => {
    const op = b.dataset.op;
    const key = $("op-key").value, value = $("op-value").value;
    const tags = $("op-tags").value.split(",").map((t) => t.trim()).filter((t) => t);
    const node = $("op-node").value;
    let r;
    if (op === "clock") r = await api("POST", "/cache/clock/advance", { ms: 1000 });
    else if (op === "flush") r = await api("POST", "/cache/flush", { node });
    else if (op === "invalidate-tag") r = await api("POST", "/cache/invalidate-tag", { tag: tags[0] || "", node });
    else {
      const body = { key, node };
      if (op === "put") { body.value = value; body.tags = tags; body.ttl_ms = +$("op-ttl").value; }
      if (op === "get-or-load") {
        if (value) body.value = value;
        body.tags = tags; body.ttl_ms = +$("op-ttl").value; body.delay_ms = +$("op-delay").value;
        body.fail = $("op-fail").checked;
      }
      r = await api("POST", "/cache/" + op, body);
    }
    $("op-out").textContent = "HTTP " + r.status + "\n" + JSON.stringify(r.json, null, 1);
    refresh();
  });
});

// ---------------------------------------------------------------- counters + chart
const history = []; // {t, hits, misses, loads}
function drawChart() {
  const c = $("chart"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const rates = [];
  for (let i = 1; i < history.length; i++) {
    const a = history[i - 1], b = history[i], dt = Math.max((b.t - a.t) / 1000, 0.001);
    rates.push({ hits: (b.hits - a.hits) / dt, misses: (b.misses - a.misses) / dt, loads: (b.loads - a.loads) / dt });
  }
  const max = Math.max(1, ...rates.map((r) => Math.max(r.hits, r.misses, r.loads)));
  g.strokeStyle = "#eceff2"; g.fillStyle = "#68707c"; g.font = "10px sans-serif";
  for (let i = 0; i <= 4; i++) {
    const y = 10 + (c.height - 20) * i / 4;
    g.beginPath(); g.moveTo(30, y); g.lineTo(c.width, y); g.stroke();
    const v = max * (4 - i) / 4;
    g.fillText(max < 10 ? v.toFixed(1) : String(Math.round(v)), 0, y + 3);
  }
  const series = [["hits", "#2e7dd7"], ["misses", "#e8910c"], ["loads", "#8a4fd8"]];
  series.forEach(([k, color]) => {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    rates.forEach((r, i) => {
      const x = 30 + (c.width - 30) * i / Math.max(1, 59);
      const y = c.height - 10 - (c.height - 20) * r[k] / max;
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  });
}

async function counters() {
  const r = await api("GET", "/cache/stats");
  if (r.status !== 200) return;
  const tb = $("counters").querySelector("tbody");
  tb.textContent = "";
  ["a", "b"].forEach((n) => {
    const s = r.json[n], tr = el("tr");
    tr.id = "counters-" + n;
    [s.cache, s.hits, s.misses, s.loads, (s.hit_ratio * 100).toFixed(1) + "%", s.entries, s.bus_state]
      .forEach((v, i) => tr.appendChild(el("td", ["node", "hits", "misses", "loads", "ratio", "entries", "bus"][i], String(v))));
    tb.appendChild(tr);
  });
  const a = r.json.a, b = r.json.b;
  history.push({ t: Date.now(), hits: a.hits + b.hits, misses: a.misses + b.misses, loads: a.loads + b.loads });
  if (history.length > 61) history.shift();
  drawChart();
}

// ---------------------------------------------------------------- events
async function events() {
  const p = new URLSearchParams();
  ["kind", "key", "tag", "flow"].forEach((f) => { const v = $("ev-" + f).value.trim(); if (v) p.set(f, v); });
  p.set("limit", $("ev-limit").value || "60");
  const r = await api("GET", "/demo/events?" + p.toString());
  if (r.status !== 200) return;
  const ol = $("events");
  ol.textContent = "";
  r.json.events.slice().reverse().forEach((e) => {
    const li = el("li", "k-" + e.kind,
      e.t_ms.toFixed(1).padStart(9) + " ms  " + e.cache.padEnd(9) + " " + e.kind.padEnd(14) + " " +
      (e.origin || "").padEnd(8) + " " + e.subject + (e.flow ? "  [flow " + e.flow + "]" : ""));
    li.value = e.id;
    ol.appendChild(li);
  });
}

// ---------------------------------------------------------------- benchmark
let benchCount = 0;
async function benchList() {
  const r = await api("GET", "/demo/bench");
  if (r.status !== 200) return;
  const tb = $("b-runs").querySelector("tbody");
  tb.textContent = "";
  const selA = $("b-a"), selB = $("b-b"), va = selA.value, vb = selB.value;
  selA.textContent = ""; selB.textContent = "";
  r.json.runs.forEach((x) => {
    const tr = el("tr");
    [x.id, x.label, x.params.distribution, x.params.requests, x.params.concurrency,
     x.latency_us.p50.toFixed(2), x.latency_us.p95.toFixed(2), x.latency_us.p99.toFixed(2),
     Math.round(x.throughput_per_s), (x.hit_ratio * 100).toFixed(1) + "%"]
      .forEach((v) => tr.appendChild(el("td", null, String(v))));
    tb.appendChild(tr);
    [selA, selB].forEach((s) => { const o = el("option", null, "#" + x.id + " " + x.label); o.value = x.id; s.appendChild(o); });
  });
  const n = r.json.runs.length;
  if (n !== benchCount && n >= 2) { // new runs: compare the last two
    selA.value = r.json.runs[n - 2].id; selB.value = r.json.runs[n - 1].id;
  } else if (n >= 1) { selA.value = va || r.json.runs[0].id; selB.value = vb || r.json.runs[n - 1].id; }
  benchCount = n;
}
$("b-run").addEventListener("click", async () => {
  $("b-run").disabled = true;
  $("b-out").textContent = "running…";
  try {
    const r = await api("POST", "/demo/bench", {
      requests: +$("b-req").value, concurrency: +$("b-conc").value, keys: +$("b-keys").value,
      distribution: $("b-dist").value, label: $("b-label").value });
    $("b-out").textContent = "HTTP " + r.status + "\n" + JSON.stringify(r.json, null, 1);
  } finally { $("b-run").disabled = false; benchList(); }
});
$("b-compare").addEventListener("click", async () => {
  const r = await api("POST", "/demo/bench/compare", { a: +$("b-a").value, b: +$("b-b").value });
  if (r.status !== 200) { $("b-out").textContent = "HTTP " + r.status + " " + JSON.stringify(r.json); return; }
  const d = r.json.delta_pct;
  $("b-out").textContent = "verdict: " + r.json.verdict + "\n" +
    "p50 " + d.p50.toFixed(1) + "%  p95 " + d.p95.toFixed(1) + "%  p99 " + d.p99.toFixed(1) +
    "%  throughput " + d.throughput.toFixed(1) + "%\n" + r.json.note;
});

// ---------------------------------------------------------------- scenarios
let scenarios = [];
async function loadScenarios() {
  const r = await api("GET", "/demo/scenarios");
  if (r.status !== 200) return;
  scenarios = r.json.scenarios;
  const sel = $("sc-pick");
  sel.textContent = "";
  scenarios.forEach((s, i) => { const o = el("option", null, s.file); o.value = i; sel.appendChild(o); });
  showScenario();
}
function showScenario() {
  const s = scenarios[+$("sc-pick").value];
  if (s) $("sc-text").value = JSON.stringify(s.scenario, null, 2);
}
$("sc-pick").addEventListener("change", showScenario);
$("sc-run").addEventListener("click", async () => {
  let sc;
  try { sc = JSON.parse($("sc-text").value); } catch (e) { $("sc-status").textContent = "not JSON: " + e.message; return; }
  $("sc-status").textContent = "running…";
  const r = await api("POST", "/demo/scenario/run", { scenario: sc });
  const ol = $("sc-out");
  ol.textContent = "";
  if (r.status !== 200) { $("sc-status").textContent = "HTTP " + r.status + " " + (r.json.error || ""); return; }
  $("sc-status").textContent = (r.json.ok ? "PASSED" : "FAILED") + " — " + r.json.passed + " passed, " +
    r.json.failed + " failed, " + (r.json.skipped || 0) + " skipped";
  r.json.steps.forEach((s) => {
    const li = el("li", s.ok ? "ok" : "bad", (s.skipped ? "SKIP " : s.ok ? "PASS " : "FAIL ") + s.name +
      (s.failures && s.failures.length ? " — " + s.failures.join("; ") : ""));
    ol.appendChild(li);
  });
  refresh();
});

// ---------------------------------------------------------------- polling
async function refresh() { await Promise.all([counters(), events()]); }
ready().then(() => { refresh(); benchList(); loadScenarios(); });
setInterval(() => { refresh().catch(() => {}); }, 1000);
