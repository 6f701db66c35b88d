"""Run configs: pydantic models with documented defaults, YAML/JSON in and out, one clear line per bad field.

Defaults live here and nowhere else. A run's resolved config (config.json) rebuilds the run exactly.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from owlore_bench.errors import UserError, validation_error_line
from owlore_bench.paths import BIGBENCH_ENV


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrainConfig(StrictModel):
    """Hyperparameters of the shared training loop (the same for every method)."""

    steps: int | None = Field(None, gt=0, description="optimizer steps to run (40 when neither steps nor epochs is "
                                                     "given; not with epochs)")
    epochs: float | None = Field(None, gt=0, description="passes over the training set instead of steps: steps = "
                                                         "ceil(epochs x (examples or packed blocks) // global batch), "
                                                         "global batch = batch_size x grad_accum x processes")
    batch_size: int = Field(8, gt=0, description="sequences per micro-batch")
    grad_accum: int = Field(1, gt=0, description="micro-batches accumulated per optimizer step")
    max_length: int = Field(128, gt=1, description="tokens per sequence after truncation")
    lr: float = Field(1e-4, gt=0, description="peak learning rate")
    weight_decay: float = Field(0.0, ge=0, description="decoupled weight decay of the default AdamW")
    schedule: Literal["constant", "linear", "cosine"] = Field("linear", description="LR decay to 0 after warmup")
    warmup_steps: int = Field(0, ge=0, description="steps of linear LR warmup from 0")
    grad_clip: float = Field(1.0, ge=0, description="max global gradient norm; 0 turns clipping off")
    dtype: Literal["auto", "bf16", "fp32"] = Field("auto", description="weight dtype; auto = bf16 on CUDA, fp32 on CPU")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda when available, else cpu")
    grad_checkpointing: bool = Field(False, description="recompute activations in backward to save memory")
    update_in_backward: bool = Field(False, description="update each parameter inside backward as soon as its "
                                                        "gradient is complete, then free it (saves gradient memory; "
                                                        "needs grad_accum 1 and grad_clip 0)")
    optimizer_state_bits: Literal[32, 8] = Field(32, description="bits per element of the AdamW moments; 8 = "
                                                               "bitsandbytes' blockwise 8-bit AdamW (needs the "
                                                               "method's optimizer to be torch's AdamW or Adam)")
    offload_activations: bool = Field(False, description="keep the tensors saved for backward in host memory "
                                                         "(torch.autograd.graph.save_on_cpu), parameters excepted; "
                                                         "saves device memory on CUDA only, costs copies")
    time_phases: bool = Field(False, description="also record forward_s, backward_s and update_s per step in "
                                                 "metrics.jsonl (on CUDA this synchronizes at each phase, which "
                                                 "costs a little speed)")
    parallel: Literal["replicate", "fsdp"] = Field(
        "replicate", description="how more than one process shares the work: replicate = every rank holds the "
                                 "whole model, gradients averaged; fsdp = PyTorch FSDP2, parameters, gradients and "
                                 "optimizer state sharded over the ranks (docs/scale-out.md)")
    reshard_after_forward: bool = Field(True, description="fsdp: free each decoder layer's all-gathered weights after "
                                                          "its forward and gather them again in backward (False: "
                                                          "keep them until backward, more memory, less traffic)")
    seed: int = Field(0, description="seeds torch, data order and layer sampling")
    checkpoint_every: int = Field(0, ge=0, description="save a resumable checkpoint every N steps; 0 = never")
    memory_profile: bool = Field(True, description="record the per-step memory ledger (bytes) in metrics.jsonl")
    cuda_memory_snapshot: bool = Field(False, description="CUDA only: write the allocator timeline of the first "
                                                          "steps to <out>/cuda_memory_snapshot.pickle")
    progress: bool = Field(True, description="show a progress bar")
    report_to: list[Literal["tensorboard", "wandb", "mlflow"]] = Field(
        default_factory=list, description="also log every metrics.jsonl row to these trackers (the HF Trainer's "
                                          "names; 'none' = none); each needs its own package installed")

    @model_validator(mode="before")
    @classmethod
    def _default_steps(cls, values: Any) -> Any:
        """Neither steps nor epochs: the default 40 steps."""
        if isinstance(values, dict) and values.get("steps") is None and values.get("epochs") is None:
            values = {**values, "steps": 40}
        return values

    @field_validator("epochs")
    @classmethod
    def _not_with_steps(cls, epochs: float | None, info: ValidationInfo) -> float | None:
        if epochs is not None and info.data.get("steps") is not None:
            raise PydanticCustomError("steps_and_epochs", "give train.steps or train.epochs, not both (epochs "
                                                          "derives the steps from the data); drop one")
        return epochs

    @field_validator("report_to", mode="before")
    @classmethod
    def _report_to_list(cls, value: Any) -> Any:
        """The HF Trainer accepts one name or 'none' as well as a list."""
        if value in (None, "none", ["none"]):
            return []
        return [value] if isinstance(value, str) else value


class DataConfig(StrictModel):
    """Instruction data in the LLM-Adapters / Alpaca format: a JSON array of {instruction, input, output}."""

    path: str | list[str] = Field(description="JSON/JSONL file(s) of {instruction, input, output} records or "
                                              "LMFlow JSON ({type: text_only|text2text, instances}); "
                                              "'commonsense:default' (or 'commonsense:boolq,arc_easy') the "
                                              "embedded commonsense train sets; 'data:<rel>' a file under "
                                              "$OWLORE_BENCH_DATA; 'bigbench:default' the train split of your "
                                              "own BIG-bench tasks (data.bigbench); "
                                              "'hf://<repo>/<file>@<revision>' a hub dataset file; "
                                              "'hf-dataset://<repo>[:<split>]' a hub dataset")
    bigbench: str | None = Field(None, description="your BIG-bench checkout (the folder holding "
                                                   "bigbench/benchmark_tasks/) or bigbench-1.0.0.tar.gz, for "
                                                   "'bigbench:' data and the bb_* tasks; sets $OWLORE_BENCH_BIGBENCH "
                                                   "for the run (default: that variable)")
    template: Literal["alpaca", "plain"] = Field(
        "alpaca", description="alpaca: the LLM-Adapters prompt; plain: instruction (+ newline + input) then output"
    )
    limit: int | None = Field(None, gt=0, description="use only the first N records of each file")
    packing: bool = Field(False, description="LMFlow's grouping (the official runs): tokenize every record, "
                                             "concatenate group_texts_batch_size records at a time and cut them "
                                             "into block_size-token blocks, dropping each group's remainder")
    block_size: int | None = Field(None, gt=1, validate_default=True,
                                   description="tokens per packed block (needs packing; the official runs use 512; "
                                               "at most the model's context)")
    group_texts_batch_size: int = Field(1000, gt=0, description="records concatenated before cutting into blocks "
                                                                "(LMFlow's group_texts_batch_size)")

    @field_validator("bigbench")
    @classmethod
    def _bigbench_source_exists(cls, value: str | None) -> str | None:
        """A named BIG-bench source must exist; it then becomes $OWLORE_BENCH_BIGBENCH, which the lm-eval tasks
        (bb_*) and worker processes read too."""
        if value is not None:
            if not Path(value).expanduser().exists():
                raise PydanticCustomError("bigbench", "{value} does not exist; give a BIG-bench checkout or "
                                                      "bigbench-1.0.0.tar.gz", {"value": value})
            os.environ[BIGBENCH_ENV] = str(Path(value).expanduser().resolve())
        return value

    @field_validator("block_size")
    @classmethod
    def _block_size_goes_with_packing(cls, block_size: int | None, info: ValidationInfo) -> int | None:
        packing = info.data.get("packing")
        if packing and block_size is None:
            raise PydanticCustomError("block_size", "required with data.packing: true (the official runs use 512)")
        if packing is False and block_size is not None:
            raise PydanticCustomError("block_size", "only used with data.packing: true; set packing: true or drop "
                                                    "it (unpacked runs truncate to train.max_length)")
        return block_size


class RunConfig(StrictModel):
    """One training run: a method on a model and data, with the loop's hyperparameters."""

    method: str = Field(description="registered method name (see `owlore-bench methods`)")
    method_config: dict[str, Any] = Field(default_factory=dict, description="overrides of the method's config")
    model: str = Field("smollm2-135m", description="HF id or path, 'smollm2-135m' (embedded) or 'tiny-llama'")
    data: DataConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    save_model: bool = Field(True, description="write the trained weights/adapter to <out>/model for later eval")

    @model_validator(mode="after")
    def _method_config_is_valid(self) -> RunConfig:
        from owlore_bench.registry import build_method

        self.__dict__["method_config"] = build_method(self.method, self.method_config).config.model_dump()
        return self


def parse(model_cls: type[StrictModel], values: dict[str, Any], prefix: str = "") -> Any:
    """Validate `values` into `model_cls`, turning a pydantic error into one UserError line."""
    try:
        return model_cls(**values)
    except ValidationError as error:
        raise UserError(validation_error_line(error, prefix, model_cls)) from None


def _yaml_location(error: yaml.YAMLError) -> str:
    """' at line L, column C: <problem> (<context> at line ..)' from PyYAML's marks (0-based there, 1-based here)."""
    def at(mark) -> str:
        return f"line {mark.line + 1}, column {mark.column + 1}"

    problem, context = getattr(error, "problem_mark", None), getattr(error, "context_mark", None)
    if problem is None:
        return f" ({str(error).splitlines()[0]})"
    text = f" at {at(problem)}: {error.problem}"
    if context is not None and (context.line, context.column) != (problem.line, problem.column):
        text += f" ({error.context} at {at(context)})"
    return text


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML (or JSON) mapping from a file, or one clear error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML{_yaml_location(error)}") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: expected a mapping of config keys at the top level")
    return values


def apply_overrides(values: dict[str, Any], assignments: list[str], known: dict[str, set[str]]) -> dict[str, Any]:
    """Apply `--set key=value` assignments (value parsed as YAML) to a nested config dict.

    `known` maps a section name ('train', 'method_config', ...) to its field names; a bare key is looked up in
    every section and must be unambiguous.

    Written here rather than with OmegaConf's dotlist merge: OmegaConf would accept any key (a typo becomes a new
    field) and parse values by its own grammar, where these checks name the known keys and parse values as YAML,
    exactly as the config files are parsed. The experiment YAML's `include:` merge (experiment.read_with_includes)
    is a dozen lines for the same reason: one error type, the file named.
    """
    values = copy.deepcopy(values)
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key:
            raise UserError(f"--set {assignment!r}: expected key=value, e.g. --set train.lr=3e-4")
        section, _, field = key.rpartition(".")
        if section == "method":
            section = "method_config"
        candidates = [section] if section else [name for name, fields in known.items() if key in fields]
        if not candidates or candidates[0] not in known or field not in known[candidates[0]]:
            allowed = sorted(f"{name}.{f}".replace("method_config.", "method.")
                             for name, fs in known.items() for f in fs)
            raise UserError(f"--set: unknown key '{key}'. Known keys: {', '.join(allowed)}")
        if len(candidates) > 1:
            raise UserError(f"--set: key '{key}' is ambiguous; write one of "
                            f"{', '.join(c + '.' + key for c in candidates)}")
        values.setdefault(candidates[0], {})[field] = yaml.safe_load(raw)
    return values


def dump_json(model: BaseModel) -> dict[str, Any]:
    return json.loads(model.model_dump_json())
