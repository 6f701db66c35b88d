"""Worker of tests/test_distributed.py: tiny-llama runs on 2 gloo ranks, started ONCE by torchrun.

    OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node 2 tests/ddp_worker.py OUT_DIR [-- CLI ARGS]

The runs write into OUT_DIR/<run>/ (one folder all ranks see, as a real run's --out). Rank 0 saves to
OUT_DIR/results.pt, for every run: the loss per step, the averaged gradients of every step, the final weights,
every rank's per-step record (active layers, which decoder layers hold optimizer state) and whether the ranks'
weights agree. The runs: each method at global batch 4 (2 rows per rank); full FT with gradient averaging broken
on purpose; LISA with a mis-seeded rank; OwLore stopped after 5 steps, then resumed from its checkpoint.
Last, with CLI ARGS, every rank runs `owlore-bench CLI ARGS` in-process, as `torchrun -m owlore_bench.cli` does
(the command ends the process group, so it comes last), and the worker exits with its exit code.

The test imports this file too, to train the 1-rank references (batch 4) in its own process.

To break the averaging of EVERY run (and watch the equivalence test fail), set OWLORE_TEST_BREAK_AVERAGING to
`skip` (one parameter's gradient is never averaged) or `sum` (one parameter's gradient is summed over ranks,
i.e. counted twice). Only this file reads that variable.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from owlore_bench.config import TrainConfig
from owlore_bench.models import load_model
from owlore_bench.registry import build_method
from owlore_bench.train import distributed
from owlore_bench.train.data import TrainingData
from owlore_bench.train.loop import seed_everything, train
from owlore_bench.train.tokenize import Example

GLOBAL_BATCH = 4  # rows per optimizer step, whatever the number of ranks
STEPS = 6
LR = 1e-3
BREAK_ENV = "OWLORE_TEST_BREAK_AVERAGING"
OUTLIER_RATIOS = [1.0, 3.0, 2.0, 4.0]  # tiny-llama's 4 layers: OwLore's outlier rule without calibration


def method_configs(ratios_file: str) -> dict[str, dict[str, Any]]:
    """The five methods, configured so 6 steps switch layers and refresh GaLore projectors more than once."""
    return {
        "full_ft": {},
        "lora": {"r": 4, "dropout": 0.0},  # dropout draws differ between 1 and 2 ranks: off for equivalence
        "galore": {"rank": 4, "update_proj_gap": 2},
        "lisa": {"gamma": 1, "interval": 2},
        "owlore": {"gamma": 2, "interval": 2, "rank": 4, "update_proj_gap": 2, "outlier_ratios_file": ratios_file},
    }


def examples() -> list[Example]:
    """64 random token sequences of 5-16 tokens, a random prompt prefix masked out of the loss."""
    rng = random.Random(0)
    made = []
    for _ in range(64):
        length = rng.randint(5, 16)
        ids = [rng.randint(3, 200) for _ in range(length)]
        prompt = rng.randint(1, length - 1)
        made.append(Example(ids, [-100] * prompt + ids[prompt:]))
    return made


def broken_average(mode: str) -> Callable:
    """distributed.average_gradients with one parameter left out (`skip`) or summed instead of averaged (`sum`)."""
    correct = distributed.average_gradients

    def average(params, *args, **kwargs):
        with_grad = [p for p in params if p.grad is not None and p.dim() == 2]
        victim = with_grad[len(with_grad) // 2]
        if mode == "skip":
            return correct([p for p in params if p is not victim], *args, **kwargs)
        correct(params, *args, **kwargs)
        victim.grad.mul_(distributed.world_size())  # the mean times world = the sum: counted twice on 2 ranks

    return average


def train_once(name: str, config: dict[str, Any], out_dir: Path, *, checkpoint_every: int = 0,
               stop_at: int | None = None, break_mode: str | None = None, steps: int = STEPS) -> dict[str, Any]:
    """One run the way training.train_run does it (seed, prepare, loop), recording every step's layer state.

    stop_at: raise KeyboardInterrupt at the start of that step (a stop between checkpoints, like a kill).
    """
    model, _ = load_model("tiny-llama", dtype="fp32", device="cpu")
    method = build_method(name, config)
    seed_everything(0)
    model = method.prepare(model)
    initial = {key: value.detach().clone() for key, value in model.named_parameters()}
    records: list[dict[str, Any]] = []
    grads: list[dict[str, torch.Tensor]] = []
    _record_steps(method, records, stop_at)
    cfg = TrainConfig(steps=steps, batch_size=GLOBAL_BATCH // distributed.world_size(), max_length=16, lr=LR,
                      progress=False, checkpoint_every=checkpoint_every, device="cpu", dtype="fp32")
    correct = distributed.average_gradients
    distributed.average_gradients = _recording(broken_average(break_mode) if break_mode else correct, model, grads)
    try:
        summary = train(model, method, TrainingData(examples(), 0, seed=0), cfg, out_dir)
    except KeyboardInterrupt:
        summary = {"status": "stopped", "error": None}
    finally:
        distributed.average_gradients = correct
    metrics = out_dir / "metrics.jsonl"  # written by rank 0 alone
    losses = [json.loads(line)["loss"] for line in metrics.read_text().splitlines()] if distributed.is_main() else None
    weights = {key: value.detach().clone() for key, value in model.named_parameters()}
    return {"status": summary["status"], "error": summary.get("error"), "losses": losses, "weights": weights,
            "initial": initial, "records": records, "grads": grads}


def _recording(average: Callable, model: torch.nn.Module, grads: list[dict[str, torch.Tensor]]) -> Callable:
    """`average`, then a copy of every gradient as the optimizer will see it, by parameter name (one dict per
    step): the averaged gradient of exactly the parameters that have one this step."""
    names = {id(param): name for name, param in model.named_parameters()}

    def average_and_record(params, *args, **kwargs):
        average(params, *args, **kwargs)
        grads.append({names[id(p)]: p.grad.detach().clone() for p in params if p.grad is not None})

    return average_and_record


def _record_steps(method: Any, records: list[dict[str, Any]], stop_at: int | None) -> None:
    """Wrap method.on_step_start: after it ran, note the active layers and which decoder layers hold optimizer
    state (in the optimizer build_optimizer made)."""
    build, start = method.build_optimizer, method.on_step_start
    built: dict[str, Any] = {}

    def build_optimizer(model, **kwargs):
        built["optimizer"] = build(model, **kwargs)
        return built["optimizer"]

    def on_step_start(step, model, optimizer):
        if step == stop_at:
            raise KeyboardInterrupt
        extra = start(step, model, optimizer)
        record = {"step": step, "active_layers": extra.get("active_layers")}
        layers = getattr(method, "layers", None)
        if layers is not None:
            state = built["optimizer"].state
            record["layers_with_state"] = [i for i, layer in enumerate(layers)
                                           if any(state.get(p) for p in layer.parameters())]
        records.append(record)
        return extra

    method.build_optimizer, method.on_step_start = build_optimizer, on_step_start


def gathered(run: dict[str, Any]) -> dict[str, Any]:
    """The run as rank 0 keeps it: every rank's records, and whether all ranks hold bitwise the same weights."""
    flat = torch.cat([value.flatten() for value in run["weights"].values()])
    views: list[Any] = [None] * distributed.world_size()
    torch.distributed.all_gather_object(views, {"records": run["records"], "weights": flat})
    run["records_by_rank"] = [view["records"] for view in views]
    run["ranks_agree"] = all(torch.equal(views[0]["weights"], view["weights"]) for view in views)
    return run


def write_ratios(folder: Path) -> str:
    path = folder / "outlier_ratios.txt"
    path.write_text("\n".join(str(r) for r in OUTLIER_RATIOS))
    return str(path)


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    distributed.init_from_env("cpu")
    root = Path(out_dir)
    if distributed.is_main():
        root.mkdir(parents=True, exist_ok=True)
        write_ratios(root)
    distributed.barrier()
    configs = method_configs(str(root / "outlier_ratios.txt"))
    break_mode = os.environ.get(BREAK_ENV) or None
    results = {name: gathered(train_once(name, config, root / name, break_mode=break_mode))
               for name, config in configs.items()}
    for mode in ("skip", "sum"):
        results[f"full_ft_broken_{mode}"] = gathered(train_once("full_ft", {}, root / f"broken_{mode}",
                                                                break_mode=mode))
    misseeded = {**configs["lisa"], "seed": distributed.rank()}  # each rank's sampler seeded differently
    results["lisa_misseeded"] = gathered(train_once("lisa", misseeded, root / "misseeded"))
    stopped = train_once("owlore", configs["owlore"], root / "resumed", checkpoint_every=2, stop_at=5)
    results["owlore_stopped"] = {"status": stopped["status"], "losses": stopped["losses"]}
    results["owlore_resumed"] = gathered(train_once("owlore", configs["owlore"], root / "resumed",
                                                    checkpoint_every=2))
    if distributed.is_main():
        torch.save(results, root / "results.pt")
    distributed.barrier()


ZOO_STEPS = 3  # enough for BAdam to switch blocks (its first block trains K - 1 = 1 step, the next K = 2)
GPUS_SEEN = 4  # what torch.cuda.device_count() says during the zoo's adam_mini run: a node with 4 GPUs, 2 ranks


def zoo_method_configs() -> dict[str, dict[str, Any]]:
    """tests/test_zoo_distributed.py's methods: Adam-mini (the package's defaults) and BAdam in layer mode,
    switching every 2 steps in its default random block order (seeded by train.seed: alike on every rank)."""
    return {"adam_mini": {}, "badam": {"switch_every": 2}}


def zoo_main(out_dir: str) -> None:
    """`ddp_worker.py OUT_DIR --zoo`: each zoo method for ZOO_STEPS steps at global batch 4; rank 0 saves
    OUT_DIR/results.pt. Adam-mini reads torch.cuda.device_count() as the number of ranks that SHARD its
    parameters and all-gathers across them; here every rank sees GPUS_SEEN devices, as under `--nproc 2` on a
    bigger node, so the run shows whether methods/adam_mini.py's world-size pin holds (unpinned, that all-gather
    of 4 tensors in a group of 2 fails)."""
    from contextlib import nullcontext
    from unittest import mock

    torch.set_num_threads(1)
    distributed.init_from_env("cpu")
    root = Path(out_dir)
    if distributed.is_main():
        root.mkdir(parents=True, exist_ok=True)
    distributed.barrier()
    results = {}
    for name, config in zoo_method_configs().items():
        gpus = mock.patch("torch.cuda.device_count", return_value=GPUS_SEEN) if name == "adam_mini" else nullcontext()
        with gpus:
            results[name] = gathered(train_once(name, config, root / name, steps=ZOO_STEPS))
    if distributed.is_main():
        torch.save(results, root / "results.pt")
    distributed.barrier()


if __name__ == "__main__":
    if sys.argv[2:3] == ["--zoo"]:  # tests/test_zoo_distributed.py: the zoo methods' runs alone
        zoo_main(sys.argv[1])
        distributed.shutdown()
        sys.exit(0)
    main(sys.argv[1])
    if "--" in sys.argv:
        from owlore_bench.cli import main as cli

        sys.exit(cli(sys.argv[sys.argv.index("--") + 1:]))
    distributed.shutdown()
