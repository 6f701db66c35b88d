"""The benchmark runner: execute an experiment's units (train → evaluate → store), resumably.

A unit is complete when its summary.json exists and its config.json matches the plan; complete units are
skipped, an interrupted one resumes from its last checkpoint. Each unit is written last-file-wins: eval.json,
then summary.json (atomic), so a killed sweep never leaves a unit that looks complete but is not. A unit that
diverges, runs out of memory or fails is recorded with that status and the sweep goes on.

Under torchrun every rank trains each unit (data parallel); rank 0 alone evaluates and writes while the others
wait in a barrier, so all ranks start the next unit together.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any

from tqdm.auto import tqdm

from owlore_bench.config import dump_json
from owlore_bench.errors import UserError, one_line
from owlore_bench.experiment import LOCATION_FIELDS, ExperimentConfig, Unit, plan
from owlore_bench.results import provenance, read_json, read_jsonl, write_json_atomic
from owlore_bench.train import distributed
from owlore_bench.train.loop import failure_status, write_error_log
from owlore_bench.train.run import differing_keys, finish_run, train_run


def claim_out_dir(experiment: ExperimentConfig, force: bool = False) -> None:
    """Write experiment.json, refusing a folder that holds results of a different experiment unless forced."""
    path = experiment.out_dir / "experiment.json"
    new = dump_json(experiment)
    if path.is_file() and not force:
        differing = sorted(key for key in differing_keys(read_json(path), new) if key not in LOCATION_FIELDS)
        if differing:
            raise UserError(f"{experiment.out_dir} holds results of a different config "
                            f"(fields: {', '.join(differing)}); "
                            f"use another `out`, or --force to keep what still matches and rerun the rest")
    write_json_atomic(path, new)


def unit_is_complete(unit: Unit, experiment: ExperimentConfig | None = None) -> bool:
    """summary.json is there, the config matches, and (with mt_bench) every chosen question is answered."""
    if not (unit.folder / "summary.json").is_file():
        return False
    if unit.run is not None and read_json(unit.folder / "config.json") != dump_json(unit.run):
        return False
    return experiment is None or experiment.mt_bench is None or _answers_are_complete(experiment, unit)


def _answers_are_complete(experiment: ExperimentConfig, unit: Unit) -> bool:
    from owlore_bench.mtbench.pipeline import ANSWERS_FILE, chosen_question_ids
    from owlore_bench.mtbench.questions import load_questions

    if read_json(unit.folder / "summary.json").get("status") != "ok":
        return True  # a diverged/oom/failed unit has no model to answer with: its status is the result
    answered = {row["question_id"] for row in read_jsonl(unit.folder / "mt_bench" / ANSWERS_FILE)}
    chosen = chosen_question_ids(experiment.mt_bench, load_questions())
    return chosen <= answered


def clear_stale(unit: Unit) -> None:
    """A unit folder written for another config (possible after --force) is emptied before it is rerun."""
    config = unit.folder / "config.json"
    if unit.run is not None and config.is_file() and read_json(config) != dump_json(unit.run):
        shutil.rmtree(unit.folder)


def run_units(experiment: ExperimentConfig, units: list[Unit], progress: bool = True) -> list[dict[str, Any]]:
    """Run every incomplete unit; returns the summaries of all units (skipped ones read back from disk)."""
    summaries = []
    bar = tqdm(units, desc="runs", unit="run", disable=not (progress and distributed.is_main()))
    for unit in bar:
        bar.set_postfix_str(f"{unit.label} seed {unit.seed}")
        if not unit_is_complete(unit, experiment):
            if distributed.is_main():
                clear_stale(unit)
            distributed.barrier()  # no rank looks into the unit's folder while rank 0 empties it
            run_unit(experiment, unit)
        summaries.append(read_json(unit.folder / "summary.json"))
    bar.close()
    return summaries


def run_unit(experiment: ExperimentConfig, unit: Unit) -> dict[str, Any]:
    """Train (unless base) and evaluate one unit; any error becomes the unit's status, never the sweep's end.

    Under torchrun: every rank trains, rank 0 evaluates and writes summary.json while the others wait.
    """
    started = time.time()
    main = distributed.is_main()
    summary: dict[str, Any] = {"method": unit.run.method if unit.run else "base", "label": unit.label,
                               "model": experiment.model, "seed": unit.seed}
    try:
        if unit.run is None:
            if main:  # nothing to train: the other ranks go straight to the barrier
                summary.update(_evaluate_base(experiment, unit))
        else:
            summary.update(_train_and_evaluate(experiment, unit))
    except Exception as error:  # noqa: BLE001 — recorded as data; the sweep goes on
        if distributed.world_size() > 1 and not isinstance(error, (UserError, distributed.RanksDisagree)):
            raise  # this rank alone failed: the others wait in a collective, and only ending the process frees them
        summary.update(status=failure_status(error), error=one_line(error))
        if main:
            summary["error"] += f" (traceback: {write_error_log(unit.folder)})"
        else:
            print(f"rank {distributed.rank()}: {unit.label} seed {unit.seed}: {summary['error']}", file=sys.stderr)
    summary["run_wall_s"] = time.time() - started
    finish_run(unit.folder, summary)  # rank 0 only
    distributed.barrier()  # the other ranks wait here while rank 0 evaluates and writes
    return summary


def _evaluate_base(experiment: ExperimentConfig, unit: Unit) -> dict[str, Any]:
    from owlore_bench.models import load_model

    model, tokenizer = load_model(experiment.model, dtype=experiment.train.dtype, device=experiment.train.device)
    _evaluate_into(experiment, unit, model, tokenizer)
    return {"status": "ok", "error": None, "trainable_params": 0, "steps": 0, **provenance()}


def _train_and_evaluate(experiment: ExperimentConfig, unit: Unit) -> dict[str, Any]:
    summary, model, tokenizer, method = train_run(unit.run, unit.folder, write_summary=False)
    if summary["status"] == "ok" and distributed.is_main():
        try:
            _evaluate_into(experiment, unit, method.for_eval(model), tokenizer)
        except Exception as error:  # noqa: BLE001 — the training result stays; the row shows why eval is missing
            summary.update(status=failure_status(error),
                           error=f"evaluation: {one_line(error)} (traceback: {write_error_log(unit.folder)})")
    return summary


def _evaluate_into(experiment: ExperimentConfig, unit: Unit, model: Any, tokenizer: Any) -> None:
    """lm-eval rows into eval.json, forgetting.json (CE on general text), then (with mt_bench) MT-Bench answers;
    judging comes later, for all units at once (judge_mtbench), so a judge that fails costs no training and a new
    judge no generation."""
    settings = experiment.eval
    if settings.tasks:
        from owlore_bench.evaluation.harness import evaluate_model_with_samples
        from owlore_bench.evaluation.samples import write_samples

        rows, samples, protocol = evaluate_model_with_samples(
            model, tokenizer, settings.tasks, num_fewshot=settings.num_fewshot, limit=settings.limit,
            batch_size=settings.batch_size, task_limits=settings.task_limits)
        write_samples(unit.folder, samples)  # per-question outcomes (samples/<task>.jsonl.gz) before eval.json
        write_json_atomic(unit.folder / "eval.json", {"rows": rows, "protocol": protocol})
    if settings.forgetting is not None:
        _measure_forgetting(experiment, unit, model, tokenizer)
    if experiment.mt_bench is not None:
        from owlore_bench.mtbench.pipeline import answer_for_unit

        answer_for_unit(model, tokenizer, unit.folder / "mt_bench", experiment.mt_bench,
                        model_id=f"{experiment.name}/{unit.label}/seed-{unit.seed}",
                        run_dir=unit.folder if unit.run else None)


def _measure_forgetting(experiment: ExperimentConfig, unit: Unit, model: Any, tokenizer: Any) -> None:
    """forgetting.json: CE on held-out general text against the base model, whose CEs are computed once per
    experiment (by the base unit, else by the first trained unit, which loads the base model for it)."""
    from owlore_bench.evaluation.forgetting import BASE_CACHE_DIR, write_forgetting
    from owlore_bench.models import load_model

    train = unit.run.train if unit.run is not None else experiment.train
    load_base = None if unit.run is None else (
        lambda: load_model(experiment.model, dtype=train.dtype, device=train.device)[0])
    write_forgetting(unit.folder, model, tokenizer, experiment.eval.forgetting, model_name=experiment.model,
                     cache_dir=experiment.out_dir / BASE_CACHE_DIR, load_base=load_base)


def judge_mtbench(experiment: ExperimentConfig, units: list[Unit], progress: bool = True) -> int:
    """Judge the MT-Bench answers of every finished unit that the experiment's judge has not scored yet (each
    judge writes its own judgments and scores files; the pairwise modes: _judge_pairwise). Returns how many units
    were judged now. A judge that cannot be reached is one UserError line; the answers stay and a rerun judges
    only what is missing."""
    from owlore_bench.mtbench.pipeline import (
        ANSWERS_FILE,
        cached_judge,
        chosen_question_ids,
        judge_answer_file,
        scores_path,
    )
    from owlore_bench.mtbench.questions import load_questions, load_reference

    bench = experiment.mt_bench
    if bench.mode != "single":
        return _judge_pairwise(experiment, progress)
    chosen = chosen_question_ids(bench, load_questions())
    reference = load_reference(bench.reference)
    todo = [unit for unit in units if (unit.folder / "mt_bench" / ANSWERS_FILE).is_file()
            and read_json(unit.folder / "summary.json").get("status") == "ok"]
    judged = 0
    for unit in tqdm(todo, desc="judging", unit="run", disable=not progress or not todo):
        judge = cached_judge(bench.judge, bench.judge_max_tokens)  # loads an hf: judge once, only when needed
        folder = unit.folder / "mt_bench"
        target = scores_path(folder, judge, reference)
        if target.is_file() and read_json(target).get("n_questions") == len(chosen) and \
                read_json(target).get("judge_repeats", 1) == bench.judge_repeats:
            continue
        judge_answer_file(folder / ANSWERS_FILE, judge, folder, question_ids=chosen, reference=reference,
                          repeats=bench.judge_repeats)
        judged += 1
    return judged


def _judge_pairwise(experiment: ExperimentConfig, progress: bool = True) -> int:
    """mt_bench.mode pairwise-*: once every unit of the experiment is complete, the answers of the ok ones play
    each other into <out>/mt_bench_pairwise/ (a rerun plays only the missing games). Returns the games judged now."""
    from owlore_bench.mtbench.pipeline import ANSWERS_FILE, judge_experiment_pairs

    units = plan(experiment)
    waiting = [f"{unit.label} seed {unit.seed}" for unit in units if not unit_is_complete(unit, experiment)]
    if waiting:
        if progress:
            print(f"mt_bench {experiment.mt_bench.mode}: judged once every unit has answered; waiting for "
                  f"{', '.join(waiting)}")
        return 0
    files = [unit.folder / "mt_bench" / ANSWERS_FILE for unit in units
             if read_json(unit.folder / "summary.json").get("status") == "ok"]
    return judge_experiment_pairs(experiment.out_dir, files, experiment.mt_bench)


def dry_run_plan(experiment: ExperimentConfig, units: list[Unit], world_size: int = 1) -> list[dict[str, Any]]:
    """Rows of the plan: label, seed, folder, done?, the steps to run and the data plan's lines (`data_plan`; the
    data is read and tokenized once per data setting), and the estimator's peak memory per run (bytes); for a
    method that keeps the state of leaving layers also the total at the end of those steps."""
    from owlore_bench.memory.estimate import estimate_train_memory

    architecture = experiment.architecture or experiment.model
    tokenized: dict[str, Any] = {}
    rows = []
    for unit in units:
        row = {"label": unit.label, "seed": unit.seed, "folder": str(unit.folder), "complete": unit_is_complete(unit)}
        if unit.run is not None:
            train = unit.run.train
            dtype = _estimate_dtype(train.dtype, train.device)
            seq_len = unit.run.data.block_size if unit.run.data.packing else train.max_length  # packed: whole blocks
            steps, lines = _unit_data_plan(unit.run, tokenized, world_size)
            row.update(seq_len=seq_len, steps=steps, epochs=train.epochs, data_plan=lines)
            try:
                planned = train.model_copy(update={"max_length": seq_len, "dtype": dtype, "steps": steps})
                estimate = estimate_train_memory(architecture, unit.run.method, unit.run.method_config, planned,
                                                 world_size)
                row.update(estimated_total_bytes=estimate["total"], estimate_dtype=dtype,
                           trainable_params=estimate["trainable_params"])
                if "total_state_kept" in estimate:
                    row["estimated_total_state_kept_bytes"] = estimate["total_state_kept"]
            except UserError as error:
                row["estimate_error"] = str(error)
        rows.append(row)
    return rows


def _unit_data_plan(run, tokenized: dict[str, Any], world_size: int) -> tuple[int | None, list[str]]:
    """(steps to run, the data plan's lines) of one unit. `tokenized` caches the data per tokenization_key, or
    the reason it cannot be read: then one line says why, and steps is train.steps (None with train.epochs)."""
    from owlore_bench.train.data_plan import plan_lines, steps_to_run, tokenization_key, tokenize_data

    key = tokenization_key(run)
    if key not in tokenized:
        try:
            tokenized[key] = tokenize_data(run)
        except UserError as error:
            tokenized[key] = str(error)
    data = tokenized[key]
    if isinstance(data, str):
        unknown = "; steps unknown with train.epochs" if run.train.steps is None else ""
        return run.train.steps, [f"data plan: not available, the data or the tokenizer cannot be read ({data})"
                                 + unknown]
    return steps_to_run(data, run.train, world_size), plan_lines(data, run.train, world_size)


def _estimate_dtype(dtype: str, device: str) -> str:
    """The dtype a run would train in on this machine: 'auto' is bf16 where CUDA is (or is asked for), else fp32."""
    if dtype != "auto":
        return dtype
    import torch

    return "bf16" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "fp32"
