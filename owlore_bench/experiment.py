"""Experiment configs: one model, one training set, several methods × seeds, one evaluation — and its plan.

An experiment expands into independent units, one per (label, seed), each a full RunConfig, written to
<out>/<label>/seed-<s>/. The base model (no fine-tuning) is one more unit, label `base`, seed 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PositiveInt, StrictInt, field_validator, model_validator

from owlore_bench.config import DataConfig, RunConfig, StrictModel, TrainConfig, parse, read_yaml
from owlore_bench.errors import UserError
from owlore_bench.mtbench.pipeline import MTBenchConfig

BASE_LABEL = "base"
DEFAULT_OUTPUT_ROOT = "runs"  # the user's; committed reference results live under results/ and are never resumed
# Fields that say where results go or what to compare with, not what is computed: an output folder written with
# other values of these still holds the same experiment.
# Changing the MT-Bench judge (or asking for more questions) keeps every result: answers are reused and only
# what is missing is generated or judged, each judge in its own files.
# mt_bench.mode / baseline: pair judgments go to <out>/mt_bench_pairwise/, beside the units' single gradings.
# eval.forgetting: every forgetting.json names its text and sha256, so a folder measured on another text is still
# read correctly (completed units keep the file they have).
LOCATION_FIELDS = ("out", "reference", "mt_bench.judge", "mt_bench.judge_max_tokens", "mt_bench.limit",
                   "eval.forgetting", "mt_bench.reference", "mt_bench.judge_repeats", "mt_bench.question_begin",
                   "mt_bench.question_end", "mt_bench.mode", "mt_bench.baseline")


class MethodEntry(StrictModel):
    """One row of the comparison: a registered method with its config and training overrides."""

    name: str = Field(description="row label and folder name, e.g. 'owlore' or 'owlore_uniform'")
    method: str | None = Field(None, description="registered method; defaults to `name`")
    config: dict[str, Any] = Field(default_factory=dict, description="method config overrides")
    train: dict[str, Any] = Field(default_factory=dict, description="overrides of the experiment's train settings")

    @field_validator("name")
    @classmethod
    def _folder_safe(cls, value: str) -> str:
        if not value or value == BASE_LABEL or not all(c.isalnum() or c in "-_." for c in value):
            raise ValueError(f"must be a folder-safe name (letters, digits, - _ .) other than '{BASE_LABEL}'")
        return value


class EvalConfig(StrictModel):
    """How every trained model (and the base model) is scored with lm-eval."""

    tasks: list[str] = Field(default_factory=list, description="lm-eval task or group names (this project's "
                                                               "tasks/ or the hub's); may be empty with mt_bench")
    num_fewshot: int | None = Field(None, ge=0, description="shots; None = each task's own default")
    limit: int | None = Field(None, gt=0, description="score at most N examples per task (the first N)")
    task_limits: dict[str, PositiveInt] = Field(default_factory=dict, description="per-task overrides of limit, "
                                                "e.g. {boolq_labels: 400}: a task with a small effect can get "
                                                "more questions without paying for them on every task")
    batch_size: int = Field(16, gt=0, description="sequences per lm-eval forward pass")
    metric: Literal["acc", "acc_norm"] = Field("acc", description="metric the report shows per task "
                                               "(acc_norm only where the task reports it)")
    forgetting: str | None = Field("builtin", description="held-out general text whose per-token cross-entropy "
                                   "every run reports against the base model (forgetting.json): 'builtin' (a "
                                   "public-domain English slice shipped in the package), a UTF-8 text file "
                                   "('data:<rel>' under $OWLORE_BENCH_DATA), or null to skip")

    @field_validator("forgetting", mode="before")
    @classmethod
    def _forgetting_text_exists(cls, value: Any) -> Any:
        """`off` / false / null switch it off; a text file is checked now, not after the first run has trained."""
        if value is False or value is None or value == "off":
            return None
        if isinstance(value, str):
            from owlore_bench.datasets.general_text import load_general_text

            try:
                load_general_text(value)
            except UserError as error:
                raise ValueError(str(error).removeprefix("eval.forgetting: ")) from None
        return value


class ExperimentConfig(StrictModel):
    """A whole comparison. Every method entry shares model, data, train settings, seeds and evaluation."""

    name: str = Field(description="experiment name (the default output folder is runs/<name>)")
    model: str = Field("smollm2-135m", description="HF id or path, 'smollm2-135m' or 'tiny-llama'")
    architecture: str | None = Field(None, description="built-in architecture for --dry-run memory estimates "
                                                       "when the model is not local (e.g. llama2-7b)")
    data: DataConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    methods: list[MethodEntry] = Field(min_length=1, description="the rows to compare")
    seeds: list[StrictInt] = Field(default_factory=lambda: [0], min_length=1, description="integer seeds")
    eval: EvalConfig = Field(default_factory=EvalConfig)
    mt_bench: MTBenchConfig | None = Field(None, description="also answer and judge MT-Bench with every model "
                                                             "(judge, limit, max_new_tokens...); None = skip")
    evaluate_base: bool = Field(True, description="also score the model without fine-tuning (row 'base')")
    save_model: bool = Field(False, description="keep each run's trained weights/adapter under model/")
    out: str | None = Field(None, description="output folder; default runs/<name> (relative to the working "
                                              "directory; `owlore-bench run --out` overrides it)")
    reference: str | None = Field(None, description="committed reference results of this config (a folder written "
                                                    "by `owlore-bench run`, relative to the config file): printed "
                                                    "next to the new table with each cell's difference; never "
                                                    "written to or resumed from")

    @field_validator("methods")
    @classmethod
    def _unique_names(cls, entries: list[MethodEntry]) -> list[MethodEntry]:
        names = [entry.name for entry in entries]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"method names must be unique; repeated: {', '.join(duplicates)}")
        return entries

    @model_validator(mode="after")
    def _evaluates_something(self) -> ExperimentConfig:
        if not self.eval.tasks and self.mt_bench is None:
            raise ValueError("nothing to evaluate: name eval.tasks (lm-eval tasks) and/or add an mt_bench section")
        return self

    @property
    def out_dir(self) -> Path:
        return Path(self.out or Path(DEFAULT_OUTPUT_ROOT) / self.name)


@dataclass(frozen=True)
class Unit:
    """One independent run of the sweep: train (unless base) + evaluate into `folder`."""

    label: str
    seed: int
    run: RunConfig | None  # None for the base model
    folder: Path


def load_experiment(path: str | Path, out: str | None = None) -> ExperimentConfig:
    """The experiment of a YAML file; `out` (the --out flag) replaces the file's `out`. A relative `reference` is
    resolved against the config file's folder, so it works from any working directory."""
    path = Path(path)
    values = read_with_includes(path)
    if out is not None:
        values["out"] = out
    if isinstance(values.get("reference"), str) and not Path(values["reference"]).is_absolute():
        values["reference"] = str((path.parent / values["reference"]).resolve())
    experiment = parse(ExperimentConfig, values)
    check_out_dir_is_usable(experiment)
    return experiment


def check_out_dir_is_usable(experiment: ExperimentConfig) -> None:
    """One line, before anything runs, for an output folder that is a file or the committed reference itself."""
    out_dir = experiment.out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"out: {out_dir} is a file, not a folder; pass a folder path, "
                        f"e.g. --out runs/{experiment.name}")
    if experiment.reference and out_dir.resolve() == Path(experiment.reference).resolve():
        raise UserError(f"out: {out_dir} is this config's committed reference ({experiment.reference}); runs never "
                        f"write to or resume from it; pass another folder, e.g. --out runs/{experiment.name}")


def read_with_includes(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML mapping; `include: other.yaml` (relative to this file) is read first and this file's keys are
    merged over it (nested mappings merge; lists and values replace), so a variant config is a few lines."""
    if path.resolve() in seen:
        raise UserError(f"{path}: include cycle ({' -> '.join(str(p) for p in seen)})")
    values = read_yaml(path)
    parent = values.pop("include", None)
    if parent is None:
        return values
    return _merge(read_with_includes(path.parent / parent, (*seen, path.resolve())), values)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def run_config(experiment: ExperimentConfig, entry: MethodEntry, seed: int) -> RunConfig:
    """The full RunConfig of one (method entry, seed); validates the method name and its config."""
    train = {**experiment.train.model_dump(), **entry.train, "seed": seed}
    values = {"method": entry.method or entry.name, "method_config": entry.config, "model": experiment.model,
              "data": experiment.data.model_dump(), "train": train, "save_model": experiment.save_model}
    return parse(RunConfig, values, prefix=f"methods[{entry.name}]")


def plan(experiment: ExperimentConfig, only: dict[str, str] | None = None) -> list[Unit]:
    """Every unit of the experiment (validated), filtered by `only` ({'method': label, 'seed': '1'})."""
    units = []
    if experiment.evaluate_base:
        units.append(Unit(BASE_LABEL, 0, None, experiment.out_dir / BASE_LABEL / "seed-0"))
    for entry in experiment.methods:
        for seed in experiment.seeds:
            units.append(Unit(entry.name, seed, run_config(experiment, entry, seed),
                              experiment.out_dir / entry.name / f"seed-{seed}"))
    if not only:
        return units
    chosen = [u for u in units
              if only.get("method", u.label) == u.label and only.get("seed", str(u.seed)) == str(u.seed)]
    if not chosen:
        labels = sorted({u.label for u in units})
        raise UserError(f"--only {only}: matches no run; methods are {', '.join(labels)}, seeds {experiment.seeds}")
    return chosen


def parse_only(text: str | None) -> dict[str, str]:
    """`method=owlore,seed=1` → {'method': 'owlore', 'seed': '1'}."""
    if not text:
        return {}
    selection = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key not in ("method", "seed") or not value:
            raise UserError(f"--only {text!r}: expected method=NAME and/or seed=N, e.g. --only method=owlore,seed=1")
        selection[key] = value
    return selection
