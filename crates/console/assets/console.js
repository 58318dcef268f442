// weir console: the little behaviour the server-rendered pages need. Every action goes
// through the HTTP admin API (/api/v1), the same one scripts use; pages are reloaded after
// a change so what is shown is always what the broker holds.
"use strict";

/** Calls the admin API; resolves to the JSON answer or throws an Error with its sentence. */
async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (_) {
    json = null;
  }
  if (!response.ok) {
    const sentence = json && json.error ? json.error : `${method} ${path} answered ${response.status}`;
    throw new Error(sentence);
  }
  return json;
}

/** Shows an error sentence in the element with id `${prefix}-error`, or clears it. */
function showError(id, error) {
  const el = document.getElementById(id);
  if (!el) return;
  el.textContent = error ? error.message || String(error) : "";
  el.hidden = !error;
}

function formObject(form) {
  const out = {};
  for (const [key, value] of new FormData(form).entries()) {
    if (value !== "") out[key] = value;
  }
  return out;
}

function formatNumber(n) {
  return n === null || n === undefined ? "-" : Number(n).toLocaleString("en-US");
}

function formatSeconds(s) {
  if (s === null || s === undefined) return "-";
  if (s < 1) return "0 s";
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// A palette that reads on light and dark backgrounds alike.
const SERIES_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];

/**
 * Draws a time chart with uPlot into `el`. `times` are unix seconds; `series` is a list of
 * {label, values}. The chart follows the element's width and the theme's colours.
 */
function timeChart(el, times, series, yLabel) {
  el.textContent = "";
  if (times.length === 0) {
    el.innerHTML = '<p class="empty">No samples yet; the chart fills as the broker samples.</p>';
    return null;
  }
  const axisStyle = { stroke: cssVar("--muted"), grid: { stroke: cssVar("--line") }, ticks: { stroke: cssVar("--line") } };
  const opts = {
    width: Math.max(el.clientWidth, 280),
    height: 240,
    series: [{}].concat(series.map((s, i) => ({ label: s.label, stroke: SERIES_COLOURS[i % SERIES_COLOURS.length], width: 2 }))),
    axes: [axisStyle, Object.assign({ label: yLabel, size: 70 }, axisStyle)],
    legend: { show: series.length <= 12 },
    // With few samples the span is seconds; show at least a minute so ticks stay readable.
    scales: { x: { time: true, range: (u, min, max) => (max - min < 60 ? [max - 60, max + 5] : [min, max]) } },
  };
  const plot = new uPlot(opts, [times].concat(series.map((s) => s.values)), el);
  new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 280), height: 240 })).observe(el);
  return plot;
}

// Topic pages: create, delete with confirmation, add partitions.
function wireTopicForms() {
  const create = document.getElementById("create-topic");
  if (create) {
    create.addEventListener("submit", async (event) => {
      event.preventDefault();
      const fields = formObject(create);
      const body = { name: fields.name, partitions: Number(fields.partitions || 1) };
      try {
        await api("POST", "/api/v1/topics", body);
        location.href = `/topics/${encodeURIComponent(body.name)}`;
      } catch (e) {
        showError("create-topic-error", e);
      }
    });
  }
  const del = document.getElementById("delete-topic");
  if (del) {
    const dialog = document.getElementById("delete-topic-dialog");
    del.addEventListener("click", () => dialog.showModal());
    document.getElementById("delete-topic-confirm").addEventListener("click", async () => {
      const name = del.dataset.topic;
      const typed = document.getElementById("delete-topic-name").value;
      if (typed !== name) {
        showError("delete-topic-error", new Error(`Type the topic's name, ${name}, to delete it.`));
        return;
      }
      try {
        await api("DELETE", `/api/v1/topics/${encodeURIComponent(name)}`);
        location.href = "/topics";
      } catch (e) {
        showError("delete-topic-error", e);
      }
    });
    document.getElementById("delete-topic-cancel").addEventListener("click", () => dialog.close());
  }
  const grow = document.getElementById("add-partitions");
  if (grow) {
    grow.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = grow.dataset.topic;
      const count = Number(formObject(grow).count);
      try {
        await api("POST", `/api/v1/topics/${encodeURIComponent(name)}/partitions`, { count });
        location.reload();
      } catch (e) {
        showError("add-partitions-error", e);
      }
    });
  }
}

// Charts whose data comes from the API: lag of a group, throughput of the broker.
async function drawCharts() {
  for (const el of document.querySelectorAll("[data-lag-chart]")) {
    try {
      const history = await api("GET", el.dataset.lagChart);
      const times = history.samples.map((s) => s.at_ms / 1000);
      // The total, and each partition while there are few enough to tell apart.
      const series = [{ label: "total", values: history.samples.map((s) => s.total_lag) }];
      const keys = new Set();
      for (const s of history.samples) for (const p of s.partitions) keys.add(`${p.topic}-${p.partition}`);
      if (keys.size > 1 && keys.size <= 8) {
        for (const key of [...keys].sort()) {
          series.push({
            label: key,
            values: history.samples.map((s) => {
              const p = s.partitions.find((q) => `${q.topic}-${q.partition}` === key);
              return p ? p.lag : null;
            }),
          });
        }
      }
      timeChart(el, times, series, "records behind");
    } catch (e) {
      el.innerHTML = "";
      el.append(Object.assign(document.createElement("p"), { className: "error-text", textContent: e.message }));
    }
  }
  for (const el of document.querySelectorAll("[data-throughput-chart]")) {
    try {
      const history = await api("GET", el.dataset.throughputChart);
      const times = history.samples.map((s) => s.time_s);
      timeChart(
        el,
        times,
        [
          { label: "produced (bytes/s)", values: history.samples.map((s) => s.bytes_in_per_second) },
          { label: "fetched (bytes/s)", values: history.samples.map((s) => s.bytes_out_per_second) },
        ],
        "bytes/s",
      );
    } catch (e) {
      el.innerHTML = "";
      el.append(Object.assign(document.createElement("p"), { className: "error-text", textContent: e.message }));
    }
  }
}

// The offset-reset dialog: preview the plan, execute it, undo the last reset.
function wireOffsetReset() {
  const open = document.getElementById("reset-offsets");
  if (!open) return;
  const group = open.dataset.group;
  const dialog = document.getElementById("reset-dialog");
  const form = document.getElementById("reset-form");
  const planBody = document.getElementById("reset-plan");
  const execute = document.getElementById("reset-execute");
  const path = `/api/v1/groups/${encodeURIComponent(group)}/offsets/reset`;

  // The body of POST /api/v1/groups/{group}/offsets/reset for the form's choices.
  function request(executeIt) {
    const fields = formObject(form);
    const body = { execute: executeIt };
    if (fields.topic) body.topics = [{ topic: fields.topic, partitions: null }];
    else body.all_topics = true;
    switch (fields.to) {
      case "earliest": body.spec = "to_earliest"; break;
      case "latest": body.spec = "to_latest"; break;
      case "offset": body.spec = { to_offset: Number(fields.value) }; break;
      case "shift": body.spec = { shift_by: Number(fields.value) }; break;
      case "datetime": {
        // A datetime-local field gives 2026-12-06T09:30 or with seconds; the times are UTC.
        const t = fields.datetime || "";
        body.spec = { to_datetime: t.length === 16 ? `${t}:00Z` : `${t}Z` };
        break;
      }
    }
    return body;
  }

  function renderPlan(plan) {
    planBody.textContent = "";
    for (const p of plan.partitions) {
      const row = document.createElement("tr");
      const current = p.current === null || p.current === undefined ? null : p.current;
      let effect = "no change";
      if (current !== null && p.new < current) effect = `${formatNumber(current - p.new)} reprocessed`;
      if (current !== null && p.new > current) effect = `${formatNumber(p.new - current)} skipped`;
      if (current === null) effect = "no committed offset before";
      for (const [text, numeric] of [[p.topic, false], [p.partition, true], [formatNumber(current), true], [formatNumber(p.new), true], [effect, false]]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        if (numeric) cell.className = "num";
        row.append(cell);
      }
      planBody.append(row);
    }
  }

  // Show the field the chosen target needs: a number for an offset or a shift, a time.
  const target = form.querySelector("select[name=to]");
  function showFields() {
    const to = target.value;
    document.getElementById("reset-value").hidden = !(to === "offset" || to === "shift");
    document.getElementById("reset-datetime").hidden = to !== "datetime";
    execute.disabled = true;
  }
  target.addEventListener("change", showFields);
  form.addEventListener("input", () => { execute.disabled = true; });
  showFields();

  open.addEventListener("click", () => {
    showError("reset-error", null);
    planBody.textContent = "";
    execute.disabled = true;
    dialog.showModal();
  });
  document.getElementById("reset-cancel").addEventListener("click", () => dialog.close());
  document.getElementById("reset-preview").addEventListener("click", async () => {
    showError("reset-error", null);
    try {
      renderPlan(await api("POST", path, request(false)));
      execute.disabled = false;
    } catch (e) {
      showError("reset-error", e);
    }
  });
  execute.addEventListener("click", async () => {
    showError("reset-error", null);
    try {
      await api("POST", path, request(true));
      location.reload();
    } catch (e) {
      showError("reset-error", e);
    }
  });
  const undo = document.getElementById("reset-undo");
  if (undo) {
    undo.addEventListener("click", async () => {
      showError("undo-error", null);
      try {
        await api("POST", `${path}/undo`, {});
        location.reload();
      } catch (e) {
        showError("undo-error", e);
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  wireTopicForms();
  wireOffsetReset();
  drawCharts();
});
