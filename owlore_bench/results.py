"""The results store: atomic JSON files, an append-only metrics log, and run provenance.

Layout of one run: <dir>/config.json (resolved config), metrics.jsonl (one line per step), summary.json,
eval.json, checkpoint/ (while resumable), model/ (trained weights or adapter).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

STATUSES = ("ok", "diverged", "oom", "failed")


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON via a temp file + rename in the same folder: readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(data, out, indent=2, sort_keys=False, default=str)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Complete lines of a JSONL file; a torn last line (the process was killed mid-write) is ignored."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            break
    return rows


class MetricsLog:
    """metrics.jsonl: one JSON line per step, flushed as written. Opening it for a resumed run keeps only the
    lines of steps before `resume_step` (later ones are recomputed) and rewrites the file atomically. Each row
    is also handed to the `trackers` (train.report_to: TensorBoard, W&B, MLflow), keyed by its step."""

    def __init__(self, path: str | Path | None, resume_step: int = 0, trackers: list[Any] | None = None):
        """path None: rows are kept in memory only (a data-parallel rank other than 0 writes no files)."""
        self.path = Path(path) if path is not None else None
        self.rows = [row for row in read_jsonl(self.path) if row.get("step", -1) < resume_step] if self.path else []
        self.trackers = trackers or []
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp = self.path.with_suffix(".jsonl.tmp")
            temp.write_text("".join(json.dumps(row) + "\n" for row in self.rows))
            os.replace(temp, self.path)
            self._file = open(self.path, "a")

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self._file is not None:
            self._file.write(json.dumps(row) + "\n")
            self._file.flush()
        for tracker in self.trackers:
            tracker.log(row, step=row["step"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        for tracker in self.trackers:
            tracker.close()


def provenance() -> dict[str, Any]:
    """Versions, git commit (+ dirty flag) and hardware, for every summary.json."""
    import torch
    import transformers

    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "transformers": transformers.__version__}
    for name in ("peft", "galore_torch", "lm_eval"):
        try:
            versions[name] = __import__(name).__version__
        except (ImportError, AttributeError):
            versions[name] = None
    repo = Path(__file__).resolve().parent.parent
    git = {"commit": None, "dirty": None}
    try:
        git["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                                       check=True).stdout.strip()
        git["dirty"] = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                                           capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    hardware = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    return {"versions": versions, "git": git, "hardware": hardware}
