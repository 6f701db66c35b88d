"""`owlore-bench methods`: every registered method, its description, the package that does its work (with the
installed version) and its config fields with defaults."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from pydantic_core import PydanticUndefined

from owlore_bench.registry import available_methods


def add_parser(subparsers, help_text: str) -> None:
    parser = subparsers.add_parser("methods", help=help_text,
                                   description="Every registered method (built-in and entry-point plugins) with the "
                                               "package it uses and that package's installed version, and its "
                                               "config fields, defaults and descriptions.",
                                   epilog="example:\n  owlore-bench methods\n")
    parser.set_defaults(run=run)


def installed_version(package: str) -> str:
    """The installed version of a pip distribution (importlib.metadata), or 'not installed'."""
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def run(args) -> int:
    for name, cls in available_methods().items():
        print(f"{name}: {cls.description()}")
        print("    package: " + "; ".join(f"{package} {installed_version(package)}" for package in cls.packages()))
        for field, info in cls.Config.model_fields.items():
            default = info.default_factory() if info.default_factory else info.default
            shown = "required" if default is PydanticUndefined else f"default {default!r}"
            print(f"    {field} ({shown}): {info.description or ''}")
    return 0
