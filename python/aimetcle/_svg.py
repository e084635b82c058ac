"""Small SVG charts for the reports (no plotting library needed): per-channel
weight ranges (a box and whiskers per output channel) and grouped bars."""

import html
import math

import numpy as np

_FONT = 'font-family="Helvetica, Arial, sans-serif"'
COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3")


def _text(x, y, s, size=11, anchor="middle", weight="normal", rotate=None, color="#222"):
    transform = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
            f'fill="{color}" {_FONT}{transform}>{html.escape(str(s))}</text>')


def _ticks(lo, hi, count=5):
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * step:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v):
    return f"{v:.3g}" if v != 0 else "0"


def _panel_frame(out, x0, y0, w, h, lo, hi, title, xlabel, ylabel, log=False):
    """Axes, grid and labels of one panel; returns the value -> y mapping."""
    if log:
        llo, lhi = math.log10(lo), math.log10(hi)

        def ymap(v):
            return y0 + h - (math.log10(max(v, lo)) - llo) / (lhi - llo) * h
        ticks = [10.0 ** k for k in range(math.floor(llo), math.ceil(lhi) + 1) if lo <= 10.0 ** k <= hi]
    else:
        def ymap(v):
            return y0 + h - (v - lo) / (hi - lo) * h
        ticks = [t for t in _ticks(lo, hi) if lo <= t <= hi]
    out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="#fafafa" stroke="#999"/>')
    for t in ticks:
        y = ymap(t)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        out.append(_text(x0 - 5, y + 4, _fmt(t), 10, "end"))
    if not log and lo < 0 < hi:
        out.append(f'<line x1="{x0}" y1="{ymap(0):.1f}" x2="{x0 + w}" y2="{ymap(0):.1f}" stroke="#888"/>')
    out.append(_text(x0 + w / 2, y0 - 8, title, 12, weight="bold"))
    out.append(_text(x0 + w / 2, y0 + h + 30, xlabel, 11))
    out.append(_text(x0 - 42, y0 + h / 2, ylabel, 11, rotate=-90))
    return ymap


def channel_ranges(weight):
    """Per output channel (axis 0): min, 25th percentile, 75th percentile, max."""
    w = np.asarray(weight, dtype=np.float64).reshape(weight.shape[0], -1)
    q1, q3 = np.percentile(w, [25, 75], axis=1)
    return w.min(axis=1), q1, q3, w.max(axis=1)


def weight_range_panels(title, panels, shared_scale=False):
    """One SVG: for each (subtitle, weight) panel, a box (25-75%) and a whisker
    (min-max) per output channel — Nagel et al. 2019, Fig. 2 — with a legend;
    `shared_scale`: one y-scale for all panels (before and after compare by eye)."""
    pw, ph, left, top, gap = 420, 240, 60, 50, 70
    width = left + len(panels) * pw + (len(panels) - 1) * gap + 20
    height = top + ph + 70
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">', '<rect width="100%" height="100%" fill="white"/>',
           _text(width / 2, 18, title, 14, weight="bold")]
    stats = [channel_ranges(w) for _, w in panels]
    if shared_scale:
        lo = min(float(s[0].min()) for s in stats)
        hi = max(float(s[3].max()) for s in stats)
    for k, ((subtitle, _), (mins, q1, q3, maxs)) in enumerate(zip(panels, stats)):
        if not shared_scale:
            lo, hi = float(mins.min()), float(maxs.max())
        pad = 0.05 * (hi - lo or 1.0)
        x0 = left + k * (pw + gap)
        ymap = _panel_frame(out, x0, top + 10, pw, ph, lo - pad, hi + pad, subtitle, "output channel", "weight")
        n = len(mins)
        step = pw / n
        bar = max(1.0, 0.6 * step)
        for c in range(n):
            x = x0 + (c + 0.5) * step
            out.append(f'<line x1="{x:.1f}" y1="{ymap(maxs[c]):.1f}" x2="{x:.1f}" y2="{ymap(mins[c]):.1f}" '
                       f'stroke="{COLORS[0]}" stroke-width="1"/>')
            y_top, y_bottom = ymap(q3[c]), ymap(q1[c])
            out.append(f'<rect x="{x - bar / 2:.1f}" y="{y_top:.1f}" width="{bar:.1f}" '
                       f'height="{max(0.5, y_bottom - y_top):.1f}" fill="{COLORS[1]}"/>')
        for c in sorted({0, n - 1} | set(range(0, n, max(1, n // 8)))):
            out.append(_text(x0 + (c + 0.5) * step, top + 10 + ph + 14, c, 9))
    legend_y = height - 12
    out.append(f'<rect x="{left}" y="{legend_y - 10}" width="12" height="12" fill="{COLORS[1]}"/>')
    out.append(_text(left + 18, legend_y, "middle half of the channel's weights (25th-75th percentile)", 11, "start"))
    out.append(f'<line x1="{left + 400}" y1="{legend_y - 10}" x2="{left + 400}" y2="{legend_y + 2}" '
               f'stroke="{COLORS[0]}" stroke-width="2"/>')
    out.append(_text(left + 408, legend_y, "min to max" + (" (one y-scale for all panels)" if shared_scale else ""),
                     11, "start"))
    out.append("</svg>")
    return "\n".join(out)


def grouped_bars(title, categories, series, ylabel, log=True, xlabel=""):
    """One SVG: a group of bars per category, one bar per (label, values) series, with a legend."""
    n = len(categories)
    pw = max(460, 34 * n * len(series) // 2 + 40)
    left = 70
    # The legend: entries side by side (each as wide as its label), wrapping to more rows.
    legend, x, row = [], left, 0
    for label, _ in series:
        w = 30 + 7 * len(label)
        if x + w > left + pw and x > left:
            x, row = left, row + 1
        legend.append((x, row))
        x += w
    ph, top = 260, 48 + 18 * row
    bottom = 45 + int(5.5 * max((len(c) for c in categories), default=0))  # the slanted category names
    width, height = left + pw + 30, top + ph + bottom
    values = np.array([v for _, v in series], dtype=np.float64)
    positive = values[values > 0]
    if log:
        lo = 10 ** math.floor(math.log10(positive.min())) if positive.size else 1e-3
        hi = 10 ** math.ceil(math.log10(positive.max())) if positive.size else 1.0
    else:
        lo, hi = 0.0, float(values.max()) * 1.1 or 1.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">', '<rect width="100%" height="100%" fill="white"/>',
           _text(width / 2, 18, title, 14, weight="bold")]
    ymap = _panel_frame(out, left, top, pw, ph, lo, hi, "", "", ylabel, log=log)
    if xlabel:
        out.append(_text(left + pw / 2, height - 8, xlabel, 11))
    group = pw / n
    bar = 0.8 * group / len(series)
    for k, (label, vals) in enumerate(series):
        color = COLORS[k % len(COLORS)]
        for c, v in enumerate(vals):
            x = left + c * group + 0.1 * group + k * bar
            y = ymap(max(v, lo))
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{top + ph - y:.1f}" fill="{color}">'
                       f'<title>{html.escape(categories[c])}: {label} {v:.4g}</title></rect>')
        lx, ly = legend[k][0], 30 + 18 * legend[k][1]
        out.append(f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{color}"/>')
        out.append(_text(lx + 18, ly + 10, label, 11, "start"))
    for c, name in enumerate(categories):
        x = left + (c + 0.5) * group
        out.append(_text(x, top + ph + 12, name, 9, "end", rotate=-45))
    out.append("</svg>")
    return "\n".join(out)
