// Refreshes the Serving page's tables from /api/serving every 5 seconds (text only: every value
// is set with textContent, never as HTML).
(function () {
  "use strict";
  var root = document.getElementById("serving");
  if (!root) return;
  var EVERY_MS = 5000;

  function fmt(value) {
    return typeof value === "number" ? Number(value.toPrecision(4)).toString() : value == null ? "-" : String(value);
  }

  function fill(tableId, rows, cells) {
    var body = document.querySelector("#" + tableId + " tbody");
    while (body.firstChild) body.removeChild(body.firstChild);
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      cells(row).forEach(function (value, i) {
        var cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) cell.scope = "row";
        else if (typeof value === "number" || value == null) cell.className = "num";
        cell.textContent = fmt(value);
        tr.appendChild(cell);
      });
      body.appendChild(tr);
    });
  }

  function poll() {
    fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (status) {
        document.getElementById("serving-state").textContent = status.error || "answering";
        fill("loaded", status.models || [], function (m) {
          return [m.id, m.parent ? "adapter of " + m.parent : "base model", m.source || "", m.version || "-", m.rank || ""];
        });
        fill("traffic", status.adapters || [], function (a) {
          return [a.model, a.requests, a.errors, a.rate, a.mean_latency, a.p50, a.p95, a.prompt_tokens, a.generated_tokens];
        });
      })
      .catch(function () {
        document.getElementById("serving-state").textContent = "the UI could not be reached";
      })
      .then(function () { setTimeout(poll, EVERY_MS); });
  }
  setTimeout(poll, EVERY_MS);
})();
