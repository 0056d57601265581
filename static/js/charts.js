// Draws every <canvas data-chart="ID"> from the JSON in <script type="application/json" id="ID">.
// Runs on load and after htmx swaps; colours come from CSS custom properties so themes apply.
(function () {
  "use strict";

  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
  const darkScheme = window.matchMedia("(prefers-color-scheme: dark)");

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function theme() {
    const fallbacks = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
    return {
      colours: fallbacks.map((c, i) => cssVar("--chart-" + (i + 1), c)),
      grid: cssVar("--chart-grid", "rgba(128,128,128,0.25)"),
      text: cssVar("--chart-text", "#444"),
      // Doughnut slices are separated by the page background, not Chart.js's fixed white.
      surface: cssVar("--chart-surface", getComputedStyle(document.body).backgroundColor),
    };
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function merge(base, extra) {
    const out = Object.assign({}, base);
    for (const key of Object.keys(extra || {})) {
      out[key] = isObject(out[key]) && isObject(extra[key]) ? merge(out[key], extra[key]) : extra[key];
    }
    return out;
  }

  function datasets(spec, t) {
    return (spec.datasets || []).map((ds, i) => {
      const colour = t.colours[i % t.colours.length];
      let style;
      if (spec.type === "doughnut") {
        const n = (ds.data || []).length;
        style = {
          backgroundColor: Array.from({ length: n }, (_, j) => t.colours[j % t.colours.length]),
          borderColor: t.surface,
          borderWidth: 2,
        };
      } else if (spec.type === "line") {
        style = { borderColor: colour, backgroundColor: colour, pointRadius: 0, pointHitRadius: 8 };
      } else {
        style = { backgroundColor: colour, borderColor: colour };
      }
      return Object.assign(style, ds);
    });
  }

  function config(spec, t) {
    const unit = spec.unit ? " " + spec.unit : "";
    const options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: reducedMotion.matches ? false : { duration: 400 },
      plugins: {
        legend: { display: spec.type === "doughnut" || (spec.datasets || []).length > 1 },
        tooltip: {
          callbacks: {
            label(item) {
              const name = spec.type === "doughnut" ? item.label : item.dataset.label;
              return (name ? name + ": " : "") + item.formattedValue + unit;
            },
          },
        },
      },
    };
    if (spec.type === "line") options.scales = { y: { beginAtZero: true } };
    return {
      type: spec.type,
      data: { labels: spec.labels || [], datasets: datasets(spec, t) },
      options: merge(options, spec.options),
    };
  }

  function describe(canvas, spec) {
    canvas.setAttribute("role", "img");
    const label = canvas.dataset.label
      || (spec && (spec.datasets || []).map((ds) => ds.label).filter(Boolean).join(", "));
    if (label) canvas.setAttribute("aria-label", label);
  }

  function drawAll(force) {
    if (typeof window.Chart === "undefined") return;
    const Chart = window.Chart;
    // Charts whose canvas was swapped out would otherwise leak and keep observing resizes.
    for (const chart of Object.values(Chart.instances)) {
      if (!chart.canvas || !chart.canvas.isConnected) chart.destroy();
    }
    const t = theme();
    Chart.defaults.color = t.text;
    Chart.defaults.borderColor = t.grid;
    for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
      const block = document.getElementById(canvas.dataset.chart);
      const source = block ? block.textContent : "";
      const existing = Chart.getChart(canvas);
      // A morph swap can keep the canvas but change its data block, so compare the source too.
      if (!force && existing && canvas.dataset.drawn === "true" && canvas.chartSource === source) {
        continue;
      }
      if (existing) existing.destroy();
      let spec;
      try {
        spec = JSON.parse(source);
      } catch (e) {
        describe(canvas, null);
        canvas.dataset.drawn = "error";
        continue;
      }
      describe(canvas, spec);
      new Chart(canvas, config(spec, t));
      canvas.chartSource = source;
      canvas.dataset.drawn = "true";
    }
  }

  const redraw = () => drawAll(false);
  const redrawAll = () => drawAll(true);

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", redraw);
  } else {
    redraw();
  }
  document.addEventListener("htmx:after:swap", redraw);
  document.addEventListener("htmx:after:settle", redraw);
  darkScheme.addEventListener("change", redrawAll);
  reducedMotion.addEventListener("change", redrawAll);
})();
