"""FSDP2 (`train.parallel: fsdp`) on 2 gloo ranks (CPU, tiny-llama, fp64) against one unsharded process.

torchrun starts ONCE (tests/fsdp_worker.py: full_ft, lora, galore, lisa, owlore, the two planted bugs, a stopped
and resumed OwLore run, then `owlore-bench train --parallel fsdp` on both ranks); the 1-process references train
in this process meanwhile, on the same global batch of 4 rows (2 rows a rank when sharded).

Tolerance (fp64, with an fp64 cross entropy; measured on this 2-core CPU): the loss of every step within 3e-16 of
the reference, the final weights within 4e-16, each parameter's 4-step update within 3e-14 of the reference's
update. The tests allow 1e-12 / 1e-12 / 1e-10. The two planted bugs miss by far more: GaLore projecting with the
SVD of one rank's rows moves the loss by 1.4e-4 and a matrix's update by 0.9 of itself.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import fsdp_worker
import pytest
import torch
from conftest import TINY_RECORDS
from helpers import fp64_differences as differences
from helpers import (
    kill_after_logged_steps,
    resume_to_the_end,
    state_outside_active_layers,
    torchrun_worker,
    worker_results,
)

from owlore_bench.cli import main
from owlore_bench.memory.estimate import estimate_memory, relative_error

DEFAULT_RUNS = ["full_ft", "lora", "galore", "lisa", "owlore"]
PLANTED = ["galore_local_projector", "lisa_rank1_keeps_state"]
CLI_STEPS = 4
MEMORY_RUNS = [(method, False) for method in fsdp_worker.MEMORY_METHODS] + [("full_ft", True)]


def cli_args(data: Path, out: Path, rows: int) -> list[str]:
    """`owlore-bench train` of a 4-step LISA run (rows per process: 2 on 2 ranks, 4 on one)."""
    return ["train", "--method", "lisa", "--model", "tiny-llama", "--data", str(data), "--template", "plain",
            "--steps", str(CLI_STEPS), "--batch-size", str(rows), "--max-length", "32", "--device", "cpu",
            "--set", "train.progress=false", "--set", "train.checkpoint_every=2", "--set", "method.interval=2",
            "--out", str(out)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(2-rank results, 1-process references, the folder, the worker's output)."""
    torch.set_num_threads(1)  # the references share the 2 cores with the two ranks
    tmp = tmp_path_factory.mktemp("fsdp")
    data = tmp / "tiny.json"
    data.write_text(json.dumps(TINY_RECORDS))
    with torchrun_worker("fsdp_worker.py", tmp / "worker", ",".join([*DEFAULT_RUNS, *PLANTED, "resume", "memory"]),
                         "--", *cli_args(data, tmp / "cli", rows=2), "--parallel", "fsdp") as worker:
        references = {}
        with tempfile.TemporaryDirectory() as scratch:
            table = fsdp_worker.suites(fsdp_worker.ddp_worker.write_ratios(Path(scratch)))
            for run in DEFAULT_RUNS:
                method, config = table[run]
                references[run] = fsdp_worker.train_once(run, method, config, Path(scratch) / run, sharded=False)
        assert main(cli_args(data, tmp / "cli_reference", rows=4)) == 0
        references["memory"] = {run: estimate_memory(fsdp_worker.memory_architecture(), run[0],
                                                     grad_checkpointing=run[1], world_size=2, parallel="fsdp",
                                                     **fsdp_worker.MEMORY_SHAPE) for run in MEMORY_RUNS}
        results, done = worker_results(worker, tmp / "worker")
    return results, references, tmp, done


@pytest.mark.parametrize("method", DEFAULT_RUNS)
def test_two_sharded_ranks_of_b_rows_equal_one_process_of_2b(runs, method):
    results, references, _, _ = runs
    assert differences(results[method], references[method]) == []


@pytest.mark.parametrize("method", ["lisa", "owlore"])
def test_layer_sampling_under_fsdp_frees_the_state_of_leaving_layers_and_never_moves_a_frozen_one(runs, method):
    run = runs[0][method]
    assert state_outside_active_layers(run) == []
    records = run["records_by_rank"]
    assert [r["active_layers"] for r in records[0]] == [r["active_layers"] for r in records[1]]
    assert len({tuple(r["active_layers"]) for r in records[0]}) > 1  # the active set did switch
    assert any(r["layers_with_state"] for r in records[0])  # and there was state to free
    assert all(r.get("moved_while_frozen", []) == [] for rank in records for r in rank)
    assert all("moved_while_frozen" in r for r in records[0][:-1])  # checked after every step but the last


def test_a_projector_from_one_ranks_shard_fails_the_equivalence(runs):
    """Planted: GaLore's SVD of this rank's rows instead of the whole (all-gathered) gradient."""
    results, references, _, _ = runs
    problems = differences(results["galore_local_projector"], references["galore"])
    assert any("update of" in problem for problem in problems), problems


def test_a_rank_keeping_the_state_the_rule_frees_is_caught(runs):
    """Planted: rank 1 keeps the optimizer state of the layers that leave the active set."""
    problems = state_outside_active_layers(runs[0]["lisa_rank1_keeps_state"])
    assert problems and all(problem.startswith("rank 1") for problem in problems), problems


def test_a_sharded_run_stopped_between_checkpoints_resumes_to_the_same_weights(runs):
    results = runs[0]
    stopped, resumed, straight = results["owlore_stopped"], results["owlore_resumed"], results["owlore"]
    assert stopped["status"] == "stopped" and len(stopped["losses"]) == 3
    assert resumed["status"] == "ok" and resumed["records_by_rank"][0][0]["step"] == 2  # resumed after step 2
    assert resumed["losses"] == straight["losses"]
    assert all(torch.equal(resumed["weights"][name], straight["weights"][name]) for name in straight["weights"])
    assert resumed["peaks_by_rank"] == [{**peaks, "peak_mem_rss_bytes": resumed_peaks["peak_mem_rss_bytes"]}
                                        for peaks, resumed_peaks in zip(straight["peaks_by_rank"],
                                                                        resumed["peaks_by_rank"])]


def test_train_parallel_fsdp_saves_one_consolidated_hf_model_equal_to_one_process(runs):
    """`owlore-bench train --parallel fsdp` on 2 ranks: rank 0 alone prints and writes; model/ is an ordinary HF
    checkpoint (every tensor whole) equal to the one a single process of 4 rows saves, within fp32 rounding."""
    from safetensors.torch import load_file

    _, _, tmp, done = runs
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("lisa: status ok") == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    summary = json.loads((tmp / "cli" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == CLI_STEPS
    assert len(summary["peak_memory_by_rank"]) == 2
    sharded, whole = (load_file(next((tmp / folder / "model").glob("*.safetensors"))) for folder in
                      ("cli", "cli_reference"))
    assert sharded.keys() == whole.keys()
    for name in whole:
        assert sharded[name].shape == whole[name].shape
        assert torch.allclose(sharded[name], whole[name], rtol=1e-5, atol=1e-6), name
    config = json.loads((tmp / "cli" / "config.json").read_text())
    assert config["train"]["parallel"] == "fsdp"


@pytest.mark.parametrize("method,checkpointing", MEMORY_RUNS)
def test_each_ranks_measured_ledger_equals_the_sharded_estimate(runs, method, checkpointing):
    """The estimator shards the same model over 2 fake ranks (memory/sharded.py): weights, gradients and optimizer
    within 2 % of every rank's measured shards, activations within 15 % (tests/test_estimate.py's rules).
    Measured: to the byte on rank 0; rank 1's optimizer state is 1 KiB smaller (its embedding rows are one fewer,
    and optimizer state follows the unpadded shard); activations within 0.7 %."""
    from transformers import LlamaForCausalLM

    measured = runs[0]["memory"][(method, checkpointing)]
    assert measured["status"] == "ok", measured["error"]
    estimate = runs[1]["memory"][(method, checkpointing)]
    assert estimate["gathered"] > 0 and estimate["total"] == estimate["gathered"] + sum(
        estimate[category] for category in ("weights", "gradients", "optimizer", "activations"))
    for rank, peaks in enumerate(measured["by_rank"]):
        for category in ("weights", "gradients", "optimizer"):
            error = relative_error(estimate[category], peaks[f"peak_mem_{category}_bytes"])
            assert abs(error) <= 0.02, (rank, category, estimate, peaks)
        assert abs(relative_error(estimate["activations"], peaks["peak_mem_activations_bytes"])) <= 0.15
    whole = sum(p.numel() * 4 for p in LlamaForCausalLM(fsdp_worker.memory_architecture()).parameters())
    if method != "lora":  # each rank holds about half the fp32 weights (LoRA adds its adapters)
        assert 0.5 <= estimate["weights"] / whole <= 0.51, (estimate["weights"], whole)


@pytest.mark.slow
def test_train_parallel_fsdp_killed_mid_run_and_rerun_ends_with_the_uninterrupted_model(runs, tmp_path):
    """`--nproc 2 --parallel fsdp` for real, and a real kill: SIGKILL to the supervisor, torchrun and both ranks
    after 3 logged steps; the rerun resumes from the step-2 sharded checkpoint and must save the model the worker's
    uninterrupted run saved."""


    _, _, tmp, _ = runs
    args = [*cli_args(tmp / "tiny.json", tmp_path / "killed", rows=2), "--nproc", "2", "--parallel", "fsdp"]
    kill_after_logged_steps([sys.executable, "-m", "owlore_bench.cli", *args], tmp_path / "killed" / "metrics.jsonl",
                            timeout=400)
    assert not (tmp_path / "killed" / "summary.json").exists()
    assert (tmp_path / "killed" / "checkpoint" / ".metadata").is_file()  # a DCP checkpoint
    resumed, straight = resume_to_the_end(args, tmp_path / "killed", tmp / "cli")
    for name in straight:
        assert torch.equal(resumed[name], straight[name]), name


def test_a_sharded_lora_model_consolidates_into_an_adapter_that_load_trained_reads_back(tmp_path):
    """One gloo rank in this process: LoRA prepared, its weightless copy taken, sharded, adapters changed, then
    consolidated and saved with the method's own save_trained; load_trained gives the same outputs."""
    from owlore_bench.config import TrainConfig
    from owlore_bench.models import load_model
    from owlore_bench.registry import build_method
    from owlore_bench.train import distributed
    from owlore_bench.train.fsdp import consolidate, shard_model, unsharded_skeleton

    model, tokenizer = load_model("tiny-llama", dtype="fp32", device="cpu")
    method = build_method("lora", {"r": 4})
    model = method.prepare(model).eval()  # no adapter dropout in the outputs compared
    skeleton = unsharded_skeleton(model)
    assert all(p.device.type == "meta" for p in skeleton.parameters())
    try:
        model = shard_model(model, TrainConfig(parallel="fsdp", device="cpu"))
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.add_(0.01)  # a trained adapter (peft starts B at zero)
        ids = torch.tensor([[5, 6, 7, 8]])
        with torch.no_grad():
            expected = model(input_ids=ids).logits
        whole = consolidate(model, skeleton, None)
    finally:
        distributed.shutdown()
    method.save_trained(whole, tokenizer, tmp_path / "model")
    loaded, _ = method.load_trained(tmp_path / "model", "tiny-llama", "fp32", "cpu")
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, expected, atol=1e-6)
        assert torch.allclose(method.for_eval(loaded)(input_ids=ids).logits, expected, atol=1e-5)
