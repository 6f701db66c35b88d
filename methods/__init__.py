"""Built-in fine-tuning methods, one file each; installed as `owlore_bench.methods` (see pyproject.toml)."""
