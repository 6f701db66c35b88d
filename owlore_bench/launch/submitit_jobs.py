"""The submitit launcher: one cluster job per unit (method x seed), as one SLURM job array.

Each job runs what `owlore-bench run CONFIG --only method=M,seed=S` runs (train, evaluate, write the unit's
files), without the tables: a later `owlore-bench run CONFIG` (or `owlore-bench report OUT`) collects the
finished units. The job callable is a submitit Checkpointable: on preemption or timeout SLURM signals the job,
submitit requeues it with the same arguments, and the rerun resumes from the unit's last checkpoint
(train.checkpoint_every steps; with 0 it restarts the unit from step 0).

With --gpus-per-unit G > 1 a job has G tasks on each of its --nodes-per-unit N nodes (submitit's `nodes` and
`tasks_per_node`; SLURM starts the N x G processes, one GPU each); every task exports the torch.distributed
variables from submitit's job environment (rank, local rank, the first node as master) and the unit trains on
all of them, exactly as under `--nproc G` on one node: replicated, or sharded with `--parallel fsdp`.
"""

from __future__ import annotations

import shlex
import shutil
import time
from typing import Any

import submitit

from owlore_bench.errors import UserError
from owlore_bench.experiment import ExperimentConfig, Unit, plan
from owlore_bench.launch.base import Launcher, SubmitOptions
from owlore_bench.launch.records import write_job_record
from owlore_bench.runner import run_units
from owlore_bench.train import distributed

CLUSTERS = ("slurm", "local", "debug")
SUBMITIT_FOLDER = "submitit"  # <out>/submitit/: submitit's pickles and the jobs' logs


class UnitJob(submitit.helpers.Checkpointable):
    """One unit inside its cluster job. Checkpointable's default `checkpoint` resubmits this same call, and
    the loop resumes from the checkpoint the interrupted attempt left in the unit's folder."""

    def __init__(self, experiment: ExperimentConfig):
        self.experiment = experiment  # pickled with the job: a config file edited after submission changes nothing

    def __call__(self, label: str, seed: int) -> dict[str, Any]:
        if job_processes() > 1:  # --gpus-per-unit G > 1: G processes, one per GPU
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        return run_selected_unit(self.experiment, label, seed)


def job_processes() -> int:
    """The number of processes (tasks) of the running job; 1 for a debug job, which runs in the submitter."""
    try:
        return submitit.JobEnvironment().num_tasks
    except RuntimeError:  # no job environment: the debug executor calls the job in the submitting process
        return 1


def run_selected_unit(experiment: ExperimentConfig, label: str, seed: int) -> dict[str, Any]:
    """Train and evaluate the unit `--only method=<label>,seed=<seed>` selects; returns its summary."""
    units = plan(experiment, {"method": label, "seed": str(seed)})
    distributed.init_from_env(experiment.train.device)
    try:
        return run_units(experiment, units, progress=False)[0]
    finally:
        distributed.shutdown()


class SubmititLauncher(Launcher):
    """Submit each unit as a job of one submitit job array; write its job.json; optionally wait for them all."""

    name = "submitit"

    def __init__(self, options: SubmitOptions, command: str):
        """`command`: the user's `owlore-bench run CONFIG [--out OUT]`, quoted in the job records and messages."""
        self.options = options
        self.command = command
        self.processes_per_unit = options.nodes_per_unit * max(1, options.gpus_per_unit)

    def launch(self, experiment: ExperimentConfig, units: list[Unit]) -> bool:
        if not units:
            print("submitit: nothing to submit (every unit is complete or held by a job still in flight)")
            return True
        warn_without_checkpoints(units)
        executor = self._executor(experiment)
        jobs = executor.map_array(UnitJob(experiment), [unit.label for unit in units], [unit.seed for unit in units])
        for unit, job in zip(units, jobs):
            write_job_record(unit, self._record(unit, job, str(executor.folder)))
        self._print_submitted(units, jobs)
        if not (self.options.wait or self.options.cluster == "debug"):
            return False
        for job in jobs:
            job.exception()  # waits; a debug job runs here. A failed unit is recorded in its summary.json
        return True

    def _executor(self, experiment: ExperimentConfig) -> Any:
        o = self.options
        executor = submitit.AutoExecutor(folder=(experiment.out_dir / SUBMITIT_FOLDER).resolve(), cluster=o.cluster)
        processes = max(1, o.gpus_per_unit)  # per node: one task per GPU
        parameters: dict[str, Any] = dict(
            name=f"owlore-{experiment.name}", timeout_min=o.timeout_min, nodes=o.nodes_per_unit,
            tasks_per_node=processes,
            gpus_per_node=o.gpus_per_unit, cpus_per_task=max(1, o.cpus_per_unit // processes),
            slurm_array_parallelism=o.array_parallelism)
        if o.mem_gb is not None:
            parameters["mem_gb"] = o.mem_gb
        if o.partition:
            parameters["slurm_partition"] = o.partition
        if o.slurm_options:
            parameters["slurm_additional_parameters"] = dict(o.slurm_options)
        executor.update_parameters(**parameters)
        return executor

    def _record(self, unit: Unit, job: Any, folder: str) -> dict[str, Any]:
        o = self.options
        return {"launcher": self.name, "cluster": o.cluster, "job_id": str(job.job_id),
                "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr), "submitit_folder": folder,
                "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": f"{self.command} --only {shlex.quote(f'method={unit.label},seed={unit.seed}')}",
                "resources": {"partition": o.partition, "gpus": o.gpus_per_unit, "nodes": o.nodes_per_unit,
                              "cpus": o.cpus_per_unit,
                              "mem_gb": o.mem_gb, "timeout_min": o.timeout_min, "slurm_options": o.slurm_options}}

    def _print_submitted(self, units: list[Unit], jobs: list[Any]) -> None:
        print(f"submitted {len(jobs)} unit job(s) on {self.options.cluster}:")
        for unit, job in zip(units, jobs):
            print(f"  {unit.label:<20} seed {unit.seed:<3} job {job.job_id:<14} log {job.paths.stdout}")
        if self.options.cluster == "slurm":
            array = str(jobs[0].job_id).split("_")[0]
            print(f"watch:   squeue -j {array}   |   sacct -j {array} --format JobID,State,Elapsed,NodeList")
        print(f"collect: {self.command}   (each unit's job.json names its job and log)")


def warn_without_checkpoints(units: list[Unit]) -> None:
    """A job that is preempted or times out resumes from its last checkpoint; without any it starts over."""
    bare = sorted({unit.label for unit in units if unit.run is not None and not unit.run.train.checkpoint_every})
    if bare:
        print(f"note: train.checkpoint_every is 0 for {', '.join(bare)}: a preempted or timed-out job restarts "
              f"that unit from step 0; set train.checkpoint_every (e.g. 50) to resume where it stopped")


def check_cluster_reachable(cluster: str) -> None:
    if cluster not in CLUSTERS:
        raise UserError(f"--cluster: unknown '{cluster}'; use one of {', '.join(CLUSTERS)}")
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise UserError("--launcher submitit: SLURM's sbatch is not on PATH here; submit from a SLURM login node, "
                        "or pass --cluster local to run each unit as a background job on this machine")
