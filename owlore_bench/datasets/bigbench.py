"""BIG-bench multiple-choice tasks, bring-your-own: read from a BIG-bench checkout or sdist you already have.

bigbench 1.0.0 (the 358 MB sdist that carried the task JSONs) is no longer served by PyPI, so nothing here downloads.
Point $OWLORE_BENCH_BIGBENCH (or the config field data.bigbench, which sets it for the run) at either
- a BIG-bench checkout: the folder holding bigbench/benchmark_tasks/<name>/task.json (or that benchmark_tasks
  folder itself); each task.json's sha256 is recorded with the data it feeds, or
- the file bigbench-1.0.0.tar.gz: verified against its pinned sha256, then only the task JSONs named in
  CANDIDATES are extracted, once, into the cache (cache_dir()/bigbench/<name>/task.json).

Each task is split deterministically into a test split (TEST_EXAMPLES documents, the lm-eval task `bb_<name>`) and a
train split (the rest), with no prompt in both, so the same data serves fine-tuning (training_file) and
evaluation without overlap.

Document form (shared with tasks/): `prompt` = BIG-bench's task prefix + input prefix + input + output prefix,
`choices` = the target_scores keys, `gold` = the index of the one choice scored 1; lm-eval scores
" " + choice after the prompt.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from owlore_bench.downloads import cache_dir, cache_lock, sha256_of
from owlore_bench.errors import UserError, did_you_mean
from owlore_bench.paths import BIGBENCH_ENV

SOURCE_ENV = BIGBENCH_ENV
SDIST_FILENAME = "bigbench-1.0.0.tar.gz"
SDIST_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
_MEMBER = "bigbench-1.0.0/bigbench/benchmark_tasks/{name}/task.json"

# Candidates measured on smollm2-135m (100 test docs each, zero-shot -> after 40 full-FT steps, batch 8, lr 3e-5, on
# the mixed train splits of all six): navigate 54->54, sports_understanding 48->54, strategyqa 56->45, winowhy
# 55->56, hyperbaton 48->52, causal_judgment (47 docs) 57->47. The defaults keep the four that did not fall; all
# are at chance zero-shot, so a fine-tune has room to show.
CANDIDATES = ("navigate", "sports_understanding", "strategyqa", "winowhy", "hyperbaton", "causal_judgment")
DEFAULT_TASKS = ("navigate", "sports_understanding", "winowhy", "hyperbaton")
GROUP = "bigbench_default"
TEST_EXAMPLES = 150  # per task; keeps an eval of several models within minutes on a CPU
TRAIN_EXAMPLES_MAX = 1000  # per task in training_file, so one big task (hyperbaton: 49,850) cannot dominate a mix
_TRAINING_FORMAT = 2  # bump when the records change: the cached training files are keyed by it
TASK_PREFIX = "bb_"


def eval_task_name(name: str) -> str:
    """The lm-eval task name of a BIG-bench task's test split, e.g. 'bb_navigate'."""
    return TASK_PREFIX + name


EVAL_TASKS = tuple(eval_task_name(name) for name in DEFAULT_TASKS)


def _check_names(names: list[str]) -> None:
    for name in names:
        if name not in CANDIDATES:
            raise UserError(f"BIG-bench task '{name}' has no task YAML here; choose from {', '.join(CANDIDATES)}."
                            f"{did_you_mean(name, list(CANDIDATES))}")


def source() -> Path:
    """The BIG-bench checkout or sdist named by $OWLORE_BENCH_BIGBENCH; one line naming both ways when unset."""
    configured = os.environ.get(SOURCE_ENV)
    if not configured:
        raise UserError(f"BIG-bench tasks are bring-your-own (bigbench 1.0.0 is no longer on PyPI): set "
                        f"{SOURCE_ENV} (or data.bigbench) to a BIG-bench checkout, the folder holding "
                        f"bigbench/benchmark_tasks/, or to a {SDIST_FILENAME} you have")
    path = Path(configured).expanduser()
    if not path.exists():
        raise UserError(f"{SOURCE_ENV}: {path} does not exist; give a BIG-bench checkout or {SDIST_FILENAME}")
    return path


def _checkout_tasks(root: Path) -> Path | None:
    """The benchmark_tasks folder of a checkout (root itself, or root/bigbench/benchmark_tasks), else None."""
    for folder in (root / "bigbench" / "benchmark_tasks", root):
        if folder.is_dir() and folder.name == "benchmark_tasks":
            return folder
    return None


def task_json(name: str) -> Path:
    """task.json of one BIG-bench task: in the checkout, or extracted once from the verified sdist."""
    _check_names([name])
    root = source()
    if root.is_dir():
        tasks = _checkout_tasks(root)
        if tasks is None:
            raise UserError(f"{SOURCE_ENV}: {root} is a folder without bigbench/benchmark_tasks/; give the root of "
                            f"a BIG-bench checkout (or its benchmark_tasks folder) or {SDIST_FILENAME}")
        path = tasks / name / "task.json"
        if not path.is_file():
            raise UserError(f"{SOURCE_ENV}: {path} not found; the checkout lacks task '{name}'")
        return path
    target = cache_dir() / "bigbench" / SDIST_SHA256[:16] / name / "task.json"
    if not target.is_file():
        with cache_lock(target.parent.parent / "extract"):
            if not target.is_file():
                _extract(root, target.parent.parent)
    return target


def _extract(sdist: Path, folder: Path) -> None:
    """Unpack only the CANDIDATES' task JSONs from the sdist, after checking its pinned sha256; each written
    atomically."""
    actual = sha256_of(sdist)
    if actual != SDIST_SHA256:
        raise UserError(f"{SOURCE_ENV}: {sdist} has sha256 {actual}, not the pinned {SDIST_SHA256} of "
                        f"{SDIST_FILENAME}; give that file or a BIG-bench checkout")
    wanted = {_MEMBER.format(name=name): name for name in CANDIDATES}
    try:
        with tarfile.open(sdist, "r:gz") as archive:
            for member in archive:  # one streaming pass over the 358 MB archive
                name = wanted.get(member.name)
                if name is None or not member.isfile():
                    continue
                target = folder / name / "task.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_suffix(".json.partial")
                partial.write_bytes(archive.extractfile(member).read())
                os.replace(partial, target)
    except (tarfile.TarError, OSError) as error:
        raise UserError(f"{SOURCE_ENV}: {sdist} could not be read as a .tar.gz ({error})") from None


def render_prompt(task: dict[str, Any], example: dict[str, Any]) -> str:
    """BIG-bench's own prompt layout (defaults '\\nQ: ' and '\\nA: '), outer whitespace stripped."""
    text = (task.get("task_prefix", "") + task.get("example_input_prefix", "\nQ: ") + example["input"]
            + task.get("example_output_prefix", "\nA: "))
    return text.strip()


def documents(name: str) -> list[dict[str, Any]]:
    """Every usable example of a task as {prompt, choices, gold}, first occurrence of each prompt only.

    Examples without exactly one top-scored choice (none in the default tasks) have no single gold answer and
    are left out.
    """
    task = json.loads(task_json(name).read_text(encoding="utf-8"))
    docs, seen = [], set()
    for example in task["examples"]:
        scores = example.get("target_scores") or {}
        best = [choice for choice, score in scores.items() if score == max(scores.values(), default=None)]
        prompt = render_prompt(task, example)
        if len(scores) < 2 or len(best) != 1 or prompt in seen:
            continue
        seen.add(prompt)
        choices = list(scores)
        docs.append({"prompt": prompt, "choices": choices, "gold": choices.index(best[0])})
    return docs


def split(name: str) -> dict[str, list[dict[str, Any]]]:
    """{'train': [...], 'test': [...]}: a fixed permutation seeded by the task name (same on every machine)."""
    docs = documents(name)
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    order = np.random.default_rng(seed).permutation(len(docs))
    test_size = min(TEST_EXAMPLES, len(docs) // 4)
    return {"test": [docs[i] for i in order[:test_size]], "train": [docs[i] for i in order[test_size:]]}


def load_bigbench(name: str, **_metadata: Any):
    """lm-eval custom_dataset: DatasetDict(train, test) of one embedded BIG-bench task."""
    import datasets

    return datasets.DatasetDict({part: datasets.Dataset.from_list(rows) for part, rows in split(name).items()})


def training_records(tasks: list[str] | None = None) -> list[dict[str, str]]:
    """{instruction, input, output} records of the train splits (at most TRAIN_EXAMPLES_MAX per task, in split
    order): instruction is the eval prompt (doc_to_text)
    and output the scored continuation of the gold choice, with its leading space."""
    names = list(tasks) if tasks else list(DEFAULT_TASKS)
    _check_names(names)
    return [{"instruction": doc["prompt"], "input": "", "output": " " + doc["choices"][doc["gold"]]}
            for name in names for doc in split(name)["train"][:TRAIN_EXAMPLES_MAX]]


def training_file(tasks: list[str] | None = None) -> Path:
    """Cached JSON array of the train-split records of `tasks` (default DEFAULT_TASKS), for data template 'plain'.

    Keyed by the task JSONs' sha256, so another checkout (or an edited task) never reuses a stale file."""
    names = list(tasks) if tasks else list(DEFAULT_TASKS)
    _check_names(names)
    digest = hashlib.sha256("".join(sha256_of(task_json(name)) for name in names).encode()).hexdigest()[:16]
    target = cache_dir() / "bigbench" / f"train_v{_TRAINING_FORMAT}_{digest}_{'+'.join(names)}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    with cache_lock(target):
        if not target.is_file():
            partial = target.with_suffix(".partial")
            partial.write_text(json.dumps(training_records(names), ensure_ascii=False, indent=0), encoding="utf-8")
            os.replace(partial, target)
    return target
