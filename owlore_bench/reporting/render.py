"""The numbers table, displayed: markdown / CSV / LaTeX in the paper's layout, its caption, and the files
table.md, table.csv, table.tex. Accuracy cells: one seed '57.0 [47.2, 66.3]' (the 95 % interval; '±h' only where
it is symmetric at the shown precision), several seeds 'mean ± std (seeds)' (the between-seed spread; the 95 %
interval is in the CSV); bold only where a paired test tells the best row from the runner-up
(deltas.distinct_best). Tokens/s of a row that ran on a contended machine carry '†' and are never bold.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from owlore_bench.evaluation.protocol import protocol_caption
from owlore_bench.reporting.forgetting import FORGETTING, forgetting_cell
from owlore_bench.reporting.intervals import INTERVAL_STATS
from owlore_bench.reporting.loading import AVG, DELTA, EXTRA_COLUMNS, GIB, MT_BENCH, mt_bench_title
from owlore_bench.results import write_text_atomic


@dataclass(frozen=True)
class _Style:
    """How one output format writes bold (a format string with {}) and escapes plain text."""

    bold: str
    escape: Any = str


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$",
                   "Δ": r"$\Delta$"}
MARKDOWN = _Style(bold="**{}**")
LATEX = _Style(bold=r"\textbf{{{}}}", escape=lambda text: "".join(_LATEX_SPECIALS.get(c, c) for c in str(text)))


def value_columns(table: pd.DataFrame) -> dict[str, tuple[str, str, str | None]]:
    """key → (title, kind, better) for every value column of the table, in display order."""
    columns = {task: (task, "pct", "higher") for task in table.attrs.get("tasks", {})}
    if columns:
        columns[AVG] = (AVG, "pct", "higher")
    for slug in table.attrs.get("mt_bench_judges", {}):
        columns[MT_BENCH + slug] = (mt_bench_title(MT_BENCH + slug), "score", "higher")
    columns.update(EXTRA_COLUMNS)
    if table.attrs.get("forgetting"):
        columns[FORGETTING] = ("Forgetting (ΔCE)", "ce", None)
    if (DELTA, "mean") in table.columns:
        columns[DELTA] = ("Δ Avg vs full FT", "delta", None)
    return columns


CONTENDED_MARK = "†"


def interval_text(point: float, low: float, high: float, digits: int = 1, sign: bool = False) -> str:
    """'57.0 ±4.6' where the interval is symmetric about the point at `digits` decimals, else '57.0 [47.2, 66.3]'
    ('±' only for a symmetric interval; Wilson and percentile intervals mostly are not). `sign`: '+3.0'."""
    shown = f"{{:{'+' if sign else ''}.{digits}f}}"
    below, above = f"{point - low:.{digits}f}", f"{high - point:.{digits}f}"
    if below == above:
        return f"{shown.format(point)} ±{above}"
    return f"{shown.format(point)} [{shown.format(low)}, {shown.format(high)}]"


def format_number(value: float, kind: str, scale: float | None = None) -> str:
    """A mean or std in display units: percent 1 decimal, GiB 2 decimals (3 significant digits below 0.1 GiB,
    decided by `scale`, the row's mean, so a std matches its mean), counts compact, tokens/s whole, forgetting
    (cross-entropy, nats) signed with 3 decimals."""
    if kind == "gib":
        scale = abs(value if scale is None else scale) / GIB
        decimals = 2 if scale >= 0.1 or scale == 0 else 2 - math.floor(math.log10(scale))
        return f"{value / GIB:.{decimals}f}"
    if kind == "count":
        for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
            if abs(value) >= size:
                return f"{value / size:.2f}{suffix}"
        return f"{value:.0f}"
    if kind == "rate":
        return f"{value:,.0f}"
    if kind == "delta":
        return f"{value:+.1f}"
    if kind == "score":
        return f"{value:.2f}"
    if kind == "ce":
        return f"{value:+.3f}"
    return f"{value:.1f}"


def _best_names(table: pd.DataFrame, key: str, kind: str, better: str | None) -> set[str]:
    """Accuracy and MT-Bench columns: the row deltas.distinct_best found distinguishable from the runner-up
    (none without per-question data). Measured columns (memory, tokens/s): every row whose displayed mean is
    the best of the column (ties all count); tokens/s only when every row's units recorded an uncontended
    machine (throughput.py: a row slowed by others says nothing about which method is faster)."""
    if kind in ("pct", "score"):
        return set(table.attrs.get("bold", {}).get(key, set()))
    if better is None or (key, "mean") not in table.columns:
        return set()
    ok = table[table[("status", "")] == "ok"]  # rows with a failed seed: no
    if kind == "rate" and (ok.get(("contention", ""), pd.Series("unknown", index=ok.index))
                           .loc[ok[(key, "mean")].notna()] != "uncontended").any():
        return set()
    means = ok[(key, "mean")].dropna()
    if means.empty:
        return set()
    shown = means.map(lambda value: float(format_number(value, kind).replace(",", "").rstrip("BMK")))
    best = shown.max() if better == "higher" else shown.min()
    return set(shown.index[shown == best])


def _cell(row: pd.Series, key: str, kind: str) -> str:
    if key == FORGETTING:
        return forgetting_cell(row)
    mean, std, n = row[(key, "mean")], row[(key, "std")], int(row[(key, "n")])
    if n == 0 or math.isnan(mean):
        return "—"
    text = format_number(mean, kind)
    if kind == "rate" and row.get(("contention", "")) == "contended":
        text += CONTENDED_MARK
    if n == 1 and (key, "ci_low") in row.index and not math.isnan(row[(key, "ci_low")]):
        return interval_text(mean, row[(key, "ci_low")], row[(key, "ci_high")])
    if n > 1 and not math.isnan(std) and kind not in ("delta", "count"):  # counts do not vary with the seed
        text += f" ± {format_number(std, kind, scale=mean)} ({n})"
    return text


def display_frame(table: pd.DataFrame, style: _Style = MARKDOWN) -> pd.DataFrame:
    """Strings for display: 'Method' then one column per value column; best per column in bold; a row with no
    ok run shows its status in every cell, a row with some failed seeds says so after its name."""
    columns = value_columns(table)
    best = {key: _best_names(table, key, kind, better) for key, (_, kind, better) in columns.items()}
    references = set(table.attrs.get("delta_references", []))
    lines = []
    for name, row in table.iterrows():
        status, none_ok = row[("status", "")], row[("ok_runs", "")] == 0
        line = {"Method": style.escape(name if status == "ok" or none_ok else f"{name} ({status})")}
        for key, (title, kind, _) in columns.items():
            header = style.escape(title)
            if none_ok:
                line[header] = style.escape(status)
            elif key == DELTA and name in references:
                line[header] = "ref"
            else:
                text = style.escape(_cell(row, key, kind))
                line[header] = style.bold.format(text) if name in best[key] else text
        lines.append(line)
    return pd.DataFrame(lines)


def caption(table: pd.DataFrame) -> str:
    """What the numbers are: metric and shots per task, how cells aggregate seeds, what is bold, memory units."""
    by_setting = defaultdict(list)
    for task, info in table.attrs.get("tasks", {}).items():
        shots = "shots unknown" if info["num_fewshot"] is None else f"{info['num_fewshot']}-shot"
        by_setting[f"{info['metric']}, {shots}"].append(task)
    no_scores = "" if table.attrs.get("mt_bench_judges") else (
        "No lm-eval or MT-Bench single-grading results; the MT-Bench pairwise results are in mt_bench_pairwise.md."
        if table.attrs.get("mt_bench_pairwise") else "No MT-Bench or lm-eval results.")
    parts = ["Accuracy (%): " + "; ".join(f"{setting} ({', '.join(tasks)})" for setting, tasks in
                                         by_setting.items()) + "." if by_setting else no_scores]
    protocol = protocol_caption(table.attrs.get("protocols", []))
    if protocol:  # LMFlow #898: reproductions failed on the lm-eval version and shots; say them with the numbers
        parts.append(f"Evaluated with {protocol}.")
    plain = [task for task, info in table.attrs.get("tasks", {}).items() if not info["group"]]
    if plain:
        parts.append(f"Avg = mean of the {len(plain)} task columns (group averages excluded).")
    parts.append(_cells_and_bold(table))
    parts.append("Peak mem: peak of the weights + gradients + optimizer + activations ledger, GiB = 2^30 bytes.")
    for slug, identity in table.attrs.get("mt_bench_judges", {}).items():
        from owlore_bench.mtbench.judges import describe

        parts.append(f"{mt_bench_title(MT_BENCH + slug)}: mean judge score 1-10 over both turns, FastChat "
                     f"single-answer grading, judge {describe(identity) if identity else slug}; per category in "
                     f"mt_bench.md.")
    if (DELTA, "mean") in table.columns:
        parts.append("Δ: Avg minus the experiment's full FT Avg, percentage points.")
    if table.attrs.get("forgetting"):
        parts.append("Forgetting (ΔCE): mean per-token cross-entropy (nats) on held-out general text, trained minus "
                     "base model (+ = forgot), with its 95 % interval (one seed: a bootstrap over the text's chunks, "
                     "which covers which text was scored) or ± std over seeds; the base model is 0 by definition.")
    if table.attrs.get("hidden_tasks"):
        parts.append(f"{len(table.attrs['hidden_tasks'])} stored task row(s) not shown (subtasks; pick columns "
                     f"with --tasks).")
    if table.attrs.get("skipped"):
        parts.append(f"{len(table.attrs['skipped'])} incomplete run(s) without summary.json skipped.")
    return " ".join(parts)


def _cells_and_bold(table: pd.DataFrame) -> str:
    """The caption's sentences on what a cell shows, which variance its interval covers, and when it is bold."""
    text = ("Cells: one seed: mean [95 % interval] ('± h' only where the interval is symmetric at the shown "
            "precision); several seeds: mean ± s (n), s the sample std over the n seeds: the between-seed spread, "
            "not an interval")
    if table.attrs.get("interval_kinds"):
        text += ("; a one-seed interval (Wilson over the task's questions; Avg: bootstrap over questions within "
                 "each task) covers which questions were asked, for that one trained model, not the training "
                 "seed's variance; the several-seed interval in table.csv (seeds, then questions resampled) covers "
                 "both")
    text += (". Bold (accuracy, MT-Bench): best of its column AND distinguishable from the runner-up at 5 % by "
             "the delta table's paired test on the same questions (one unadjusted test per column); without "
             "per-question outcomes nothing is bold. Bold (memory): lowest measured value.")
    if ("tokens_per_s", "mean") in table.columns and table[("tokens_per_s", "mean")].notna().any():
        timed = table[table[("tokens_per_s", "mean")].notna()]
        unknown = ("contention", "") not in table.columns or (timed[("contention", "")] == "unknown").all()
        text += (f" Tokens/s: median over each seed's steady-state steps (first 10 % left out), mean over seeds; "
                 f"{CONTENDED_MARK} = a seed ran on a contended machine (1-min load average >= CPUs + 0.5); bold "
                 f"only when every row recorded an uncontended machine"
                 + ("; these runs recorded no load (made before it was logged), so none is bold" if unknown else "")
                 + "; for speed comparisons between methods use benchmarks/bench_speed_alternating.py, which "
                   "alternates them in one process.")
    return text


def render_markdown(table: pd.DataFrame) -> str:
    """The caption and the table as a GitHub markdown pipe table (what `owlore-bench report` prints)."""
    frame = display_frame(table, MARKDOWN)
    align = ["left"] + ["right"] * (len(frame.columns) - 1)
    return f"{caption(table)}\n\n{frame.to_markdown(index=False, disable_numparse=True, colalign=align)}\n"


def render_latex(table: pd.DataFrame) -> str:
    """A booktabs LaTeX table with the caption (needs \\usepackage{booktabs})."""
    frame = display_frame(table, LATEX)
    return frame.to_latex(index=False, escape=False, caption=LATEX.escape(caption(table)), label="tab:owlore-bench",
                          column_format="l" + "r" * (len(frame.columns) - 1))


def csv_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The numbers flattened to snake_case columns: `<column>_mean` / `_std` / `_n` (n = seeds), task columns
    named `<task>_<metric>[_<k>shot]` (percent), `peak_mem_bytes` (bytes); with per-question outcomes also
    `<column>_ci_low` / `_ci_high` (95 %, percent) and `<column>_questions`; `forgetting_delta_ce_*` in nats."""
    flat = pd.DataFrame({"row": table.index})
    for key in ("experiment", "label", "method", "status", "runs", "ok_runs", "contention"):
        if (key, "") in table.columns:
            flat[key] = table[(key, "")].to_numpy()
    tasks = table.attrs.get("tasks", {})
    for key in value_columns(table):
        name = "avg" if key == AVG else key.replace(MT_BENCH, "mt_bench_")
        if key in tasks:
            shots = tasks[key]["num_fewshot"]
            name = f"{key}_{tasks[key]['metric']}" + ("" if shots is None else f"_{shots}shot")
        for stat in ("mean", "std", "n", *INTERVAL_STATS):
            if (key, stat) in table.columns:
                flat[f"{name}_{stat}"] = table[(key, stat)].to_numpy()
    if table.attrs.get("forgetting"):
        for key in ("forgetting_base_ce", "forgetting_trained_ce", "forgetting_tokens"):
            flat[f"{key}_mean"] = table[(key, "mean")].to_numpy()
    return flat


def write_tables(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """table.md, table.csv and table.tex in out_dir, plus mt_bench_pairwise.md/.csv when the table carries MT-Bench
    pair judgments (attrs['mt_bench_pairwise'], reporting.mt_bench_pairwise.pairwise_tables); returns their paths."""
    from owlore_bench.reporting.mt_bench_pairwise import write_pairwise_files

    out_dir = Path(out_dir)
    paths = [out_dir / "table.md", out_dir / "table.csv", out_dir / "table.tex"]
    write_text_atomic(paths[0], render_markdown(table))
    write_text_atomic(paths[1], csv_frame(table).to_csv(index=False))
    write_text_atomic(paths[2], render_latex(table))
    return paths + write_pairwise_files(table.attrs.get("mt_bench_pairwise", []), out_dir)
