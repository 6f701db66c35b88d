"""The launcher seam: submitit jobs (one per unit) give the in-process sweep's table; job records; bad flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import TINY_RECORDS, run_cli
from helpers import deterministic_columns
from helpers import tiny_sweep_yaml as experiment

from owlore_bench.cli import main
from owlore_bench.experiment import load_experiment, plan
from owlore_bench.launch.records import job_state, read_job_record, submitted_units, write_job_record
from owlore_bench.reporting.tables import build_table


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The in-process run of the sweep (the reference every launcher's table must equal)."""
    folder = tmp_path_factory.mktemp("launch")
    data = folder / "tiny.json"
    data.write_text(json.dumps(TINY_RECORDS))
    assert main(["run", str(experiment(folder, data, "here")), "--no-plots"]) == 0
    return folder, data


def test_submitit_jobs_give_the_table_of_the_in_process_run_and_a_later_run_collects(sweep, capsys):
    folder, data = sweep
    config = experiment(folder, data, "debug_jobs")
    capsys.readouterr()
    assert main(["run", str(config), "--no-plots", "--launcher", "submitit", "--cluster", "debug"]) == 0
    shown = capsys.readouterr().out
    assert "submitted 4 unit job(s) on debug" in shown and "collect: owlore-bench run" in shown
    for unit in plan(load_experiment(config)):
        record = read_job_record(unit)
        assert record["cluster"] == "debug" and record["job_id"] in shown and record["stdout"] in shown
        assert f"--only method={unit.label},seed={unit.seed}" in record["command"]
        assert (unit.folder / "summary.json").is_file() and not (unit.folder / "checkpoint").exists()
    here, jobs = build_table([folder / "here"]), build_table([folder / "debug_jobs"])
    assert deterministic_columns(jobs).equals(deterministic_columns(here))
    written = {p: p.stat().st_mtime_ns for p in (folder / "debug_jobs").glob("*/seed-*/summary.json")}
    assert main(["run", str(config), "--no-plots"]) == 0  # collects: trains nothing again
    assert {p: p.stat().st_mtime_ns for p in written} == written


@pytest.mark.slow
def test_submitit_local_executor_runs_each_unit_as_its_own_process(sweep):
    """cluster=local: 4 background processes (one per unit); --wait, then the same table as in-process."""
    folder, data = sweep
    config = experiment(folder, data, "local_jobs")
    done = run_cli("run", str(config), "--no-plots", "--launcher", "submitit", "--cluster", "local",
                   "--gpus-per-unit", "0", "--timeout-min", "10", "--wait", timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    pids = {read_job_record(unit)["job_id"] for unit in plan(load_experiment(config))}
    assert len(pids) == 4 and str(os.getpid()) not in pids  # 4 jobs, none of them this process
    here, jobs = build_table([folder / "here"]), build_table([folder / "local_jobs"])
    assert deterministic_columns(jobs).equals(deterministic_columns(here))


def test_units_held_by_jobs_are_left_alone_and_ended_jobs_are_named(tmp_path, tiny_data, capsys):
    config = experiment(tmp_path, tiny_data, "held", methods=[{"name": "full_ft"}], seeds=[0],
                        train={"steps": 2, "batch_size": 2, "max_length": 32, "progress": False, "device": "cpu"})
    [unit] = plan(load_experiment(config))
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_job_record(unit, {"cluster": "local", "job_id": str(alive.pid), "stdout": "/logs/alive.out"})
        assert main(["run", str(config), "--no-plots"]) == 1
        assert "full_ft seed 0: job" in capsys.readouterr().out and not (unit.folder / "summary.json").exists()
    finally:
        alive.kill()
        alive.wait()
    assert main(["run", str(config), "--no-plots"]) == 1  # ended, but the default run only collects
    out = capsys.readouterr().out
    assert "ended without a result" in out and "(ENDED), log /logs/alive.out" in out
    assert not (unit.folder / "summary.json").exists()
    assert main(["run", str(config), "--no-plots", "--launcher", "local"]) == 0  # asked for: run here
    assert (unit.folder / "summary.json").is_file()
    assert read_job_record(unit)["previous_job_ids"] == []


def test_a_resubmission_keeps_the_earlier_job_ids(tmp_path, tiny_data):
    config = experiment(tmp_path, tiny_data, "records")
    unit = plan(load_experiment(config))[0]
    write_job_record(unit, {"cluster": "slurm", "job_id": "100_0"})
    write_job_record(unit, {"cluster": "slurm", "job_id": "200_0"})
    assert read_job_record(unit) == {"cluster": "slurm", "job_id": "200_0", "previous_job_ids": ["100_0"]}
    assert job_state({"cluster": "debug", "job_id": "DEBUG_1"}) == "ENDED"


def test_slurm_states_come_from_one_sacct_call(tmp_path, tiny_data, monkeypatch):
    """A stand-in sacct on PATH answers as SLURM's does (--parsable2); it logs every call it gets."""
    calls = tmp_path / "sacct_calls"
    sacct = tmp_path / "bin" / "sacct"
    sacct.parent.mkdir()
    sacct.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n"
                     "printf 'JobID|State|NodeList\\n9001_0|RUNNING|node1\\n9001_1|CANCELLED by 7|node2\\n"
                     "9001_2|PENDING|None assigned\\n'\n")
    sacct.chmod(0o755)
    monkeypatch.setenv("PATH", f"{sacct.parent}:{os.environ['PATH']}")
    units = plan(load_experiment(experiment(tmp_path, tiny_data, "slurm_states")))
    for index, unit in enumerate(units[:3]):
        write_job_record(unit, {"cluster": "slurm", "job_id": f"9001_{index}", "submitit_folder": str(tmp_path)})
    statuses = submitted_units(units)
    assert [(s.state, s.in_flight) for s in statuses] == [("RUNNING", True), ("CANCELLED", False), ("PENDING", True)]
    assert len(calls.read_text().splitlines()) == 1  # one sacct call for the whole array


@pytest.mark.parametrize("flags,expected", [
    (["--partition", "gpu"], "--partition: only used with --launcher submitit"),
    (["--launcher", "submitit", "--nproc", "2"], "drop --nproc"),
    (["--launcher", "submitit", "--cluster", "local", "--gpus-per-unit", "-1"], "--gpus-per-unit: -1 is below 0"),
    (["--launcher", "submitit", "--cluster", "local", "--timeout-min", "0"], "--timeout-min: 0 is below 1"),
    (["--launcher", "submitit", "--cluster", "local", "--slurm-option", "qos"], "expected KEY=VALUE"),
    (["--launcher", "submitit", "--cluster", "moon"], "--cluster: unknown 'moon'"),
])
def test_bad_launcher_flags_are_one_line_and_exit_2(tmp_path, tiny_data, capsys, flags, expected):
    config = experiment(tmp_path, tiny_data, "bad")
    code = main(["run", str(config), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "bad").exists()


def test_submitting_to_slurm_without_sbatch_or_without_submitit_says_what_to_do(tmp_path, tiny_data, capsys,
                                                                                monkeypatch):
    config = experiment(tmp_path, tiny_data, "nowhere")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    assert main(["run", str(config), "--launcher", "submitit"]) == 2
    assert "sbatch is not on PATH" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if not installed
    assert main(["run", str(config), "--launcher", "submitit"]) == 2
    assert "pip install 'owlore-bench[cluster]'" in capsys.readouterr().err
