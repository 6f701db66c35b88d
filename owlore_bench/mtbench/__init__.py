"""MT-Bench (80 two-turn questions, an LLM judge grades each turn 1-10), compatible with FastChat's llm_judge.

questions.py: the data files (from data_root()/mt_bench) · generate.py: answers · prompts.py: judge prompts ·
judges/: the Judge seam and its backends (openai:, hf:) · judging.py: judgments · scores.py: ratings and means ·
pipeline.py: all of it for one model, cached and resumable · radar.py: the per-category radar plot.
"""

from importlib import import_module

_PUBLIC = {"generate_answers": "generate", "resolve_prompt_format": "generate", "Judge": "judges",
           "judge_slug": "judges", "make_judge": "judges", "MTBenchConfig": "pipeline", "judge_answer_file": "pipeline",
           "run_mtbench": "pipeline", "plot_category_radar": "radar", "aggregate": "scores", "parse_rating": "scores"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    """PEP 562: the public names load their module (and torch) on first use, so `owlore_bench.mtbench.modes` and
    `--help` stay light."""
    if name in _PUBLIC:
        return getattr(import_module(f"owlore_bench.mtbench.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'owlore_bench.mtbench' has no attribute {name!r}")
