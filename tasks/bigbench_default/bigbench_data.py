"""lm-eval `!function` entry point of the embedded BIG-bench tasks; the loader lives in owlore_bench.bigbench."""

from owlore_bench.bigbench import load_bigbench  # noqa: F401
