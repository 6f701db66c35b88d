"""The local launcher: every unit in this process, one after another (today's `owlore-bench run`)."""

from __future__ import annotations

from owlore_bench.experiment import ExperimentConfig, Unit
from owlore_bench.launch.base import Launcher
from owlore_bench.runner import run_units


class LocalLauncher(Launcher):
    """Train and evaluate each unit here. Under torchrun every rank runs this and each unit is data parallel."""

    name = "local"

    def __init__(self, takes_over_ended_jobs: bool = True, progress: bool = True):
        self.takes_over_ended_jobs = takes_over_ended_jobs
        self.progress = progress

    def launch(self, experiment: ExperimentConfig, units: list[Unit]) -> bool:
        if units:
            run_units(experiment, units, progress=self.progress)
        return True
