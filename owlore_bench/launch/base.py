"""The Launcher seam: something that runs (or starts) the incomplete units of an experiment."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from owlore_bench.experiment import ExperimentConfig, Unit


class Launcher(ABC):
    """Runs or starts units. The run command hands it every unit that is neither complete nor held by a cluster
    job still in flight; it gets them all at once because a cluster launcher submits them as one job array."""

    name: ClassVar[str]
    # Whether the launcher may take over a unit whose earlier cluster job ended without a result. The default
    # `owlore-bench run` (no --launcher) only collects such units: on a cluster's login node it must not start
    # a 7B training in the foreground.
    takes_over_ended_jobs: bool = True
    # Processes that train each unit when the launcher decides it (a cluster job's GPUs); None: the processes of
    # the command itself (1, or torchrun's N).
    processes_per_unit: int | None = None

    @abstractmethod
    def launch(self, experiment: ExperimentConfig, units: list[Unit]) -> bool:
        """Run or start `units`. Returns True when they have finished (results on disk, ready for the tables),
        False when they run elsewhere and a later `owlore-bench run` collects them."""


@dataclass
class SubmitOptions:
    """What each unit's job asks the cluster for: the run command's submitit flags. Defaults live here only."""

    cluster: str = "slurm"  # slurm; local: background processes on this machine; debug: in this process
    partition: str | None = None  # None: the cluster's default partition
    gpus_per_unit: int = 1  # GPUs (= processes) per node of a unit job; 0: a CPU-only job with one process
    nodes_per_unit: int = 1  # nodes per unit job (SLURM's --nodes): nodes x gpus_per_unit processes train the unit
    cpus_per_unit: int = 8  # CPU cores per unit job, split over its processes
    mem_gb: float | None = None  # memory per unit job (GB); None: the partition's default
    timeout_min: int = 240  # wall-clock limit of one job (minutes); a timed-out job requeues and resumes
    array_parallelism: int = 256  # at most this many unit jobs of the array run at once
    slurm_options: dict[str, str] = field(default_factory=dict)  # --slurm-option KEY=VALUE: any sbatch option
    wait: bool = False  # block until every job ended, then tabulate (the debug cluster always waits)
