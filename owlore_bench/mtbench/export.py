"""`mtbench export RUN_OR_DIR --fastchat OUT`: our MT-Bench files as FastChat's llm_judge data tree.

OUT plays FastChat's fastchat/llm_judge/ folder (its scripts read `data/...` relative to the working directory):
    OUT/data/judge_prompts.jsonl                    copied from the data root when absent
    OUT/data/mt_bench/question.jsonl                copied from the data root when absent
    OUT/data/mt_bench/model_answer/<name>.jsonl     one file per model; <name> = model_id with '/' → '-'
                                                    (FastChat takes the model name from the file name)
    OUT/data/mt_bench/model_judgment/<judge>_single.jsonl   all exported models' judgments by one judge
    OUT/data/mt_bench/model_judgment/<judge>_pair.jsonl     the pair judgments (mt_bench_pairwise/ in or below the
                                                            source), model_1 / model_2 as <name>s
    OUT/data/mt_bench/reference_answer/<judge>.jsonl        the references that judge saw (FastChat looks them
                                                            up by judge name), when found with the same sha256
<judge> is the judge's model name ('gpt-4', 'smollm2-135m'), or its file slug when two judges exported share it.
Rows keep FastChat's keys (and ours, which FastChat ignores); `model` / `model_id` / `model_1` / `model_2` become
<name>. A judgments file already in OUT keeps its rows of other models (a pair file: its rows between other models),
so exporting into a FastChat checkout adds to its published files.
Repeated judgments (--judge-repeats) are all exported; FastChat's show_result averages them (we take medians).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from owlore_bench.errors import UserError
from owlore_bench.mtbench.pairwise import PAIR_FOLDER
from owlore_bench.mtbench.questions import DEFAULT_REFERENCE, load_reference, mtbench_dir
from owlore_bench.results import read_jsonl, write_jsonl_atomic

ANSWERS = "answers.jsonl"


def fastchat_name(model_id: str) -> str:
    """A model id FastChat can carry in a file name: 'exp/lora/seed-0' → 'exp-lora-seed-0'."""
    return str(model_id).replace("/", "-").replace("\\", "-")


def answer_files(source: str | Path) -> list[Path]:
    """answers.jsonl of a folder (ours or a run unit's mt_bench/), else every one below it (an experiment)."""
    source = Path(source)
    for candidate in (source / ANSWERS, source / "mt_bench" / ANSWERS):
        if candidate.is_file():
            return [candidate]
    found = sorted(source.rglob(ANSWERS)) if source.is_dir() else []
    if not found:
        raise UserError(f"{source}: no MT-Bench answers found ({ANSWERS} in it, in mt_bench/ or below); give a run, "
                        f"an experiment or an `mtbench answer --out` folder")
    return found


def _judge_groups(files: list[Path], names: dict[str, str]) -> dict[str, tuple[dict[str, Any], list[dict]]]:
    """{judgments file stem (one judge each, judging.judge_file_slug): (its judge identity, its rows with FastChat
    model names)} over every exported judgments file. The identity is the newest row's (rows written before the
    reference joined the identity share a file with later ones)."""
    groups: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for answers in files:
        for judgments in sorted((answers.parent / "judgments").glob("*.jsonl")):
            for row in read_jsonl(judgments):
                if "score" not in row or str(row.get("model")) not in names:
                    continue
                identity, rows = groups.get(judgments.stem, ({}, []))
                rows.append({**row, "model": names[str(row["model"])]})
                groups[judgments.stem] = (row.get("judge_identity") or {"model": row["judge"][0]}, rows)
    return groups


def _pair_groups(source: Path) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """{pair file slug: (its judge identity, its rows with FastChat model names)} over every pair file in or below
    `source` (pairwise.pair_path); files of one slug (one judge) in several experiments merge."""
    groups: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for path in sorted(source.rglob(f"{PAIR_FOLDER}/*_pair.jsonl")) if source.is_dir() else []:
        for row in read_jsonl(path):
            slug = path.stem.removesuffix("_pair")
            _, rows = groups.get(slug, ({}, []))
            rows.append({**row, "model_1": fastchat_name(row["model_1"]), "model_2": fastchat_name(row["model_2"])})
            groups[slug] = (row.get("judge_identity") or {"model": row["judge"][0]}, rows)
    return groups


def _write_judge_files(groups: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]], kind: str, bench: Path,
                       ours: set[str]) -> tuple[list[str], list[str]]:
    """model_judgment/<judge>_<kind>.jsonl per judge group (rows of models outside `ours` already there kept), and
    the references each judge saw; returns (judgment files, reference files) written."""
    columns = ("model",) if kind == "single" else ("model_1", "model_2")
    written, references = [], []
    identities = [identity for identity, _ in groups.values()]
    for (identity, rows), file_name in zip(groups.values(), _judge_file_names(list(groups), identities)):
        target = bench / "model_judgment" / f"{file_name}_{kind}.jsonl"
        kept = [row for row in read_jsonl(target) if not {str(row.get(c)) for c in columns} & ours]
        write_jsonl_atomic(target, kept + rows)
        written.append(str(target))
        if _copy_reference(identity, bench / "reference_answer" / f"{file_name}.jsonl"):
            references.append(str(bench / "reference_answer" / f"{file_name}.jsonl"))
    return written, references


def _judge_file_names(stems: list[str], identities: list[dict[str, Any]]) -> list[str]:
    """FastChat's judge name (the judge model, '/' → '-') where it is unique among the exported judges, else the
    judgments file's own stem."""
    names = [str(identity["model"]).replace("/", "-") for identity in identities]
    return [stem if names.count(name) > 1 else name for stem, name in zip(stems, names)]


def _reference_name(identity: dict[str, Any]) -> str:
    return (identity.get("reference") or {}).get("name", DEFAULT_REFERENCE)


def _copy_reference(identity: dict[str, Any], target: Path) -> bool:
    """The references a judge saw, to reference_answer/<judge>.jsonl, if the named file still has its sha256."""
    try:
        reference = load_reference(_reference_name(identity))
    except UserError:
        return False
    if (identity.get("reference") or {}).get("sha256", reference.sha256) != reference.sha256:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(reference.path, target)
    return True


def export_fastchat(source: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the tree (module docstring); returns {models: {name: answers file}, judgments: [single files],
    pair_judgments: [pair files], references: [files]}."""
    files, data = answer_files(source), Path(out) / "data"
    bench = data / "mt_bench"
    names: dict[str, str] = {}
    models: dict[str, str] = {}
    for answers in files:
        rows = read_jsonl(answers)
        for model_id in sorted({str(row["model_id"]) for row in rows}):
            name = fastchat_name(model_id)
            if name in models:
                raise UserError(f"{answers}: model {model_id!r} exports as {name!r}, as another model does; give "
                                f"the runs distinct model ids")
            names[model_id], models[name] = name, str(answers)
            mine = sorted((row for row in rows if str(row["model_id"]) == model_id), key=lambda r: r["question_id"])
            write_jsonl_atomic(bench / "model_answer" / f"{name}.jsonl", [{**row, "model_id": name} for row in mine])
    for name, target in (("question.jsonl", bench / "question.jsonl"), ("judge_prompts.jsonl",
                                                                         data / "judge_prompts.jsonl")):
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(mtbench_dir() / name, target)
    written, references = _write_judge_files(_judge_groups(files, names), "single", bench, set(models))
    pairs = _pair_groups(Path(source))
    ours = {row[column] for _, rows in pairs.values() for row in rows for column in ("model_1", "model_2")}
    pair_files, pair_references = _write_judge_files(pairs, "pair", bench, ours)
    return {"models": models, "judgments": written, "pair_judgments": pair_files,
            "references": list(dict.fromkeys(references + pair_references))}
