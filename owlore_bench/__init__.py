"""owlore-bench: compare memory-efficient LLM fine-tuning methods with one loop, one profiler and lm-eval.

The public names below are imported on first use (PEP 562), so `import owlore_bench` (and `owlore-bench --help`)
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"  # the one source of the version (pyproject.toml reads it)
# public name -> the module that defines it
_EXPORTS = {
    "Method": "owlore_bench.method",
    "MethodConfig": "owlore_bench.method",
    "UserError": "owlore_bench.errors",
    "available_methods": "owlore_bench.registry",
    "build_method": "owlore_bench.registry",
    "get_method_class": "owlore_bench.registry",
    "register_method": "owlore_bench.registry",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # for editors and type checkers: the same names, eagerly
    from owlore_bench.errors import UserError  # noqa: F401
    from owlore_bench.method import Method, MethodConfig  # noqa: F401
    from owlore_bench.registry import available_methods, build_method, get_method_class, register_method  # noqa: F401


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'owlore_bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
