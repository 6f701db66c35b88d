"""lm-eval `!function` entry point of the local GSM8K task (loader: owlore_bench.datasets.gsm8k)."""

from owlore_bench.datasets.gsm8k import load_gsm8k  # noqa: F401
