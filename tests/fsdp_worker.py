"""Worker of tests/test_fsdp.py: tiny-llama runs sharded with FSDP2 on 2 gloo ranks, started ONCE by torchrun.

    OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node 2 tests/fsdp_worker.py OUT_DIR METHODS [-- CLI ARGS]

METHODS: comma-separated names of suites() below (a method, a planted bug, or `resume`). Each run trains in fp64
(with a cross entropy kept in fp64: transformers' own upcasts the logits to fp32; PiSSA in fp32) at global batch
4, 2 rows a rank, and records: the loss per step, the consolidated final weights (rank 0), and for every rank
and step the active layers, which decoder layers hold optimizer state in this rank's shards, and which layers
moved while they were frozen. Rank 0 saves OUT_DIR/results.pt. With CLI ARGS, every rank then runs
`owlore-bench CLI ARGS` in-process (as `torchrun -m owlore_bench.cli` does) and the worker exits with its code.

The test imports this file to train the 1-process references (4 rows, no sharding) in its own process.

Planted bugs (each a run of its own, so the test can show its check fails on it):
- `galore_local_projector`: GaLore's projector computed from this rank's rows of the gradient (an SVD of the
  local shard) instead of the whole gradient, for the matrices projected on the right.
- `lisa_rank1_keeps_state`: on rank 1 the layers that leave the active set keep their optimizer state.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from owlore_bench.config import TrainConfig
from owlore_bench.models import load_model
from owlore_bench.registry import build_method
from owlore_bench.train import distributed
from owlore_bench.train.data import TrainingData
from owlore_bench.train.fsdp import is_sharded, shard_model
from owlore_bench.train.loop import seed_everything, train

sys.path.insert(0, str(Path(__file__).parent))
import ddp_worker  # noqa: E402  (the data and the outlier ratios of the replicate tests)

GLOBAL_BATCH = 4
STEPS = 4
LR = 1e-3


def suites(ratios_file: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """run name -> (method, method config): switching layers every 2 steps, projectors refreshed every 2."""
    return {
        "full_ft": ("full_ft", {}),
        "lora": ("lora", {"r": 4, "dropout": 0.0}),
        "galore": ("galore", {"rank": 4, "update_proj_gap": 2}),
        "lisa": ("lisa", {"gamma": 1, "interval": 2}),
        "owlore": ("owlore", {"gamma": 2, "interval": 2, "rank": 4, "update_proj_gap": 2,
                              "outlier_ratios_file": ratios_file}),
        "galore_local_projector": ("galore", {"rank": 4, "update_proj_gap": 2}),
        "lisa_rank1_keeps_state": ("lisa", {"gamma": 1, "interval": 2}),
        # slow suite (tests/test_fsdp_zoo.py)
        "dora": ("dora", {"r": 4, "dropout": 0.0}),
        "rslora": ("rslora", {"r": 4, "dropout": 0.0}),
        "lora_plus": ("lora_plus", {"r": 4, "dropout": 0.0}),
        "fira": ("fira", {"rank": 4, "update_proj_gap": 2}),
        "owlore_fullrank": ("owlore_fullrank", {"gamma": 2, "interval": 2, "outlier_ratios_file": ratios_file}),
        "badam": ("badam", {"switch_every": 2}),
        "adam_mini": ("adam_mini", {}),
        "lomo": ("lomo", {}),
        "full_ft_in_backward": ("full_ft", {}),
        "lisa_kept_gathered": ("lisa", {"gamma": 1, "interval": 2}),  # train.reshard_after_forward: false
        "pissa": ("pissa", {"r": 4}),  # fp32: peft's PiSSA initialisation refuses fp64
    }


FP32_RUNS = {"pissa"}


def causal_lm_loss_fp64(logits, labels, vocab_size: int, ignore_index: int = -100, **kwargs) -> torch.Tensor:
    """transformers' ForCausalLMLoss without its upcast to fp32 (which would cap an fp64 run at fp32 precision)."""
    shifted = nn.functional.pad(labels, (0, 1), value=ignore_index)[..., 1:].reshape(-1)
    return nn.functional.cross_entropy(logits.reshape(-1, vocab_size), shifted, ignore_index=ignore_index)


def loop_settings(run: str) -> dict[str, Any]:
    if run == "full_ft_in_backward":
        return {"update_in_backward": True, "grad_clip": 0.0}
    if run == "lisa_kept_gathered":
        return {"reshard_after_forward": False}
    if run == "lomo":  # its fused update, inside backward (it needs no clipping)
        return {"update_in_backward": True, "grad_clip": 0.0}
    return {}


def train_once(run: str, method_name: str, config: dict[str, Any], out_dir: Path, *, sharded: bool,
               checkpoint_every: int = 0, stop_at: int | None = None) -> dict[str, Any]:
    """One fp64 run the way train_run does it (seed, prepare, [shard], loop), recording every step's layers."""
    model, _ = load_model("tiny-llama", dtype="fp32", device="cpu")
    if run not in FP32_RUNS:
        model = model.double()
        model.loss_function = causal_lm_loss_fp64
    method = build_method(method_name, config)
    seed_everything(0)
    model = method.prepare(model)
    cfg = TrainConfig(steps=STEPS, batch_size=GLOBAL_BATCH // distributed.world_size(), max_length=16, lr=LR,
                      progress=False, device="cpu", dtype="fp32", checkpoint_every=checkpoint_every,
                      parallel="fsdp" if sharded else "replicate", **loop_settings(run))
    initial = full_weights(model)
    if sharded:
        model = shard_model(model, cfg)
    records: list[dict[str, Any]] = []
    _record_steps(method, model, records, stop_at)
    try:
        summary = train(model, method, TrainingData(ddp_worker.examples(), 0, seed=0), cfg, out_dir)
    except KeyboardInterrupt:
        summary = {"status": "stopped", "error": None}
    metrics = out_dir / "metrics.jsonl"
    losses = ([json.loads(line)["loss"] for line in metrics.read_text().splitlines()]
              if distributed.is_main() else None)
    return {"status": summary["status"], "error": summary.get("error"), "losses": losses, "initial": initial,
            "weights": full_weights(model), "records": records,
            "peaks": {key: value for key, value in summary.items() if key.startswith("peak_mem_")}}


def full_weights(model: nn.Module) -> dict[str, torch.Tensor] | None:
    """Every parameter in full (a sharded model's shards gathered; all ranks take part, rank 0 gets them)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    if not is_sharded(model):
        return {name: param.detach().clone() for name, param in model.named_parameters()}
    names = {name for name, _ in model.named_parameters()}
    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {key: value.detach().clone() for key, value in state.items() if key in names} or None


def _local(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


def _record_steps(method: Any, model: nn.Module, records: list[dict[str, Any]], stop_at: int | None) -> None:
    """Wrap build_optimizer and on_step_start: after each on_step_start, note the active layers, the decoder
    layers whose parameters hold optimizer state in THIS rank's optimizer, and the layers that changed (in this
    rank's shards) during the previous step although they were not active in it."""
    build, start = method.build_optimizer, method.on_step_start
    built: dict[str, Any] = {}

    def build_optimizer(model, **kwargs):
        built["optimizer"] = build(model, **kwargs)
        return built["optimizer"]

    def on_step_start(step, model, optimizer):
        if step == stop_at:
            raise KeyboardInterrupt
        layers = getattr(method, "layers", None)
        moved = []
        if layers is not None and records:
            before, active = records[-1].pop("_shards"), set(records[-1]["active_layers"] or [])
            moved = [i for i, layer in enumerate(layers) if i not in active and not all(
                torch.equal(_local(p).detach(), old) for p, old in zip(layer.parameters(), before[i]))]
        if records:
            records[-1]["moved_while_frozen"] = moved
        extra = start(step, model, optimizer)
        record: dict[str, Any] = {"step": step, "active_layers": extra.get("active_layers")}
        if layers is not None:
            state = built["optimizer"].state
            record["layers_with_state"] = [i for i, layer in enumerate(layers)
                                           if any(state.get(p) for p in layer.parameters())]
            record["_shards"] = [[_local(p).detach().clone() for p in layer.parameters()] for layer in layers]
        records.append(record)
        return extra

    method.build_optimizer, method.on_step_start = build_optimizer, on_step_start


def plant(run: str):
    """The planted bug of a run (a context manager), or a no-op."""
    from contextlib import nullcontext
    from unittest import mock

    if run == "galore_local_projector":
        from galore_torch.galore_projector import GaLoreProjector
        from torch.distributed.tensor import DTensor, Replicate

        correct = GaLoreProjector.get_orthogonal_matrix

        def from_local_rows(self, weights, rank, type):
            if isinstance(weights, DTensor) and type == "right":  # the SVD of this rank's rows only
                local = correct(self, weights.to_local(), rank, type)
                return DTensor.from_local(local, weights.device_mesh, [Replicate()], run_check=False)
            return correct(self, weights, rank, type)

        return mock.patch.object(GaLoreProjector, "get_orthogonal_matrix", from_local_rows)
    if run == "lisa_rank1_keeps_state":
        import owlore_bench.methods.lisa as lisa

        correct = lisa.switch_active_layers

        def switch(layers, old, new, optimizer, keep_state=False):
            return correct(layers, old, new, optimizer, keep_state or distributed.rank() == 1)

        return mock.patch.object(lisa, "switch_active_layers", switch)
    return nullcontext()


def gathered(result: dict[str, Any]) -> dict[str, Any]:
    """Every rank's step records and memory peaks, on rank 0."""
    views: list[Any] = [None] * distributed.world_size()
    for record in result["records"]:
        record.pop("_shards", None)
    torch.distributed.all_gather_object(views, {"records": result["records"], "peaks": result["peaks"]})
    result["records_by_rank"] = [view["records"] for view in views]
    result["peaks_by_rank"] = [view["peaks"] for view in views]
    return result


def main(out_dir: str, runs: list[str]) -> None:
    torch.set_num_threads(1)
    distributed.init_from_env("cpu")
    root = Path(out_dir)
    if distributed.is_main():
        root.mkdir(parents=True, exist_ok=True)
        ddp_worker.write_ratios(root)
    distributed.barrier()
    table = suites(str(root / "outlier_ratios.txt"))
    results = {}
    for run in runs:
        if run == "resume":
            results.update(resume_runs(root, table))
            continue
        if run == "memory":
            results["memory"] = memory_runs()
            continue
        method, config = table[run]
        with plant(run):
            results[run] = gathered(train_once(run, method, config, root / run, sharded=True))
    if distributed.is_main():
        torch.save(results, root / "results.pt")
    distributed.barrier()


MEMORY_METHODS = ("full_ft", "lora", "owlore")  # owlore: GaLore's state and layer sampling together
MEMORY_SHAPE = dict(batch_size=2, seq_len=24, dtype="fp32", seed=3)  # tests/test_estimate.py's, per rank


def memory_architecture():
    from owlore_bench.models import tiny_llama_config

    return tiny_llama_config(num_hidden_layers=6)  # tests/test_estimate.py's: OwLore's default gamma 5 fits


def memory_runs() -> dict[str, Any]:
    """One measured step of each method sharded over the ranks (the estimator's synthetic batches; plain, and
    full FT with gradient checkpointing): {(method, checkpointing): every rank's peaks}."""
    from owlore_bench.memory.estimate import measure_memory

    runs = [(method, False) for method in MEMORY_METHODS] + [("full_ft", True)]  # test_fsdp.MEMORY_RUNS
    measured = {}
    for method, checkpointing in runs:
        summary = measure_memory(memory_architecture(), method, grad_checkpointing=checkpointing, steps=1,
                                 device="cpu", parallel="fsdp", **MEMORY_SHAPE)
        measured[(method, checkpointing)] = {"status": summary["status"], "error": summary["error"],
                                             "by_rank": summary.get("peak_memory_by_rank")}
    return measured


def resume_runs(root: Path, table: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """OwLore checkpointed every 2 steps and stopped at the start of step 3 (between checkpoints, like a kill),
    then run again in the same folder: it resumes from the step-2 checkpoint."""
    method, config = table["owlore"]
    stopped = train_once("owlore", method, config, root / "resumed", sharded=True, checkpoint_every=2, stop_at=3)
    resumed = train_once("owlore", method, config, root / "resumed", sharded=True, checkpoint_every=2)
    return {"owlore_stopped": {"status": stopped["status"], "losses": stopped["losses"]},
            "owlore_resumed": gathered(resumed)}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","))
    if "--" in sys.argv:
        from owlore_bench.cli import main as cli

        sys.exit(cli(sys.argv[sys.argv.index("--") + 1:]))
    distributed.shutdown()
