// pgolf dashboard: draws the charts, sorts and filters tables, and reloads when the workspace changes.
(function () {
  "use strict";

  function drawCharts() {
    if (typeof Plotly === "undefined") { return; }
    document.querySelectorAll("div.chart[data-figure]").forEach(function (el) {
      var spec = JSON.parse(document.getElementById(el.dataset.figure).textContent);
      Plotly.newPlot(el, spec.data, spec.layout, { displaylogo: false, responsive: true });
    });
  }

  function cellValue(row, index, numeric) {
    var cell = row.cells[index];
    var raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
    if (!numeric) { return raw.toLowerCase(); }
    return raw === "" ? Infinity : parseFloat(raw);  // empty numbers sort last
  }

  function sortTable(table, index, ascending) {
    var th = table.tHead.rows[0].cells[index];
    var numeric = th.dataset.type === "num";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
      if (x === y) { return 0; }
      return (x < y ? -1 : 1) * (ascending ? 1 : -1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    try { sessionStorage.setItem("pgolf-sort-" + table.id, JSON.stringify([index, ascending])); } catch (e) { /* storage off */ }
  }

  function makeSortable(table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      th.addEventListener("click", function () {
        sortTable(table, index, th.getAttribute("aria-sort") !== "ascending");
      });
    });
    var saved = null;
    try { saved = JSON.parse(sessionStorage.getItem("pgolf-sort-" + table.id) || "null"); } catch (e) { saved = null; }
    if (saved) { sortTable(table, saved[0], saved[1]); }
  }

  // The text filter and the status boxes of a table's toolbar together decide which rows show.
  function applyFilters(table) {
    var input = document.querySelector('input.table-filter[data-table="' + table.id + '"]');
    var needle = input ? input.value.trim().toLowerCase() : "";
    var shown = {};
    document.querySelectorAll('input.status-filter[data-table="' + table.id + '"]').forEach(function (box) {
      shown[box.value] = box.checked;
    });
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var byStatus = !(row.dataset.status in shown) || shown[row.dataset.status];
      var byText = !needle || row.textContent.toLowerCase().indexOf(needle) >= 0;
      row.style.display = byStatus && byText ? "" : "none";
    });
  }

  function makeFilter(input) {
    var table = document.getElementById(input.dataset.table);
    input.addEventListener(input.type === "checkbox" ? "change" : "input", function () { applyFilters(table); });
  }

  function watch(body) {
    var url = body.dataset.stateUrl;
    var seconds = parseFloat(body.dataset.refreshSeconds) || 5;
    var status = document.getElementById("live-status");
    function check() {
      fetch(url, { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (state) {
        if (state.fingerprint !== body.dataset.fingerprint) { window.location.reload(); return; }
        if (status) { status.textContent = "live · checked " + new Date().toLocaleTimeString(); }
      }).catch(function () {
        if (status) { status.textContent = "offline · retrying"; }
      });
    }
    window.setInterval(check, seconds * 1000);
  }

  // In the report, a run link is an anchor to a closed <details>: open it.
  function openTarget() {
    var target = window.location.hash && document.getElementById(window.location.hash.slice(1));
    if (target && target.tagName === "DETAILS") { target.open = true; }
  }

  document.addEventListener("DOMContentLoaded", function () {
    openTarget();
    window.addEventListener("hashchange", openTarget);
    drawCharts();
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    document.querySelectorAll("input.table-filter, input.status-filter").forEach(makeFilter);
    document.querySelectorAll("table.sortable").forEach(applyFilters);
    if (document.body.dataset.stateUrl) { watch(document.body); }
  });
})();
