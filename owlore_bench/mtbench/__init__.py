"""MT-Bench (80 two-turn questions, an LLM judge grades each turn 1-10), compatible with FastChat's llm_judge.

questions.py: the data files (from data_root()/mt_bench) · generate.py: answers · prompts.py: judge prompts ·
judges/: the Judge seam and its backends (openai:, hf:) · judging.py: judgments · scores.py: ratings and means ·
pipeline.py: all of it for one model, cached and resumable · radar.py: the per-category radar plot.
"""

from owlore_bench.mtbench.generate import generate_answers, resolve_prompt_format
from owlore_bench.mtbench.judges import Judge, judge_slug, make_judge
from owlore_bench.mtbench.pipeline import MTBenchConfig, judge_answer_file, run_mtbench
from owlore_bench.mtbench.radar import plot_category_radar
from owlore_bench.mtbench.scores import aggregate, parse_rating

__all__ = ["Judge", "MTBenchConfig", "aggregate", "generate_answers", "judge_answer_file", "judge_slug",
           "make_judge", "parse_rating", "plot_category_radar", "resolve_prompt_format", "run_mtbench"]
