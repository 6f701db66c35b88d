"""`owlore-bench mtbench show PATH`: the scores of stored judgments, per judge (single grading: FastChat's
show_result.py table; pair judgments: the win / tie / loss table), without judging anything again.
"""

from __future__ import annotations

from pathlib import Path

from owlore_bench.errors import UserError


def run_show(args) -> int:
    import json

    from owlore_bench.mtbench.questions import load_questions
    from owlore_bench.mtbench.scores import aggregate_by_model, format_scores
    from owlore_bench.results import read_jsonl

    path = Path(args.path)
    if path.is_dir():
        files = sorted((path / "judgments").glob("*.jsonl")) + sorted(path.glob("mt_bench_pairwise/*_pair.jsonl")) \
            or sorted(path.glob("*.jsonl"))
    else:
        files = [path] if path.is_file() else []
    if not files:
        raise UserError(f"{path}: no judgments found (give an output folder with judgments/*.jsonl or "
                        f"mt_bench_pairwise/*_pair.jsonl, or a file)")
    try:
        categories = {q["question_id"]: q["category"] for q in load_questions()}
    except UserError:
        categories = {}  # without question.jsonl the categories show as 'unknown'
    for file in files:
        groups: dict[str, list[dict]] = {}
        rows = read_jsonl(file)
        if rows and "g1_winner" in rows[0]:  # FastChat pair judgments (mode pairwise-*)
            from owlore_bench.reporting.mt_bench_pairwise import judge_title, pairwise_table, render_pairwise

            print(render_pairwise(pairwise_table(rows), judge_title(rows, file)))
            continue
        for row in rows:
            if "score" not in row or "turn" not in row:
                raise UserError(f"{file}: neither single-grading judgments (score, turn) nor pair judgments "
                                f"(g1_winner); give a judgments file of `mtbench judge`")
            judge = row.get("judge_identity") or {"model": row["judge"][0]}
            groups.setdefault(json.dumps(judge, sort_keys=True), []).append(row)
        for key, rows in groups.items():
            print(format_scores(aggregate_by_model(rows, categories), f"{file} — judge {_judge_text(json.loads(key))}"))
            print()
    return 0


def _judge_text(identity: dict) -> str:
    from owlore_bench.mtbench.judges import describe

    return describe(identity) if "backend" in identity else str(identity["model"])
