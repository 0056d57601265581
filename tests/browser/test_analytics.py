"""Analytics in the browser: range switches swap in place with JS, navigate without it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import sign_in
from .helpers import ConsoleErrors, assert_no_horizontal_scroll

RANGES = [("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"), ("6m", "6 months"),
          ("12m", "12 months"), ("all", "All time")]


def _chart_source(page: Page) -> str:
    return page.locator("#chart-over-time").text_content() or ""


def test_each_range_swaps_the_charts_in_place(signed_in_page: Page, base_url: str) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    page.goto("/analytics")
    page.evaluate("() => { window.__marker = 1 }")
    expect(page.locator('canvas[data-chart="chart-over-time"]')).to_have_attribute(
        "data-drawn", "true")
    seen = {_chart_source(page)}
    for key, label in RANGES:
        page.get_by_role("navigation", name="Date range").get_by_role("link", name=label).click()
        expect(page).to_have_url(re.compile(rf"/analytics\?range={key}&metric=plays$"))
        expect(page.locator("h1")).to_have_text(f"Analytics · {label}")
        # The tab's title follows the swap (htmx 4 takes the fragment's <title>).
        expect(page).to_have_title(f"Analytics · {label} · Music Time Machine")
        expect(page.locator("title")).to_have_count(1)
        active = page.get_by_role("navigation", name="Date range").locator("[aria-current]")
        expect(active).to_have_text(label)
        canvas = page.locator('canvas[data-chart="chart-over-time"]')
        expect(canvas).to_have_attribute("data-drawn", "true")
        seen.add(_chart_source(page))
        assert page.evaluate("() => window.__marker") == 1, "the page was reloaded"
    # Every range drew different data.
    assert len(seen) == len(RANGES)
    errors.assert_none()


def test_back_and_forward_restore_the_range(signed_in_page: Page) -> None:
    page = signed_in_page
    page.goto("/analytics?range=30d")
    nav = page.get_by_role("navigation", name="Date range")
    nav.get_by_role("link", name="7 days").click()
    expect(page.locator("h1")).to_have_text("Analytics · 7 days")
    nav = page.get_by_role("navigation", name="Date range")
    nav.get_by_role("link", name="All time").click()
    expect(page.locator("h1")).to_have_text("Analytics · All time")
    page.go_back()
    expect(page).to_have_url(re.compile(r"range=7d"))
    expect(page.locator("h1")).to_have_text("Analytics · 7 days")
    expect(page.locator('canvas[data-chart="chart-over-time"]')).to_have_attribute(
        "data-drawn", "true")
    expect(page).to_have_title("Analytics · 7 days · Music Time Machine")
    page.go_back()
    expect(page.locator("h1")).to_have_text("Analytics · 30 days")
    expect(page).to_have_title("Analytics · 30 days · Music Time Machine")
    page.go_forward()
    expect(page.locator("h1")).to_have_text("Analytics · 7 days")
    expect(page).to_have_title("Analytics · 7 days · Music Time Machine")


def test_metric_switch(signed_in_page: Page) -> None:
    page = signed_in_page
    page.goto("/analytics?range=all")
    page.get_by_role("link", name="By minutes").click()
    expect(page).to_have_url(re.compile(r"range=all&metric=minutes"))
    expect(page.locator("#artists-title")).to_contain_text("by minutes")
    minutes = [int(v.replace(",", "")) for v in
               page.locator(".tracks-table tbody td:nth-child(4)").all_text_contents()]
    assert minutes == sorted(minutes, reverse=True) and len(minutes) == 10


def test_ranges_without_javascript(nojs_page: Page) -> None:
    page = nojs_page
    page.goto("/analytics")
    for key, label in RANGES:
        with page.expect_navigation():
            page.get_by_role("navigation", name="Date range").get_by_role(
                "link", name=label).click()
        expect(page).to_have_url(re.compile(rf"range={key}"))
        expect(page.locator("h1")).to_have_text(f"Analytics · {label}")
        # Without JavaScript every chart still has its table, and the heatmap is HTML.
        expect(page.locator("table.heatmap tbody tr")).to_have_count(7)
        expect(page.locator("details summary").first).to_be_visible()
    assert_no_horizontal_scroll(page)


@pytest.mark.parametrize("width", [375, 768, 1280])
def test_analytics_fits_the_screen(new_context, base_url: str, width: int, tmp_path) -> None:
    context = new_context(viewport={"width": width, "height": 900})
    page = sign_in(context.new_page(), base_url)
    page.goto("/analytics")
    expect(page.locator('canvas[data-chart="chart-artists"]')).to_have_attribute(
        "data-drawn", "true")
    page.screenshot(path=str(tmp_path / f"analytics-{width}.png"), full_page=True)
    assert_no_horizontal_scroll(page)
    heat = page.locator("table.heatmap")
    box = heat.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width


def test_loading_indicator_shows_while_a_range_loads(signed_in_page: Page) -> None:
    page = signed_in_page
    page.goto("/analytics")

    def slow(route) -> None:
        page.wait_for_timeout(700)
        route.continue_()

    page.route(re.compile(r".*/analytics\?range=90d.*"), slow)
    indicator = page.locator("#analytics .loading")
    # Idle, the indicator takes no space at all (app.css); it shows while the request runs.
    expect(indicator).to_be_hidden()
    page.get_by_role("link", name="90 days").click()
    expect(page.locator("#analytics.htmx-request")).to_have_count(1)
    expect(indicator).to_be_visible()
    expect(page.locator("h1")).to_have_text("Analytics · 90 days")
    expect(page.locator("#analytics.htmx-request")).to_have_count(0)
    expect(page.locator("#analytics .loading")).to_be_hidden()


# --- the charts themselves ---------------------------------------------------------

ANALYTICS_CHARTS = ("chart-over-time", "chart-genres", "chart-artists", "chart-discoveries")
HOME_CHART = "chart-last-30"


def _wait_drawn(page: Page, *charts: str) -> None:
    for chart in charts:
        expect(page.locator(f'canvas[data-chart="{chart}"]')).to_have_attribute(
            "data-drawn", "true")


def _chart(page: Page, chart: str, script: str) -> Any:
    """Evaluate `script`, a function of (Chart.js chart), for one drawn chart."""
    return page.locator(f'canvas[data-chart="{chart}"]').evaluate(
        f"(canvas) => ({script})(Chart.getChart(canvas))")


# Every legend entry and tick label of a chart as a box in canvas pixels, plus what is wrong:
# anything outside the canvas, a legend entry cut off or over the plot, labels overlapping.
LAYOUT_JS = """(chart) => {
  const problems = [];
  const W = chart.width, H = chart.height, area = chart.chartArea, ctx = chart.ctx;
  const legend = chart.legend;
  if (legend && legend.options.display) {
    const items = legend.legendItems, boxes = legend.legendHitBoxes;
    if (items.length !== boxes.length) problems.push("legend lost entries");
    boxes.forEach((b, i) => {
      const name = "legend entry " + JSON.stringify(items[i].text);
      if (b.left < -0.5 || b.left + b.width > W + 0.5 || b.top < -0.5 || b.top + b.height > H + 0.5)
        problems.push(name + " is outside the canvas");
      if (b.top + b.height > legend.bottom + 0.5) problems.push(name + " is cut off");
    });
    if (legend.options.position === "top" && legend.bottom > area.top + 0.5)
      problems.push("the legend runs into the chart");
  }
  for (const scale of Object.values(chart.scales)) {
    if (scale.left < -0.5 || scale.right > W + 0.5 || scale.top < -0.5 || scale.bottom > H + 0.5)
      problems.push("axis " + scale.id + " sticks out of the canvas");
    const horizontal = scale.isHorizontal();
    const rects = scale.getLabelItems().map((item) => {
      ctx.save();
      ctx.font = item.font.string;
      const lines = [].concat(item.label);
      const width = Math.max(...lines.map((l) => ctx.measureText(String(l)).width));
      ctx.restore();
      const [x, y] = item.options.translation;
      const align = item.options.textAlign;
      const left = align === "center" ? x - width / 2 : align === "right" ? x - width : x;
      const height = item.font.lineHeight * lines.length;
      return {label: lines.join(" "), left, right: left + width, top: y - height / 2,
              bottom: y + height / 2, rotation: item.options.rotation};
    });
    for (const r of rects) {
      if (r.rotation) problems.push("axis " + scale.id + " labels are slanted");
      if (r.left < -0.5 || r.right > W + 0.5)
        problems.push("label " + JSON.stringify(r.label) + " on " + scale.id + " is cut off");
    }
    const sorted = rects.slice().sort((a, b) => horizontal ? a.left - b.left : a.top - b.top);
    for (let i = 1; i < sorted.length; i++) {
      const a = sorted[i - 1], b = sorted[i];
      if (horizontal ? a.right > b.left : a.bottom > b.top + 0.5)
        problems.push("labels " + JSON.stringify(a.label) + " and " + JSON.stringify(b.label)
                      + " on " + scale.id + " overlap");
    }
  }
  return problems;
}"""


def _phone(new_context: Any, base_url: str, **options: Any) -> Page:
    context = new_context(viewport={"width": 375, "height": 800}, **options)
    return sign_in(context.new_page(), base_url)


@pytest.mark.parametrize("range_key", ["7d", "12m", "all"])
def test_analytics_chart_labels_fit_at_375(new_context: Any, base_url: str,
                                           range_key: str) -> None:
    page = _phone(new_context, base_url)
    page.goto(f"/analytics?range={range_key}")
    _wait_drawn(page, *ANALYTICS_CHARTS)
    problems = {chart: _chart(page, chart, LAYOUT_JS) for chart in ANALYTICS_CHARTS}
    assert problems == {chart: [] for chart in ANALYTICS_CHARTS}
    # Long artist names are shortened on the axis, so the bars keep most of the width.
    artists = _chart(page, "chart-artists",
                     "(c) => ({axis: c.scales.y.width, canvas: c.width})")
    assert artists["axis"] < artists["canvas"] * 0.45, artists
    assert_no_horizontal_scroll(page)


def test_home_chart_labels_fit_at_375(new_context: Any, base_url: str) -> None:
    page = _phone(new_context, base_url)
    _wait_drawn(page, HOME_CHART)
    assert _chart(page, HOME_CHART, LAYOUT_JS) == []


def test_analytics_heatmap_labels_apart_at_375(new_context: Any, base_url: str) -> None:
    page = _phone(new_context, base_url)
    page.goto("/analytics?range=12m")
    boxes = page.evaluate("""() => {
      const text = (el) => { const r = document.createRange(); r.selectNodeContents(el);
                             const b = r.getBoundingClientRect();
                             return {left: b.left, right: b.right, width: b.width}; };
      const table = document.querySelector("table.heatmap").getBoundingClientRect();
      // A label hidden for screen readers only is a 1 px box; its text would still measure.
      const hours = [...document.querySelectorAll("table.heatmap thead th[abbr]")]
        .map((th) => th.querySelector("span") || th)
        .filter((el) => el.getBoundingClientRect().width > 1)
        .map((el) => ({abbr: el.closest("th").getAttribute("abbr"), ...text(el)}));
      const days = [...document.querySelectorAll("table.heatmap tbody tr")].map((tr) => ({
        day: tr.querySelector("th").textContent, ...text(tr.querySelector("th")),
        cell: tr.querySelector("td").getBoundingClientRect().left}));
      return {hours, days, table: {left: table.left, right: table.right}};
    }""")
    hours = boxes["hours"]
    assert 6 <= len(hours) <= 12, f"hour labels shown at 375 px: {[h['abbr'] for h in hours]}"
    for a, b in zip(hours, hours[1:], strict=False):
        assert a["right"] + 2 <= b["left"], f"hour labels {a['abbr']} and {b['abbr']} touch"
    assert all(boxes["table"]["left"] <= h["left"] and h["right"] <= boxes["table"]["right"]
               for h in hours), hours
    for day in boxes["days"]:
        assert day["right"] + 2 <= day["cell"], f"{day['day']} runs into its first cell"
    # Every hour keeps its label for screen readers, shown or not.
    labels = page.locator("table.heatmap thead th[abbr]").all_text_contents()
    assert labels == [str(h) for h in range(24)]


def test_analytics_heatmap_shows_every_hour_when_wide(new_context: Any, base_url: str) -> None:
    context = new_context(viewport={"width": 1280, "height": 800})
    page = sign_in(context.new_page(), base_url)
    page.goto("/analytics?range=12m")
    widths = page.locator("table.heatmap thead th[abbr] span").evaluate_all(
        "(spans) => spans.map((s) => s.getBoundingClientRect().width)")
    assert len(widths) == 24 and all(w > 4 for w in widths), widths


def _colour(value: str) -> tuple[int, int, int]:
    if value.startswith("#"):
        return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
    r, g, b = (int(float(v)) for v in re.findall(r"[\d.]+", value)[:3])
    return r, g, b


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_analytics_genre_slices_have_distinct_colours(new_context: Any, base_url: str,
                                                      scheme: str) -> None:
    context = new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    page = sign_in(context.new_page(), base_url)
    page.goto("/analytics?range=all")
    _wait_drawn(page, "chart-genres")
    slices = _chart(page, "chart-genres", """(c) => ({labels: c.data.labels,
        colours: c.data.datasets[0].backgroundColor,
        legend: c.legend.legendItems.map((i) => i.fillStyle),
        surface: getComputedStyle(document.querySelector(".card")).backgroundColor})""")
    labels, colours = slices["labels"], slices["colours"]
    assert len(labels) >= 7, labels  # more slices than the six colours there used to be
    assert len(set(colours)) == len(labels), list(zip(labels, colours, strict=True))
    assert slices["legend"] == colours
    other = labels.index("Other genres")
    r, g, b = _colour(colours[other])
    assert max(r, g, b) - min(r, g, b) < 12, f"'Other genres' is not grey: {colours[other]}"
    surface = _colour(slices["surface"])
    for label, colour in zip(labels, colours, strict=True):
        rgb = _colour(colour)
        if label != "Other genres":
            assert max(rgb) - min(rgb) > 40, f"{label} is greyish: {colour}"
        # Every slice stands apart from the card it is drawn on.
        assert sum(abs(x - y) for x, y in zip(rgb, surface, strict=True)) > 120, (
            label, colour, slices["surface"])


def test_analytics_axes_have_titles_and_whole_number_ticks(signed_in_page: Page) -> None:
    page = signed_in_page
    page.goto("/analytics?range=7d")
    _wait_drawn(page, *ANALYTICS_CHARTS)
    axes_js = """(c) => Object.values(c.scales).map((s) => ({id: s.id, type: s.type,
        title: s.options.title.display ? s.options.title.text : "",
        precision: s.options.ticks.precision,
        ticks: s.type === "linear" ? s.ticks.map((t) => t.value) : []}))"""
    expected = {"chart-over-time": {"x": "Day", "y": "Minutes listened", "y1": "Plays"},
                "chart-artists": {"x": "Plays", "y": "Artist"},
                "chart-discoveries": {"x": "Month of first play", "y": "New artists"}}
    for chart, titles in expected.items():
        axes = _chart(page, chart, axes_js)
        assert {a["id"]: a["title"] for a in axes} == titles, (chart, axes)
        for axis in axes:
            if axis["type"] == "linear":
                assert axis["precision"] == 0, (chart, axis)
                assert all(float(v).is_integer() for v in axis["ticks"]), (chart, axis)
    page.goto("/")
    _wait_drawn(page, HOME_CHART)
    axes = _chart(page, HOME_CHART, axes_js)
    assert {a["id"]: a["title"] for a in axes} == {"x": "Day", "y": "Minutes listened",
                                                   "y1": "Plays"}


def test_analytics_small_counts_get_whole_number_ticks(signed_in_page: Page) -> None:
    # Counts up to 3 would get ticks of 0.5 or 0.2 by default; a chart of such a spec is
    # added to the page and drawn by charts.js as after a swap.
    page = signed_in_page
    page.goto("/analytics?range=7d")
    _wait_drawn(page, "chart-over-time")
    ticks = page.evaluate("""() => {
      const spec = {type: "bar", labels: ["a", "b", "c", "d"],
                    datasets: [{label: "New artists", data: [0, 1, 3, 2]}]};
      const block = document.createElement("script");
      block.type = "application/json";
      block.id = "chart-small";
      block.textContent = JSON.stringify(spec);
      const box = document.createElement("div");
      box.className = "chart-box";
      box.hidden = true;
      box.innerHTML = '<canvas data-chart="chart-small"></canvas>';
      document.querySelector("#analytics").append(box, block);
      document.dispatchEvent(new CustomEvent("htmx:after:swap"));
      const chart = Chart.getChart(box.querySelector("canvas"));
      return chart.scales.y.ticks.map((t) => t.value);
    }""")
    assert ticks == [0, 1, 2, 3], ticks


def test_analytics_incomplete_periods_are_marked(signed_in_page: Page) -> None:
    page = signed_in_page
    page.goto("/analytics?range=7d")
    _wait_drawn(page, "chart-over-time")
    marks = _chart(page, "chart-over-time", """(c) => {
      const n = c.data.labels.length, ds = c.data.datasets[0];
      const dash = (i) => ds.segment.borderDash({p0DataIndex: i - 1, p1DataIndex: i}) || [];
      return {legend: c.legend.legendItems.map((i) => i.text), last: dash(n - 1),
              before: dash(n - 2), points: ds.pointRadius};
    }""")
    assert marks["legend"] == ["Minutes", "Plays", "Today so far"], marks
    assert marks["last"] == [6, 4] and marks["before"] == [], marks
    assert marks["points"][-1] > 0 and not any(marks["points"][:-1]), marks
    # The table says it too.
    expect(page.locator("#over-time-title ~ figure tbody tr").last).to_contain_text(
        "(today so far)")
    page.goto("/")
    _wait_drawn(page, HOME_CHART)
    home = _chart(page, HOME_CHART, """(c) => ({legend: c.legend.legendItems.map((i) => i.text),
        bars: c.data.datasets[0].backgroundColor})""")
    assert home["legend"] == ["Minutes listened", "Plays", "Today so far"], home
    bars = home["bars"]
    assert len(set(bars[:-1])) == 1 and bars[-1] != bars[0], bars


def _figures(page: Page) -> Any:
    return page.locator("figure.chart")


def test_analytics_without_javascript_shows_the_tables(nojs_page: Page) -> None:
    page = nojs_page
    page.goto("/analytics?range=12m")
    figures = _figures(page)
    expect(figures).to_have_count(4)
    for i in range(4):
        figure = figures.nth(i)
        # No empty chart box: the data table is the content, open and visible.
        expect(figure.locator(".chart-box")).to_be_hidden()
        expect(figure.locator("details")).to_have_attribute("open", "")
        expect(figure.locator("table")).to_be_visible()
        expect(figure.locator("table tbody tr").first).to_be_visible()
    assert_no_horizontal_scroll(page)


def test_analytics_with_javascript_shows_charts_and_keeps_tables(signed_in_page: Page
                                                                  ) -> None:
    page = signed_in_page
    page.goto("/analytics?range=12m")
    _wait_drawn(page, *ANALYTICS_CHARTS)
    figures = _figures(page)
    expect(figures).to_have_count(4)
    for i in range(4):
        figure = figures.nth(i)
        expect(figure.locator(".chart-box")).to_be_visible()
        box = figure.locator("canvas").bounding_box()
        assert box and box["height"] > 150, box
        # The table is folded away, one click from view.
        expect(figure.locator("table")).to_be_hidden()
        figure.locator("summary").click()
        expect(figure.locator("table")).to_be_visible()
    # After a swap the new charts are drawn and their tables folded again.
    page.get_by_role("navigation", name="Date range").get_by_role("link", name="30 days").click()
    expect(page.locator("h1")).to_have_text("Analytics · 30 days")
    _wait_drawn(page, *ANALYTICS_CHARTS)
    for i in range(4):
        expect(figures.nth(i).locator(".chart-box")).to_be_visible()
        expect(figures.nth(i).locator("table")).to_be_hidden()


def test_home_chart_without_javascript_is_its_table(nojs_page: Page) -> None:
    page = nojs_page
    figure = _figures(page)
    expect(figure).to_have_count(1)
    expect(figure.locator(".chart-box")).to_be_hidden()
    expect(figure.locator("table")).to_be_visible()
    expect(figure.locator("table tbody tr")).to_have_count(30)


def test_home_chart_with_javascript_folds_its_table(signed_in_page: Page) -> None:
    page = signed_in_page
    _wait_drawn(page, HOME_CHART)
    figure = _figures(page)
    expect(figure.locator(".chart-box")).to_be_visible()
    expect(figure.locator("table")).to_be_hidden()
    figure.locator("summary").click()
    expect(figure.locator("table")).to_be_visible()


def test_home_chart_stays_drawn_through_a_refresh(signed_in_page: Page) -> None:
    # The dashboard's Refresh morphs it in place: the chart keeps its box shown and painted,
    # and a table the reader opened stays open.
    page = signed_in_page
    errors = ConsoleErrors(page)
    _wait_drawn(page, HOME_CHART)
    figure = _figures(page)
    figure.locator("summary").click()
    expect(figure.locator("table")).to_be_visible()
    # Morph drops attributes the server did not send: this one going marks the swap done.
    page.evaluate("() => { document.getElementById('dashboard').dataset.old = 'yes'; }")
    page.locator("#sync-status").get_by_role("link", name="Refresh").click()
    expect(page.locator("#dashboard")).not_to_have_attribute("data-old", "yes")
    expect(figure.locator(".chart-box")).to_be_visible()
    canvas = page.locator(f'canvas[data-chart="{HOME_CHART}"]')
    expect(canvas).to_have_attribute("data-drawn", "true")
    page.wait_for_function("""(canvas) => {
      const {data} = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
      let painted = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i]) painted++;
      return canvas.height > 150 && painted > 1000;
    }""", arg=canvas.element_handle(), timeout=10_000)
    expect(figure.locator("table")).to_be_visible()
    errors.assert_none()
