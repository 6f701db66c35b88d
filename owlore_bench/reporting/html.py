"""`owlore-bench report DIR --html`: one self-contained report.html that opens on an air-gapped cluster.

Everything is inside the file: the CSS is inline, every figure is the same matplotlib Figure the PNGs come from
(plots.py, mtbench/radar.py) saved as SVG and embedded as a data: URI (an `<img>` each, so the SVGs' internal ids
cannot clash), and no script, font or stylesheet is fetched. The tables are the report's own display frames
(render.display_frame, delta_tables.delta_display, styled for HTML), so a column added to the numbers or delta
table shows up here too. Every string from the store (labels, configs, errors) goes through html.escape. The
file is written as ASCII (other characters as &#...; references), so it reads the same whatever the locale.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure

from owlore_bench import __version__
from owlore_bench.mtbench.judges import judge_heading
from owlore_bench.mtbench.radar import category_radar_figure
from owlore_bench.reporting import plots
from owlore_bench.reporting.delta_tables import delta_caption, delta_display
from owlore_bench.reporting.loading import Results, mt_bench_judges
from owlore_bench.reporting.mt_bench import (
    SUMMARY_COLUMNS,
    category_intervals,
    category_table,
    display_table,
    question_categories,
)
from owlore_bench.reporting.mt_bench_pairwise import CAPTION as PAIRWISE_CAPTION
from owlore_bench.reporting.mt_bench_pairwise import pairwise_display
from owlore_bench.reporting.pareto import pareto_caption
from owlore_bench.reporting.provenance import commits, run_provenance, stored_configs
from owlore_bench.reporting.render import MARKDOWN, caption, display_frame
from owlore_bench.results import write_text_atomic

FILE_NAME = "report.html"
HTML = dataclasses.replace(MARKDOWN, bold="<strong>{}</strong>", escape=html.escape)
MT_BENCH_COUNTS = ("Unparsed", "Judged", "Seeds")  # category_table's count columns (not radar axes)
# A fixed salt makes matplotlib's SVG ids (clip paths, markers) the same on every run, so a rebuilt report of
# the same results is the same file; no Date metadata for the same reason.
SVG_SETTINGS = {"svg.hashsalt": "owlore-bench", "svg.fonttype": "path"}  # glyphs as paths: no font needed
MEMORY_TEXT = ("Peak weights, gradients, optimizer state and activations from the memory ledger (GiB = 2^30 bytes, "
               "mean over seeds); the black mark is the peak total, below the stack when the categories peak at "
               "different moments.")
RUNS_TEXT = ('<p class="caption">One line per run, from its summary.json: package versions, git commit (dirty = '
             'uncommitted changes to tracked files), hardware, the 1-minute load average over its steady steps and '
             'the CPUs it could use (contended: load &gt;= CPUs + 0.5), run wall time (s); — = not stored.</p>')
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 78rem;
       padding: 0 1rem; color: #1b1f23; background: #ffffff; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.2rem; }
nav a { margin-right: 1rem; } .meta, .caption, figcaption { color: #57606a; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 0.6rem 0 1.2rem; font-size: 0.88rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.55rem; text-align: right; white-space: nowrap; }
th { background: #f6f8fa; } td:first-child, th:first-child { text-align: left; }
tbody tr:nth-child(even) { background: #fafbfc; } strong { color: #0b5394; }
figure { display: inline-block; margin: 0.5rem 1rem 1rem 0; vertical-align: top; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
.scroll { overflow-x: auto; } pre { background: #f6f8fa; padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; }
details { margin: 0.3rem 0; } summary { cursor: pointer; }
"""


def svg_data_uri(figure: Figure) -> str:
    """The figure as an SVG data: URI (base64), saved as the PNGs are (bbox tight keeps outside legends)."""
    buffer = io.BytesIO()
    with rc_context(SVG_SETTINGS):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(figure: Figure | None, text: str) -> str:
    """<figure> with the embedded SVG and its caption; '' for a plot the data does not allow (None)."""
    if figure is None:
        return ""
    return (f'<figure><img src="{svg_data_uri(figure)}" alt="{html.escape(text)}">'
            f"<figcaption>{html.escape(text)}</figcaption></figure>")


def frame_html(frame: pd.DataFrame, escaped: bool = False) -> str:
    """A DataFrame as an HTML table; its strings are escaped here unless the frame is already HTML (`escaped`).
    Missing values (NaN, None) show as '—'; floats with 2 decimals."""
    if not escaped:
        frame = frame.rename(columns=lambda name: html.escape(str(name)),
                             index=lambda name: html.escape(str(name)))
        frame = frame.apply(lambda column: column.map(lambda v: html.escape(v) if isinstance(v, str) else
                                                      "—" if v is None else v))  # None: not stored
    table = frame.to_html(index=False, escape=False, border=0, na_rep="—", float_format=lambda v: f"{v:.2f}")
    return f'<div class="scroll">{table}</div>'


def _section(anchor: str, title: str, body: Iterable[str]) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>\n' + "\n".join(part for part in body if part) + \
        "\n</section>"


def tables_section(table: pd.DataFrame) -> str:
    """The numbers table as the report shows it under its caption, then the delta table (paired differences
    against the --versus row) or, for runs without per-question outcomes, the line saying how to get them."""
    parts = [f'<p class="caption">{html.escape(caption(table))}</p>',
             frame_html(display_frame(table, HTML), escaped=True)]
    deltas = table.attrs.get("deltas")
    if deltas is not None and not deltas.empty:
        parts += ["<h3>Paired differences</h3>", f'<p class="caption">{html.escape(delta_caption(table))}</p>',
                  frame_html(delta_display(deltas, HTML), escaped=True)]
    elif table.attrs.get("missing_samples"):
        parts.append(f'<p class="caption">No delta table: {html.escape(table.attrs["missing_samples"])}</p>')
    return _section("tables", "Comparison tables", parts)


def _radar_scores(categories: pd.DataFrame) -> dict[str, dict[str, float]]:
    """{row: {category: mean score}} from a category table (the summary and count columns are not axes)."""
    axes = [c for c in categories.columns if c not in (*SUMMARY_COLUMNS.values(), *MT_BENCH_COUNTS)]
    return {name: {c: row[c] for c in axes if pd.notna(row[c])} for name, row in categories.iterrows()}


def mtbench_section(results: Results, table: pd.DataFrame) -> str:
    """Per judge: the per-category table (mean judge score 1-10 over seeds, with its intervals) and FastChat's
    radar; then the pairwise tables the report found (table.attrs['mt_bench_pairwise']); '' without either."""
    parts, question_category = [], question_categories()
    for slug, identity in mt_bench_judges(results).items():
        categories = category_table(results, slug)
        intervals = category_intervals(results, slug, categories, question_category)
        title = f"MT-Bench, judge {judge_heading(slug, identity)}"
        parts += [f"<h3>{html.escape(title)}</h3>",
                  '<p class="caption">Mean judge score (1-10) per category and turn over the seeds; Overall = mean '
                  "of all valid judgments; Unparsed = judge replies without a rating (left out of the means); "
                  "[low, high] = the 95 % interval (bootstrap over the cell's questions: which questions were asked; "
                  "&plusmn; where it is symmetric), as mt_bench.md.</p>",
                  frame_html(display_table(categories, intervals, HTML), escaped=True),
                  _figure(category_radar_figure(_radar_scores(categories), title), f"{title}: category radar")]
    for title, pairs, _ in table.attrs.get("mt_bench_pairwise", []):
        parts += [f"<h3>{html.escape(title)}</h3>", f'<p class="caption">{html.escape(PAIRWISE_CAPTION)}</p>',
                  frame_html(pairwise_display(pairs))]
    return _section("mt-bench", "MT-Bench", parts) if parts else ""


def figures_section(results: Results, table: pd.DataFrame) -> str:
    """Memory ledger bars, loss curves, the Pareto plot, then per row its outlier ratios and active layers."""
    layers = []
    for name, runs in results.rows.items():
        layers.append(_figure(plots.outliers_figure(name, runs), f"{name}: bars = layerwise outlier ratio (%); "
                                                                 f"lines = sampling and inclusion probabilities"))
        layers.append(_figure(plots.active_layers_figure(name, runs), f"{name}: layers trained at each step "
                                                                      f"(1 = in every seed)"))
    parts = [("Memory ledger", _figure(plots.memory_figure(results), MEMORY_TEXT)),
             ("Loss curves", _figure(plots.loss_figure(results), "Training loss per step, mean over seeds; shaded: "
                                                                  "min-max over seeds when there are several.")),
             ("Accuracy vs memory", _figure(plots.pareto_figure(table), pareto_caption(table))),
             ("Layers", "".join(layers))]
    return _section("figures", "Figures", [f"<h3>{title}</h3>{body}" for title, body in parts if body])


def provenance_section(results: Results) -> str:
    """Commits, per-run versions and hardware, then every stored experiment.json and config.json (folded)."""
    found = commits(results)
    listed = "".join(f"<li><code>{html.escape(commit)}</code>: {len(runs)} run(s)"
                     + (f" ({html.escape(', '.join(runs))})" if len(found) > 1 else "") + "</li>"
                     for commit, runs in found.items())
    warning = ('<p><strong>These runs come from more than one code version.</strong></p>' if len(found) > 1
               else "")
    configs = "".join(f"<details><summary><code>{html.escape(name)}</code></summary><pre>{html.escape(text)}</pre>"
                      f"</details>" for name, text in stored_configs(results).items())
    return _section("provenance", "Provenance", [f"<p>Git commit(s) of the runs:</p><ul>{listed}</ul>", warning,
                                                 "<h3>Runs</h3>", RUNS_TEXT, frame_html(run_provenance(results)),
                                                 "<h3>Configs</h3>", configs])


def render_html(results: Results, table: pd.DataFrame) -> str:
    """The whole page as one string (no external reference: see the module docstring)."""
    names = ", ".join(results.experiments) or "results"
    sections = [tables_section(table), mtbench_section(results, table), figures_section(results, table),
                provenance_section(results)]
    nav = " ".join(f'<a href="#{anchor}">{title}</a>' for anchor, title in
                   (("tables", "Tables"), ("mt-bench", "MT-Bench"), ("figures", "Figures"),
                    ("provenance", "Provenance")) if f'id="{anchor}"' in "".join(sections))
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>owlore-bench report: {html.escape(names)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<h1>owlore-bench report: {html.escape(names)}</h1>\n"
            f'<p class="meta">Built by owlore-bench {html.escape(__version__)} from the stored JSON of '
            f"{sum(len(runs) for runs in results.rows.values())} finished run(s); nothing was re-run.</p>\n"
            f"<nav>{nav}</nav>\n" + "\n".join(part for part in sections if part) + "\n</body>\n</html>\n")


def write_html(results: Results, table: pd.DataFrame, out_dir: str | Path) -> Path:
    """report.html in out_dir (ASCII, non-ASCII characters as references); returns its path."""
    path = Path(out_dir) / FILE_NAME
    write_text_atomic(path, render_html(results, table).encode("ascii", "xmlcharrefreplace").decode("ascii"))
    return path
