"""The one seam between the shared training loop and a fine-tuning method.

A method is a small object with a validated config and a few hooks that the loop calls at fixed points. The
loop never names a method; everything method-specific lives behind these hooks (see methods/full_ft.py for the
smallest example, the template for new methods).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict

from owlore_bench.errors import UserError


def import_reference(module: str, method_name: str, package: str) -> Any:
    """The reference package's module a zoo method runs on (imported only when the method is built), or one
    UserError line naming the pip install when it is missing."""
    from owlore_bench.no_kernel_downloads import no_kernel_downloads

    try:
        with no_kernel_downloads():  # several zoo packages import bitsandbytes
            return importlib.import_module(module)
    except ImportError:
        raise UserError(f"method '{method_name}' needs the package {package}: pip install 'owlore-bench[zoo]'"
                        ) from None


class MethodConfig(BaseModel):
    """Base of every method's config. Unknown keys are errors; every field is documented once, in its Field."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Method:
    """Base class of all fine-tuning methods. Subclass it in one file under methods/ and decorate it with
    @register_method("name"). The first line of the class docstring is the one-line description
    `owlore-bench methods` shows."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    # Why train.update_in_backward is not offered for this method (None: offered; the optimizer must update a
    # parameter from its own .grad and state alone, as AdamW and GaLoreAdamW do).
    no_update_in_backward: ClassVar[str | None] = None
    # The pip distribution whose code does this method's work (e.g. "galore-torch", "peft"; "torch" when it is
    # plain torch). `owlore-bench methods` prints it with its installed version (importlib.metadata).
    reference_package: ClassVar[str] = "torch"
    # Other pip distributions whose code the method calls (galore_8bit: bitsandbytes' 8-bit states). Every run's
    # summary.json records the versions of these and reference_package (packages(), results.provenance).
    other_packages: ClassVar[tuple[str, ...]] = ()
    # Why this method cannot train data parallel (`--nproc N`), or None where it can; a property where it depends
    # on the config. Checked before any training (owlore_bench/train/distributed.py: check_data_parallel).
    no_data_parallel: ClassVar[str | None] = None
    # Why this method cannot train sharded (`train.parallel: fsdp`, parameters are DTensor shards), or None where
    # it can; a property where it depends on the config. Checked before any training (owlore_bench/train/fsdp.py).
    no_fsdp: ClassVar[str | None] = None
    # Why the method is meant to run with train.update_in_backward (LOMO's fused update), or None. Without it the
    # loop warns (step_in_backward.check_supported) and runs the same update after backward.
    fused_by_design: ClassVar[str | None] = None

    def __init__(self, config: MethodConfig | None = None, seed: int = 0):
        """`seed`: the run's train.seed, for whatever the method draws itself (layer or block order); passed in, not
        read from torch's global state."""
        self.config = config if config is not None else self.Config()
        self.seed = seed

    @classmethod
    def packages(cls) -> tuple[str, ...]:
        """The pip distributions that do this method's work: reference_package, then other_packages."""
        return (cls.reference_package, *cls.other_packages)

    @classmethod
    def description(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """Freeze, wrap or attach what the method needs; returns the model to train."""
        return model

    def build_optimizer(self, model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        """The optimizer over every parameter the method may ever update. Default: AdamW over trainable ones."""
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

    def on_step_start(self, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """Called before every optimizer step (0-based). Returns extra fields for that step's metrics line."""
        return {}

    def for_eval(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model to evaluate after training (e.g. LoRA merged into the base weights)."""
        return model

    def save_trained(self, model: torch.nn.Module, tokenizer: Any, path: Path) -> None:
        """Write what is needed to evaluate the trained model later (weights or adapter, plus tokenizer)."""
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)

    def load_trained(self, path: Path, base_model: str, dtype: str, device: str) -> tuple[torch.nn.Module, Any]:
        """(model, tokenizer) from what save_trained wrote to `path`, as it was trained (for_eval comes after).
        `base_model` is the run's model name, for methods that saved only a part (an adapter)."""
        from owlore_bench.models import load_model

        return load_model(str(path), dtype=dtype, device=device)

    def run_info(self) -> dict[str, Any]:
        """Facts about the finished run for summary.json's `method_info` (e.g. layer sampling probabilities)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Method state a checkpoint must keep to resume exactly (e.g. a sampler's random generator)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what state_dict() returned."""
