"""`owlore-bench report DIR [DIR ...]`: the comparison table (table.md / .csv / .tex), plots (PNG) and, with
--html, one self-contained report.html of one or more experiment folders, built only from their stored JSON."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from owlore_bench.commands import output_folder
from owlore_bench.errors import UserError
from owlore_bench.reporting.delta_tables import render_delta_markdown, write_delta_tables
from owlore_bench.reporting.families import ADJUST_MODES
from owlore_bench.reporting.loading import METRICS, load_results
from owlore_bench.reporting.render import render_markdown, write_tables
from owlore_bench.reporting.tables import default_metric, table_from_results


def add_parser(subparsers, help_text: str) -> None:
    parser = subparsers.add_parser("report", help=help_text,
                                   description="Tables (md/csv/tex) and plots from the stored JSON of finished runs.",
                                   epilog="examples:\n"
                                          "  owlore-bench report runs/quickstart\n"
                                          "  owlore-bench report runs/quickstart --reference results/quickstart\n"
                                          "  owlore-bench report runs/a runs/b --out runs/ab --delta\n"
                                          "  owlore-bench report runs/sweep --versus base --adjust all\n"
                                          "  owlore-bench report results/quickstart --html --out /tmp/qs\n")
    parser.add_argument("dirs", nargs="+", metavar="DIR",
                        help="experiment folder written by `owlore-bench run` (e.g. results/quickstart), or a folder "
                             "of them; several merge into one table")
    parser.add_argument("--out", help="where to write table.md, table.csv, table.tex and the PNGs "
                                      "(default: DIR itself when one DIR is given)")
    parser.add_argument("--metric", choices=METRICS,
                        help="per-task metric: acc_norm where the task reports it, else acc (default: the "
                             "experiment's eval.metric, else acc)")
    parser.add_argument("--tasks", type=lambda text: [t.strip() for t in text.split(",") if t.strip()],
                        help="comma-separated task columns, e.g. mmlu,boolq (default: the experiment's tasks)")
    parser.add_argument("--reference", metavar="DIR",
                        help="also print each cell's difference from these reference results (e.g. results/quickstart)")
    parser.add_argument("--delta", action="store_true", help="add a column: Avg minus full FT's Avg (points)")
    parser.add_argument("--versus", default="full_ft", metavar="base|full_ft|LABEL",
                        help="reference row of the delta table (paired tests on per-question outcomes; default "
                             "full_ft): writes delta.md/.csv/.tex")
    parser.add_argument("--adjust", choices=ADJUST_MODES, default="columns",
                        help="Holm family of the delta table's per-task p-values: columns (default: each row's "
                             "datasets), rows (each dataset's rows), all (every per-task test); the prompt formats "
                             "of one dataset count once")
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")
    parser.add_argument("--html", action="store_true",
                        help="also write report.html: tables, figures (SVG) and provenance in one file that needs "
                             "no network (the figures are in it even with --no-plots)")
    parser.set_defaults(run=run)


def make_report(dirs: list[str | Path], out_dir: str | Path, metric: str | None = None, delta: bool = False,
                plots: bool = True, tasks: list[str] | None = None, html: bool = False, versus: str = "full_ft",
                adjust: str = "columns") -> tuple[pd.DataFrame, list[Path]]:
    """Load the runs, build the table, write the table files (and plots); returns (numbers table, paths)."""
    results = load_results(dirs)
    table = table_from_results(results, metric or default_metric(results), delta, tasks, versus, adjust=adjust)
    from owlore_bench.reporting.mt_bench_pairwise import pairwise_tables

    table.attrs["mt_bench_pairwise"] = pairwise_tables(dirs)  # <experiment>/mt_bench_pairwise/*_pair.jsonl
    paths = write_tables(table, out_dir) + write_delta_tables(table, out_dir)
    from owlore_bench.reporting.mt_bench import write_mtbench_files

    paths += write_mtbench_files(results, out_dir, plots=plots)
    if plots:
        from owlore_bench.reporting.plots import write_plots  # matplotlib is only needed here

        paths += write_plots(results, table, out_dir)
    if html:
        from owlore_bench.reporting.html import write_html

        paths.append(write_html(results, table, out_dir))
    return table, paths


def run(args) -> int:
    if args.out is None and len(args.dirs) > 1:
        raise UserError("--out: required when several DIRs are merged; e.g. --out results/merged")
    out_dir = output_folder(args.out or args.dirs[0])
    table, paths = make_report(args.dirs, out_dir, args.metric, args.delta, not args.no_plots, args.tasks,
                               html=args.html, versus=args.versus, adjust=args.adjust)
    print(render_markdown(table))
    print(render_delta_markdown(table) or table.attrs["missing_samples"]
          or f"no delta table: no row pairs with the --versus row ({args.versus}) on the same questions")
    print(f"wrote {len(paths)} files to {out_dir}: {', '.join(path.name for path in paths)}")
    if args.reference:
        from owlore_bench.reporting.reference import reference_comparison

        print(reference_comparison(table, Path(args.reference)))
    return 0
