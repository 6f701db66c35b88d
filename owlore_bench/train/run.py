"""One training run end to end: model → method.prepare → data → the loop → saved model and summary.json.

Shared by `owlore-bench train` and the benchmark runner, so both write the same files:
<out>/config.json (resolved RunConfig), metrics.jsonl, summary.json, model/ (if save_model).
Under torchrun every rank trains; only rank 0 writes these files (owlore_bench/train/distributed.py).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from owlore_bench.config import RunConfig, dump_json
from owlore_bench.datasets.records import read_sources
from owlore_bench.errors import UserError
from owlore_bench.models import load_model, resolve_device
from owlore_bench.registry import build_method
from owlore_bench.results import provenance, read_json, write_json_atomic
from owlore_bench.train import distributed
from owlore_bench.train.data import TrainingData
from owlore_bench.train.fsdp import consolidate, load_dtype, mixed_precision, shard_model, unsharded_skeleton, uses_fsdp
from owlore_bench.train.loop import seed_everything, train
from owlore_bench.train.optimizer_bits import check_state_bits, with_state_bits
from owlore_bench.train.step_in_backward import check_supported
from owlore_bench.train.steps import data_facts, resolve_steps
from owlore_bench.train.tokenize import check_block_size
from owlore_bench.train.tracking import check_available


def check_out_dir(cfg: RunConfig, out_dir: Path, force: bool = False) -> None:
    """Refuse an output path that is a file, or a folder that holds a run of a different config (naming the
    differing fields)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out: {out_dir} is a file, not a folder; pass a folder path, e.g. --out runs/{cfg.method}")
    existing = out_dir / "config.json"
    if force or not existing.is_file():
        return
    old, new = read_json(existing), dump_json(cfg)
    differing = sorted(differing_keys(old, new))
    if differing:
        raise UserError(f"{out_dir} holds a run with a different config (fields: {', '.join(differing)}); "
                        f"choose another --out or pass --force to overwrite it")


def differing_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = set(old) | set(new)
        return [k for key in keys for k in differing_keys(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [prefix.rstrip(".")]


def check_run(cfg: RunConfig, world_size: int) -> Any:
    """The run's method, after everything about the method and the loop settings on `world_size` processes that
    can fail in one line before the data and model load (the trackers, 8-bit states). `--nproc N` calls it, and
    reads and tokenizes the data, before torchrun starts: bad input is one line, not one per rank."""
    method = build_method(cfg.method, cfg.method_config, seed=cfg.train.seed)
    check_supported(method, cfg.train, world_size)  # before anything is written or loaded
    check_available(cfg.train.report_to)  # a missing tracker package fails before the model loads
    check_state_bits(cfg.train.optimizer_state_bits, resolve_device(cfg.train.device))  # 8-bit: bnb runs here
    return method


def train_run(cfg: RunConfig, out_dir: str | Path, write_summary: bool = True) -> tuple[dict[str, Any], Any, Any, Any]:
    """Train one run into `out_dir`; resumes from its checkpoint if one is there.

    Returns (summary, model, tokenizer, method) so a caller can evaluate the model in memory. A caller that has
    more to do before the run counts as complete (the sweep runner evaluates first) passes write_summary=False
    and calls finish_run itself.
    """
    out_dir = Path(out_dir)
    started = time.time()
    method = check_run(cfg, distributed.world_size())
    records, sources = read_sources(cfg.data.path, cfg.data.limit)  # bad data fails before the model loads
    model, tokenizer = load_model(cfg.model, dtype=load_dtype(cfg.train, resolve_device(cfg.train.device)),
                                  device=cfg.train.device)
    if cfg.data.packing:
        check_block_size(cfg.data.block_size, getattr(model.config, "max_position_embeddings", None))
    data = TrainingData.build(records, tokenizer, cfg.data, cfg.train.max_length, seed=cfg.train.seed,
                              source=str(cfg.data.path))
    train_cfg = resolve_steps(cfg.train, data, distributed.world_size())  # train.epochs -> steps
    seed_everything(cfg.train.seed)
    model = method.prepare(model)
    skeleton = None
    if uses_fsdp(cfg.train):  # rank 0 keeps a weightless copy to consolidate the trained shards into
        skeleton = unsharded_skeleton(model) if distributed.is_main() else None
        model = shard_model(model, cfg.train)
    if cfg.train.optimizer_state_bits != 32:  # a non-AdamW optimizer is refused before any folder is written
        with_state_bits(method.build_optimizer(model, lr=cfg.train.lr, weight_decay=0.0), 8, method.name)
    if distributed.is_main():  # only now: a run refused for its data, model or method leaves no folder behind
        write_json_atomic(out_dir / "config.json", dump_json(cfg))
    # Every rank loads out_dir/checkpoint at the start of train() and only rank 0 replaces it later: all ranks
    # load before rank 0 can save (no rank reads a checkpoint that is being written).
    distributed.barrier()
    result = train(model, method, data, train_cfg, out_dir)
    if uses_fsdp(cfg.train) and result["status"] == "ok":  # every rank sends its shards; rank 0 gets the model
        model = consolidate(model, skeleton, mixed_precision(cfg.train, resolve_device(cfg.train.device)).param_dtype)
    if cfg.save_model and result["status"] == "ok" and distributed.is_main():
        method.save_trained(model, tokenizer, out_dir / "model")
    summary = {"method": cfg.method, "model": cfg.model, **result, "method_info": method.run_info(),
               "examples": len(data), "world_size": distributed.world_size(),  # global batch = batch_size x this
               "planned_steps": train_cfg.steps,
               "data": data_facts(len(records), data, train_cfg, cfg.data.packing, distributed.world_size()),
               "data_sources": sources,
               "run_wall_s": time.time() - started, **provenance(method.packages())}
    if write_summary:
        finish_run(out_dir, summary)
    return summary, model, tokenizer, method


def finish_run(out_dir: Path, summary: dict[str, Any]) -> None:
    """Mark a run complete: write summary.json atomically, then drop the checkpoint it no longer needs.

    A failed run keeps its checkpoint so a rerun after a fix can resume. Rank 0 only (a no-op on other ranks).
    """
    if not distributed.is_main():
        return
    write_json_atomic(Path(out_dir) / "summary.json", summary)
    if summary["status"] == "failed":
        return
    for suffix in ("", ".old", ".saving"):
        shutil.rmtree(out_dir / f"checkpoint{suffix}", ignore_errors=True)


def load_trained(run_dir: str | Path, dtype: str = "auto", device: str = "auto") -> tuple[Any, Any]:
    """(model, tokenizer) of a finished training run folder, ready to evaluate.

    The run's config.json names the method and the base model; the method reads back what its save_trained
    wrote to <run>/model (Method.load_trained) and prepares it for evaluation (Method.for_eval, e.g. LoRA
    merged), so a third-party method with its own saved format evaluates from its run folder too.
    """
    run_dir = Path(run_dir)
    saved = run_dir / "model"
    if not (run_dir / "config.json").is_file() or not saved.is_dir():
        raise UserError(f"--run {run_dir}: not a finished training run (needs config.json and model/); "
                        f"train with save_model: true")
    config = json.loads((run_dir / "config.json").read_text())
    method = build_method(config["method"], config.get("method_config") or {})
    model, tokenizer = method.load_trained(saved, config["model"], dtype, device)
    return method.for_eval(model), tokenizer
