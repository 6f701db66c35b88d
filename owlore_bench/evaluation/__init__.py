"""Evaluation: the lm-eval bridge (`harness.evaluate_model`) and the local lm-eval tasks' loaders."""
