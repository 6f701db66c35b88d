"""FastChat's gen_judgment.py --mode values, in a module of their own so the CLI reads them without loading torch."""

MODES = ("single", "pairwise-baseline", "pairwise-all")
