"""One module per `owlore-bench` subcommand (see owlore_bench/cli.py)."""
