"""Weight-range plots (``aimet_torch.visualize_model``), written as SVG inside
an HTML page instead of AIMET's bokeh documents.

- ``visualize_weight_ranges(model, results_dir, selected_layers=None)``: per
  layer, a box (25-75%) and whisker (min-max) per output channel.
- ``visualize_relative_weight_ranges_to_identify_problematic_layers(model,
  results_dir, selected_layers=None)``: per layer, each channel's range relative
  to the largest; layers whose smallest relative range is tiny quantize badly
  per tensor (the problem CLE solves).
- ``visualize_changes_after_optimization(old_model, new_model, results_dir,
  selected_layers=None)``: before and after side by side on one y-scale (e.g. CLE).

Each writes ``{results_dir}/{name}.html`` plus one SVG per layer and returns
the HTML path.
"""

import html
import os
import re

import numpy as np

from . import _svg, nn

__all__ = ["visualize_weight_ranges", "visualize_relative_weight_ranges_to_identify_problematic_layers",
           "visualize_changes_after_optimization", "write_html"]

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.Linear)


def _layers(model, selected_layers):
    named = [(name, m) for name, m in model.named_modules() if isinstance(m, _LAYERS) and name]
    if selected_layers is None:
        return named
    wanted = [m if isinstance(m, str) else id(m) for m in selected_layers]
    chosen = [(n, m) for n, m in named if n in wanted or id(m) in wanted]
    if len(chosen) != len(wanted):
        raise ValueError("selected_layers names a module that is not a Conv/Linear layer of the model")
    return chosen


def _out_channels_first(module):
    w = np.asarray(module.weight)
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d)):
        g = module.groups
        w = w.reshape((g, w.shape[0] // g) + w.shape[1:]).swapaxes(1, 2).reshape((-1, w.shape[0] // g) + w.shape[2:])
    return w


def _file(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "layer"


def write_html(path, title, sections):
    """An HTML page: ``sections`` are (heading, html fragment) pairs."""
    body = "\n".join(f"<h2>{html.escape(h)}</h2>\n{fragment}" for h, fragment in sections)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>\n"
                "<style>body{font-family:Helvetica,Arial,sans-serif;margin:2em;max-width:1100px}"
                "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
                "th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}img{max-width:100%}</style>"
                f"</head><body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")
    return path


def _write(results_dir, page, title, charts):
    os.makedirs(results_dir, exist_ok=True)
    sections = []
    for heading, svg in charts:
        name = f"{page}_{_file(heading)}.svg"
        with open(os.path.join(results_dir, name), "w", encoding="utf-8") as f:
            f.write(svg)
        sections.append((heading, f'<img src="{html.escape(name)}" alt="{html.escape(heading)}">'))
    return write_html(os.path.join(results_dir, f"{page}.html"), title, sections)


def visualize_weight_ranges(model, results_dir, selected_layers=None):
    charts = [(name, _svg.weight_range_panels(f"{name}: weight range per output channel",
                                              [("", _out_channels_first(m))]))
              for name, m in _layers(model, selected_layers)]
    return _write(results_dir, "weight_ranges", "Weight ranges per output channel", charts)


def relative_ranges(weight):
    """Each output channel's max |w| relative to the layer's largest."""
    r = np.abs(np.asarray(weight, np.float64).reshape(weight.shape[0], -1)).max(axis=1)
    return r / max(r.max(), 1e-30)


def visualize_relative_weight_ranges_to_identify_problematic_layers(model, results_dir, selected_layers=None):
    charts = []
    for name, m in _layers(model, selected_layers):
        r = relative_ranges(_out_channels_first(m))
        charts.append((f"{name} (smallest relative range {r.min():.3g})",
                       _svg.grouped_bars(f"{name}: max |w| per channel / largest", [str(c) for c in range(len(r))],
                                         [("relative range", r)], "relative range", log=False)))
    return _write(results_dir, "relative_weight_ranges", "Relative weight ranges per output channel", charts)


def visualize_changes_after_optimization(old_model, new_model, results_dir, selected_layers=None):
    old = dict(_layers(old_model, None))
    charts = []
    for name, m in _layers(new_model, selected_layers):
        if name not in old:
            continue
        charts.append((name, _svg.weight_range_panels(
            f"{name}: weight range per output channel",
            [("before", _out_channels_first(old[name])), ("after", _out_channels_first(m))], shared_scale=True)))
    return _write(results_dir, "changes_after_optimization", "Weight ranges before and after", charts)
