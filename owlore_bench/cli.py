"""The `owlore-bench` command. Each subcommand lives in owlore_bench/commands/<name>.py and exposes
`add_parser(subparsers)` and `run(args) -> int`. Bad input ends as one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from owlore_bench import __version__
from owlore_bench.errors import UserError

EXAMPLES = """examples:
  owlore-bench run configs/quickstart.yaml     # the README's main job: every method on SmolLM2-135M
  owlore-bench methods                         # the registered methods and their config fields
  owlore-bench compare RUN_A RUN_B             # do two evaluated runs differ? paired per-question tests
  owlore-bench COMMAND --help                  # each command's options and examples
"""

DEBUG_ENV = "OWLORE_BENCH_DEBUG"  # set (e.g. =1): a one-line error also prints its traceback and cause
COMMANDS = ["methods", "train", "run", "fetch", "report", "compare", "power", "eval", "memory", "outliers",
            "mtbench"]


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)  # keep the examples' lines
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # argparse's own errors: one line, exit 2, like ours
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="owlore-bench", description="Compare memory-efficient LLM fine-tuning methods: one "
                     "training loop, one memory profiler, lm-eval scoring.", epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"owlore_bench.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
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
