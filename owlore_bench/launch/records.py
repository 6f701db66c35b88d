"""Job records in the results store: <out>/<label>/seed-<s>/job.json, one per unit submitted as a cluster job.

A record says which job owns the unit (cluster, job id, log paths, when it was submitted, the jobs submitted for
it before). summary.json stays the only mark of a finished unit; the record lets a later `owlore-bench run`
tell a unit whose job is still queued or running (leave it alone) from one whose job ended without a result
(say so, with its log).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owlore_bench.experiment import Unit
from owlore_bench.results import read_json, write_json_atomic

JOB_FILE = "job.json"
# SLURM states (sacct) of a job that may still write into its unit; UNKNOWN: sacct cannot tell (not on the
# cluster, or the job is too young or too old for its records), so the unit is left alone to be safe.
IN_FLIGHT_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_FED",
                    "REQUEUE_HOLD", "RESIZING", "PREEMPTED", "SIGNALING", "STAGE_OUT", "STOPPED", "READY",
                    "UNKNOWN"}


@dataclass(frozen=True)
class JobStatus:
    """A unit's job as a later command sees it: `state` is the scheduler's word (e.g. RUNNING, FAILED, ENDED)."""

    unit: Unit
    record: dict[str, Any]
    state: str

    @property
    def in_flight(self) -> bool:
        return self.state in IN_FLIGHT_STATES

    def describe(self) -> str:
        """'lora seed 1: job 1234_3 (RUNNING), log <path>'."""
        return (f"{self.unit.label} seed {self.unit.seed}: job {self.record['job_id']} ({self.state}), "
                f"log {self.record.get('stdout')}")


def job_record_path(unit: Unit) -> Path:
    return unit.folder / JOB_FILE


def read_job_record(unit: Unit) -> dict[str, Any] | None:
    path = job_record_path(unit)
    return read_json(path) if path.is_file() else None


def write_job_record(unit: Unit, record: dict[str, Any]) -> None:
    """Write the unit's job.json; the job ids of earlier records move to `previous_job_ids` (resubmissions)."""
    old = read_job_record(unit)
    previous = [*old.get("previous_job_ids", []), old["job_id"]] if old else []
    write_json_atomic(job_record_path(unit), {**record, "previous_job_ids": previous})


def job_state(record: dict[str, Any], slurm: dict[str, str] | None = None) -> str:
    """The scheduler's state of a recorded job, asked now.

    slurm: sacct's word (from `slurm`, the states slurm_states fetched for many jobs at once); local: RUNNING
    while its controller process lives, else ENDED; debug (ran inside the submitting process): ENDED.
    """
    cluster = record.get("cluster")
    if cluster == "slurm":
        job_id = str(record["job_id"])
        return (slurm if slurm is not None else slurm_states([job_id])).get(job_id, "UNKNOWN")
    if cluster == "local":
        return "RUNNING" if _process_alive(int(record["job_id"])) else "ENDED"
    return "ENDED"


def slurm_states(job_ids: list[str]) -> dict[str, str]:
    """SLURM's state of each job, from ONE sacct call through submitit's watcher (which refreshes at most every
    few seconds, so asking job by job would leave the later ones UNKNOWN). UNKNOWN where sacct cannot tell."""
    try:
        import submitit
    except ImportError:
        return dict.fromkeys(job_ids, "UNKNOWN")
    watcher = submitit.SlurmJob.watcher
    for job_id in job_ids:
        watcher.register_job(job_id)
    watcher.update()
    return {job_id: (watcher.get_state(job_id, mode="cache") or "UNKNOWN").split()[0]  # 'CANCELLED by 12'
            for job_id in job_ids}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return _not_a_zombie(pid)


def _not_a_zombie(pid: int) -> bool:
    """A finished child of a still-running parent lingers as a zombie until reaped; it is not running."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def submitted_units(units: list[Unit]) -> list[JobStatus]:
    """The jobs of the given (incomplete) units that have a job record, with their state asked now."""
    records = [(unit, record) for unit in units if (record := read_job_record(unit)) is not None]
    slurm_ids = [str(record["job_id"]) for _, record in records if record.get("cluster") == "slurm"]
    slurm = slurm_states(slurm_ids) if slurm_ids else {}
    return [JobStatus(unit, record, job_state(record, slurm)) for unit, record in records]
