"""owlore-bench: compare memory-efficient LLM fine-tuning methods with one loop, one profiler and lm-eval."""

from owlore_bench.errors import UserError
from owlore_bench.method import Method, MethodConfig
from owlore_bench.registry import available_methods, build_method, get_method_class, register_method

__version__ = "0.2.0"  # the one source of the version (pyproject.toml reads it)
__all__ = [
    "Method",
    "MethodConfig",
    "UserError",
    "available_methods",
    "build_method",
    "get_method_class",
    "register_method",
]
