"""The server-side SVG charts: named and described for assistive technology, gaps where a month has
no figure, axes on round numbers, and names from incidents escaped (they are outside input)."""

from __future__ import annotations

import re

from postmortem.web.charts import Series, _nice_top, bar_chart, line_chart


def test_a_line_chart_is_titled_described_and_leaves_gaps() -> None:
    svg = str(
        line_chart(
            "TTR", "Median minutes", ["2026-01", "2026-02", "2026-03", "2026-04"], [Series("median", [5, 7, None, 9])]
        )
    )
    chart_id = re.search(r'<title id="(chart-\d+)-t">TTR</title>', svg)
    assert chart_id and f'aria-labelledby="{chart_id.group(1)}-t {chart_id.group(1)}-d"' in svg
    assert f'<desc id="{chart_id.group(1)}-d">Median minutes</desc>' in svg and 'role="img"' in svg
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 3  # 5→7 joined; 9 alone after the gap
    assert '<li><span class="swatch c0"></span>median</li>' in svg
    assert ">10</text>" in svg  # the axis tops at a round 10 above the largest value, 9


def test_bars_escape_outside_names_and_scale_to_a_given_top() -> None:
    svg = str(bar_chart("Services", "Most affected", {"<script>x</script>": 4, "db": 2}, "%", top=100))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    widths = [float(w) for w in re.findall(r'class="bar" x="\d+" y="\d+" width="([\d.]+)"', svg)]
    assert widths[0] == widths[1] * 2 and widths[0] < 100  # 4% of the width, not all of it
    assert ">—</text>" in str(bar_chart("None", "Nothing", {}))


def test_round_axis_tops() -> None:
    assert [_nice_top(v) for v in (0, 0.3, 1, 7, 12, 180, 2600)] == [1, 0.5, 1, 10, 20, 200, 5000]
