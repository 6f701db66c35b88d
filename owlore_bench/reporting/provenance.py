"""Where the numbers of a report came from, read back from the results store: each run's package versions, git
commit (+ dirty flag) and hardware (summary.json, written by owlore_bench.results.provenance), its resolved
config (config.json) and each experiment's experiment.json. Nothing is measured here; a key a run did not store
is left empty rather than guessed.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from owlore_bench.reporting.loading import Results
from owlore_bench.reporting.throughput import unit_contended, unit_load
from owlore_bench.results import read_json

SHORT_COMMIT = 12  # characters of the git hash in the per-run table (commits() lists the full hashes)


def run_provenance(results: Results) -> pd.DataFrame:
    """One line per run: row, seed, status, commit, dirty, then every stored version and hardware key (in the
    order the runs stored them), its load (median 1-minute load average over the steady steps, CPUs, contended:
    throughput.py; None where not recorded), run wall time (s) and the error of a run that did not finish ok."""
    lines = []
    for name, runs in results.rows.items():
        for run in runs:
            summary = run.summary
            git = summary.get("git") or {}
            commit = git.get("commit")
            line: dict[str, Any] = {"row": name, "seed": run.seed, "status": run.status,
                                    "commit": commit[:SHORT_COMMIT] if commit else None, "dirty": git.get("dirty")}
            line.update(summary.get("versions") or {})
            line.update(summary.get("hardware") or {})
            load, cpus = unit_load(run)
            line.update(load_avg_1m=load, cpus=cpus, contended=unit_contended(run))
            line["run_wall_s"] = summary.get("run_wall_s")
            line["error"] = summary.get("error")
            lines.append(line)
    frame = pd.DataFrame(lines)
    if "error" in frame and frame["error"].isna().all():
        frame = frame.drop(columns="error")
    return frame


def commits(results: Results) -> dict[str, list[str]]:
    """{full git commit (+ ' (dirty)' when the tree had uncommitted changes): run folders} over every run, so
    a report built from runs of several code versions says so."""
    found: dict[str, list[str]] = {}
    for name, runs in results.rows.items():
        for run in runs:
            git = run.summary.get("git") or {}
            commit = (git.get("commit") or "unknown") + (" (dirty)" if git.get("dirty") else "")
            found.setdefault(commit, []).append(f"{name}/seed-{run.seed}")
    return found


def stored_configs(results: Results) -> dict[str, str]:
    """{'<experiment>/experiment.json' or '<row>/seed-<s>/config.json': its JSON, indented} for every file the
    store holds (the base model has no config.json: it was not trained)."""
    texts = {f"{name}/experiment.json": json.dumps(experiment, indent=2)
             for name, experiment in results.experiments.items() if experiment}
    for name, runs in results.rows.items():
        for run in runs:
            path = run.path / "config.json"
            if path.is_file():
                texts[f"{name}/seed-{run.seed}/config.json"] = json.dumps(read_json(path), indent=2)
    return texts
