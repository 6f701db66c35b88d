"""The `owlore-bench` command. Each subcommand lives in owlore_bench/commands/<name>.py and exposes
`add_parser(subparsers, help_text)` and `run(args) -> int`. Bad input ends as one line on stderr and exit code 2.

Only the command being run is imported (with whatever torch, lm-eval or scipy it needs); `owlore-bench --help`
and `--version` import none of them, so they answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
import warnings

from owlore_bench import __version__
from owlore_bench.errors import UserError

EXAMPLES = """examples:
  owlore-bench run configs/quickstart.yaml     # the README's main job: every method on SmolLM2-135M
  owlore-bench methods                         # the registered methods and their config fields
  owlore-bench compare RUN_A RUN_B             # do two evaluated runs differ? paired per-question tests
  owlore-bench COMMAND --help                  # each command's options and examples
"""

DEBUG_ENV = "OWLORE_BENCH_DEBUG"  # set (e.g. =1): a one-line error also prints its traceback and cause
# Each command and the line `owlore-bench --help` shows for it (the module's own parser has the rest).
COMMANDS = {
    "methods": "list the registered fine-tuning methods and their config fields",
    "train": "fine-tune a model with one method",
    "run": "run an experiment config: train, evaluate, tabulate, plot (resumable)",
    "fetch": "download and cache the embedded model (or check its pins)",
    "report": "comparison table and plots from result folders (re-runs nothing)",
    "compare": "paired per-question test of two evaluated runs or labels (Δ, CI, p)",
    "power": "questions needed to tell two runs apart (paired McNemar power)",
    "eval": "score a model or a trained run with lm-eval tasks",
    "memory": "estimate (and --measure) training memory per method and category",
    "outliers": "layerwise outlier ratios (OWL metric) and heavy-tail alpha",
    "mtbench": "MT-Bench: answer the 80 questions, judge them, show scores",
}


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)  # keep the examples' lines
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # argparse's own errors: one line, exit 2, like ours
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(commands: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser with the full options of `commands` (None: every command); the others are listed by name."""
    parser = _Parser(prog="owlore-bench", description="Compare memory-efficient LLM fine-tuning methods: one "
                     "training loop, one memory profiler, lm-eval scoring.", epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, help_text in COMMANDS.items():
        if commands is None or name in commands:
            importlib.import_module(f"owlore_bench.commands.{name}").add_parser(subparsers, help_text)
        else:
            subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """The suite's own warnings (a clamped rank, a skipped record) as one line a user can act on, without the
    file, line number and source line Python's default format adds; other packages' warnings keep theirs."""
    if "owlore_bench" in str(filename) or "/methods/" in str(filename):
        return f"owlore-bench: warning: {message}\n"
    return _default_format(message, category, filename, lineno, line)


_default_format = warnings.formatwarning


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    warnings.formatwarning = _one_line_warning
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser([command] if command in COMMANDS else [])
    args = parser.parse_args(argv)
    if args.command is None:  # a bare `owlore-bench`: what it can do
        parser.print_help()
        return 0
    args.command_line = argv  # `--nproc N` re-runs the same arguments under torchrun (owlore_bench/launch/torchrun.py)
    try:
        return int(args.run(args) or 0)
    except UserError as error:
        if os.environ.get(DEBUG_ENV):  # the whole chain, for a bug report: what caused the one-line error
            traceback.print_exc()
        from owlore_bench.launch.torchrun import report_rank_error

        if not report_rank_error(str(error)):  # a rank under --nproc: the supervisor prints it once
            print(f"owlore-bench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("owlore-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
