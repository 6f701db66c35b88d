"""Side-by-side benchmark: the suite's full_ft, lisa and owlore against the official-style design, in ONE process.

The official side is benchmarks/official_owlore.py (one optimizer over all parameters, requires_grad switches,
optimizer state never freed). Both sides train a fresh copy of the same model on IDENTICAL batches (same token
ids, no padding: every row is exactly `tokens` tokens), with the same seed, the same γ/K/rank, the same
constant learning rate and the same clipping. The runs alternate (suite A, official A, suite B, official B,
...; the order is reversed on every other repetition) so that load drift on a shared machine hits both sides.

Reported per (size, method, implementation): median step time, tokens/s, gradient and optimizer-state bytes
(memory ledger: max over steps), the ledger's peak (weights + gradients + optimizer + activations), each method's
step time relative to full_ft of the same implementation, and suite / official. Not a pass/fail test.

    # smoke run (seconds): the tiny model has 4 layers and 64-wide matrices
    .venv/bin/python benchmarks/bench_vs_reference.py --model tiny-llama --sizes 2x16 --steps 3 --owlore-gamma 2 \\
        --rank 8 --ratios equal
    # the real measurement (SmolLM2-135M; ~35 min on 2 idle cores, twice that with --update-in-backward)
    .venv/bin/python benchmarks/bench_vs_reference.py --sizes 2x64,8x256 --steps 40,6 --repeats 2 \\
        --update-in-backward --out results/benchmarks/vs_reference.md --json results/benchmarks/vs_reference.json
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from official_owlore import OFFICIAL_METHODS, OfficialSettings, OfficialTrainer, PackedTextBlocks, run_official

from owlore_bench.analysis.outliers import cached_outlier_ratios, calibration_text, calibration_windows, read_ratio_file
from owlore_bench.config import TrainConfig
from owlore_bench.errors import UserError, one_line
from owlore_bench.memory.estimate import SyntheticBatches
from owlore_bench.models import load_model
from owlore_bench.registry import build_method, get_method_class
from owlore_bench.results import provenance, read_jsonl, write_json_atomic
from owlore_bench.train.loop import failure_status, seed_everything, train
from owlore_bench.train.phases import PHASES

MIB = 2**20


@dataclass(frozen=True)
class Implementation:
    """One side of the comparison: whose code runs, with which clipping, and where each update happens."""

    label: str
    side: str  # "suite" (owlore_bench.train.loop.train) or "official" (official_owlore.run_official)
    grad_clip: float  # max global gradient norm; 0 = none
    update_in_backward: bool = False  # suite only: TrainConfig.update_in_backward
    peer: str | None = None  # the official implementation a suite row is compared with (same clipping)


def implementations(grad_clip: float, update_in_backward: bool) -> list[Implementation]:
    """suite + official with `grad_clip`; with update_in_backward also suite_in_backward + an unclipped official
    (update_in_backward cannot clip by global norm, so its peer does not clip either)."""
    found = [Implementation("suite", "suite", grad_clip, peer="official"),
             Implementation("official", "official", grad_clip)]
    if update_in_backward:
        peer = "official" if grad_clip == 0 else "official_noclip"
        found.append(Implementation("suite_in_backward", "suite", 0.0, update_in_backward=True, peer=peer))
        if grad_clip > 0:
            found.append(Implementation("official_noclip", "official", 0.0))
    return found


class RecordingBatches:
    """Serves another data object's batches and keeps a sha256 of every token id served (~10 µs per batch), to
    show that both sides trained on the same tokens."""

    def __init__(self, data: Any):
        self.data, self.digest = data, hashlib.sha256()

    def batch(self, index: int, batch_size: int) -> dict[str, torch.Tensor]:
        batch = self.data.batch(index, batch_size)
        self.digest.update(batch["input_ids"].numpy().tobytes())
        return batch


def settings_for(method: str, args: argparse.Namespace, grad_clip: float) -> OfficialSettings:
    """The one set of hyperparameters both sides of a method use."""
    gamma, interval = ((args.lisa_gamma, args.lisa_interval) if method == "lisa"
                       else (args.owlore_gamma, args.owlore_interval))
    return OfficialSettings(gamma=gamma, interval=interval, rank=args.rank, update_proj_gap=args.update_proj_gap,
                            scale=args.scale, proj_type=args.proj_type, lr=args.lr, grad_clip=grad_clip,
                            seed=args.seed)


def suite_method_config(method: str, settings: OfficialSettings, ratios_file: str | None) -> dict[str, Any]:
    """The suite method's config with the same γ/K/rank/seed (and ratios) as the official side."""
    if method == "full_ft":
        return {}
    config: dict[str, Any] = {"gamma": settings.gamma, "interval": settings.interval, "seed": settings.seed}
    if method == "owlore":
        config.update(rank=settings.rank, update_proj_gap=settings.update_proj_gap, scale=settings.scale,
                      proj_type=settings.proj_type, outlier_ratios_file=ratios_file)
    return config


def note_iteration_starts(method: Any, on_iteration: Callable[[int], None] | None) -> list[float]:
    """Wrap method.on_step_start so each loop iteration's start (perf_counter s) is noted; returns the list."""
    starts: list[float] = []
    original = method.on_step_start

    def on_step_start(step, model, optimizer):
        if on_iteration is not None:
            on_iteration(step)
        starts.append(time.perf_counter())
        return original(step, model, optimizer)

    method.on_step_start = on_step_start
    return starts


def run_suite(args: argparse.Namespace, method: str, impl: Implementation, settings: OfficialSettings,
              size: tuple[int, int], steps: int, data: Any, ratios_file: str | None,
              on_iteration: Callable[[int], None] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(status, metrics rows) of the suite's method through owlore_bench.train.loop.train on a fresh model."""
    model, _ = load_model(args.model, dtype="fp32", device="cpu")
    suite_method = build_method(method, suite_method_config(method, settings, ratios_file), seed=settings.seed)
    seed_everything(settings.seed)  # as train.run.train_run does before prepare
    model = suite_method.prepare(model)
    starts = note_iteration_starts(suite_method, on_iteration)
    in_backward = {"update_in_backward": True} if impl.update_in_backward else {}
    cfg = TrainConfig(steps=steps, batch_size=size[0], max_length=size[1], lr=settings.lr, weight_decay=0.0,
                      schedule="constant", grad_clip=impl.grad_clip, dtype="fp32", device="cpu", seed=settings.seed,
                      memory_profile=not args.no_ledger, time_phases=True, progress=False, **in_backward)
    with tempfile.TemporaryDirectory(prefix="owlore-vs-reference-") as out:
        summary = train(model, suite_method, data, cfg, out)
        rows = [row for row in read_jsonl(Path(out) / "metrics.jsonl") if "step_s" in row]
    starts.append(time.perf_counter())
    for row, begin, end in zip(rows, starts, starts[1:]):
        row["iter_s"] = end - begin
    return (summary["status"] if not summary["error"] else f"{summary['status']}: {summary['error']}"), rows


def run_official_side(args: argparse.Namespace, method: str, settings: OfficialSettings, size: tuple[int, int],
                      steps: int, data: Any, ratios: np.ndarray | None,
                      on_iteration: Callable[[int], None] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(status, rows) of the official-style method on a fresh model; a crash is a status, as in the suite loop."""
    model, _ = load_model(args.model, dtype="fp32", device="cpu")
    trainer = OfficialTrainer(method, model, settings, outlier_ratios=ratios)
    torch.manual_seed(settings.seed)
    try:
        return "ok", run_official(trainer, data, steps, size[0], memory_profile=not args.no_ledger,
                                  on_iteration=on_iteration)
    except Exception as error:  # noqa: BLE001 — an OOM is data in a memory benchmark; keep the other runs
        return f"{failure_status(error)}: {one_line(error)}", []


def measure(args, method: str, impl: Implementation, size: tuple[int, int], steps: int, source: Any,
            ratios: np.ndarray | None, ratios_file: str | None) -> dict[str, Any]:
    """One run: warm-up + measured steps of `method` by `impl`; timings of the measured steps, memory of all."""
    settings = settings_for(method, args, impl.grad_clip)
    data = RecordingBatches(source)
    if impl.side == "suite":
        status, rows = run_suite(args, method, impl, settings, size, args.warmup + steps, data, ratios_file)
    else:
        status, rows = run_official_side(args, method, settings, size, args.warmup + steps, data, ratios)
    measured = rows[args.warmup:]
    ever = {layer for row in rows for layer in row.get("active_layers", [])}
    return {"size": f"{size[0]}x{size[1]}", "method": method, "implementation": impl.label, "status": status,
            "grad_clip": impl.grad_clip, "steps": len(measured), "batches_sha256": data.digest.hexdigest(),
            "step_s": [row["step_s"] for row in measured], "iter_s": [row["iter_s"] for row in measured],
            **{f"{phase}_s": [row[f"{phase}_s"] for row in measured] for phase in PHASES},
            "tokens": [row["tokens"] for row in measured],
            "gradient_bytes_by_step": [row.get("mem_gradients_bytes") for row in rows],
            "optimizer_bytes_by_step": [row.get("mem_optimizer_bytes") for row in rows],
            "ledger_total_bytes_by_step": [row.get("mem_total_bytes") for row in rows],
            "layers_ever_trained": sorted(ever) if "active_layers" in (rows[0] if rows else {}) else None,
            "final_loss": rows[-1]["loss"] if rows else None}


def token_stream(text: str, tokenizer: Any, needed: int) -> torch.Tensor:
    """Token ids of the shortest prefix of `text` (doubling from 4 characters a token) that gives `needed`
    tokens, or of the whole text when it is shorter (the rows then wrap around)."""
    chars = 4 * needed
    while True:
        ids = tokenizer(text[:chars], add_special_tokens=False, verbose=False)["input_ids"]
        if len(ids) >= needed or chars >= len(text):
            return torch.tensor(ids, dtype=torch.long)
        chars *= 2


def prepare_inputs(args: argparse.Namespace, folder: Path, needed_tokens: int) -> dict[str, Any]:
    """What every run shares: the token stream (or vocabulary size) and the outlier ratios (array + file).
    `needed_tokens`: the most tokens one run reads."""
    model, tokenizer = load_model(args.model, dtype="fp32", device="cpu")
    n_layers = model.config.num_hidden_layers
    for method, gamma in (("owlore", args.owlore_gamma), ("lisa", args.lisa_gamma)):
        if method in args.methods and gamma > n_layers:
            raise UserError(f"--{method}-gamma: {gamma} is more than the {n_layers} decoder layers of {args.model}")
    inputs: dict[str, Any] = {"vocab_size": model.config.vocab_size, "ratios": None, "ratios_file": None,
                              "ratios_note": "not used"}
    if args.tokens == "text":
        inputs["token_ids"] = token_stream(calibration_text(args.text_file), tokenizer, needed_tokens)
    if "owlore" in args.methods:
        inputs["ratios"], inputs["ratios_note"] = outlier_ratios(args, model, tokenizer)
        if args.owlore_gamma > np.count_nonzero(inputs["ratios"]):
            raise UserError(f"--owlore-gamma: {args.owlore_gamma} is more than the {np.count_nonzero(inputs['ratios'])}"
                            f" layers with a non-zero outlier ratio; lower it or pass --ratios equal")
        inputs["ratios_file"] = str(folder / "outlier_ratios.txt")
        Path(inputs["ratios_file"]).write_text("".join(f"{float(r)!r}\n" for r in inputs["ratios"]))
    return inputs


def outlier_ratios(args: argparse.Namespace, model: torch.nn.Module, tokenizer: Any) -> tuple[np.ndarray, str]:
    """(ratios in percent, one per layer; how they were made) for --ratios equal | suite | FILE."""
    n_layers = model.config.num_hidden_layers
    if args.ratios == "equal":
        return np.ones(n_layers), "equal for every layer (uniform layer sampling on both sides)"
    if args.ratios != "suite":
        return read_ratio_file(args.ratios, n_layers, field="--ratios"), f"read from {args.ratios}"
    c = get_method_class("owlore").Config()
    windows = calibration_windows(calibration_text(c.calibration_file), tokenizer, c.calibration_samples,
                                  c.calibration_length)
    ratios, _ = cached_outlier_ratios(model, windows, c.outlier_threshold)
    source = c.calibration_file or "builtin:pydoc_data"
    return ratios, (f"computed once by the suite (owlore_bench.analysis.outliers, M={c.outlier_threshold:g}, "
                    f"{c.calibration_samples}×{c.calibration_length} tokens of {source}) and given to both sides")


def data_for(args: argparse.Namespace, inputs: dict[str, Any], size: tuple[int, int]) -> tuple[Any, str]:
    """(data object with .batch(index, batch_size), its padding policy in words)."""
    if args.tokens == "random":
        return (SyntheticBatches(inputs["vocab_size"], size[1], args.seed),
                f"random token ids (uniform over the {inputs['vocab_size']}-token vocabulary, seed {args.seed})")
    source = args.text_file or "builtin:pydoc_data, Python's reference docs"
    return (PackedTextBlocks(inputs["token_ids"], size[1]),
            f"real text ({source}) tokenized by the model's tokenizer and packed back to back (LMFlow's group_texts)")


def benchmark(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every run, alternated; returns {meta, runs, rows} (rows: one per size × method × implementation)."""
    torch.set_num_threads(args.threads)
    impls = implementations(args.grad_clip, args.update_in_backward)
    meta: dict[str, Any] = {"command": shlex.join([sys.executable, *sys.argv]), "args": vars(args),
                            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                            "torch_threads": torch.get_num_threads(), "loadavg_before": os.getloadavg(),
                            **provenance()}
    runs = []
    with tempfile.TemporaryDirectory(prefix="owlore-vs-reference-") as folder:
        needed = max((args.warmup + steps) * batch * tokens for (batch, tokens), steps in zip(args.sizes, args.steps))
        inputs = prepare_inputs(args, Path(folder), needed)
        meta["ratios"] = None if inputs["ratios"] is None else [float(r) for r in inputs["ratios"]]
        meta["ratios_note"] = inputs["ratios_note"]
        for size, steps in zip(args.sizes, args.steps):
            source, meta["data_note"] = data_for(args, inputs, size)
            for repeat in range(args.repeats):
                order = impls if repeat % 2 == 0 else impls[::-1]  # position in the cycle must not favour a side
                for method in args.methods:
                    for impl in order:
                        run = measure(args, method, impl, size, steps, source, inputs["ratios"],
                                      inputs["ratios_file"])
                        runs.append({**run, "repeat": repeat})
                        median = statistics.median(run["step_s"]) if run["step_s"] else float("nan")
                        log(f"[{run['size']} repeat {repeat + 1}/{args.repeats}] {method:8s} {impl.label:18s} "
                            f"median step {median:.3f} s ({run['status']})")
    meta["loadavg_after"] = os.getloadavg()
    return {"meta": meta, "runs": runs, "rows": summarise(runs, impls)}


def summarise(runs: list[dict[str, Any]], impls: list[Implementation]) -> list[dict[str, Any]]:
    """One row per size × method × implementation (repeats pooled), with the ratios filled in.

    The full-FT baseline of a ratio is the median step of every full_ft run of that size with the same clipping,
    suite and official together: both sides do the same full-FT arithmetic, so pooling them halves the weight of
    the machine's drift between runs (the two full_ft rows' own ratios then show how large that drift was).
    """
    keys = list(dict.fromkeys((run["size"], run["method"], run["implementation"]) for run in runs))
    rows = {key: summary_row([run for run in runs if (run["size"], run["method"], run["implementation"]) == key])
            for key in keys}
    peers = {impl.label: impl.peer for impl in impls}
    for (size, _, label), row in rows.items():
        full_ft_steps = [s for run in runs if run["size"] == size and run["method"] == "full_ft"
                         and run["grad_clip"] == row["grad_clip"] for s in run["step_s"]]
        baseline = statistics.median(full_ft_steps) if full_ft_steps else None
        peer = rows.get((size, row["method"], peers.get(label)))
        row["full_ft_baseline_s"] = baseline
        row["vs_full_ft"] = ratio(row["median_step_s"], baseline)
        row["floor_vs_full_ft"] = ratio(row["median_forward_backward_s"], baseline)
        row["suite_vs_official"] = ratio(row["median_step_s"], peer["median_step_s"] if peer else None)
    return list(rows.values())


def ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def _max(values: list[int | None]) -> int | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


def summary_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled figures of the repeats of one size × method × implementation (seconds, tokens/s, bytes)."""
    step_s = [s for run in runs for s in run["step_s"]]
    tokens = sum(t for run in runs for t in run["tokens"])
    per_run = [statistics.median(run["step_s"]) for run in runs if run["step_s"]]
    grads = [g for run in runs for g in run["gradient_bytes_by_step"]]
    state = [o for run in runs for o in run["optimizer_bytes_by_step"]]
    together = [None if g is None or o is None else g + o for g, o in zip(grads, state)]
    layers = [run["layers_ever_trained"] for run in runs if run["layers_ever_trained"] is not None]
    iter_s = [i for run in runs for i in run["iter_s"]]
    phases = {phase: [s for run in runs for s in run.get(f"{phase}_s", [])] for phase in PHASES}  # older JSON: none
    forward_backward = [f + b for f, b in zip(phases["forward"], phases["backward"])]
    first = runs[0]
    return {"size": first["size"], "method": first["method"], "implementation": first["implementation"],
            "grad_clip": first["grad_clip"], "status": ", ".join(sorted({run["status"] for run in runs})),
            "runs": len(runs), "measured_steps": len(step_s), "run_medians_s": per_run,
            "median_step_s": statistics.median(step_s) if step_s else None,
            "median_iter_s": statistics.median(iter_s) if iter_s else None,
            **{f"median_{phase}_s": statistics.median(times) if times else None for phase, times in phases.items()},
            "median_forward_backward_s": statistics.median(forward_backward) if forward_backward else None,
            "tokens_per_s": tokens / sum(step_s) if step_s else None,
            "gradient_bytes": _max(grads), "optimizer_bytes": _max(state), "grad_opt_bytes": _max(together),
            "ledger_peak_bytes": _max([t for run in runs for t in run["ledger_total_bytes_by_step"]]),
            "layers_ever_trained": max((len(found) for found in layers), default=None),
            "final_loss": first["final_loss"]}


def _shown(value: float | None, spec: str, unit: float = 1.0, suffix: str = "") -> str:
    """`value` / `unit` formatted with `spec`, or a dash for a missing figure."""
    return "—" if value is None else f"{value / unit:{spec}}{suffix}"


TABLE_HEADER = ("| size | method | implementation | clip | step s (median) | per-repeat medians s | iteration s | "
                "forward / backward / update s | tokens/s | × full_ft | forward + backward × full_ft | "
                "suite / official | gradients MiB | optimizer MiB | grad + opt MiB | ledger peak MiB | "
                "layers ever trained | final loss | status |")


def table(rows: list[dict[str, Any]]) -> str:
    """The results as one markdown table, one row per size × method × implementation."""
    lines = [TABLE_HEADER, "|" + "---|" * TABLE_HEADER.count(" | ") + "---|"]
    for row in rows:
        spread = " / ".join(f"{s:.3f}" for s in row["run_medians_s"]) or "—"
        layers = "all" if row["layers_ever_trained"] is None else str(row["layers_ever_trained"])
        memory = " | ".join(_shown(row[key], ".1f", MIB) for key in
                            ("gradient_bytes", "optimizer_bytes", "grad_opt_bytes", "ledger_peak_bytes"))
        phases = " / ".join(_shown(row[f"median_{phase}_s"], ".2f") for phase in PHASES)
        lines.append(f"| {row['size']} | {row['method']} | {row['implementation']} | {row['grad_clip']:g} | "
                     f"{_shown(row['median_step_s'], '.3f')} | {spread} | {_shown(row['median_iter_s'], '.3f')} | "
                     f"{phases} | {_shown(row['tokens_per_s'], '.0f')} | "
                     f"{_shown(row['vs_full_ft'], '.2f', suffix='×')} | "
                     f"{_shown(row['floor_vs_full_ft'], '.2f', suffix='×')} | "
                     f"{_shown(row['suite_vs_official'], '.2f', suffix='×')} | {memory} | {layers} | "
                     f"{_shown(row['final_loss'], '.4f')} | {row['status']} |")
    return "\n".join(lines)


def same_batches_note(runs: list[dict[str, Any]]) -> str:
    """Per size: whether every run trained on the same token ids (sha256 of all batches served)."""
    notes = []
    for size in dict.fromkeys(run["size"] for run in runs):
        digests = {run["batches_sha256"] for run in runs if run["size"] == size}
        tokens = {sum(run["tokens"]) for run in runs if run["size"] == size}
        same = "the same" if len(digests) == 1 and len(tokens) == 1 else "DIFFERENT (a bug: the comparison is void)"
        notes.append(f"{size}: all {sum(run['size'] == size for run in runs)} runs trained on {same} token ids "
                     f"(sha256 {sorted(digests)[0][:12]}…, {sorted(tokens)[0]} measured tokens per run)")
    return "; ".join(notes)


def markdown(result: dict[str, Any]) -> str:
    """The report: how it was made (command, date, load, settings, policies), then the table."""
    meta, args = result["meta"], result["meta"]["args"]
    before, after = (", ".join(f"{x:.2f}" for x in meta[key]) for key in ("loadavg_before", "loadavg_after"))
    clip = f"{args['grad_clip']:g} on both sides (global norm over all parameters)"
    if args["update_in_backward"]:
        clip += "; suite_in_backward and official_noclip do not clip (update_in_backward cannot)"
    steps = ", ".join(f"{s[0]}x{s[1]}: {n}" for s, n in zip(args["sizes"], args["steps"]))
    git = meta["git"]
    return "\n".join([
        f"# Suite vs official-style full_ft / lisa / owlore ({meta['date'][:10]})", "",
        f"Command: `{meta['command']}`", "",
        *([f"Summary recomputed from that run's JSON (no new measurements): `{meta['rendered_by']}`", ""]
          if meta.get("rendered_by") else []),
        f"- date {meta['date']}; git {git['commit'] or '?'}{' (dirty)' if git['dirty'] else ''}; torch "
        f"{meta['versions']['torch']}, {meta['torch_threads']} torch thread(s), {meta['hardware']['cpu_count']} CPUs "
        f"({meta['hardware']['platform']})",
        f"- machine load (1/5/15-min load average): before {before}, after {after}",
        f"- model {args['model']}, fp32, CPU; seed {args['seed']}; constant lr {args['lr']:g}, weight decay 0",
        f"- owlore: γ {args['owlore_gamma']}, K {args['owlore_interval']}, rank {args['rank']}, update_proj_gap "
        f"{args['update_proj_gap']}, scale {args['scale']:g}, proj_type {args['proj_type']}; lisa: γ "
        f"{args['lisa_gamma']}, K {args['lisa_interval']}; the same on both sides",
        f"- outlier ratios (owlore layer probabilities p_l = D_l / ΣD on both sides): {meta['ratios_note']}",
        f"- data: {meta['data_note']}; no padding: every row is exactly `tokens` tokens, labels = inputs, "
        f"attention mask all ones; batch k is the same for both sides",
        f"- {same_batches_note(result['runs'])}",
        f"- clipping: {clip}",
        f"- steps per run: {args['warmup']} warm-up (not timed) + measured ({steps}); {args['repeats']} repeat(s); "
        "order per method: suite, official, … (reversed on every other repeat); a fresh model per run",
        "- step s: the span the suite loop times (batch → zero_grad); iteration s: the whole iteration, layer "
        "switch, metrics line and ledger walk included; tokens/s = measured tokens / summed step s",
        "- forward / backward / update s: medians of the step's phases (owlore_bench/train/phases.py; update = clip + "
        "optimizer step + zero_grad; with update_in_backward the updates run inside backward); forward + backward "
        "× full_ft: the median forward + backward of a step over the full-FT baseline (next line), the fastest this "
        "method's step could be with a free optimizer (its measured floor)",
        "- × full_ft: over the median step of all full_ft runs of the size with the same clipping, suite and "
        "official pooled (the same arithmetic on both sides; the full_ft rows' own ratios show the machine's "
        "drift between runs)",
        "- memory: the suite's memory ledger on both sides, bytes, max over all steps of a run (warm-up "
        "included); ledger peak = weights + gradients + optimizer state + saved activations of a step. Peak RSS is "
        "not used: one process runs every case." if not args["no_ledger"] else
        "- memory: not measured (--no-ledger: both sides run without the memory ledger)",
        "- official = benchmarks/official_owlore.py (one optimizer over all parameters, requires_grad switches, "
        "optimizer state never freed); suite = owlore_bench.train.loop.train",
        "- final loss (loss of the last step, first repeat): equal across implementations while both made the same "
        "updates; it departs where a layer re-enters the active set (official: stale state resumed; suite: fresh "
        "state) and where clipping differs", "",
        table(result["rows"]), ""])


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows the module docstring as written, and every default."""


def parse_size(text: str) -> tuple[int, int]:
    """'8x256' → (8 sequences, 256 tokens)."""
    batch, sep, tokens = text.strip().lower().partition("x")
    if not sep or not batch.isdigit() or not tokens.isdigit() or int(batch) < 1 or int(tokens) < 2:
        raise argparse.ArgumentTypeError(f"size '{text}': expected BATCHxTOKENS with batch >= 1 and tokens >= 2, "
                                         f"e.g. 2x64")
    return int(batch), int(tokens)


def comma_list(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """An argparse type: 'a,b,c' → [kind('a'), kind('b'), kind('c')]."""
    def parse(text: str) -> list[Any]:
        try:
            return [kind(item) for item in text.split(",") if item.strip()]
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"'{text}': {error}") from None

    return parse


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise ValueError(f"{value} is not a positive integer")
    return value


def add_setting_arguments(parser: argparse.ArgumentParser) -> None:
    """Model, data and method settings shared by this benchmark and profile_step.py (defaults: the issue's)."""
    parser.add_argument("--model", default="smollm2-135m", help="smollm2-135m (embedded) or tiny-llama (smoke runs)")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch intra-op threads")
    parser.add_argument("--tokens", choices=("text", "random"), default="text",
                        help="text: packed rows of real text; random: uniform random token ids")
    parser.add_argument("--text-file", default=None, help="text for --tokens text (default: Python's reference docs)")
    parser.add_argument("--ratios", default="suite",
                        help="owlore outlier ratios for both sides: suite (computed by the suite), equal, or a file")
    parser.add_argument("--owlore-gamma", type=positive_int, default=5, help="owlore γ")
    parser.add_argument("--owlore-interval", type=positive_int, default=10, help="owlore K (steps)")
    parser.add_argument("--rank", type=positive_int, default=256, help="owlore GaLore rank")
    parser.add_argument("--update-proj-gap", type=positive_int, default=100, help="owlore GaLore SVD gap (steps)")
    parser.add_argument("--scale", type=float, default=1.0, help="owlore GaLore scale")
    parser.add_argument("--proj-type", default="std", choices=("std", "reverse_std", "right", "left", "full"))
    parser.add_argument("--lisa-gamma", type=positive_int, default=2, help="lisa γ")
    parser.add_argument("--lisa-interval", type=positive_int, default=3, help="lisa K (steps)")
    parser.add_argument("--lr", type=float, default=3e-4, help="constant learning rate")
    parser.add_argument("--grad-clip", type=float, default=1.0, help="global-norm clipping on both sides; 0 = none")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, model init and layer draws")
    parser.add_argument("--no-ledger", action="store_true", help="run both sides without the memory ledger")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_setting_arguments(parser)
    parser.add_argument("--sizes", type=comma_list(parse_size), default=[(2, 64), (8, 256)],
                        help="comma-separated BATCHxTOKENS cases, e.g. 2x64,8x256")
    parser.add_argument("--steps", type=comma_list(positive_int), default=[6],
                        help="measured steps per run: one number, or one per size (e.g. 40,6)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before the measured ones")
    parser.add_argument("--repeats", type=positive_int, default=2, help="alternating repetitions of every run")
    parser.add_argument("--update-in-backward", action="store_true",
                        help="also run the suite with train.update_in_backward (no clipping) against an unclipped "
                             "official side")
    parser.add_argument("--methods", type=comma_list(str), default=list(OFFICIAL_METHODS),
                        help="comma-separated subset of full_ft,lisa,owlore")
    parser.add_argument("--out", default=None, help="write the markdown report here (e.g. "
                                                    "results/benchmarks/vs_reference.md)")
    parser.add_argument("--json", default=None, help="write every run's raw figures here")
    parser.add_argument("--from-json", default=None, help="measure nothing: re-render the report of an earlier run "
                                                          "from its --json file (the summary is recomputed)")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """One UserError line for a combination argparse cannot check; fills one --steps value per size."""
    if len(args.steps) == 1:
        args.steps = args.steps * len(args.sizes)
    if len(args.steps) != len(args.sizes):
        raise UserError(f"--steps: give one number or one per size ({len(args.sizes)}), got {len(args.steps)}")
    unknown = [m for m in args.methods if m not in OFFICIAL_METHODS]
    if unknown or not args.methods:
        raise UserError(f"--methods: unknown {', '.join(unknown) or '(none given)'}; use a comma-separated subset of "
                        f"{','.join(OFFICIAL_METHODS)}")
    if args.warmup < 0:
        raise UserError(f"--warmup: {args.warmup} must be >= 0 steps")
    if args.grad_clip < 0:
        raise UserError(f"--grad-clip: {args.grad_clip} must be >= 0 (0 = no clipping)")


def rerender(path: str) -> dict[str, Any]:
    """An earlier run's result (its --json file) with the summary rows recomputed by this version of the code."""
    try:
        result = json.loads(Path(path).read_text())
        measured = result["meta"]["args"]
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"--from-json: {path} is not a readable bench_vs_reference --json file ({error})") from None
    result["meta"]["rendered_by"] = shlex.join([sys.executable, *sys.argv])
    result["rows"] = summarise(result["runs"], implementations(measured["grad_clip"], measured["update_in_backward"]))
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.from_json:
            result = rerender(args.from_json)
        else:
            check_args(args)
            result = benchmark(args, log=lambda line: print(line, file=sys.stderr, flush=True))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = markdown(result)
    print(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report)
    if args.json:
        write_json_atomic(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
