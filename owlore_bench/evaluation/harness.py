"""Bridge to lm-eval: score an in-memory model on tasks and return tidy rows.

The model is wrapped with lm-eval's HFLM (`pretrained=<model object>`), never subclassed; every task is one
`simple_evaluate` call, so the model is wrapped once and lm-eval batches all requests of all tasks together.
Local tasks (tasks/ in this repository: commonsense `<task>_choices` / `<task>_labels`, six of them embedded in the
package (tags `commonsense6_choices` / `commonsense6_labels`), `mmlu_local`, your own BIG-bench `bb_*` /
`bigbench_default`) read files only; standard lm-eval hub tasks pass through by name.
Offline by default: the HF offline switches are set unless a hub task is asked for AND the hub answers.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import sys
from contextlib import contextmanager
from typing import Any

from owlore_bench.downloads import cache_dir
from owlore_bench.errors import UserError, did_you_mean
from owlore_bench.evaluation.protocol import APPLY_CHAT_TEMPLATE, evaluation_protocol
from owlore_bench.evaluation.rows import COMMONSENSE, average_rows, rows_from_results  # noqa: F401 (re-exported)
from owlore_bench.evaluation.samples import records_from_results
from owlore_bench.paths import DATA_ENV, data_root, tasks_dir
from owlore_bench.results import write_json_atomic

HUB_HOST = ("huggingface.co", 443)
HUB_PROBE_TIMEOUT_S = 3.0


# ---------------------------------------------------------------- offline handling
def set_hf_offline() -> None:
    """Switch HF hub and datasets to offline mode (kept if the user set these variables themselves).

    huggingface_hub and datasets read the variables when imported; if the model loader imported them already,
    their module-level switches are updated too, so nothing waits on an unreachable network.
    """
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(variable, "1")
    if os.environ["HF_HUB_OFFLINE"] != "1":
        return
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:
        sys.modules["datasets"].config.HF_HUB_OFFLINE = True


@functools.cache
def hub_reachable() -> bool:
    """Whether huggingface.co accepts a TCP connection within HUB_PROBE_TIMEOUT_S (checked once per process)."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        socket.create_connection(HUB_HOST, timeout=HUB_PROBE_TIMEOUT_S).close()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- task lookup
@contextmanager
def _quiet_lm_eval(level: int = logging.ERROR):
    """lm-eval logs every task build and a warning for model objects; keep the user's terminal to our table."""
    logger = logging.getLogger("lm_eval")
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


@functools.cache
def task_manager(with_hub_tasks: bool):
    """An lm-eval TaskManager over tasks/ (and, if asked, lm-eval's ~14k own task names: ~10 s to index)."""
    from lm_eval.tasks import TaskManager

    with _quiet_lm_eval():
        return TaskManager(include_path=str(tasks_dir()), include_defaults=with_hub_tasks)


def lm_eval_task_names() -> list[str]:
    """Every task/group/tag name lm-eval knows, cached on disk per lm-eval version (indexing takes ~10 s)."""
    import lm_eval

    path = cache_dir() / f"lm_eval_{lm_eval.__version__}_task_names.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        local = set(task_manager(False).all_tasks)
        names = [name for name in task_manager(True).all_tasks if name not in local]
        write_json_atomic(path, names)
        return names


def split_local(tasks: list[str]) -> tuple[list[str], list[str]]:
    """(names defined in tasks/, all other names), each in the given order."""
    local_names = set(task_manager(False).all_tasks)
    return [t for t in tasks if t in local_names], [t for t in tasks if t not in local_names]


def check_tasks(tasks: list[str], task_limits: dict[str, int] | None = None) -> None:
    """Raise UserError (one line) unless every task name is known and its data can be loaded. No model needed.

    Local tasks build their datasets (milliseconds; your BIG-bench sdist is unpacked once); a hub task is
    refused here when the hub cannot be reached and its data is not in the HF cache.
    """
    if not tasks:
        raise UserError("tasks: empty; name at least one task, e.g. --tasks arc_easy_choices,commonsense6_labels")
    _, hub = split_local(tasks)
    _configure_network(hub)
    if hub:
        known = set(lm_eval_task_names())
        for name in hub:
            if name not in known:
                local = task_manager(False).all_tasks
                raise UserError(f"unknown task '{name}'.{did_you_mean(name, local + sorted(known))} Local tasks: "
                                f"<task>_choices / <task>_labels for {', '.join(COMMONSENSE)} (the six "
                                f"embedded: commonsense6_choices, commonsense6_labels); mmlu_local; "
                                f"bigbench_default (your BIG-bench); or any lm-eval task name")
    _, leaves = _build_tasks(tasks, bool(hub))  # builds every task's data: a missing file is one line now
    if task_limits:
        _first_documents(leaves, None, task_limits)  # a task_limits key that names no evaluated task: one line


def _configure_network(hub_tasks: list[str]) -> None:
    if not hub_tasks or not hub_reachable():
        set_hf_offline()


def _build_tasks(tasks: list[str], with_hub_tasks: bool) -> tuple[list[Any], dict[str, Any]]:
    """(lm-eval Task/Group objects of `tasks` in order, {leaf task name: Task}); datasets are loaded once and a tag
    stays a name (lm-eval expands it). Any failure becomes one UserError line naming the task."""
    manager = task_manager(with_hub_tasks)
    try:
        with _quiet_lm_eval():
            loaded = manager.load(list(tasks))
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - lm-eval raises many kinds here (datasets, hub, YAML, KeyError):
        # one line for the user; the cause stays chained (OWLORE_BENCH_DEBUG=1 prints it)
        raise UserError(_load_failure_line(tasks, with_hub_tasks, error)) from error
    return [loaded["groups"].get(name) or loaded["tasks"].get(name) or name for name in tasks], loaded["tasks"]


def _load_failure_line(tasks: list[str], with_hub_tasks: bool, error: Exception) -> str:
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    if with_hub_tasks and not hub_reachable():
        _, hub = split_local(tasks)
        local = [local_equivalent(name) or f"(none for {name})" for name in hub]
        return (f"task(s) {', '.join(hub)} need the HF hub, which is not reachable and has no cached copy "
                f"({type(error).__name__}); use the local version(s) {', '.join(local)} (data folder: env "
                f"{DATA_ENV}, now {data_root()}) or run where huggingface.co is reachable")
    return f"tasks {', '.join(tasks)} could not be loaded: {type(error).__name__}: {reason}"


def local_equivalent(hub_task: str) -> str | None:
    """The local task scoring the same data as an lm-eval hub task (arc_easy -> arc_easy_choices), if any."""
    index = task_manager(False).task_index
    if f"{hub_task}_local" in index:  # mmlu -> mmlu_local, mmlu_anatomy is mmlu_local_anatomy below
        return f"{hub_task}_local"
    for name, entry in sorted(index.items()):
        kwargs = (entry.cfg or {}).get("dataset_kwargs") or {}
        if kwargs.get("hub_task") == hub_task and not name.endswith("_labels"):
            return name
    return None


# ---------------------------------------------------------------- evaluation
def run_lm_eval(model: Any, tokenizer: Any, tasks: list[str], num_fewshot: int | None = None,
                limit: int | None = None, batch_size: int = 8, log_samples: bool = False,
                task_limits: dict[str, int] | None = None) -> dict[str, Any]:
    """lm-eval's raw results dict for `model`. The model's train/eval mode and the caller's random states are
    restored afterwards. log_samples keeps per-doc responses under results['samples']. `task_limits` overrides
    `limit` for the tasks it names (each scores its first N documents, as `limit` does)."""
    if not tasks:
        raise UserError("tasks: empty; name at least one task")
    _, hub = split_local(tasks)
    _configure_network(hub)
    built, leaves = _build_tasks(tasks, bool(hub))
    documents = _first_documents(leaves, limit, task_limits) if task_limits else None
    was_training = model.training
    try:
        with _quiet_lm_eval(), _keep_random_state(), _without_env_report():
            from lm_eval import simple_evaluate
            from lm_eval.models.huggingface import HFLM

            lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
            return simple_evaluate(model=lm, tasks=built, task_manager=task_manager(bool(hub)), num_fewshot=num_fewshot,
                                   limit=None if documents else limit, samples=documents, log_samples=log_samples,
                                   apply_chat_template=APPLY_CHAT_TEMPLATE)
    finally:
        model.train(was_training)


def _first_documents(leaves: dict[str, Any], limit: int | None, task_limits: dict[str, int]) -> dict[str, list[int]]:
    """lm-eval's `samples` argument: the first N test documents of every leaf task, N from task_limits, else limit,
    else all (lm-eval takes a per-task index list where its `limit` is one number for all tasks)."""
    unknown = sorted(set(task_limits) - set(leaves))
    if unknown:
        raise UserError(f"eval.task_limits: {unknown[0]} is not one of the tasks evaluated ({', '.join(leaves)})."
                        f"{did_you_mean(unknown[0], list(leaves))}")
    return {name: list(range(min(task_limits.get(name, limit) or len(task.eval_docs), len(task.eval_docs))))
            for name, task in leaves.items()}


@contextmanager
def _keep_random_state():
    """simple_evaluate seeds python, numpy and torch globally; a sweep evaluating between runs must not
    change what the next training run draws."""
    import random

    import numpy as np
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


@contextmanager
def _without_env_report():
    """simple_evaluate's add_env_info shells out to pip/nvidia-smi/git (~2 s per call, measured), and its
    get_git_commit_hash runs `git describe` with git's stderr on the user's terminal ("fatal: not a git repository"
    outside a checkout), for provenance that the results store records itself (results.provenance()); skip both
    for our calls only."""
    import lm_eval.evaluator as evaluator

    originals = evaluator.add_env_info, evaluator.get_git_commit_hash
    evaluator.add_env_info, evaluator.get_git_commit_hash = (lambda results: None), (lambda: None)
    try:
        yield
    finally:
        evaluator.add_env_info, evaluator.get_git_commit_hash = originals


def evaluate_model(model: Any, tokenizer: Any, tasks: list[str], num_fewshot: int | None = None,
                   limit: int | None = None, batch_size: int = 8) -> list[dict[str, Any]]:
    """Tidy rows {task, metric, value, stderr, n, num_fewshot}: one per task and metric, one per lm-eval group
    (e.g. mmlu_local, size-weighted like lm-eval's mmlu), plus AVERAGES rows such as commonsense_choices_avg.
    `limit` caps the documents per task; `batch_size` is the number of sequences per forward pass."""
    return rows_from_results(run_lm_eval(model, tokenizer, tasks, num_fewshot, limit, batch_size))


def evaluate_model_with_samples(model: Any, tokenizer: Any, tasks: list[str], num_fewshot: int | None = None,
                                limit: int | None = None, batch_size: int = 8,
                                task_limits: dict[str, int] | None = None) -> tuple[list, dict[str, list], dict]:
    """(evaluate_model's rows, {task: one record per document}, the protocol) of one lm-eval pass; see samples.py
    and protocol.py."""
    results = run_lm_eval(model, tokenizer, tasks, num_fewshot, limit, batch_size, log_samples=True,
                          task_limits=task_limits)
    protocol = evaluation_protocol(results, num_fewshot, limit, task_limits)
    return rows_from_results(results), records_from_results(results), protocol
