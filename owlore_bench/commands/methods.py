"""`owlore-bench methods`: every registered method, its description and its config fields with defaults."""

from __future__ import annotations

from pydantic_core import PydanticUndefined

from owlore_bench.registry import available_methods


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("methods", help="list the registered fine-tuning methods and their config fields",
                                   description="Every registered method (built-in and entry-point plugins) with its "
                                               "config fields, defaults and descriptions.",
                                   epilog="example:\n  owlore-bench methods\n")
    parser.set_defaults(run=run)


def run(args) -> int:
    for name, cls in available_methods().items():
        print(f"{name}: {cls.description()}")
        for field, info in cls.Config.model_fields.items():
            default = info.default_factory() if info.default_factory else info.default
            shown = "required" if default is PydanticUndefined else f"default {default!r}"
            print(f"    {field} ({shown}): {info.description or ''}")
    return 0
