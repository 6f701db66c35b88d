"""The evaluation protocol that every score was made under, stored with it (eval.json's `protocol`).

Failed reproductions of LISA and OwLore numbers turned on exactly these facts (LMFlow #898: the lm-eval
version and the shot count; pixeli99/OWS #5: the authors' lm-eval 0.4.3), so a number never travels without
them: the lm-eval version, each task's own version, the shots per task and whether a chat template wrapped the
prompts.
"""

from __future__ import annotations

from typing import Any

# lm-eval's simple_evaluate is called without a chat template: prompts are the tasks' plain text, as in the
# paper's lm-eval runs (its fewshot_as_multiturn only acts under a chat template, so it has no effect here).
APPLY_CHAT_TEMPLATE = False


def evaluation_protocol(results: dict[str, Any], num_fewshot: int | None, limit: int | None,
                        task_limits: dict[str, int] | None = None) -> dict[str, Any]:
    """{lm_eval, apply_chat_template, num_fewshot (asked; None = each task's default), limit (documents per task;
    None = all), task_limits (per-task overrides of limit, only when given), tasks: {task: {version,
    num_fewshot}}} of one lm-eval results dict."""
    import lm_eval

    shots = results.get("n-shot", {})
    versions = results.get("versions", {})
    return {"lm_eval": lm_eval.__version__, "apply_chat_template": APPLY_CHAT_TEMPLATE,
            "num_fewshot": num_fewshot, "limit": limit, **({"task_limits": task_limits} if task_limits else {}),
            "tasks": {task: {"version": versions.get(task), "num_fewshot": shots.get(task)}
                      for task in sorted(set(versions) | set(shots))}}


def protocol_caption(protocols: list[dict[str, Any]]) -> str:
    """One sentence for a table caption: 'lm-eval 0.4.13, 0-shot, no chat template' (several values joined with
    ' / ' where runs differ; '' when no run recorded its protocol)."""
    protocols = [p for p in protocols if p]
    if not protocols:
        return ""
    versions = sorted({str(p.get("lm_eval")) for p in protocols})
    shots = sorted({str(s.get("num_fewshot")) for p in protocols for s in p.get("tasks", {}).values()})
    chat = sorted({"chat template" if p.get("apply_chat_template") else "no chat template" for p in protocols})
    shot_text = "/".join(shots) + "-shot" if shots else "shots not recorded"
    return f"lm-eval {' / '.join(versions)}, {shot_text}, {' / '.join(chat)}"
