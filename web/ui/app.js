// Meridian dashboard: a single page over the JSON API (/api/v1). Charts are
// drawn by uPlot. No inline scripts or styles (the page runs under a strict
// Content-Security-Policy); every text goes through textContent.
(function () {
  "use strict";

  var me = null;          // {name, role, via, csrf_token}
  var timer = null;       // auto-refresh
  var renderSeq = 0;      // drops the results of superseded renders
  var charts = [];        // uPlot instances of the current view

  // ---------- DOM helpers ----------
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") el.textContent = v;
        else if (k === "class") el.className = v;
        else if (k === "style") Object.keys(v).forEach(function (s) { el.style[s] = v[s]; });
        else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? "" : v);
      });
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function append(el, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { append(el, x); }); return; }
    el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  function $(id) { return document.getElementById(id); }
  function card(title, body, wide) {
    return h("section", { class: "card" + (wide ? " wide" : ""), "aria-label": title }, h("h2", { text: title }), body);
  }
  function empty(what, how) {
    return h("div", { class: "empty" }, h("b", { text: what }), how ? h("div", null, how) : null);
  }

  // ---------- formatting ----------
  function fmtPct(v, d) { return v === null || v === undefined ? "–" : (v * 100).toFixed(d === undefined ? 2 : d) + " %"; }
  function fmtMs(v) { return v === null || v === undefined ? "–" : v.toFixed(v < 10 ? 2 : 1) + " ms"; }
  function fmtNum(v, d) { return v === null || v === undefined ? "–" : Number(v).toFixed(d || 0); }
  function fmtBytes(v) {
    var u = ["B", "kB", "MB", "GB", "TB", "PB"], i = 0;
    while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
    return v.toFixed(i ? 1 : 0) + " " + u[i];
  }
  function fmtRate(v, unit) {
    var u = ["", "k", "M", "G", "T"], i = 0;
    while (Math.abs(v) >= 1000 && i < u.length - 1) { v /= 1000; i++; }
    return v.toFixed(1) + " " + u[i] + unit;
  }
  function fmtTime(s) { if (!s) return "–"; var d = new Date(s); return isNaN(d) ? "–" : d.getTime() <= 0 ? "never" : d.toISOString().replace("T", " ").slice(0, 19) + "Z"; }
  function fmtDur(sec) {
    if (sec === null || sec === undefined) return "–";
    if (sec < 120) return Math.round(sec) + " s";
    if (sec < 7200) return Math.round(sec / 60) + " min";
    if (sec < 172800) return (sec / 3600).toFixed(1) + " h";
    return (sec / 86400).toFixed(1) + " d";
  }
  function chip(state) { return h("span", { class: "chip " + String(state || "").replace(/[^a-z_]/g, "") , text: state || "?" }); }

  // ---------- routing and state ----------
  function route() {
    var hash = location.hash.replace(/^#\/?/, "");
    var qi = hash.indexOf("?");
    var path = qi < 0 ? hash : hash.slice(0, qi);
    var params = new URLSearchParams(qi < 0 ? "" : hash.slice(qi + 1));
    var parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    return { page: parts[0] || "overview", arg: parts[1] || "", params: params };
  }
  function href(page, arg, changes) {
    var r = route();
    var p = new URLSearchParams(r.params.toString());
    Object.keys(changes || {}).forEach(function (k) {
      if (changes[k] === "" || changes[k] === null) p.delete(k); else p.set(k, changes[k]);
    });
    var qs = p.toString();
    return "#/" + page + (arg ? "/" + encodeURIComponent(arg) : "") + (qs ? "?" + qs : "");
  }
  function setParam(k, v) { location.hash = href(route().page, route().arg, (function () { var o = {}; o[k] = v; return o; })()); }
  // until (RFC 3339, in the route) moves the range back in time: the range
  // picked then ends at that moment (the run timeline links to the SLO "as
  // it was" at each step).
  function untilSec() {
    var u = route().params.get("until"), t = u ? Date.parse(u) : NaN;
    return isNaN(t) ? null : t / 1000;
  }
  function common(extra) {
    var p = route().params, q = new URLSearchParams();
    var until = untilSec();
    if (until !== null) {
      q.set("from", new Date((until - rangeMs() / 1000) * 1000).toISOString().replace(/\.\d+Z$/, "Z"));
      q.set("to", new Date(until * 1000).toISOString().replace(/\.\d+Z$/, "Z"));
    } else q.set("range", p.get("range") || "6h");
    (extra || []).forEach(function (k) { if (p.get(k)) q.set(k, p.get(k)); });
    return q;
  }

  // ---------- API ----------
  function api(method, path, body) {
    var opts = { method: method, credentials: "same-origin", headers: {} };
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    if (method !== "GET" && me && me.csrf_token) opts.headers["X-CSRF-Token"] = me.csrf_token;
    return fetch(path, opts).then(function (resp) {
      return resp.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
        if (resp.status === 401 && path !== "/api/v1/session") { showLogin(); }
        return { status: resp.status, ok: resp.ok, data: data };
      });
    }, function (err) { return { status: 0, ok: false, data: null, error: String(err) }; });
  }
  function get(path, q) { return api("GET", path + (q && q.toString() ? "?" + q.toString() : "")); }
  function errText(r) {
    if (r.data && r.data.error) return r.data.error.message;
    if (r.status === 0) return "server unreachable";
    return "HTTP " + r.status;
  }
  function failed(r, what) {
    return empty(what + " could not be loaded", errText(r));
  }
  // missing: the component serving an endpoint is not enabled.
  function missing(r) { return r.status === 404 || r.status === 405 || r.status === 503; }

  // ---------- charts ----------
  function chartEl(name) { return h("div", { class: "chart", "data-chart": name }); }
  function countPoints(data) {
    var n = 0;
    for (var s = 1; s < data.length; s++) for (var i = 0; i < data[s].length; i++) if (data[s][i] !== null && data[s][i] !== undefined) n++;
    return n;
  }
  function plot(el, opts, data) {
    el.setAttribute("data-points", String(countPoints(data)));
    if (!window.uPlot) { el.appendChild(empty("chart library not loaded", "Reload the page; if it persists, the server's /ui/vendor files are missing (rebuild with make assets).")); return; }
    var width = Math.max(300, el.clientWidth || el.parentNode.clientWidth - 30);
    opts.width = width;
    opts.height = opts.height || 220;
    var u = new window.uPlot(opts, data, el);
    // The chart's own x scale, for the browser tests and for people reading
    // the DOM: what range the axis really spans (seconds).
    el.uplot = u;
    charts.push({ u: u, el: el });
    return u;
  }
  // span is the time range a chart must show, in seconds: the range picked
  // in the filter bar, ending where the answer says it ends (else now); the
  // answer's step_seconds tells where buckets are missing. Every time chart spans exactly this range,
  // whatever its data, until the user zooms in (drag) or out (double-click).
  function span(d) {
    var until = untilSec();
    var to = d && d.to ? new Date(d.to).getTime() / 1000 : until !== null ? until : Date.now() / 1000;
    var from = to - rangeMs() / 1000;
    return { from: from, to: to, step: (d && d.step_seconds) || 0 };
  }
  // withGaps inserts a null after every point followed by a missing bucket,
  // so that a line breaks where nothing was measured (a measured zero stays
  // a zero): [t, col1, col2, …] in, the same shape out.
  function withGaps(data, step) {
    if (!step) return data;
    var out = data.map(function () { return []; });
    var t = data[0];
    for (var i = 0; i < t.length; i++) {
      if (i > 0 && t[i] - t[i - 1] > 1.5 * step) {
        out[0].push(t[i - 1] + step);
        for (var c = 1; c < data.length; c++) out[c].push(null);
      }
      for (var k = 0; k < data.length; k++) out[k].push(data[k][i]);
    }
    return out;
  }
  // xScale is a time scale fixed to sp. uPlot asks the range function for
  // the data's extremes when it autoscales (first draw, double-click) and
  // for the selection when the user zooms: the first gets sp, the second is
  // kept.
  function xScale(sp) {
    return { time: true, range: function (u, min, max) {
      var t = u.data && u.data[0];
      if (min == null || max == null || !t || !t.length || (min === t[0] && max === t[t.length - 1])) return [sp.from, sp.to];
      return [min, max];
    } };
  }
  function timeAxis() { return { stroke: "#5c6577", grid: { stroke: "#eef0f4" } }; }
  function yAxis(label, fmt) {
    return { label: label, stroke: "#5c6577", grid: { stroke: "#eef0f4" }, size: 60,
      values: fmt ? function (u, vals) { return vals.map(fmt); } : undefined };
  }
  window.addEventListener("resize", function () {
    charts.forEach(function (c) { var w = c.el.clientWidth; if (w > 0) c.u.setSize({ width: w, height: c.u.height }); });
  });

  // Smoke chart: median line over bands of the 5–95 and 25–75 percentiles.
  function smokeChart(el, s) {
    var sp = span(s);
    var data = withGaps([s.t, s.p05, s.p25, s.median, s.p75, s.p95], sp.step);
    return plot(el, {
      title: "Latency (median of rounds, 25–75 and 5–95 percentile bands)",
      scales: { x: xScale(sp) },
      series: [{},
        { label: "p5", stroke: "rgba(93,160,255,0.0)", points: { show: false } },
        { label: "p25", stroke: "rgba(93,160,255,0.0)", points: { show: false } },
        { label: "median", stroke: "#1f5fbf", width: 2, points: { show: false } },
        { label: "p75", stroke: "rgba(93,160,255,0.0)", points: { show: false } },
        { label: "p95", stroke: "rgba(93,160,255,0.0)", points: { show: false } }],
      bands: [{ series: [5, 1], fill: "rgba(93,160,255,0.18)" }, { series: [4, 2], fill: "rgba(93,160,255,0.35)" }],
      axes: [timeAxis(), yAxis("ms")]
    }, data);
  }
  // lineChart draws cols over t within sp (span(answer)); see span.
  function lineChart(el, title, t, cols, labels, colors, unit, fmt, extra, sp) {
    sp = sp || span(null);
    var series = [{}];
    cols.forEach(function (c, i) { series.push({ label: labels[i], stroke: colors[i % colors.length], width: 2, points: { show: t.length < 60 } }); });
    var opts = { title: title, scales: { x: xScale(sp) }, series: series, axes: [timeAxis(), yAxis(unit, fmt)] };
    if (extra) extra(opts);
    return plot(el, opts, withGaps([t].concat(cols), sp.step));
  }
  var palette = ["#1f5fbf", "#cf3a3a", "#2e9d57", "#d99a14", "#7b4bc4", "#0f8e9c", "#b84f8c", "#6b7280", "#8c6d1f", "#3355aa"];

  // ---------- filters ----------
  var filtersLoadedFor = null;
  function loadFilters() {
    var range = route().params.get("range") || "6h";
    if (filtersLoadedFor === range) return Promise.resolve();
    return get("/api/v1/filters", new URLSearchParams({ range: range })).then(function (r) {
      if (!r.ok || !r.data) return;
      filtersLoadedFor = range;
      fill("c-region", r.data.regions); fill("c-site", r.data.sites); fill("c-target", r.data.targets);
      syncControls();
    });
  }
  function fill(id, values) {
    var sel = $(id), cur = sel.value;
    while (sel.options.length > 1) sel.remove(1);
    (values || []).forEach(function (v) { sel.appendChild(h("option", { value: v, text: v })); });
    sel.value = cur;
  }
  function syncControls() {
    var p = route().params;
    $("c-range").value = p.get("range") || "6h";
    ["region", "site", "target"].forEach(function (k) {
      var sel = $("c-" + k), v = p.get(k) || "";
      if (v && !Array.prototype.some.call(sel.options, function (o) { return o.value === v; })) sel.appendChild(h("option", { value: v, text: v }));
      sel.value = v;
    });
    $("c-refresh").value = p.get("refresh") || "0";
    Array.prototype.forEach.call(document.querySelectorAll("#nav a"), function (a) {
      var on = a.getAttribute("data-page") === route().page || (route().page === "slo" && a.getAttribute("data-page") === "overview") ||
        (route().page === "run" && a.getAttribute("data-page") === "runs");
      a.classList.toggle("active", on);
      if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
      a.setAttribute("href", href(a.getAttribute("data-page"), "", {}));
    });
  }
  ["range", "region", "site", "target", "refresh"].forEach(function (k) {
    document.addEventListener("DOMContentLoaded", function () {
      $("c-" + k).addEventListener("change", function (e) { setParam(k, e.target.value === "0" && k === "refresh" ? "" : e.target.value); });
    });
  });
  function activeFilters(keys) {
    var p = route().params, out = [];
    keys.forEach(function (k) {
      if (p.get(k)) out.push(h("span", null, k + " = ", h("b", { text: p.get(k) }), " ", h("a", { href: href(route().page, route().arg, (function () { var o = {}; o[k] = ""; return o; })()), "aria-label": "clear " + k, text: "×" }), "  "));
    });
    return out.length ? h("p", { class: "filters-active" }, "Filters: ", out) : null;
  }

  // ---------- pages ----------
  var pages = {};

  pages.overview = function (view, seq) {
    var q = common(["region"]);
    view.appendChild(h("h1", { text: "Overview" }));
    var grid = h("div", { class: "grid" });
    view.appendChild(grid);
    var sloCard = card("SLOs by region: error budget remaining (colour) and 1 h burn rate", h("p", { text: "Loading…" }), true);
    var alertCard = card("Firing alerts", h("p", { text: "Loading…" }));
    var runCard = card("Runbook runs awaiting approval", h("p", { text: "Loading…" }));
    var agentCard = card("Stale agents", h("p", { text: "Loading…" }));
    var probeCard = card("Probe paths: median RTT and loss, source region → target region", h("p", { text: "Loading…" }), true);
    append(grid, [sloCard, alertCard, runCard, agentCard, probeCard]);
    return Promise.all([
      Promise.all([get("/api/v1/slo-status", q), get("/api/v1/slo-status/sparklines", (function () {
        var x = new URLSearchParams(); if (q.get("region")) x.set("region", q.get("region")); x.set("range", "24h"); return x;
      })())]).then(function (rs) { if (seq === renderSeq) replaceBody(sloCard, sloMatrix(rs[0], rs[1])); }),
      get("/api/v1/alerts").then(function (r) { if (seq === renderSeq) replaceBody(alertCard, firingAlerts(r)); }),
      get("/api/v1/runbooks/runs", new URLSearchParams({ state: "awaiting_approval" })).then(function (r) { if (seq === renderSeq) replaceBody(runCard, runList(r, true)); }),
      get("/api/v1/agents").then(function (r) { if (seq === renderSeq) replaceBody(agentCard, agentTable(r, true)); }),
      get("/api/v1/probes/matrix", common(["region", "site", "target"])).then(function (r) { if (seq === renderSeq) replaceBody(probeCard, probeMatrix(r)); })
    ]);
  };
  function replaceBody(c, body) { while (c.childNodes.length > 1) c.removeChild(c.lastChild); append(c, body); }

  function budgetClass(s) {
    if (!s || !s.has_data || s.error_budget_remaining === null) return "c-none";
    var b = s.error_budget_remaining, burn = s.burn_rates && s.burn_rates["1h"];
    if (b <= 0 || (burn !== null && burn !== undefined && burn >= 14.4)) return "c-bad";
    if (b < 0.25 || (burn !== null && burn !== undefined && burn >= 3)) return "c-warn";
    return "c-ok";
  }
  // worstGroup is the SLO's group with data and the least error budget left
  // (then the fastest 1 h burn), or null.
  function worstGroup(name, groups, by) {
    var worst = null;
    groups.forEach(function (g) {
      var s = by[name + "\u0000" + g];
      if (!g || !s || !s.has_data) return;
      var b1 = function (x) { var v = x.burn_rates && x.burn_rates["1h"]; return v === null || v === undefined ? 0 : v; };
      if (!worst || s.error_budget_remaining < worst.error_budget_remaining ||
        (s.error_budget_remaining === worst.error_budget_remaining && b1(s) > b1(worst))) worst = s;
    });
    return worst;
  }
  // sparkline draws values (null: gap) as a small SVG line, the y axis from
  // 0 to max(values, floor); a dashed line marks the page threshold when it
  // is within the scale.
  var svgNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) { var e = document.createElementNS(svgNS, tag); Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); }); return e; }
  function sparkline(values, floor, mark, title) {
    var w = 96, ht = 22, max = floor;
    values.forEach(function (v) { if (v !== null && v > max) max = v; });
    var el = svg("svg", { width: w, height: ht, viewBox: "0 0 " + w + " " + ht, class: "spark", role: "img", "aria-label": title, "data-points": String(values.filter(function (v) { return v !== null; }).length) });
    var y = function (v) { return (ht - 2 - (ht - 4) * Math.min(v, max) / max).toFixed(1); };
    if (mark && mark <= max) el.appendChild(svg("line", { x1: 0, x2: w, y1: y(mark), y2: y(mark), class: "spark-mark" }));
    var run = [];
    var flush = function () { if (run.length > 1) el.appendChild(svg("polyline", { points: run.join(" "), class: "spark-line" })); else if (run.length === 1) { var xy = run[0].split(","); el.appendChild(svg("circle", { cx: xy[0], cy: xy[1], r: 1.5, class: "spark-dot" })); } run = []; };
    values.forEach(function (v, i) {
      if (v === null) { flush(); return; }
      run.push((values.length > 1 ? i * (w - 2) / (values.length - 1) + 1 : w / 2).toFixed(1) + "," + y(v));
    });
    flush();
    var t = document.createElementNS(svgNS, "title"); t.textContent = title; el.appendChild(t);
    return el;
  }
  function sloMatrix(r, spark) {
    var lines = {};
    if (spark && spark.ok && spark.data) (spark.data.series || []).forEach(function (x) { lines[x.slo + "\u0000" + x.group] = x.burn; });
    if (!r.ok) return missing(r) ? empty("No SLO status available.", "The SLO history endpoint is not served: " + errText(r)) : failed(r, "SLO status");
    var st = r.data.statuses || [];
    if (!st.length) return empty("No SLO status yet.", "Define SLOs (the slo section of the configuration, SLO files or OpenSLO) and let the evaluator run: it records one status per SLO and region every cycle.");
    var slos = [], groups = [], by = {};
    st.forEach(function (s) {
      if (slos.indexOf(s.slo) < 0) slos.push(s.slo);
      if (groups.indexOf(s.group) < 0) groups.push(s.group);
      by[s.slo + "\u0000" + s.group] = s;
    });
    groups.sort();
    var t = h("table", { class: "matrix", "data-testid": "slo-matrix" },
      h("thead", null, h("tr", null, h("th", { text: "SLO \\ region" }), groups.map(function (g) { return h("th", { text: g || "(all)" }); }))));
    var tb = h("tbody");
    slos.forEach(function (name) {
      var wg = worstGroup(name, groups, by);
      tb.appendChild(h("tr", null, h("th", null, h("a", { href: href("slo", name, { region: wg ? wg.group : "" }), text: name })),
        groups.map(function (g) {
          var s = by[name + "\u0000" + g];
          if (g === "" && (!s || !s.has_data)) {
            // A grouped SLO has no "(all)" status of its own: show its worst
            // region, linked, rather than "no data".
            var w = worstGroup(name, groups, by);
            if (w) {
              var wb = w.burn_rates ? w.burn_rates["1h"] : null;
              return h("td", { class: "cell " + budgetClass(w), "data-testid": "worst-" + name, title: name + ": worst region " + w.group + ", budget " + fmtPct(w.error_budget_remaining, 1) },
                h("a", { href: href("slo", name, { region: w.group }), text: "worst " + w.group + ": " + fmtPct(w.error_budget_remaining, 0) + (wb === null || wb === undefined ? "" : " · " + wb.toFixed(1) + "×") }));
            }
          }
          if (!s) return h("td", { class: "cell c-none", text: "" });
          var burn = s.burn_rates ? s.burn_rates["1h"] : null;
          var label = s.has_data ? fmtPct(s.error_budget_remaining, 0) + " · " + (burn === null || burn === undefined ? "–" : burn.toFixed(1) + "×") : "no data";
          var ln = lines[name + "\u0000" + g];
          return h("td", { class: "cell " + budgetClass(s), title: name + " in " + g + ": budget " + fmtPct(s.error_budget_remaining, 1) + ", burn 1h " + (burn === null || burn === undefined ? "–" : burn.toFixed(2)) + (s.firing && s.firing.length ? ", firing " + s.firing.join(", ") : "") },
            h("a", { href: href("slo", name, { region: g }) }, h("span", { text: label }), ln ? sparkline(ln, 2, 14.4, "1 h burn rate of " + name + " in " + (g || "(all)") + " over the last 24 h") : null));
        })));
    });
    t.appendChild(tb);
    return [t, h("p", { class: "legend-note", text: "Cell: error budget remaining · burn rate over 1 h, with the 1 h burn over the last 24 h (dashed: the 14.4× page threshold when in scale). Green: healthy; amber: under 25 % budget or burning ≥3×; red: exhausted or burning ≥14.4×; grey: no data. Click a cell for that SLO and region." })];
  }
  function alertItems(data) { return Array.isArray(data) ? data : (data && (data.alerts || data.data)) || []; }
  function firingAlerts(r) {
    if (!r.ok) return missing(r) ? empty("The alerting API is not enabled.", "Configure the alerting section (Alertmanager URL) to see live alerts here; past alert events are on the Alerts page.") : failed(r, "Alerts");
    var list = alertItems(r.data).filter(function (a) { return (a.status || a.state) === "firing"; });
    if (!list.length) return empty("No alert is firing.", "Burn-rate pages and tickets appear here while they fire; past alerts are on the Alerts page.");
    return h("table", null, h("tbody", null, list.map(function (a) {
      var l = a.labels || {};
      return h("tr", null, h("td", null, chip("firing")), h("td", { text: l.alertname || "" }),
        h("td", null, l.slo ? h("a", { href: href("slo", l.slo, { region: l.region || "" }), text: l.slo }) : ""),
        h("td", { text: l.region || l.group || "" }), h("td", { text: l.severity || "" }), h("td", { text: fmtTime(a.starts_at) }));
    })));
  }
  function runItems(data) { return Array.isArray(data) ? data : (data && data.runs) || []; }
  function canOperate() { return me && (me.role === "operator" || me.role === "admin"); }
  function decideButtons(run, after) {
    if (!canOperate() || run.state !== "awaiting_approval") return null;
    function act(kind) {
      return function (e) {
        e.target.disabled = true;
        api("POST", "/api/v1/runbooks/runs/" + encodeURIComponent(run.id) + "/" + kind, {}).then(function (r) {
          if (!r.ok) { e.target.disabled = false; alertBox(kind + " failed: " + errText(r)); return; }
          after();
        });
      };
    }
    return h("span", null, h("button", { class: "primary", type: "button", "data-action": "approve", onclick: act("approve"), text: "Approve" }), " ",
      h("button", { class: "danger", type: "button", "data-action": "cancel", onclick: act("cancel"), text: "Cancel" }));
  }
  function alertBox(msg) { var v = $("view"); v.insertBefore(h("p", { class: "error", role: "alert", text: msg }), v.firstChild); }
  function runList(r, actions) {
    if (!r.ok) return missing(r) ? empty("The runbooks API is not enabled.", "Configure the runbooks section (runbook files and their DNS, BGP or webhook actions) to run and approve remediations.") : failed(r, "Runbook runs");
    var runs = runItems(r.data);
    if (!runs.length) return empty(actions ? "No run is waiting for approval." : "No runbook run yet.", actions ? "Runs of runbooks that require approval wait here for an operator; nothing to do now." : "Runs start when an alert matches a runbook trigger, or manually (POST /api/v1/runbooks/{name}/run).");
    if (actions) {
      // Compact: every run here waits for approval.
      return h("table", { "data-testid": "runs" }, h("thead", null, h("tr", null, ["Run", "Runbook", "Group", "Since", ""].map(function (x) { return h("th", { text: x }); }))),
        h("tbody", null, runs.map(function (run) {
          return h("tr", { "data-run": run.id }, h("td", null, h("a", { href: href("run", run.id, {}), text: run.id })), h("td", { text: run.runbook }),
            h("td", { text: run.group || "" }), h("td", { text: fmtTime(run.created_at).slice(11) }), h("td", null, decideButtons(run, render)));
        })));
    }
    return h("table", { "data-testid": "runs" }, h("thead", null, h("tr", null, ["Run", "Runbook", "Group", "State", "Requested", "By"].map(function (x) { return h("th", { text: x }); }))),
      h("tbody", null, runs.map(function (run) {
        return h("tr", { "data-run": run.id }, h("td", null, h("a", { href: href("run", run.id, {}), text: run.id })), h("td", { text: run.runbook }),
          h("td", { text: run.group || "" }), h("td", null, chip(run.state)), h("td", { text: fmtTime(run.created_at) }),
          h("td", { text: run.requested_by || run.origin || "" }));
      })));
  }
  function agentItems(data) { return Array.isArray(data) ? data : (data && data.agents) || []; }
  function agentTable(r, staleOnly) {
    if (!r.ok) return missing(r) ? empty("The agents API is not enabled.", "Enable the probes section (agent tokens and checks) and start meridian-agent on your vantage points.") : failed(r, "Agents");
    var list = agentItems(r.data);
    if (staleOnly) list = list.filter(function (a) { return a.stale || a.health === "stale" || a.healthy === false; });
    if (!list.length) return empty(staleOnly ? "No stale agent." : "No agent has registered yet.", staleOnly ? "Every agent reported within its expected interval; the Probes page lists them all." : "Start meridian-agent with an agent token; it appears here after its first report.");
    return h("table", null, h("thead", null, h("tr", null, ["Agent", "Region", "Site", "Last report", "Health"].map(function (x) { return h("th", { text: x }); }))),
      h("tbody", null, list.map(function (a) {
        var health = a.health || (a.stale ? "stale" : a.registered === false ? "never reported" : (a.healthy === false ? "unhealthy" : "ok"));
        return h("tr", null, h("td", { text: a.name || a.id || a.agent || "" }), h("td", null, a.region ? h("a", { href: href("probes", "", { region: a.region }), text: a.region }) : ""),
          h("td", { text: a.site || "" }), h("td", { text: fmtTime(a.last_report || a.last_seen) }), h("td", null, chip(health === "ok" ? "ok" : health === "stale" ? "bad" : health)));
      })));
  }
  function probeMatrix(r) {
    if (!r.ok) return failed(r, "Probe matrix");
    var cells = r.data.cells || [];
    if (!cells.length) return empty("No probe results in this range.", "Configure probe checks (probes section) and run meridian-agent in each region; results appear within a minute.");
    var src = [], dst = [], by = {};
    cells.forEach(function (c) {
      if (src.indexOf(c.src_region) < 0) src.push(c.src_region);
      if (dst.indexOf(c.target_region) < 0) dst.push(c.target_region);
      by[c.src_region + "\u0000" + c.target_region] = c;
    });
    return h("table", { class: "matrix", "data-testid": "probe-matrix" }, h("thead", null, h("tr", null, h("th", { text: "from \\ to" }), dst.map(function (d) { return h("th", { text: d }); }))),
      h("tbody", null, src.map(function (s) {
        return h("tr", null, h("th", { text: s }), dst.map(function (d) {
          var c = by[s + "\u0000" + d];
          if (!c) return h("td", { class: "cell c-none" });
          var cls = c.loss === null ? "c-none" : c.loss > 0.05 ? "c-bad" : c.loss > 0.005 ? "c-warn" : "c-ok";
          return h("td", { class: "cell " + cls }, h("a", { href: href("probes", "", { src_region: s, target_region: d }), text: fmtMs(c.median_ms) + " · " + fmtPct(c.loss, 1) }));
        }));
      })));
  }

  pages.slo = function (view, seq) {
    var name = route().arg, p = route().params;
    view.appendChild(h("h1", null, "SLO ", h("span", { text: name })));
    var q = common(["region"]);
    var grid = h("div", { class: "grid" });
    view.appendChild(grid);
    var stateCard = card("Status", h("p", { text: "Loading…" }));
    var budgetCard = card("Error budget remaining (burn-down)", h("p", { text: "Loading…" }));
    var burnCard = card("Burn rate per window, with alert thresholds", h("p", { text: "Loading…" }));
    var sliCard = card("SLI history", h("p", { text: "Loading…" }));
    var alertsCard = card("Alerts of this SLO", h("p", { text: "Loading…" }), true);
    var runsCard = card("Runbook runs of this SLO", h("p", { text: "Loading…" }));
    var policyCard = card("Error budget policy", h("p", { text: "Loading…" }));
    append(grid, [stateCard, policyCard, budgetCard, burnCard, sliCard, alertsCard, runsCard]);
    return Promise.all([get("/api/v1/slos/" + encodeURIComponent(name) + "/history", q), get("/api/v1/slos/" + encodeURIComponent(name)),
      get("/api/v1/alert-events", (function () { var x = common([]); x.set("slo", name); return x; })()), get("/api/v1/runbooks/runs")]).then(function (rs) {
      if (seq !== renderSeq) return;
      var hist = rs[0], live = rs[1];
      if (!hist.ok) { replaceBody(stateCard, failed(hist, "SLO history")); return; }
      var d = hist.data;
      var groupSel = h("select", { "aria-label": "region", onchange: function (e) { setParam("region", e.target.value); } },
        d.groups.map(function (g) { return h("option", { value: g, text: g || "(all)" }); }));
      groupSel.value = d.group;
      var status = liveStatus(live, d.group);
      var last = function (a) { for (var i = a.length - 1; i >= 0; i--) if (a[i] !== null) return a[i]; return null; };
      var budget = status && status.error_budget_remaining !== undefined ? status.error_budget_remaining : last(d.error_budget_remaining);
      var burn1h = status && status.burn_rates ? status.burn_rates["1h"] : (d.burn_rates["1h"] ? last(d.burn_rates["1h"]) : null);
      var tte = status && status.forecast ? status.forecast.time_to_exhaustion_seconds : null;
      if (!status && budget !== null && burn1h) tte = budget <= 0 ? 0 : budget * windowSeconds(status) / burn1h;
      replaceBody(stateCard, [h("dl", { class: "kv" },
        h("dt", { text: "Region" }), h("dd", null, d.groups.length ? groupSel : "–"),
        h("dt", { text: "Objective" }), h("dd", { text: d.objective === null ? "–" : fmtPct(d.objective, 3) }),
        h("dt", { text: "SLI (window)" }), h("dd", { text: fmtPct(status ? status.sli : last(d.sli), 3) }),
        h("dt", { text: "Budget remaining" }), h("dd", { text: fmtPct(budget, 1) }),
        h("dt", { text: "Burn rate (1 h)" }), h("dd", { text: burn1h === null || burn1h === undefined ? "–" : burn1h.toFixed(2) + "×" }),
        h("dt", { text: "Time to exhaustion" }), h("dd", { "data-testid": "tte", text: tte === null || tte === undefined ? (budget !== null && budget <= 0 ? "exhausted" : "not burning") : fmtDur(tte) })),
        !status && !missing(live) ? null : h("p", { class: "legend-note", text: status ? "Live status from the SLO evaluator." : "Forecast computed from the recorded history (the live SLO API is not enabled)." })]);
      var perRegion = d.groups.some(function (g) { return g; }) && !d.group;
      if (perRegion) {
        // Measured per region: the region charts above say it all.
        [budgetCard, burnCard, sliCard].forEach(function (c) { c.remove(); });
      } else if (!d.t.length) {
        var e = empty("No status recorded for this SLO in this range.", "The evaluator writes slo_status every cycle once the SLO is configured; pick a longer range or check the SLO name.");
        [budgetCard, burnCard, sliCard].forEach(function (c) { replaceBody(c, e.cloneNode(true)); });
      } else {
        var be = chartEl("budget"); replaceBody(budgetCard, be);
        var fc = forecastLine(d, budget, tte, span(d));
        lineChart(be, "", fc.t, [fc.budget, fc.proj], ["budget %", "forecast at the 1 h burn"], ["#2e9d57", "#cf3a3a"], "%", null, function (o) {
          o.series[2].dash = [6, 4]; o.series[2].width = 1.5; o.series[2].points = { show: true }; o.series[2].spanGaps = true;
        }, fc.span);
        if (fc.note) append(budgetCard, h("p", { class: "legend-note", "data-testid": "tte-note", text: fc.note }));
        var ws = Object.keys(d.burn_rates).filter(function (w) { return w !== "window"; });
        var bc = chartEl("burn"); replaceBody(burnCard, [bc, h("p", { class: "legend-note", text: "Dashed lines: page at 14.4× (1 h/5 m) and 6× (6 h/30 m); ticket at 3× (1 d/2 h) and 1× (3 d/6 h)." })]);
        var thr = thresholds(status);
        lineChart(bc, "", d.t, ws.map(function (w) { return d.burn_rates[w]; }).concat(thr.map(function (x) { return d.t.map(function () { return x; }); })),
          ws.concat(thr.map(function (x) { return "threshold " + x + "×"; })), palette, "×", null, function (o) {
            for (var i = ws.length + 1; i < o.series.length; i++) { o.series[i].dash = [6, 4]; o.series[i].width = 1; o.series[i].stroke = "#9aa3b2"; o.series[i].points = { show: false }; }
            o.scales.y = { distr: 3 };
          }, span(d));
        var se = chartEl("sli"); replaceBody(sliCard, se);
        lineChart(se, "", d.t, [d.sli.map(function (v) { return v === null ? null : v * 100; }), d.t.map(function () { return d.objective === null ? null : d.objective * 100; })],
          ["SLI %", "objective"], ["#1f5fbf", "#cf3a3a"], "%", null, null, span(d));
      }
      replaceBody(policyCard, policyView(status, live));
      var pending = null;
      var regions = d.groups.filter(function (g) { return g; });
      if (perRegion) {
        // A grouped SLO on "(all)": every region at once.
        var every = card("Every region", h("p", { text: "Loading…" }), true);
        grid.insertBefore(every, alertsCard);
        pending = everyRegion(every, name, q, regions, live, seq);
      }
      var ev = rs[2];
      replaceBody(alertsCard, ev.ok ? alertEventTable(ev.data.events || []) : failed(ev, "Alerts"));
      var runs = rs[3];
      if (runs.ok) runs = { ok: true, status: 200, data: { runs: runItems(runs.data).filter(function (x) { return x.slo === name; }) } };
      replaceBody(runsCard, runList(runs, false));
      return pending;
    });
  };
  // forecastLine extends the burn-down past now with the forecast: from the
  // last budget point, falling at the current 1 h burn rate, drawn up to the
  // time of exhaustion when it comes within one more range length, else to
  // that horizon. The chart's x axis then runs from the selected range's
  // start to the end of the forecast (the one time chart that goes past
  // now, and only when the budget burns).
  function forecastLine(d, budget, tte, sp) {
    var b = d.error_budget_remaining.map(function (v) { return v === null ? null : v * 100; });
    var out = { t: d.t.slice(), budget: b, proj: d.t.map(function () { return null; }), span: sp, note: "" };
    if (tte === null || tte === undefined || !(budget > 0) || !d.t.length) return out;
    var last = -1;
    for (var i = d.t.length - 1; i >= 0; i--) if (b[i] !== null) { last = i; break; }
    if (last < 0) return out;
    var t0 = d.t[last], b0 = b[last], horizon = Math.min(tte, sp.to - sp.from);
    out.proj[last] = b0;
    out.t.push(t0 + horizon); out.budget.push(null); out.proj.push(Math.max(0, b0 * (1 - horizon / tte)));
    out.span = { from: sp.from, to: Math.max(sp.to, t0 + horizon), step: sp.step };
    out.note = "Dashed: the forecast — at the current 1 h burn rate the budget is exhausted in " + fmtDur(tte) +
      (horizon < tte ? " (beyond this chart's horizon)." : ".");
    return out;
  }
  // policyView says the SLO's burn-rate policy in words, with each
  // condition's current burns and state.
  function policyView(status, live) {
    var conds = (status && status.alerts) || [];
    if (!conds.length) return missing(live) ? empty("The live SLO API is not enabled.", "Run the SLO evaluator (the slo section) to see its alert rules and their current values.")
      : empty("No alert rule for this region.", "Alert rules come from the SLO's alerting policy (slo files: alerting.rules, or the default multi-window policy).");
    var fx = function (v) { return v === null || v === undefined ? "no data" : v.toFixed(2) + "×"; };
    return [h("ul", { "data-testid": "policy" }, conds.map(function (c) {
      return h("li", null, h("b", { text: c.severity === "page" ? "Pages" : c.severity === "ticket" ? "Opens a ticket" : "Alerts (" + c.severity + ")" }),
        " when the " + c.long_window + " burn > " + c.factor + "× and the " + c.short_window + " burn > " + c.factor + "×. Now: " +
        c.long_window + " " + fx(c.long_burn) + ", " + c.short_window + " " + fx(c.short_burn) + " — ", chip(c.firing ? "firing" : c.state === "no_data" ? "pending" : "ok"),
        c.firing ? " since " + fmtTime(c.since) : "");
    })), h("p", { class: "legend-note", text: "A burn rate of 1× spends exactly the error budget over the SLO window." })];
  }
  // everyRegion draws each region's budget and 1 h burn on shared axes, with
  // a table of their current state; a row links to that region.
  function everyRegion(el, name, q, regions, live, seq) {
    return Promise.all(regions.map(function (g) {
      var gq = new URLSearchParams(q.toString()); gq.set("region", g);
      return get("/api/v1/slos/" + encodeURIComponent(name) + "/history", gq);
    })).then(function (rs) {
      if (seq !== renderSeq) return;
      var ok = rs.filter(function (r) { return r.ok && r.data; });
      if (!ok.length) { replaceBody(el, failed(rs[0], "Region history")); return; }
      var ts = [];
      ok.forEach(function (r) { r.data.t.forEach(function (x) { if (ts.indexOf(x) < 0) ts.push(x); }); });
      ts.sort(function (a, b) { return a - b; });
      var col = function (r, f) { var m = {}; r.data.t.forEach(function (x, i) { m[x] = f(r.data, i); }); return ts.map(function (x) { return m[x] === undefined ? null : m[x]; }); };
      var budgets = ok.map(function (r) { return col(r, function (d, i) { var v = d.error_budget_remaining[i]; return v === null ? null : v * 100; }); });
      var burns = ok.map(function (r) { return col(r, function (d, i) { return d.burn_rates["1h"] ? d.burn_rates["1h"][i] : null; }); });
      var labels = ok.map(function (r) { return r.data.group; });
      var sp = span(ok[0].data);
      var rows = ok.map(function (r) {
        var st = liveStatus(live, r.data.group), last = function (a) { for (var i = a.length - 1; i >= 0; i--) if (a[i] !== null) return a[i]; return null; };
        var b = st ? st.error_budget_remaining : last(r.data.error_budget_remaining), bu = st && st.burn_rates ? st.burn_rates["1h"] : last(r.data.burn_rates["1h"] || []);
        var firing = st ? (st.alerts || []).filter(function (c) { return c.firing; }).map(function (c) { return c.severity + " " + c.long_window + "/" + c.short_window; }) : [];
        return { g: r.data.group, b: b, bu: bu, firing: firing };
      });
      rows.sort(function (a, b) { return (a.b === null ? 2 : a.b) - (b.b === null ? 2 : b.b); });
      var table = h("table", { "data-testid": "every-region" }, h("thead", null, h("tr", null, ["Region", "Budget remaining", "Burn 1 h", "Firing"].map(function (x) { return h("th", { text: x }); }))),
        h("tbody", null, rows.map(function (x) {
          return h("tr", null, h("td", null, h("a", { href: href("slo", name, { region: x.g }), text: x.g })), h("td", { text: fmtPct(x.b, 1) }),
            h("td", { text: x.bu === null || x.bu === undefined ? "–" : x.bu.toFixed(2) + "×" }), h("td", { text: x.firing.join(", ") || "–" }));
        })));
      var mode = route().params.get("view") === "multiples" ? "multiples" : "overlay";
      var toggle = h("p", { class: "legend-note" }, "Show: ",
        mode === "overlay" ? h("b", { text: "overlay" }) : h("a", { href: href("slo", name, { region: "", view: "" }), text: "overlay" }), " · ",
        mode === "multiples" ? h("b", { text: "small multiples" }) : h("a", { href: href("slo", name, { region: "", view: "multiples" }), "data-action": "multiples", text: "small multiples" }));
      var charts = [];
      if (mode === "overlay") {
        var bEl = chartEl("every-budget"), rEl = chartEl("every-burn");
        charts = [h("h3", { text: "Error budget remaining" }), bEl, h("h3", { text: "Burn rate (1 h)" }), rEl];
        replaceBody(el, [table, toggle].concat(charts));
        lineChart(bEl, "", ts, budgets, labels, palette, "%", null, null, sp);
        lineChart(rEl, "", ts, burns, labels, palette, "×", null, function (o) { o.scales.y = { distr: 3 }; }, sp);
      } else {
        var wrap = h("div", { class: "grid3" });
        replaceBody(el, [table, toggle, wrap]);
        labels.forEach(function (g, i) {
          var c = chartEl("every-" + g);
          append(wrap, h("div", null, h("h3", null, h("a", { href: href("slo", name, { region: g }), text: g })), c));
          lineChart(c, "", ts, [budgets[i]], ["budget %"], [palette[i % palette.length]], "%", null, function (o) { o.height = 140; }, sp);
        });
      }
    });
  }
  function liveStatus(r, group) {
    if (!r.ok || !r.data) return null;
    var list = Array.isArray(r.data) ? r.data : r.data.statuses || r.data.groups || (r.data.slo ? [r.data] : []);
    for (var i = 0; i < list.length; i++) if ((list[i].group || "") === (group || "")) return list[i];
    return null;
  }
  function windowSeconds(status) { return 30 * 86400; }
  function thresholds(status) {
    if (status && status.alerts && status.alerts.length) {
      var out = [];
      status.alerts.forEach(function (c) { if (out.indexOf(c.factor) < 0) out.push(c.factor); });
      return out;
    }
    return [14.4, 6, 3, 1];
  }
  // rule names the burn-rate rule of an SLO alert: its long and short
  // windows (labels of Meridian's alerts), so that two pages for one region
  // say which rule fired.
  function alertRule(e) {
    var l = e.labels || {};
    return l.long_window ? l.long_window + " / " + (l.short_window || "–") : "";
  }
  function alertEventTable(evs) {
    if (!evs.length) return empty("No alert in this range.", "SLO alerts are raised by the burn-rate policy; Alertmanager can also send alerts to Meridian's webhook. Widen the range to see older ones.");
    return h("table", { "data-testid": "alert-events", class: "fixed" }, h("colgroup", null, [9, 6, 10, 10, 7, 6, 8, 44].map(function (w) { return h("col", { style: { width: w + "%" } }); })),
      h("thead", null, h("tr", null, ["Time", "Status", "Alert", "SLO", "Region", "Severity", "Rule (long / short)", "Summary"].map(function (x) { return h("th", { text: x }); }))),
      h("tbody", null, evs.map(function (e) {
        var detail = e.description || e.summary || "";
        return h("tr", null, h("td", { class: "wrap", text: fmtTime(e.time) }), h("td", null, chip(e.status)), h("td", { class: "clip", title: e.alertname, text: e.alertname }),
          h("td", { class: "clip" }, e.slo ? h("a", { href: href("slo", e.slo, { region: (e.labels && e.labels.region) || "" }), title: e.slo, text: e.slo }) : ""),
          h("td", { class: "clip", text: (e.labels && (e.labels.region || e.labels.group)) || "" }), h("td", { text: e.severity }),
          h("td", { "data-testid": "alert-rule", text: alertRule(e) }),
          h("td", { class: "wrap", title: detail, text: e.summary || "" }, e.description ? h("div", { class: "hint", text: e.description }) : null));
      })));
  }

  pages.probes = function (view, seq) {
    var keys = ["region", "site", "target", "src_region", "target_region"];
    var q = common(keys);
    view.appendChild(h("h1", { text: "Probes" }));
    append(view, activeFilters(["src_region", "target_region"]));
    var grid = h("div", { class: "grid" });
    view.appendChild(grid);
    var smoke = card("Latency (smoke)", h("p", { text: "Loading…" }), true);
    var loss = card("Loss", h("p", { text: "Loading…" }));
    var jit = card("Jitter", h("p", { text: "Loading…" }));
    var paths = card("Paths (source region → target)", h("p", { text: "Loading…" }), true);
    var agents = card("Agents", h("p", { text: "Loading…" }), true);
    append(grid, [smoke, loss, jit, paths, agents]);
    return Promise.all([
      get("/api/v1/probes/series", q).then(function (r) {
        if (seq !== renderSeq) return;
        if (!r.ok) { [smoke, loss, jit].forEach(function (c) { replaceBody(c, failed(r, "Probe series")); }); return; }
        var s = r.data;
        if (!s.t.length) {
          var e = empty("No probe results for these filters in this range.", "Configure checks in the probes section and start meridian-agent in each region, or widen the range or the filters.");
          [smoke, loss, jit].forEach(function (c) { replaceBody(c, e.cloneNode(true)); });
          return;
        }
        var se = chartEl("smoke"); replaceBody(smoke, se); smokeChart(se, s);
        var le = chartEl("loss"); replaceBody(loss, le);
        lineChart(le, "", s.t, [s.loss.map(function (v) { return v === null ? null : v * 100; })], ["loss %"], ["#cf3a3a"], "%", null, null, span(s));
        var je = chartEl("jitter"); replaceBody(jit, je);
        lineChart(je, "", s.t, [s.jitter], ["jitter ms"], ["#7b4bc4"], "ms", null, null, span(s));
      }),
      get("/api/v1/probes/summary", q).then(function (r) {
        if (seq !== renderSeq) return;
        if (!r.ok) { replaceBody(paths, failed(r, "Probe paths")); return; }
        var list = r.data.paths || [];
        if (!list.length) { replaceBody(paths, empty("No probe path in this range.", "Each agent reports one path per target it probes.")); return; }
        replaceBody(paths, h("table", { "data-testid": "probe-paths" }, h("thead", null, h("tr", null, ["From region", "Target", "Target region", "Median", "p95", "Loss", "Jitter", "Rounds", "Last report"].map(function (x, i) { return h("th", { class: i >= 3 && i < 8 ? "num" : null, text: x }); }))),
          h("tbody", null, list.map(function (p) {
            return h("tr", null, h("td", null, h("a", { href: href("probes", "", { src_region: p.src_region }), text: p.src_region })),
              h("td", null, h("a", { href: href("probes", "", { target: p.target, src_region: p.src_region }), text: p.target })),
              h("td", null, h("a", { href: href("probes", "", { target_region: p.target_region }), text: p.target_region })),
              h("td", { class: "num", text: fmtMs(p.median_ms) }), h("td", { class: "num", text: fmtMs(p.p95_ms) }),
              h("td", { class: "num", text: fmtPct(p.loss, 2) }), h("td", { class: "num", text: fmtMs(p.jitter_ms) }),
              h("td", { class: "num", text: fmtNum(p.rounds) }), h("td", { text: fmtTime(p.last_seen) }));
          }))));
      }),
      get("/api/v1/agents").then(function (r) { if (seq === renderSeq) replaceBody(agents, agentTable(r, false)); })
    ]);
  };

  function topTable(items, valueKey, fmt, keyLink) {
    if (!items.length) return empty("Nothing in this range.", "Widen the time range or clear the filters.");
    var max = items[0][valueKey] || 1;
    return h("table", null, h("tbody", null, items.map(function (it) {
      var bar = h("div", { class: "bar", style: { width: Math.max(1, Math.round(100 * it[valueKey] / max)) + "%" } });
      return h("tr", null, h("td", null, keyLink ? keyLink(it.key) : it.key), h("td", { class: "num", text: fmt(it[valueKey]) }), h("td", { style: { width: "40%" } }, bar));
    })));
  }

  pages.flows = function (view, seq) {
    var keys = ["region", "site", "src_region", "dst_region", "proto"];
    var q = common(keys);
    view.appendChild(h("h1", { text: "Flows" }));
    append(view, activeFilters(["src_region", "dst_region", "proto"]));
    var grid = h("div", { class: "grid" });
    view.appendChild(grid);
    var rate = card("Traffic: bits/s and packets/s", h("p", { text: "Loading…" }), true);
    var tops = [["src_addr", "Top talkers (source)"], ["dst_addr", "Top destinations"], ["proto", "Protocols"], ["dst_port", "Destination ports"], ["region_pair", "Region pairs"]];
    var topCards = tops.map(function (t) { return card(t[1], h("p", { text: "Loading…" })); });
    var matrix = card("Inter-region traffic matrix (bytes)", h("p", { text: "Loading…" }), true);
    append(grid, [rate, matrix].concat(topCards));
    var none = function () { return empty("No flows in this range.", "Point your routers' NetFlow/IPFIX/sFlow exporters at the flow collector (collectors.flow listen address) or configure VPC flow log import."); };
    return Promise.all([
      get("/api/v1/flows/series", q).then(function (r) {
        if (seq !== renderSeq) return;
        if (!r.ok) { replaceBody(rate, failed(r, "Flow series")); return; }
        if (!r.data.t.length) { replaceBody(rate, none()); return; }
        var el = chartEl("flow-rate"); replaceBody(rate, el);
        lineChart(el, "", r.data.t, [r.data.bits_per_second, r.data.packets_per_second], ["bits/s", "packets/s"], ["#1f5fbf", "#d99a14"], "", function (v) { return fmtRate(v, ""); }, function (o) {
          o.scales.pps = {}; o.series[2].scale = "pps"; o.axes.push({ scale: "pps", side: 1, grid: { show: false }, size: 80, values: function (u, vals) { return vals.map(function (v) { return fmtRate(v, "pps"); }); } });
        }, span(r.data));
      }),
      get("/api/v1/flows/matrix", q).then(function (r) {
        if (seq !== renderSeq) return;
        if (!r.ok) { replaceBody(matrix, failed(r, "Flow matrix")); return; }
        var cells = r.data.cells || [];
        if (!cells.length) { replaceBody(matrix, none()); return; }
        var regs = [], by = {}, max = 0;
        cells.forEach(function (c) { [c.src_region, c.dst_region].forEach(function (x) { if (regs.indexOf(x) < 0) regs.push(x); }); by[c.src_region + "\u0000" + c.dst_region] = c; max = Math.max(max, c.bytes); });
        regs.sort();
        replaceBody(matrix, h("table", { class: "matrix", "data-testid": "flow-matrix" }, h("thead", null, h("tr", null, h("th", { text: "from \\ to" }), regs.map(function (d) { return h("th", { text: d || "(unknown)" }); }))),
          h("tbody", null, regs.map(function (s) {
            return h("tr", null, h("th", { text: s || "(unknown)" }), regs.map(function (d) {
              var c = by[s + "\u0000" + d];
              if (!c) return h("td", { class: "cell c-none", text: "" });
              var alpha = 0.15 + 0.75 * c.bytes / max;
              return h("td", { class: "cell", style: { background: "rgba(31,95,191," + alpha.toFixed(2) + ")", color: alpha > 0.5 ? "#fff" : "#1d2330" } },
                h("a", { href: href("flows", "", { src_region: s, dst_region: d }), text: fmtBytes(c.bytes) }));
            }));
          }))));
      })
    ].concat(tops.map(function (t, i) {
      var tq = new URLSearchParams(q.toString()); tq.set("by", t[0]);
      return get("/api/v1/flows/top", tq).then(function (r) {
        if (seq !== renderSeq) return;
        if (!r.ok) { replaceBody(topCards[i], failed(r, t[1])); return; }
        var link = t[0] === "proto" ? function (k) { return h("a", { href: href("flows", "", { proto: k }), text: k }); } : null;
        replaceBody(topCards[i], r.data.items.length ? topTable(r.data.items, "bytes", fmtBytes, link) : none());
      });
    })));
  };

  pages.firewall = function (view, seq) {
    var q = common(["region", "site", "device", "rule"]);
    view.appendChild(h("h1", { text: "Firewall" }));
    append(view, activeFilters(["device", "rule"]));
    var grid = h("div", { class: "grid" });
    view.appendChild(grid);
    var rate = card("Deny rate per device (events/s)", h("p", { text: "Loading…" }), true);
    var tops = [["src_addr", "Top denied sources"], ["dst_addr", "Top denied destinations"], ["rule", "Top deny rules"], ["dst_port", "Top denied ports"]];
    var topCards = tops.map(function (t) { return card(t[1], h("p", { text: "Loading…" })); });
    append(grid, [rate].concat(topCards));
    var none = function () { return empty("No denied traffic in this range.", "Send firewall logs (iptables/nftables, PAN-OS, ASA, FortiGate) by syslog to the firewall collector's listen address."); };
    return Promise.all([get("/api/v1/firewall/series", q).then(function (r) {
      if (seq !== renderSeq) return;
      if (!r.ok) { replaceBody(rate, failed(r, "Deny rate")); return; }
      if (!r.data.devices.length) { replaceBody(rate, none()); return; }
      var el = chartEl("deny-rate"); replaceBody(rate, [el, h("p", { class: "legend-note" }, "Devices: ", r.data.devices.map(function (d) { return [h("a", { href: href("firewall", "", { device: d.device }), text: d.device }), " "]; }))]);
      lineChart(el, "", r.data.t, r.data.devices.map(function (d) { return d.per_second; }), r.data.devices.map(function (d) { return d.device; }), palette, "/s", function (v) { return v === 0 ? "0" : String(Number(v.toPrecision(2))); }, null, span(r.data));
    })].concat(tops.map(function (t, i) {
      var tq = new URLSearchParams(q.toString()); tq.set("by", t[0]);
      return get("/api/v1/firewall/top", tq).then(function (r) {
        if (seq !== renderSeq) return;
        if (!r.ok) { replaceBody(topCards[i], failed(r, t[1])); return; }
        var link = t[0] === "rule" ? function (k) { return h("a", { href: href("firewall", "", { rule: k }), text: k }); } : null;
        replaceBody(topCards[i], r.data.items.length ? topTable(r.data.items, "count", function (v) { return fmtNum(v); }, link) : none());
      });
    })));
  };

  pages.alerts = function (view, seq) {
    var q = common([]);
    view.appendChild(h("h1", { text: "Alerts" }));
    var grid = h("div", { class: "grid" });
    view.appendChild(grid);
    var live = card("Current alerts", h("p", { text: "Loading…" }), true);
    var tl = card("Timeline", h("p", { text: "Loading…" }), true);
    var list = card("Alert events", h("p", { text: "Loading…" }), true);
    append(grid, [live, tl, list]);
    return Promise.all([
      get("/api/v1/alerts").then(function (r) { if (seq === renderSeq) replaceBody(live, firingAlerts(r)); }),
      get("/api/v1/alert-events", q).then(function (r) {
        if (seq !== renderSeq) return;
        if (!r.ok) { replaceBody(tl, failed(r, "Alert events")); replaceBody(list, failed(r, "Alert events")); return; }
        var evs = r.data.events || [];
        replaceBody(list, alertEventTable(evs));
        replaceBody(tl, timeline(evs.map(function (e) { return { key: e.alertname + " " + ((e.labels && e.labels.region) || ""), start: e.starts_at, end: e.ends_at, resolved: e.status === "resolved" }; }), r.data.from, r.data.to));
      })
    ]);
  };
  function timeline(items, from, to) {
    if (!items.length) return empty("Nothing happened in this range.", "Widen the time range to see older events.");
    var f = new Date(from).getTime(), t = new Date(to).getTime(), span = Math.max(1, t - f), rows = {};
    items.forEach(function (it) { (rows[it.key] = rows[it.key] || []).push(it); });
    return h("table", { "data-testid": "timeline" }, h("tbody", null, Object.keys(rows).sort().map(function (k) {
      var bar = h("div", { class: "timeline" });
      rows[k].forEach(function (it) {
        var s = Math.max(f, new Date(it.start).getTime()), e = it.end ? Math.min(t, new Date(it.end).getTime()) : t;
        if (isNaN(s)) return;
        bar.appendChild(h("span", { class: it.resolved ? "resolved" : "", title: k + ": " + fmtTime(it.start) + " → " + (it.end ? fmtTime(it.end) : "now"),
          style: { left: (100 * (s - f) / span).toFixed(2) + "%", width: Math.max(0.3, 100 * (e - s) / span).toFixed(2) + "%" } }));
      });
      return h("tr", null, h("th", { text: k }), h("td", { style: { width: "80%" } }, bar));
    })));
  }

  // Game days: MTTD/MTTA/MTTR per region and every drill with its timeline
  // (GET /api/v1/gamedays, served by the game-day component).
  pages.gamedays = function (view, seq) {
    view.appendChild(h("h1", { text: "Game days" }));
    var q = new URLSearchParams();
    var region = route().params.get("region");
    if (region) q.set("region", region);
    return get("/api/v1/gamedays", q).then(function (r) {
      if (seq !== renderSeq) return;
      if (!r.ok) {
        view.appendChild(missing(r) ? empty("The game-day API is not enabled.", "Run drills with `meridian gameday --region REGION --fault outage` (or `make demo`, then `meridian gameday`).") : failed(r, "Game days"));
        return;
      }
      var sum = r.data.summary || [], drills = r.data.gamedays || [];
      if (!drills.length) {
        view.appendChild(empty("No drill yet.", "Run `meridian gameday --region eu --fault outage` to measure detection and recovery."));
        return;
      }
      var grid = h("div", { class: "grid" });
      append(grid, [
        card("Per region", h("table", { "data-testid": "gameday-summary" },
          h("thead", null, h("tr", null, ["Region", "Drills", "Detected", "MTTD", "MTTA", "MTTR"].map(function (x) { return h("th", { text: x }); }))),
          h("tbody", null, sum.map(function (s) {
            return h("tr", null, h("td", null, h("a", { href: href("gamedays", "", { region: s.region }), text: s.region })), h("td", { text: String(s.drills) }),
              h("td", { text: String(s.detected) }), h("td", { text: fmtDur(s.mttd_s) }), h("td", { text: fmtDur(s.mtta_s) }), h("td", { text: fmtDur(s.mttr_s) }));
          })))),
        card("Drills", h("table", { "data-testid": "gameday-drills" },
          h("thead", null, h("tr", null, ["Started", "Region", "Fault", "Dry run", "Detect", "Act", "Recover", "Outcome"].map(function (x) { return h("th", { text: x }); }))),
          h("tbody", null, drills.map(function (d) {
            return h("tr", null, h("td", { text: fmtTime(d.start) }), h("td", { text: d.region }), h("td", { text: d.fault }), h("td", { text: d.dry_run ? "yes" : "no" }),
              h("td", { text: fmtDur(d.time_to_detect_s) }), h("td", { text: fmtDur(d.time_to_act_s) }), h("td", { text: fmtDur(d.time_to_recover_s) }), h("td", null, chip(d.outcome || "–")));
          }))), true),
        card("Timeline", timeline(drills.map(function (d) {
          return { key: d.region + " " + d.fault, start: d.start, end: d.end, resolved: !!d.time_to_recover_s };
        }), new Date(Math.min.apply(null, drills.map(function (d) { return new Date(d.start).getTime(); }))).toISOString(), new Date().toISOString()), true)
      ]);
      view.appendChild(grid);
    });
  };

  pages.runs = function (view, seq) {
    view.appendChild(h("h1", { text: "Runbook runs" }));
    var grid = h("div", { class: "grid" });
    view.appendChild(grid);
    var waiting = card("Awaiting approval", h("p", { text: "Loading…" }), true);
    var tl = card("Timeline", h("p", { text: "Loading…" }), true);
    var all = card("All runs", h("p", { text: "Loading…" }), true);
    append(grid, [waiting, tl, all]);
    return get("/api/v1/runbooks/runs").then(function (r) {
      if (seq !== renderSeq) return;
      var runs = r.ok ? runItems(r.data) : [];
      replaceBody(waiting, runList(r.ok ? { ok: true, status: 200, data: { runs: runs.filter(function (x) { return x.state === "awaiting_approval"; }) } } : r, true));
      replaceBody(all, runList(r, false));
      var now = Date.now(), from = now - rangeMs();
      replaceBody(tl, r.ok ? timeline(runs.map(function (x) {
        var done = ["succeeded", "rolled_back", "rollback_failed", "expired", "cancelled", "restored", "dry_run_complete"].indexOf(x.state) >= 0;
        return { key: x.runbook + " " + (x.group || ""), start: x.created_at, end: done ? x.updated_at : null, resolved: done };
      }), new Date(from).toISOString(), new Date(now).toISOString()) : failed(r, "Runs"));
    });
  };
  function rangeMs() {
    var s = route().params.get("range") || "6h", n = parseInt(s, 10);
    return n * ({ m: 60e3, h: 3600e3, d: 86400e3 }[s.slice(-1)] || 3600e3);
  }

  pages.run = function (view, seq) {
    var id = route().arg;
    view.appendChild(h("p", null, h("a", { href: href("runs", "", {}), text: "← all runs" })));
    return get("/api/v1/runbooks/runs/" + encodeURIComponent(id)).then(function (r) {
      if (seq !== renderSeq) return;
      if (!r.ok) { view.appendChild(r.status === 404 ? empty("No run " + id + ".", "It may be older than what the runbooks component keeps; the Runs page lists every run it knows.") : failed(r, "Run")); return; }
      var run = r.data;
      view.appendChild(h("h1", null, "Run ", h("span", { text: run.id }), " ", chip(run.state)));
      var info = h("dl", { class: "kv" },
        h("dt", { text: "Runbook" }), h("dd", { text: run.runbook }),
        h("dt", { text: "SLO" }), h("dd", null, run.slo ? h("a", { href: href("slo", run.slo, { region: run.group || "" }), text: run.slo }) : "–"),
        h("dt", { text: "Group" }), h("dd", { text: run.group || "–" }),
        h("dt", { text: "Origin" }), h("dd", { text: (run.origin || "") + (run.requested_by ? " (" + run.requested_by + ")" : "") }),
        h("dt", { text: "Dry run" }), h("dd", { text: run.dry_run ? "yes" : "no" }),
        h("dt", { text: "Approved by" }), h("dd", { text: run.approved_by || "–" }),
        h("dt", { text: "Approval expires" }), h("dd", { text: fmtTime(run.approval_expires) }),
        h("dt", { text: "Reason" }), h("dd", { text: run.reason || "–" }),
        h("dt", { text: "Created / updated" }), h("dd", { text: fmtTime(run.created_at) + " / " + fmtTime(run.updated_at) }));
      var actions = decideButtons(run, render);
      var note = run.state === "awaiting_approval" && !canOperate() ? h("p", { class: "hint", text: "Only operators and admins may approve or cancel this run." }) : null;
      var grid = h("div", { class: "grid" });
      append(grid, [card("Timeline", runTimeline(run), true), card("Run", [info, actions ? h("p", null, actions) : null, note]),
        card("Steps", (run.steps || []).length ? h("table", { "data-testid": "steps" }, h("thead", null, h("tr", null, ["Step", "Kind", "Call", "State", "Detail"].map(function (x) { return h("th", { text: x }); }))),
          h("tbody", null, run.steps.map(function (s) { return h("tr", null, h("td", { text: s.name }), h("td", { text: s.kind }), h("td", { class: "wrap", text: s.call }), h("td", null, chip(s.state)), h("td", { class: "wrap", text: s.detail || "" })); }))) : empty("No step planned.", "The runbook's steps did not apply to this alert's labels; check the runbook with meridian runbook plan.")),
        card("Audit log", (run.audit || []).length ? h("table", { "data-testid": "audit" }, h("thead", null, h("tr", null, ["Time", "Kind", "Decision", "Actor", "Detail"].map(function (x) { return h("th", { text: x }); }))),
          h("tbody", null, run.audit.map(function (a) { return h("tr", null, h("td", { text: fmtTime(a.time) }), h("td", { text: a.kind }), h("td", { text: a.decision }), h("td", { text: a.actor }), h("td", { class: "wrap", text: a.detail })); }))) : empty("No audit record.", "Every decision about this run (plan, approval, each step) is recorded here as it happens."), true)]);
      view.appendChild(grid);
    });
  };

  // runTimeline reads the run's audit log as a story: the alert, the plan
  // and its guardrails, the approval, each step with its DNS/BGP/webhook
  // call and the answer, the verification, the undo or the restore — each
  // with the time since the start and a link to the SLO as it was then.
  var phases = { trigger: "Alert", guardrail: "Plan and guardrails", approval: "Approval", action: "Step", verify: "Verification",
    undo: "Undo", restore: "Restore", escalate: "Escalation", cancel: "Cancel", state: "State", pause: "Pause", recover: "Restart recovery" };
  function runTimeline(run) {
    var recs = (run.audit || []).slice().sort(function (a, b) { return (a.seq || 0) - (b.seq || 0) || Date.parse(a.time) - Date.parse(b.time); });
    if (!recs.length) return empty("No event recorded yet.", "The timeline fills in as the run goes: plan, approval, each step, verification, restore.");
    var t0 = Date.parse(recs[0].time);
    var bad = { failed: 1, blocked: 1, expired: 1, cancelled: 1, undo_failed: 1 };
    return h("ol", { class: "run-timeline", "data-testid": "run-timeline" }, recs.map(function (a) {
      var t = Date.parse(a.time), dt = Math.max(0, (t - t0) / 1000);
      var cls = bad[a.decision] ? "bad" : a.decision === "ok" || a.decision === "approved" || a.decision === "allowed" || a.decision === "started" ? "ok" : "warn";
      var slo = run.slo ? h("a", { class: "hint", href: href("slo", run.slo, { region: run.group || "", until: new Date(t + 1000).toISOString().replace(/\.\d+Z$/, "Z"), range: "6h" }), text: "SLO then" }) : null;
      return h("li", { class: "tl-" + cls, "data-kind": a.kind },
        h("span", { class: "tl-time", title: fmtTime(a.time), text: "+" + fmtDur(dt) }),
        h("b", { text: phases[a.kind] || a.kind }), " ", chip(a.decision), a.actor && a.actor !== "meridian" ? " by " + a.actor : "", " ",
        slo, h("div", { class: "tl-detail", text: a.detail || "" }));
    }));
  }

  // ---------- lifecycle ----------
  function render() {
    var seq = ++renderSeq;
    charts.forEach(function (c) { c.u.destroy(); });
    charts = [];
    var view = $("view");
    view.textContent = "";
    syncControls();
    var r = route(), page = pages[r.page];
    if (untilSec() !== null) view.appendChild(h("p", { class: "filters-active", "data-testid": "until" }, "Showing the range ending at " + fmtTime(r.params.get("until")) + " · ",
      h("a", { href: href(r.page, r.arg, { until: "" }), text: "back to now" })));
    if (!page) { view.appendChild(empty("No page " + r.page + ".", "Use the navigation above.")); return; }
    loadFilters();
    view.setAttribute("aria-busy", "true");
    Promise.resolve(page(view, seq)).then(function () {
      if (seq !== renderSeq) return;
      view.setAttribute("aria-busy", "false");
      view.setAttribute("data-rendered", String(seq));
      $("updated").textContent = "updated " + new Date().toISOString().slice(11, 19) + "Z";
    });
    clearInterval(timer);
    var every = parseInt(r.params.get("refresh") || "0", 10);
    if (every > 0) timer = setInterval(function () { filtersLoadedFor = null; render(); }, every * 1000);
  }

  function showLogin() {
    me = null;
    clearInterval(timer);
    $("top").hidden = true; $("controls").hidden = true; $("view").textContent = "";
    $("login").hidden = false;
    $("l-user").value = ""; $("l-pass").value = ""; $("login-error").textContent = "";
    $("l-user").focus();
  }
  function started(who) {
    me = who;
    $("login").hidden = true; $("top").hidden = false; $("controls").hidden = false;
    $("who").textContent = me.name + " (" + me.role + ")";
    render();
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("login-form").addEventListener("submit", function (e) {
      e.preventDefault();
      $("login-error").textContent = "";
      api("POST", "/api/v1/session", { username: $("l-user").value, password: $("l-pass").value }).then(function (r) {
        $("l-pass").value = "";
        if (!r.ok) { $("login-error").textContent = errText(r); return; }
        started(r.data);
      });
    });
    $("logout").addEventListener("click", function () { api("DELETE", "/api/v1/session").then(showLogin); });
    window.addEventListener("hashchange", function () { if (me) render(); });
    api("GET", "/api/v1/session").then(function (r) { if (r.ok && r.data && r.data.authenticated) started(r.data); else showLogin(); });
  });
})();
