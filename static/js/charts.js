// Draws every <canvas data-chart="ID"> from the JSON in <script type="application/json" id="ID">.
// Runs on load and after htmx swaps; colours come from CSS custom properties so themes apply.
// Without JavaScript the page shows each chart's table instead: the chart's box starts hidden
// and its table's <details> open, and only a chart actually drawn here swaps the two.
(function () {
  "use strict";

  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
  const darkScheme = window.matchMedia("(prefers-color-scheme: dark)");
  // Phones: smaller type, shorter labels (the same width as the stylesheet's phone layout).
  const narrowScreen = window.matchMedia("(max-width: 599px)");
  const PALETTE_SIZE = 10;
  const DASH = [6, 4];

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function theme() {
    const fallbacks = ["#1db954", "#3b82f6", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6",
      "#ec4899", "#84cc16", "#a0522d", "#1e3a8a"];
    return {
      colours: fallbacks.slice(0, PALETTE_SIZE).map((c, i) => cssVar("--chart-" + (i + 1), c)),
      other: cssVar("--chart-other", "#9e9e9e"),
      grid: cssVar("--chart-grid", "rgba(128,128,128,0.25)"),
      text: cssVar("--chart-text", "#444"),
      // Doughnut slices are separated by the page background, not Chart.js's fixed white.
      surface: cssVar("--chart-surface", getComputedStyle(document.body).backgroundColor),
      narrow: narrowScreen.matches,
    };
  }

  // The j-th categorical colour; beyond the palette, hues spread by the golden angle so
  // no two slices ever share a colour.
  function categorical(t, j) {
    return j < t.colours.length ? t.colours[j] : "hsl(" + Math.round((j * 137.5) % 360) + " 55% 50%)";
  }

  function translucent(colour, alpha) {
    const hex = /^#([0-9a-f]{6})$/i.exec(colour);
    if (!hex) return colour;
    const n = parseInt(hex[1], 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
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

  // Index -> note ("this week so far") of the points that are not a whole period.
  function partials(spec) {
    return new Map((spec.partial || []).map((p) => [p.index, p.note]));
  }

  function datasets(spec, t) {
    const partial = partials(spec);
    let other = -1;
    return (spec.datasets || []).map((ds, i) => {
      const colour = t.colours[i % t.colours.length];
      const type = ds.type || spec.type;
      const n = (ds.data || []).length;
      let style;
      if (type === "doughnut") {
        let j = 0;
        const labels = spec.labels || [];
        style = {
          backgroundColor: Array.from({ length: n }, (_, k) => {
            if (spec.other && labels[k] === spec.other) {
              other = k;
              return t.other;
            }
            return categorical(t, j++);
          }),
          borderColor: t.surface,
          borderWidth: 2,
        };
      } else if (type === "line") {
        style = {
          borderColor: colour,
          backgroundColor: colour,
          // Mitred joins of a steep spike poke below the axis, as if a count went negative.
          borderJoinStyle: "round",
          // Only incomplete periods get a point: a hollow one at the end of a dashed segment.
          pointRadius: Array.from({ length: n }, (_, k) => (partial.has(k) ? 3.5 : 0)),
          pointBackgroundColor: t.surface,
          pointBorderColor: colour,
          pointBorderWidth: 2,
          pointHitRadius: 8,
          segment: {
            borderDash: (ctx) => (partial.has(ctx.p0DataIndex) || partial.has(ctx.p1DataIndex)
              ? DASH : undefined),
          },
        };
      } else {
        style = {
          backgroundColor: Array.from({ length: n }, (_, k) => (
            partial.has(k) ? translucent(colour, 0.35) : colour)),
          borderColor: colour,
          borderWidth: Array.from({ length: n }, (_, k) => (partial.has(k) ? 2 : 0)),
        };
      }
      return Object.assign(style, ds);
    });
  }

  // Which axes carry values (integer counts) and which carries the categories.
  function axes(spec) {
    const horizontal = spec.options && spec.options.indexAxis === "y";
    const values = new Set();
    for (const ds of spec.datasets || []) {
      values.add(horizontal ? (ds.xAxisID || "x") : (ds.yAxisID || "y"));
    }
    if (!values.size) values.add(horizontal ? "x" : "y");
    return { values: [...values], category: horizontal ? "y" : "x", horizontal };
  }

  function shorten(label, max) {
    label = String(label);
    return label.length > max ? label.slice(0, max - 1).trimEnd() + "…" : label;
  }

  function scales(spec, t) {
    const { values, category, horizontal } = axes(spec);
    const font = { size: t.narrow ? 11 : 12 };
    const title = (text) => ({ display: Boolean(text), text: text || "", font, padding: 2 });
    const out = {};
    for (const id of values) {
      // Counts of plays, minutes and artists are whole numbers: never a 0.5 tick.
      const labels = (spec.datasets || []).filter((ds) => (horizontal ? (ds.xAxisID || "x")
        : (ds.yAxisID || "y")) === id).map((ds) => ds.label).filter(Boolean);
      out[id] = { beginAtZero: true, ticks: { precision: 0, font }, title: title(labels.join(" / ")) };
    }
    const categoryTicks = { font, autoSkipPadding: 12 };
    if (horizontal) {
      // Long names would squeeze the bars to nothing on a phone; the table has them whole.
      categoryTicks.callback = function (value) {
        return shorten(this.getLabelForValue(value), t.narrow ? 14 : 26);
      };
    } else {
      // Level labels, thinned out to fit, rather than a slanted crowd that runs off the edge.
      categoryTicks.maxRotation = 0;
    }
    out[category] = { ticks: categoryTicks, title: title("") };
    return out;
  }

  function legend(spec, t) {
    const Chart = window.Chart;
    const many = (spec.datasets || []).length > 1;
    const labels = {
      boxWidth: t.narrow ? 10 : 14,
      boxHeight: t.narrow ? 10 : 12,
      padding: t.narrow ? 6 : 10,
      font: { size: t.narrow ? 11 : 12 },
    };
    if (spec.type === "doughnut") {
      return {
        display: true,
        labels: Object.assign(labels, {
          generateLabels(chart) {
            const items = Chart.overrides.doughnut.plugins.legend.labels.generateLabels(chart);
            for (const item of items) item.text = shorten(item.text, t.narrow ? 18 : 28);
            return items;
          },
        }),
      };
    }
    if (spec.partialLegend) {
      labels.generateLabels = function (chart) {
        const items = Chart.defaults.plugins.legend.labels.generateLabels(chart);
        // A key for the dashed or lighter marks of periods that are not over (or cut short).
        items.push({
          text: spec.partialLegend,
          fillStyle: translucent(t.colours[0], 0.35),
          strokeStyle: t.text,
          fontColor: t.text,
          lineDash: DASH,
          lineWidth: 1.5,
          hidden: false,
          partialKey: true,
        });
        return items;
      };
    }
    return {
      display: many || Boolean(spec.partialLegend),
      labels,
      onClick(event, item, legendPlugin) {
        if (item.partialKey) return;
        Chart.defaults.plugins.legend.onClick.call(this, event, item, legendPlugin);
      },
    };
  }

  function config(spec, t) {
    const unit = spec.unit ? " " + spec.unit : "";
    const partial = partials(spec);
    const options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: reducedMotion.matches ? false : { duration: 400 },
      plugins: {
        legend: legend(spec, t),
        tooltip: {
          callbacks: {
            label(item) {
              const name = spec.type === "doughnut" ? item.label : item.dataset.label;
              return (name ? name + ": " : "") + item.formattedValue + unit;
            },
            footer(items) {
              const note = items.length ? partial.get(items[0].dataIndex) : undefined;
              return note ? "Not a whole period: " + note : "";
            },
          },
        },
      },
    };
    if (spec.type !== "doughnut") options.scales = scales(spec, t);
    if (spec.links) {
      // Each bar opens its page, as the name in the chart's table does.
      options.onClick = (event, elements) => {
        const link = elements.length ? spec.links[elements[0].index] : null;
        if (link) window.location.assign(link);
      };
      options.onHover = (event, elements) => {
        event.native.target.classList.toggle("chart-link", elements.length > 0);
      };
    }
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

  // The chart is drawn: show its box and fold its table away (still one click off).
  function reveal(canvas) {
    const box = canvas.closest(".chart-box");
    if (box) box.hidden = false;
    const figure = canvas.closest("figure");
    if (figure && !figure.chartRevealed) {
      // Once per figure, so a table the reader opened again stays open through redraws.
      figure.chartRevealed = true;
      for (const details of figure.querySelectorAll("details[open]")) details.open = false;
    }
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
      const same = Boolean(existing) && canvas.chartSource === source;
      // The source is compared too: a morph swap can keep the canvas but change its data.
      if (!force && same && canvas.dataset.drawn === "true") {
        reveal(canvas);
        continue;
      }
      // A morph that kept canvas and data still resets the server's attributes (the canvas's
      // size, [hidden] on its box): drawn again, without the entry animation.
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
      // Shown before drawing, so Chart.js measures the box it is going to fill.
      reveal(canvas);
      const settings = config(spec, t);
      if (same) settings.options.animation = false;
      new Chart(canvas, settings);
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
  // before:settle comes in the same task as the swap itself, so a swapped-in table never
  // shows open for a frame before its chart replaces it; after:swap catches the rest.
  document.addEventListener("htmx:before:settle", redraw);
  document.addEventListener("htmx:after:swap", redraw);
  document.addEventListener("htmx:after:settle", redraw);
  darkScheme.addEventListener("change", redrawAll);
  reducedMotion.addEventListener("change", redrawAll);
  narrowScreen.addEventListener("change", redrawAll);
})();
