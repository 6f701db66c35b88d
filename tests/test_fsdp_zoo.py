"""Every other method that trains under `train.parallel: fsdp`, checked as tests/test_fsdp.py checks the paper's five:
2 sharded gloo ranks x 2 rows against one unsharded process x 4 rows (fp64), and the methods FSDP refuses.

Measured on this 2-core CPU (fp64, 4 steps): every run's loss within 4.3e-16 of the reference, weights within
1.5e-17, each parameter's update within 4e-14 (test_fsdp.py's FP64 tolerance holds for all). LOMO runs its
fused update inside backward (train.update_in_backward, where FSDP has reduce-scattered the layer's gradients
before the hook fires), and so does full FT in `full_ft_in_backward`; `lisa_kept_gathered` keeps each layer
gathered from its forward to its backward (train.reshard_after_forward: false). PiSSA runs in fp32 (peft's PiSSA
initialisation refuses fp64): loss within 1.2e-7, weights 4.3e-9, updates 4.3e-6.

The equivalence runs are marked slow (one torchrun, ~45 s on 2 cores); the refusals are quick.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import fsdp_worker
import pytest
import torch
from helpers import FP64, state_outside_active_layers, torchrun_worker, worker_results
from helpers import Fp64Tolerance as Tolerance
from helpers import fp64_differences as differences

from owlore_bench.cli import main
from owlore_bench.config import TrainConfig
from owlore_bench.errors import UserError
from owlore_bench.registry import available_methods, build_method
from owlore_bench.train.step_in_backward import check_supported

ZOO_RUNS = ["dora", "rslora", "lora_plus", "pissa", "fira", "owlore_fullrank", "badam", "adam_mini", "lomo",
            "full_ft_in_backward", "lisa_kept_gathered"]
FP32 = Tolerance(loss=1e-6, weights=1e-7, update=1e-4)
REFUSED = {"apollo": "random projection", "apollo_mini": "random projection", "galore_8bit": "8-bit kernels",
           "adalomo": "factored second moment"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("fsdp_zoo")
    with torchrun_worker("fsdp_worker.py", tmp / "worker", ",".join(ZOO_RUNS)) as worker:
        references = {}
        with tempfile.TemporaryDirectory() as scratch:
            table = fsdp_worker.suites(fsdp_worker.ddp_worker.write_ratios(Path(scratch)))
            for run in ZOO_RUNS:
                method, config = table[run]
                references[run] = fsdp_worker.train_once(run, method, config, Path(scratch) / run, sharded=False)
        results, _ = worker_results(worker, tmp / "worker", require_success=True)
    return results, references


@pytest.mark.slow
@pytest.mark.parametrize("run", ZOO_RUNS)
def test_two_sharded_ranks_of_b_rows_equal_one_process_of_2b(runs, run):
    results, references = runs
    assert references[run]["status"] == "ok", references[run]["error"]
    tolerance = FP32 if run in fsdp_worker.FP32_RUNS else FP64
    assert differences(results[run], references[run], tolerance) == []


@pytest.mark.slow
def test_owlore_fullrank_frees_the_state_of_leaving_layers_on_every_rank(runs):
    assert state_outside_active_layers(runs[0]["owlore_fullrank"]) == []
    assert state_outside_active_layers(runs[0]["lisa_kept_gathered"]) == []


def test_keeping_layers_gathered_after_forward_is_estimated_with_every_layer_in_flight():
    from owlore_bench.memory.estimate import estimate_memory

    shape = dict(batch_size=2, seq_len=16, dtype="fp32", world_size=2, parallel="fsdp")
    resharded = estimate_memory("tiny-llama", "full_ft", **shape)
    kept = estimate_memory("tiny-llama", "full_ft", reshard_after_forward=False, **shape)
    assert {key: kept[key] for key in ("weights", "gradients", "optimizer")} == {
        key: resharded[key] for key in ("weights", "gradients", "optimizer")}
    layer = 36992 * 4  # one tiny-llama decoder layer, fp32 (tiny-llama's 4 layers: 2 more in flight)
    assert kept["gathered"] - resharded["gathered"] == 2 * layer


@pytest.mark.filterwarnings("ignore:method .lomo.")
def test_every_registered_method_trains_sharded_or_is_refused_with_its_reason():
    """Each method either has an equivalence run in the worker's suites or refuses FSDP in one line (a UserError
    naming the method and the reason) before anything is built."""
    covered = {method for method, _ in fsdp_worker.suites("").values()}
    for name in available_methods():
        method = build_method(name, {})
        if name in REFUSED:
            with pytest.raises(UserError, match=f"method '{name}' cannot train sharded .*{REFUSED[name]}"):
                check_supported(method, TrainConfig(parallel="fsdp"), 2)
        else:
            assert name in covered, f"{name}: neither refused nor tested under FSDP"
            check_supported(method, TrainConfig(parallel="fsdp"), 2)


@pytest.mark.parametrize("flags,expected", [
    (["--method", "apollo"], "method 'apollo' cannot train sharded"),
    (["--method", "full_ft", "--set", "train.optimizer_state_bits=8"], "bitsandbytes' 8-bit kernels"),
    (["--method", "full_ft", "--set", "train.update_in_backward=true"], "global-norm clipping"),
    (["--method", "full_ft", "--set", "train.update_in_backward=true", "--set", "train.grad_clip=0",
      "--set", "train.grad_accum=2"], "cannot accumulate gradients"),
    (["--method", "badam", "--set", "method.mode=ratio"], "ratio mode makes the gradients sparse"),
])
def test_a_refused_fsdp_run_is_one_line_before_any_worker_starts(tiny_data, tmp_path, capsys, monkeypatch, flags,
                                                               expected):
    monkeypatch.setattr("owlore_bench.launch.torchrun.subprocess.call",
                        lambda *a, **k: pytest.fail("torchrun must not start"))
    code = main(["train", "--model", "tiny-llama", "--data", str(tiny_data), "--device", "cpu", "--out",
                 str(tmp_path / "out"), "--nproc", "2", "--parallel", "fsdp", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "out").exists()
