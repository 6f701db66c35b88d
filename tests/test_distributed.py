"""Data parallel on 2 gloo ranks (CPU, tiny-llama): 2 ranks x b rows equal 1 rank x 2b, layer sampling agrees,
resume, and `owlore-bench train` under torchrun end to end.

torchrun starts ONCE (tests/ddp_worker.py: every method, the broken averagings, the mis-seeded rank, the resume,
then `owlore-bench train` on both ranks as `torchrun -m owlore_bench.cli train` runs it); the 1-rank references
train in this process meanwhile. `--nproc 2` re-running the command under torchrun is checked in-process (the
command it starts) and, marked slow, for real: killed mid-run and rerun.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import ddp_worker
import pytest
import torch
from conftest import TINY_RECORDS
from helpers import (
    EXACT_ORDER,
    Tolerance,
    differences,
    kill_after_logged_steps,
    relative,
    resume_to_the_end,
    torchrun_worker,
    worker_results,
)

from owlore_bench.cli import main

# What 2 ranks x 2 rows may differ by from 1 rank x 4 rows, per method (relative; measured on this 2-core CPU).
# All-reduce adds the two halves' gradients in another order than one process's mean does: ~3e-6 on the averaged
# gradients, ~2e-7 on the loss, ~2e-5 on each parameter's 6-step update. GaLore (and OwLore, which uses it) is
# looser: its projector is the top-r singular subspace of a gradient, and tiny-llama's gradients have nearly equal
# singular values around r = 4, so that rounding can turn the subspace of a matrix at a refresh: one matrix's
# update then differs by ~0.4 of itself and later gradients by ~1e-3, while the whole model stays within 2e-4 of
# the reference and the loss within 2e-5. A skipped or double-counted gradient is off by ~1.0 (see the broken
# runs below), >= 100x any of these tolerances.


SUBSPACE = Tolerance(loss=1e-4, gradient=1e-2, update=None, weights=1e-3)
TOLERANCES = {"full_ft": EXACT_ORDER, "lora": EXACT_ORDER, "lisa": EXACT_ORDER, "galore": SUBSPACE,
              "owlore": SUBSPACE}
CLI_STEPS = 6


def cli_train_args(data: Path, out: Path) -> list[str]:
    """`owlore-bench train` of a 6-step LISA run on 2 rows per rank (add --nproc 2 to start torchrun)."""
    return ["train", "--method", "lisa", "--model", "tiny-llama", "--data", str(data), "--template", "plain",
            "--steps", str(CLI_STEPS), "--batch-size", "2", "--max-length", "32", "--device", "cpu",
            "--set", "train.progress=false", "--set", "train.checkpoint_every=2", "--set", "method.interval=2",
            "--out", str(out)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(2-rank results, 1-rank references, the folder, the worker's output): one torchrun, references meanwhile."""
    tmp = tmp_path_factory.mktemp("ddp")
    data = tmp / "tiny.json"
    data.write_text(json.dumps(TINY_RECORDS))
    with torchrun_worker("ddp_worker.py", tmp / "worker", "--", *cli_train_args(data, tmp / "cli")) as worker:
        references = {}
        with tempfile.TemporaryDirectory() as scratch:
            for name, config in ddp_worker.method_configs(ddp_worker.write_ratios(Path(scratch))).items():
                references[name] = ddp_worker.train_once(name, config, Path(scratch) / name)
        results, done = worker_results(worker, tmp / "worker")
    return results, references, tmp, done


@pytest.mark.parametrize("method", list(TOLERANCES))
def test_two_ranks_of_b_rows_equal_one_rank_of_2b(runs, method):
    results, references, _, _ = runs
    assert differences(results[method], references[method], TOLERANCES[method]) == []
    assert results[method]["ranks_agree"]  # the replicas hold bitwise the same weights
    assert len(results[method]["losses"]) == ddp_worker.STEPS


@pytest.mark.parametrize("mode", ["skip", "sum"])
def test_the_equivalence_check_fails_when_averaging_skips_or_double_counts_a_parameter(runs, mode):
    """Broken on purpose in the worker (the same break as OWLORE_TEST_BREAK_AVERAGING=skip|sum for every run)."""
    results, references, _, _ = runs
    problems = differences(results[f"full_ft_broken_{mode}"], references["full_ft"], TOLERANCES["full_ft"])
    assert any("gradient of" in problem for problem in problems), problems


@pytest.mark.parametrize("method", ["lisa", "owlore"])
def test_ranks_sample_the_same_layers_and_free_the_state_of_leaving_ones(runs, method):
    records = runs[0][method]["records_by_rank"]
    assert len(records) == 2 and [len(r) for r in records] == [ddp_worker.STEPS] * 2
    for rank0, rank1 in zip(*records):
        assert rank0["active_layers"] == rank1["active_layers"], (rank0, rank1)
        for record in (rank0, rank1):  # state only where the layers train now: leaving layers' state was freed
            assert set(record["layers_with_state"]) <= set(record["active_layers"]), record
    assert len({tuple(r["active_layers"]) for r in records[0]}) > 1  # the active set did switch
    assert any(r["layers_with_state"] for r in records[0])  # and there was state to free


def test_a_mis_seeded_rank_fails_loudly(runs):
    run = runs[0]["lisa_misseeded"]
    assert run["status"] == "failed"
    assert "ranks disagree on the trainable parameters" in run["error"] and "rank 1" in run["error"]


def test_a_run_stopped_between_checkpoints_resumes_on_two_ranks_to_the_same_weights(runs):
    results = runs[0]
    assert results["owlore_stopped"]["status"] == "stopped" and len(results["owlore_stopped"]["losses"]) == 5
    resumed, straight = results["owlore_resumed"], results["owlore"]
    assert resumed["status"] == "ok" and resumed["ranks_agree"]
    assert resumed["records_by_rank"][0][0]["step"] == 4  # it did resume, from the checkpoint after step 4
    assert resumed["losses"] == pytest.approx(straight["losses"], rel=1e-6)
    flat = [torch.cat([run["weights"][name].flatten() for name in sorted(straight["weights"])])
            for run in (resumed, straight)]
    assert relative(*flat) <= 1e-6


def test_train_under_torchrun_writes_rank_0s_files_with_every_ranks_memory(runs):
    _, _, tmp, done = runs
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("lisa: status ok") == 1, done.stdout  # rank 1 prints nothing
    assert "Traceback" not in done.stderr
    out = tmp / "cli"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "metrics.jsonl", "model", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["steps"] == CLI_STEPS and summary["world_size"] == 2
    assert len(summary["peak_memory_by_rank"]) == 2
    assert all(rank["peak_mem_weights_bytes"] > 0 for rank in summary["peak_memory_by_rank"])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(CLI_STEPS))
    assert all(len(row["memory_by_rank"]) == 2 for row in rows)


@pytest.mark.slow
def test_train_nproc_2_killed_mid_run_and_rerun_ends_with_the_uninterrupted_weights(runs, tmp_path):
    """`--nproc 2` for real, and a real kill: torchrun and both ranks get SIGKILL after 3 logged steps; the
    rerun resumes from the step-2 checkpoint and must end where the worker's uninterrupted run ended."""
    _, _, tmp, _ = runs
    args = [*cli_train_args(tmp / "tiny.json", tmp_path / "killed"), "--nproc", "2"]
    kill_after_logged_steps([sys.executable, "-m", "owlore_bench.cli", *args], tmp_path / "killed" / "metrics.jsonl",
                            timeout=300)
    assert not (tmp_path / "killed" / "summary.json").exists()
    assert (tmp_path / "killed" / "checkpoint").is_dir()
    resumed, straight = resume_to_the_end(args, tmp_path / "killed", tmp / "cli")
    for name in straight:
        assert torch.allclose(resumed[name], straight[name], rtol=1e-6, atol=1e-7), name


@pytest.mark.parametrize("flags,expected", [
    (["--nproc", "0"], "--nproc: 0 is not a process count"),
    (["--nproc", "999"], "more than this machine's"),
    (["--nproc", "2", "--set", "train.update_in_backward=true", "--set", "train.grad_clip=0"],
     "train.update_in_backward: gradients are averaged over the 2 ranks"),
])
def test_bad_nproc_is_one_line_and_exit_2(tiny_data, tmp_path, capsys, flags, expected):
    code = main(["train", "--method", "full_ft", "--model", "tiny-llama", "--data", str(tiny_data),
                 "--device", "cpu", "--out", str(tmp_path / "out"), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "out").exists()


def test_train_nproc_2_reruns_the_same_command_under_torchrun(tiny_data, tmp_path, monkeypatch):
    started = []
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("owlore_bench.launch.torchrun.subprocess.call",
                        lambda command, env: started.append((command, env)) or 0)
    args = [*cli_train_args(tiny_data, tmp_path / "out"), "--nproc", "2"]
    assert main(args) == 0
    [(command, env)] = started
    assert command[:6] == [sys.executable, "-m", "owlore_bench.launch.torchrun", "--standalone", "--nproc_per_node=2",
                           "-m"]
    assert command[6:] == ["owlore_bench.cli", *args[:-2]]  # the same arguments, without --nproc
    assert env["OMP_NUM_THREADS"] == str(max(1, os.cpu_count() // 2))
    assert not (tmp_path / "out").exists()  # only the torchrun processes write


def test_nproc_is_dropped_from_the_command_torchrun_reruns():
    from owlore_bench.launch.torchrun import torchrun_command, without_nproc

    assert without_nproc(["train", "--nproc", "2", "--steps", "3"]) == ["train", "--steps", "3"]
    assert without_nproc(["run", "x.yaml", "--nproc=4", "--no-plots"]) == ["run", "x.yaml", "--no-plots"]
    assert without_nproc(["train", "--np", "2"]) == ["train"]  # argparse's abbreviation
    command = torchrun_command(2, ["train", "--nproc", "2", "--method", "lora"])
    assert command[1:] == ["-m", "owlore_bench.launch.torchrun", "--standalone", "--nproc_per_node=2",
                           "-m", "owlore_bench.cli", "train", "--method", "lora"]


def test_resuming_with_another_number_of_processes_is_one_line(tmp_path, monkeypatch):
    """batch_size is per rank: a checkpoint of a 1-process run must not silently resume on 2 (another global
    batch)."""
    from owlore_bench.errors import UserError
    from owlore_bench.models import load_model
    from owlore_bench.registry import build_method
    from owlore_bench.train import checkpoint

    model, _ = load_model("tiny-llama", dtype="fp32", device="cpu")
    method = build_method("full_ft", {})
    optimizer = method.build_optimizer(model, lr=1e-3, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    parts = dict(model=model, optimizer=optimizer, scheduler=scheduler, method=method)
    checkpoint.save_checkpoint(tmp_path / "checkpoint", step=3, elapsed_s=1.0, **parts)
    assert checkpoint.load_checkpoint(tmp_path / "checkpoint", **parts) == (3, 1.0)
    monkeypatch.setattr(checkpoint, "world_size", lambda: 2)
    with pytest.raises(UserError, match="saved by a run on 1 process"):
        checkpoint.load_checkpoint(tmp_path / "checkpoint", **parts)
