"""One training run: THE loop (`loop.train`), its data, layer sampling, GaLore groups, the in-backward update,
data parallelism, checkpoints, phase timing, trackers, and the one-run entry point (`run.train_run`).

This room never imports evaluation/, reporting/, mtbench/ or commands/ (tests/test_architecture.py)."""
