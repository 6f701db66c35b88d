"""lm-eval task YAMLs of the local tasks; installed as `owlore_bench.tasks` (see pyproject.toml)."""
