"""`--parallel fsdp` through the launchers: `run` hands it to every unit, the submitit launcher asks SLURM for
nodes x tasks per node (submitit's `nodes` and `tasks_per_node`), and what a cluster cannot do is one line.
No SLURM cluster is reachable here: stand-in `srun`/`sbatch` let submitit write the job script that is checked."""

from __future__ import annotations

import os
import stat

import pytest
from helpers import tiny_sweep_yaml as experiment

from owlore_bench.cli import main
from owlore_bench.experiment import load_experiment, plan
from owlore_bench.launch.base import SubmitOptions


@pytest.fixture
def slurm_commands(tmp_path, monkeypatch):
    """Stand-in srun and sbatch on PATH (submitit looks for srun before it writes a job script)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("srun", "sbatch"):
        path = folder / name
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_a_unit_job_spans_nodes_times_gpus_processes(tmp_path, tiny_data, slurm_commands):
    from owlore_bench.launch.submitit_jobs import SubmititLauncher

    config = load_experiment(experiment(tmp_path, tiny_data, "nodes"))
    launcher = SubmititLauncher(SubmitOptions(nodes_per_unit=2, gpus_per_unit=4, cpus_per_unit=16), "run x")
    assert launcher.processes_per_unit == 8
    script = launcher._executor(config)._executor._make_submission_file_text("python job.py", "uid")
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --cpus-per-task=4"):
        assert line in script, script


def test_more_than_one_node_off_slurm_is_one_line(tmp_path, tiny_data, capsys):
    config = experiment(tmp_path, tiny_data, "local_nodes")
    code = main(["run", str(config), "--launcher", "submitit", "--cluster", "local", "--nodes-per-unit", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "only SLURM spreads a job over nodes" in err[0], err


def test_the_units_of_a_sharded_submission_are_checked_for_all_their_processes(tmp_path, tiny_data, capsys,
                                                                                slurm_commands):
    """update_in_backward on 2 nodes x 2 GPUs: refused for replicate (averaging after backward), before submitting."""
    config = experiment(tmp_path, tiny_data, "checked", train={"steps": 2, "update_in_backward": True,
                                                                "grad_clip": 0.0, "device": "cpu"})
    code = main(["run", str(config), "--launcher", "submitit", "--nodes-per-unit", "2", "--gpus-per-unit", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "averaged over the 4 ranks after backward" in err[0], err
    assert not (tmp_path / "checked" / "submitit").exists()


def test_run_parallel_fsdp_reaches_every_unit_and_the_plan_estimates_per_rank(tmp_path, tiny_data):
    """What `run CONFIG --parallel fsdp --nproc 2 --dry-run` does: every unit sharded, estimated per rank."""
    from owlore_bench.runner import dry_run_plan

    config = experiment(tmp_path, tiny_data, "planned", methods=[{"name": "full_ft"}], seeds=[0])
    sharded_experiment = load_experiment(config)
    sharded_experiment.train.parallel = "fsdp"
    units = plan(sharded_experiment)
    assert [unit.run.train.parallel for unit in units] == ["fsdp"]
    [sharded] = dry_run_plan(sharded_experiment, units, world_size=2)
    [whole] = dry_run_plan(load_experiment(config), plan(load_experiment(config)), world_size=2)
    # half the weights, gradients and optimizer state, plus the gathered buffers
    assert sharded["estimated_total_bytes"] < whole["estimated_total_bytes"]


@pytest.mark.slow
def test_a_sweep_trains_sharded_on_two_ranks_and_rank_0_evaluates_the_consolidated_model(tmp_path, tiny_data):
    """`run CONFIG --nproc 2 --parallel fsdp`: LoRA on 2 FSDP ranks, consolidated on rank 0, evaluated there."""
    import json

    from conftest import SHARED_DATA, run_cli

    if not (SHARED_DATA / "commonsense" / "ARC-Easy" / "test.json").is_file():
        pytest.skip(f"{SHARED_DATA} is absent: the sweep scores the local ARC-Easy task")
    config = experiment(tmp_path, tiny_data, "sharded", methods=[{"name": "lora", "config": {"r": 4}}], seeds=[0])
    done = run_cli("run", str(config), "--no-plots", "--nproc", "2", "--parallel", "fsdp", timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [unit] = plan(load_experiment(config))
    summary = json.loads((unit.folder / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["world_size"] == 2
    assert json.loads((unit.folder / "config.json").read_text())["train"]["parallel"] == "fsdp"
    assert (unit.folder / "eval.json").is_file() and (unit.folder / "model" / "adapter_config.json").is_file()
