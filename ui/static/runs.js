// The live curves of one run: polls /api/runs/ID/steps for the lines metrics.jsonl gained since
// the last poll (a byte offset, and the file's identity: a resumed run replaces the file, and the
// answer then says reset), and redraws loss (with eval loss), learning rate and tokens/s.
(function () {
  "use strict";
  var root = document.getElementById("charts");
  if (!root || typeof uPlot === "undefined") return;
  var url = root.dataset.stepsUrl;
  var summary = document.getElementById("chart-summary");
  var statusText = document.getElementById("run-status");
  var LIVE_MS = 2000, IDLE_MS = 10000;
  var offset = 0;
  var identity = "";
  var byStep = new Map();
  var evals = [];
  var charts = [];

  function chart(id, series) {
    var el = document.getElementById(id);
    var opts = {
      width: Math.max(240, el.clientWidth || 600),
      height: 220,
      scales: { x: { time: false } },
      axes: [{ label: "step" }, { size: 60 }],
      series: [{ label: "step" }].concat(series),
    };
    var plot = new uPlot(opts, [[]].concat(series.map(function () { return []; })), el);
    charts.push({ plot: plot, el: el });
    return plot;
  }

  var loss = chart("chart-loss", [
    { label: "loss", stroke: "#2b6cb0", width: 2, spanGaps: true },
    { label: "eval loss", stroke: "#dd6b20", width: 0, points: { show: true, size: 8, fill: "#dd6b20" } },
  ]);
  var lr = chart("chart-lr", [{ label: "learning rate", stroke: "#38a169", width: 2 }]);
  var tps = chart("chart-tps", [{ label: "tokens/s", stroke: "#805ad5", width: 2 }]);

  function fmt(value) {
    return typeof value === "number" ? Number(value.toPrecision(4)).toString() : "-";
  }

  function redraw() {
    var points = Array.from(byStep.values()).sort(function (a, b) { return a.step - b.step; });
    var steps = points.map(function (p) { return p.step; });
    var evalAt = new Map();
    evals.forEach(function (e) {
      if (typeof e.step === "number") evalAt.set(e.step, e.eval_loss);
    });
    var xs = Array.from(new Set(steps.concat(Array.from(evalAt.keys())))).sort(function (a, b) { return a - b; });
    loss.setData([
      xs,
      xs.map(function (s) { return byStep.has(s) ? byStep.get(s).loss : null; }),
      xs.map(function (s) { return evalAt.has(s) ? evalAt.get(s) : null; }),
    ]);
    lr.setData([steps, points.map(function (p) { return p.learning_rate; })]);
    tps.setData([steps, points.map(function (p) { return p.tokens_per_second; })]);
    root.dataset.points = String(points.length);
    var last = points[points.length - 1];
    summary.textContent = last
      ? points.length + " steps logged; step " + last.step + ": loss " + fmt(last.loss) +
        ", learning rate " + fmt(last.learning_rate) + ", " + fmt(last.tokens_per_second) + " tokens/s"
      : "No step logged yet.";
  }

  function poll() {
    fetch(url + "?offset=" + offset + "&file=" + encodeURIComponent(identity), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (answer) {
        if (answer.reset) byStep.clear();
        answer.points.forEach(function (p) { byStep.set(p.step, p); });
        var more = answer.offset !== offset; // moved (past points, or past a skipped line)
        offset = answer.offset;
        identity = answer.identity || "";
        evals = answer.eval || [];
        if (statusText) statusText.textContent = answer.status;
        redraw();
        var live = answer.status === "running" || answer.status === "not started";
        setTimeout(poll, more && !live ? 0 : live ? LIVE_MS : IDLE_MS);
      })
      .catch(function (error) {
        summary.textContent = "Could not read the run's steps (" + error.message + "); retrying.";
        setTimeout(poll, IDLE_MS);
      });
  }

  window.addEventListener("resize", function () {
    charts.forEach(function (c) {
      c.plot.setSize({ width: Math.max(240, c.el.clientWidth || 600), height: 220 });
    });
  });
  poll();
})();
