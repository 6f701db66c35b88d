"""Method registry: `@register_method("name")` is the only source of method names.

Built-in methods live one file each in `owlore_bench.methods` (sources in the top-level `methods/` folder,
mapped into the package by pyproject.toml) and register on import; third-party
methods register through the entry-point group `owlore_bench.methods` (the entry point names a module or a
Method class; loading it runs its decorator).
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import Any

from owlore_bench.errors import UserError, did_you_mean, validation_error_line
from owlore_bench.method import Method

ENTRY_POINT_GROUP = "owlore_bench.methods"
_METHODS: dict[str, type[Method]] = {}
_plugins_loaded = False


def register_method(name: str):
    """Class decorator: make a Method subclass available under `name`."""

    def decorate(cls: type[Method]) -> type[Method]:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"@register_method('{name}') must decorate a Method subclass, got {cls!r}")
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValueError(f"method '{name}' is registered twice: {_METHODS[name].__module__} and {cls.__module__}")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return decorate


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from owlore_bench import methods as builtin_methods

    for module in pkgutil.iter_modules(builtin_methods.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{builtin_methods.__name__}.{module.name}")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        entry.load()


def available_methods() -> dict[str, type[Method]]:
    """All registered methods, by name, sorted."""
    _load_plugins()
    return dict(sorted(_METHODS.items()))


def get_method_class(name: str) -> type[Method]:
    known = available_methods()
    if name not in known:
        raise UserError(f"unknown method '{name}'.{did_you_mean(name, list(known))} Known methods: {', '.join(known)}")
    return known[name]


def build_method(name: str, overrides: dict[str, Any] | None = None, seed: int = 0) -> Method:
    """Instantiate method `name` with its config validated from `overrides` (one clear line on a bad field) and the
    run's seed (`train.seed`)."""
    from pydantic import ValidationError

    cls = get_method_class(name)
    try:
        config = cls.Config(**(overrides or {}))
    except ValidationError as error:
        raise UserError(validation_error_line(error, prefix=name, model=cls.Config)) from None
    return cls(config, seed=seed)
