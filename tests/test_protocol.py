"""The evaluation protocol stored with every score (eval.json's `protocol`) and the caption made from it."""

from __future__ import annotations

from owlore_bench.evaluation.protocol import evaluation_protocol, protocol_caption


def test_protocol_takes_each_tasks_version_and_shots_from_lm_evals_results():
    results = {"versions": {"arc_easy": 1.0, "boolq": 2.0}, "n-shot": {"arc_easy": 5, "boolq": 5}}
    protocol = evaluation_protocol(results, num_fewshot=5, limit=None)
    assert protocol["tasks"] == {"arc_easy": {"version": 1.0, "num_fewshot": 5},
                                 "boolq": {"version": 2.0, "num_fewshot": 5}}
    assert protocol_caption([protocol]) == f"lm-eval {protocol['lm_eval']}, 5-shot, no chat template"


def test_caption_shows_every_shot_count_and_version_when_runs_differ():
    zero = {"lm_eval": "0.4.3", "apply_chat_template": False, "tasks": {"mmlu": {"num_fewshot": 0}}}
    five = {"lm_eval": "0.4.13", "apply_chat_template": True, "tasks": {"mmlu": {"num_fewshot": 5}}}
    assert protocol_caption([zero, five]) == "lm-eval 0.4.13 / 0.4.3, 0/5-shot, chat template / no chat template"
    assert protocol_caption([None, {}]) == ""  # runs made before the protocol was stored
