"""Charts drawn on the server as inline SVG: readable without JavaScript, under the strict CSP (no
script, no inline style: colours are classes of app.css), and accessible — each chart is an
`<svg role="img">` named by its `<title>` and described by its `<desc>`, and the metrics page puts
the same numbers in a table beside it.

Why not a JavaScript charting library: none is packaged on PyPI in a well-kept wheel, and one from
npm would make the app's run need Node for a page that has a handful of small charts; these are a
few dozen lines and need nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count

from markupsafe import Markup, escape

_ids = count(1)
WIDTH, HEIGHT = 640, 250
LEFT, RIGHT, TOP, BOTTOM = 104, 16, 16, 34
ROW = 30  # a bar's row: room for the phone's larger text


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per label; None where there is no figure


def _nice_top(value: float) -> float:
    """A round upper bound of the axis at or above `value` (1, 2, 2.5 or 5 × a power of ten)."""
    if value <= 0:
        return 1.0
    power = 1.0
    while power * 10 <= value:
        power *= 10
    while power > value:
        power /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:g}"


def _open(title: str, desc: str, width: int, height: int) -> tuple[str, list[str]]:
    n = next(_ids)
    head = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="chart-{n}-t chart-{n}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-{n}-t">{escape(title)}</title>',
        f'<desc id="chart-{n}-d">{escape(desc)}</desc>',
    ]
    return f"chart-{n}", head


def line_chart(
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    unit: str = "",
    top: float | None = None,
) -> Markup:
    """Lines over time (one point per label, a gap where a value is None), y from 0 to `top` (a
    round number above the largest value when not given), a legend."""
    _, out = _open(title, desc, WIDTH, HEIGHT)
    top = top or _nice_top(max((v for s in series for v in s.values if v is not None), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels) - 1, 1)

    def x(i: int) -> float:
        return LEFT + (i * step if len(labels) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h - v / top * plot_h

    out.append('<g class="axis">')
    for k in range(5):
        value = top * k / 4
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>')
        tick = escape(_number(value) + unit)
        out.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{tick}</text>')
    every = max(1, (len(labels) + 4) // 5)
    last = len(labels) - 1
    for i, label in enumerate(labels):
        if i == last or (i % every == 0 and last - i >= every):
            anchor = "start" if i == 0 and len(labels) > 1 else "end" if i == last and i else "middle"
            out.append(f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 24}" text-anchor="{anchor}">{escape(label)}</text>')
    out.append("</g>")
    for n, s in enumerate(series):
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
        out.append(f'<g class="series c{n % 4}">')
        for run in runs:
            if len(run) > 1:
                out.append(f'<polyline points="{" ".join(run)}"/>')
            for point in run:
                px, py = point.split(",")
                out.append(f'<circle cx="{px}" cy="{py}" r="3.5"/>')
        out.append("</g>")
    out.append("</svg>")
    # The legend is HTML beside the drawing: it wraps on a phone, and reads as text.
    out.append('<ul class="legend">')
    for n, s in enumerate(series):
        out.append(f'<li><span class="swatch c{n % 4}"></span>{escape(s.name)}</li>')
    out.append("</ul>")
    return Markup("".join(out))


def bar_chart(title: str, desc: str, counts: dict[str, float], unit: str = "", top: float | None = None) -> Markup:
    """Horizontal bars in the order given, each labelled with its name and value; the full width is
    `top` (a rate's 100), else the largest value."""
    _, out = _open(title, desc, WIDTH, ROW * max(len(counts), 1) + 12)
    if not counts:
        out.append('<text x="8" y="24">—</text></svg>')
        return Markup("".join(out))
    label_w, value_w = 250, 70
    top = top or max(counts.values()) or 1
    plot_w = WIDTH - label_w - value_w
    for i, (name, value) in enumerate(counts.items()):
        y = 6 + i * ROW
        width = max(value / top * plot_w, 1)
        shown = name if len(name) <= 18 else name[:17] + "…"
        out.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{escape(shown)}</text>')
        out.append(f'<rect class="bar" x="{label_w}" y="{y}" width="{width:.1f}" height="22"/>')
        out.append(f'<text x="{label_w + width + 6:.1f}" y="{y + 17}">{escape(_number(value) + unit)}</text>')
    out.append("</svg>")
    return Markup("".join(out))
