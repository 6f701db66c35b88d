"""The commonsense tasks shipped inside the package: the offline default, with no download and no data folder.

Six test sets (BoolQ, PIQA, SIQA, ARC-Easy, ARC-Challenge, OpenBookQA: 11,110 questions) and four train sets
(BoolQ, ARC-Easy, ARC-Challenge, OpenBookQA: 17,754 records) in the LLM-Adapters format, gzip-compressed under
`owlore_bench/tasks/commonsense/data/<folder>/<split>.json.gz` (sources: tasks/commonsense/data/; licenses and
citations: the NOTICE file beside them). Every file is checked against the sha256 of its decompressed bytes pinned
here — the bytes of LLM-Adapters' own files at 816657208af4 — before it is used.

Training data names them `commonsense:<task>[,<task>...]` (a train set each; `commonsense:default` = all four),
or `commonsense:<task>/test` for a test set; `scripts/embed_commonsense.py` rebuilds the files from a source folder.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from pathlib import Path

from owlore_bench.errors import UserError, did_you_mean
from owlore_bench.paths import tasks_dir

SCHEME = "commonsense:"
# '<LLM-Adapters folder>/<split>.json' -> sha256 of the decompressed file (= LLM-Adapters @ 816657208af4).
EMBEDDED_SHA256 = {
    "boolq/test.json": "89df2397cbca81dc31adcc6f7f5b635821aa0565aafde46725b2b4bd39b4dfa9",
    "boolq/train.json": "5ccbaceebaddc69765e1c4a363632196b81851d303696672165ab59ec4e48c83",
    "piqa/test.json": "3860d11b9b42e590b6b4bbc1643214d373ed0b0d4ac62fcc7bdceb8e044ad141",
    "social_i_qa/test.json": "71543f41127451945379d106ffedaef502f1c8770dff6d2f543aca85e3080b1d",
    "ARC-Easy/test.json": "3f32a84716ca6d57d38728bf80cc8117aecd17445c2cf29a68b571b810eb82dc",
    "ARC-Easy/train.json": "6a06cece3dec32f4fb1c1b0fc29dab14be7cf3053b417290dbc6cd845359f5ff",
    "ARC-Challenge/test.json": "4a89ce368ae01a71d268d9851686738b2a0a1d84271116bab49a1dd2b48ecad7",
    "ARC-Challenge/train.json": "a9debff28aafed86a08211dc3584a3b6cb38edca8c56bb34cd5002ed54aeebfb",
    "openbookqa/test.json": "8479930f7b8a26052c78250280b5465a4016ca7fc806af440d0f37e243f3099e",
    "openbookqa/train.json": "a1e094eeea01f70c0baa880f37497b26700ae99b243927b9c529984de9b1fe90",
}
# The lm-eval task stem (boolq_choices, arc_easy_labels, ...) -> its LLM-Adapters folder.
TASK_FOLDERS = {"boolq": "boolq", "piqa": "piqa", "social_iqa": "social_i_qa", "arc_easy": "ARC-Easy",
                "arc_challenge": "ARC-Challenge", "openbookqa": "openbookqa"}
TRAIN_TASKS = ("boolq", "arc_easy", "arc_challenge", "openbookqa")


def embedded_dir() -> Path:
    """The folder of the compressed files (tasks/commonsense/data in a checkout; inside the installed package)."""
    return tasks_dir() / "commonsense" / "data"


def is_embedded(folder: str, split: str) -> bool:
    return f"{folder}/{split}.json" in EMBEDDED_SHA256


def embedded_file(folder: str, split: str) -> Path:
    """The .json.gz file of one embedded split (not yet verified: read it with read_verified)."""
    return embedded_dir() / folder / f"{split}.json.gz"


@functools.lru_cache(maxsize=32)
def read_verified(path: Path) -> bytes:
    """The decompressed bytes of an embedded .json.gz, refused in one line unless their sha256 is the pinned one.

    Verified once per process and file (decompressing and hashing the largest file, 2.5 MB, takes ~20 ms).
    """
    relative = path.relative_to(embedded_dir()).as_posix().removesuffix(".gz")
    pinned = EMBEDDED_SHA256.get(relative)
    if pinned is None:
        raise UserError(f"{path}: not one of the embedded commonsense files ({', '.join(EMBEDDED_SHA256)})")
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as error:
        raise UserError(f"{path}: the embedded file is unreadable ({error}); reinstall owlore-bench") from None
    actual = hashlib.sha256(raw).hexdigest()
    if actual != pinned:
        raise UserError(f"{path}: sha256 {actual} is not the pinned {pinned}; the package's data was altered, "
                        f"reinstall owlore-bench")
    return raw


def folder_of(task: str) -> str:
    """The LLM-Adapters folder of a task stem ('arc_easy') or folder name ('ARC-Easy'); one line if unknown."""
    if task in TASK_FOLDERS:
        return TASK_FOLDERS[task]
    if task in TASK_FOLDERS.values():
        return task
    known = list(TASK_FOLDERS)
    raise UserError(f"{SCHEME}{task}: not an embedded commonsense task; choose from {', '.join(known)}."
                    f"{did_you_mean(task, known)}")


def expand(spec: str) -> list[str]:
    """`commonsense:boolq,arc_easy` -> ['commonsense:boolq', 'commonsense:arc_easy']; 'default' -> the four train
    sets. Other specs come back unchanged (one element)."""
    if not spec.startswith(SCHEME):
        return [spec]
    names = spec.removeprefix(SCHEME)
    if names in ("", "default"):
        return [SCHEME + task for task in TRAIN_TASKS]
    return [SCHEME + name.strip() for name in names.split(",") if name.strip()]


def resolve(spec: str) -> Path:
    """The embedded file of one `commonsense:<task>[/<split>]` (split train by default; test sets of PIQA and SIQA
    only, as LLM-Adapters ships no train set for them)."""
    task, _, split = spec.removeprefix(SCHEME).partition("/")
    split = split or "train"
    if split not in ("train", "test"):
        raise UserError(f"{spec}: split must be train or test (got {split!r})")
    folder = folder_of(task)
    if not is_embedded(folder, split):
        raise UserError(f"{spec}: LLM-Adapters ships no {split} set for {task}; embedded train sets: "
                        f"{', '.join(TRAIN_TASKS)} (or use {SCHEME}{task}/test)")
    return embedded_file(folder, split)
