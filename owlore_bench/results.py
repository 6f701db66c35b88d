"""The results store: atomic JSON files, an append-only metrics log, and run provenance.

Layout of one run: `<dir>/config.json` (resolved config), `metrics.jsonl` (one line per step), `summary.json`,
`eval.json`, `checkpoint/` (while resumable), `model/` (trained weights or adapter).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from owlore_bench.errors import UserError

STATUSES = ("ok", "diverged", "oom", "failed")
STEADY_SKIP_SHARE = 0.1  # the first 10 % of a run's steps (at least one) are warm-up: allocations, thread pools


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temp path beside `path` to write to; on success it is fsynced, given the mode a plain `open` would give
    (0666 less the umask: mkstemp's 0600 would hide results from the rest of a shared cluster) and renamed over
    `path`, so a reader never sees half a file. On failure the temp file is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    try:
        yield Path(temp)
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a text file through atomic_path."""
    with atomic_path(path) as temp:
        temp.write_text(text)


def write_png_atomic(figure: Any, path: str | Path, dpi: int = 120) -> Path:
    """Save a matplotlib Figure as a PNG through atomic_path (a reader never sees half an image)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    with atomic_path(path, suffix=".png") as temp:
        figure.savefig(temp, dpi=dpi, format="png", bbox_inches="tight")  # keeps legends placed outside
    return Path(path)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON through atomic_path: readers never see a partial file."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str))


def write_jsonl_atomic(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Replace a JSONL file by `rows`, one per line, through atomic_path."""
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a JSONL file (answers, judgments, metrics); [] when the file does not exist.

    Blank lines are skipped. A torn last line (no trailing newline and not valid JSON: the writer was killed
    mid-line) is dropped. Any other line that is not a JSON object raises a UserError naming the file and line,
    so that no caller goes on to rewrite the file with only the lines before it."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")  # a complete file ends in "\n": its last item is ""
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            if number == len(lines):  # the last line has no newline: torn mid-write
                break
            raise UserError(f"{path} line {number}: not valid JSON ({error}); fix or delete that line "
                            f"(nothing was written)") from None
        if not isinstance(row, dict):
            raise UserError(f"{path} line {number}: expected a JSON object, got {type(row).__name__}; fix or "
                            f"delete that line (nothing was written)")
        rows.append(row)
    return rows


def drop_torn_tail(path: str | Path) -> list[dict[str, Any]]:
    """Make an append-only JSONL file safe to append to, and return its records: a torn last line is cut off
    and a complete last line without its newline gets one. Only writers call this; readers use read_jsonl."""
    path = Path(path)
    rows = read_jsonl(path)  # raises before anything is changed
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            write_jsonl_atomic(path, rows)
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
            write_jsonl_atomic(self.path, self.rows)
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


# The packages every run records; a method adds its own (Method.packages: reference_package, other_packages).
BASE_PACKAGES = ("torch", "transformers", "peft", "galore-torch", "lm-eval")


def package_versions(packages: Iterable[str] = ()) -> dict[str, str | None]:
    """{package: installed version, None if not installed} for BASE_PACKAGES and `packages` (pip distribution
    names), read from the installed metadata (importlib.metadata) without importing them: galore-torch has no
    `__version__`. Keys are the names with '-' as '_' ('galore_torch', 'lm_eval', as summary.json always had)."""
    versions: dict[str, str | None] = {}
    for package in dict.fromkeys([*BASE_PACKAGES, *packages]):
        try:
            versions[package.replace("-", "_")] = version(package)
        except PackageNotFoundError:
            versions[package.replace("-", "_")] = None
    return versions


def provenance(packages: Iterable[str] = ()) -> dict[str, Any]:
    """Versions (Python, BASE_PACKAGES and `packages`: the run's method's, Method.packages()), git commit
    (+ dirty flag) and hardware, for every summary.json."""
    import torch

    versions = {"python": platform.python_version(), **package_versions(packages)}
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


# ---------------------------------------------------------------- throughput and machine load (summary fields)
def steady_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The finished steps after warm-up: the first ceil(10 %) of them (at least one) left out, unless only one."""
    skip = max(1, math.ceil(STEADY_SKIP_SHARE * len(rows))) if len(rows) > 1 else 0
    return rows[skip:]


def steady_tokens_per_s(rows: list[dict[str, Any]]) -> float | None:
    """Median tokens/s of the steady-state steps (metrics.jsonl rows with tokens_per_s); None without any."""
    rates = [row["tokens_per_s"] for row in steady_rows([r for r in rows if "tokens_per_s" in r])]
    return float(statistics.median(rates)) if rates else None


def load_average() -> float | None:
    """The machine's 1-minute load average (runnable threads, all processes); None where the OS has none."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which a container or taskset narrows), else all."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine_load(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Summary fields: load_avg_1m (median of the per-step 1-minute load average over the steady steps) and
    load_avg_1m_max (over every step), None where not recorded, and cpu_count (available_cpus)."""
    steady = [row["load_1m"] for row in steady_rows(rows) if row.get("load_1m") is not None]
    every = [row["load_1m"] for row in rows if row.get("load_1m") is not None]
    return {"load_avg_1m": float(statistics.median(steady)) if steady else None,
            "load_avg_1m_max": max(every) if every else None, "cpu_count": available_cpus()}
