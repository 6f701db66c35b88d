"""The analytic estimator (fake tensors) against the measured ledger of real steps, and `owlore-bench memory`."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from owlore_bench.errors import UserError
from owlore_bench.memory.estimate import (
    builtin_architectures,
    estimate_memory,
    load_architecture,
    measure_memory,
    measured_ledger,
    relative_error,
)
from owlore_bench.models import tiny_llama_config
from owlore_bench.registry import available_methods

# 6 layers so that OwLore's default γ=5 is possible; fp32 on CPU as the accuracy target says.
ARCH = tiny_llama_config(num_hidden_layers=6)
SHAPE = dict(batch_size=2, seq_len=24, dtype="fp32", seed=3)
EXACT = ("weights", "gradients", "optimizer")
# The one category a method's estimate is known to miss (docs/methods.md, "DoRA"): peft's DoRA forward builds
# the full adapted weight per module to take its column norm; under fake tensors part of what autograd keeps for
# it is not seen, so activations come out low without checkpointing (0.47 GiB under on SmolLM2 at batch 8 x 32);
# with checkpointing the recomputed forward is counted and the estimate matches.
KNOWN_ACTIVATION_GAPS = {("dora", False)}


@pytest.mark.parametrize("grad_checkpointing", [False, True], ids=["plain", "checkpointing"])
@pytest.mark.parametrize("method", list(available_methods()))
def test_estimate_matches_measured_ledger(method, grad_checkpointing):
    """Every registered method: within 2% for weights/gradients/optimizer, 15% for activations (the issue)."""
    estimate = estimate_memory(ARCH, method, grad_checkpointing=grad_checkpointing, **SHAPE)
    summary = measure_memory(ARCH, method, grad_checkpointing=grad_checkpointing, steps=1, device="cpu", **SHAPE)
    assert summary["status"] == "ok", summary["error"]
    measured = measured_ledger(summary)
    for category in EXACT:
        if measured[category] == 0:  # a category that measures nothing must be estimated as nothing
            assert estimate[category] == 0, (category, estimate, measured)
        else:
            assert abs(relative_error(estimate[category], measured[category])) <= 0.02, (category, estimate, measured)
    assert measured["activations"] > 0
    error = relative_error(estimate["activations"], measured["activations"])
    if (method, grad_checkpointing) in KNOWN_ACTIVATION_GAPS:  # docs/methods.md; fails once fixed: drop the entry
        assert error < -0.15, ("the known gap is gone: remove it from KNOWN_ACTIVATION_GAPS", estimate, measured)
    else:
        assert abs(error) <= 0.15, (estimate, measured)


def test_estimate_follows_shape_and_checkpointing():
    small = estimate_memory(ARCH, "full_ft", **SHAPE)
    double = estimate_memory(ARCH, "full_ft", **{**SHAPE, "batch_size": 4})
    checkpointed = estimate_memory(ARCH, "full_ft", grad_checkpointing=True, **SHAPE)
    assert double["weights"] == small["weights"] and double["optimizer"] == small["optimizer"]
    assert 1.8 <= double["activations"] / small["activations"] <= 2.05  # activations scale with tokens
    assert checkpointed["activations"] < small["activations"] / 2
    bf16 = estimate_memory(ARCH, "full_ft", **{**SHAPE, "dtype": "bf16"})
    assert bf16["weights"] * 2 == small["weights"]
    assert small["total"] == sum(small[c] for c in ("weights", "gradients", "optimizer", "activations"))


def test_full_ft_adamw_state_is_two_copies_of_the_weights():
    estimate = estimate_memory(ARCH, "full_ft", **SHAPE)
    assert estimate["gradients"] == estimate["weights"]
    parameter_tensors = 3 + 9 * ARCH.num_hidden_layers  # embed, norm, lm_head + 7 Linears and 2 norms per layer
    assert estimate["optimizer"] == 2 * estimate["weights"] + 4 * parameter_tensors  # + one fp32 step per tensor


def _adapted_matrices(config) -> list[tuple[int, int]]:
    """(in, out) of the seven Llama projections of every layer, from the config alone."""
    h, i = config.hidden_size, config.intermediate_size
    kv = config.num_key_value_heads * (h // config.num_attention_heads)
    per_layer = [(h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h)]
    return per_layer * config.num_hidden_layers


def test_every_category_is_anchored_to_a_closed_form():
    """Estimate and measurement share the ledger's functions, so they agree even on a shared bug; these
    counts come from the config by hand instead (fp32: 4 bytes a number)."""
    h, v, n_layers = ARCH.hidden_size, ARCH.vocab_size, ARCH.num_hidden_layers
    parameters = sum(a * b for a, b in _adapted_matrices(ARCH)) + 2 * h * n_layers + 2 * v * h + h
    r = 8  # lora's default rank
    lora_numbers = sum(r * (a + b) for a, b in _adapted_matrices(ARCH))
    lora_tensors = 2 * len(_adapted_matrices(ARCH))
    for side in ("estimate", "measured"):
        if side == "estimate":
            full, lora = estimate_memory(ARCH, "full_ft", **SHAPE), estimate_memory(ARCH, "lora", **SHAPE)
        else:
            full, lora = (measured_ledger(measure_memory(ARCH, name, steps=1, device="cpu", **SHAPE))
                          for name in ("full_ft", "lora"))
        assert full["weights"] == 4 * parameters, side
        assert full["gradients"] == 4 * parameters, side
        assert full["optimizer"] == 2 * 4 * parameters + 4 * (3 + 9 * n_layers), side  # exp_avg, exp_avg_sq, step
        assert lora["weights"] == 4 * (parameters + lora_numbers), side
        assert lora["gradients"] == 4 * lora_numbers, side  # 4 · r · (in + out) bytes per adapted matrix
        assert lora["optimizer"] == 2 * 4 * lora_numbers + 4 * lora_tensors, side


@pytest.mark.slow  # ~10 s: builds the 7B architecture out of fake tensors
def test_llama2_7b_estimate_is_fast_and_counts_every_parameter():
    """LLaMA-2-7B has 6,738,415,616 parameters (its model card); bf16 weights are 2 bytes each."""
    estimate = estimate_memory("llama2-7b", "lora", batch_size=1, seq_len=16, dtype="bf16")
    lora_params = 32 * 8 * (4 * (4096 + 4096) + 3 * (4096 + 11008))  # r=8 on q k v o (4096²), gate up down
    assert estimate["trainable_params"] == lora_params
    assert estimate["weights"] == 6_738_415_616 * 2 + lora_params * 4  # peft keeps the adapters in fp32


def test_architectures_ship_and_load(tmp_path):
    assert {"llama2-7b", "llama3-8b", "mistral-7b", "smollm2-135m"} <= set(builtin_architectures())
    assert load_architecture("llama3-8b").num_key_value_heads == 8
    assert load_architecture("mistral-7b").model_type == "mistral"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(tiny_llama_config(num_hidden_layers=3).to_dict()))
    assert load_architecture(str(path)).num_hidden_layers == 3
    assert load_architecture(str(tmp_path)).num_hidden_layers == 3


def test_unknown_architecture_lists_builtins():
    with pytest.raises(UserError, match="unknown architecture 'llama-7b'.*llama2-7b.*config.json"):
        load_architecture("llama-7b")


@pytest.mark.parametrize("shape", [dict(batch_size=0, seq_len=8), dict(batch_size=2, seq_len=-1)])
def test_bad_shape_is_a_user_error(shape):
    with pytest.raises(UserError, match="must be a positive"):
        estimate_memory(ARCH, "full_ft", **shape)


def test_cli_prints_and_writes_the_comparison(tmp_path):
    out = tmp_path / "mem"
    done = run_cli("memory", "--model", "tiny-llama", "--methods", "full_ft,lora", "--batch-size", "2",
                   "--seq-len", "16", "--dtype", "fp32", "--measure", "--measure-steps", "1", "--device", "cpu",
                   "--set", "lora.r=4", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "full_ft" in done.stdout and "(+0.0%)" in done.stdout
    assert {p.name for p in out.iterdir()} == {"memory.csv", "memory.md", "memory.png"}
    import pandas as pd

    table = pd.read_csv(out / "memory.csv")
    assert list(table["method"]) == ["full_ft", "lora"]
    assert (table["est_weights_bytes"] == table["meas_weights_bytes"]).all()


@pytest.mark.parametrize("args, message", [
    (["--model", "llama-7b"], "unknown architecture 'llama-7b'"),
    (["--methods", "lisa", "--set", "lisa.gamma=0"], "lisa.gamma"),
])
def test_cli_bad_input_is_one_line_exit_2(args, message):
    done = run_cli("memory", "--model", "tiny-llama", "--seq-len", "8", "--batch-size", "1", *args)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("owlore-bench")]
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_setting_the_model_cannot_take_is_its_rows_one_line_and_the_table_goes_on():
    done = run_cli("memory", "--model", "tiny-llama", "--seq-len", "8", "--batch-size", "1", "--methods",
                   "lisa,full_ft", "--set", "lisa.gamma=99")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[2:]}
    assert "failed" in rows["lisa"] and "lisa.gamma: 99 is more than the model's 4 decoder layers" in rows["lisa"]
    assert rows["full_ft"].split()[1] != "-"  # estimated


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "--batch-size must be a positive"),
    (["--seq-len", "0"], "--seq-len must be a positive"),
    (["--methods", "lora", "--set", "lora.r=0"], "lora.r"),
    (["--methods", "lora", "--set", "lora.rank=4"], "lora has no field 'rank'"),
    (["--methods", "lora", "--set", "r=4"], "expected METHOD.KEY=VALUE"),
    (["--methods", "loar"], "unknown method 'loar'"),
])
def test_memory_command_rejects_bad_input(args, message, capsys):
    """The same error path in-process (the subprocess test above covers the real entry point)."""
    from owlore_bench.cli import main

    assert main(["memory", "--model", "tiny-llama", "--seq-len", "8", "--batch-size", "1", *args]) == 2
    assert message in capsys.readouterr().err


def test_gpu_check_smoke_runs_on_cpu(tmp_path):
    """scripts/gpu_check.sh --smoke: the GPU check's whole path (estimate, measured loop, results files) on CPU."""
    import os
    import subprocess
    import sys

    from conftest import REPO_ROOT

    done = subprocess.run(["bash", "scripts/gpu_check.sh", "--smoke", "--out", str(tmp_path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| tiny-llama | owlore | ok |" in done.stdout
    rows = json.loads((tmp_path / "gpu_check_cpu-smoke.json").read_text())["rows"]
    assert [(row["method"], row["parallel"]) for row in rows] == [("lora", "replicate"), ("owlore", "replicate"),
                                                                  ("owlore", "fsdp")]
    assert rows[-1]["status"] == "ok" and rows[-1]["est_gathered_bytes"] > 0  # FSDP2 on one gloo rank
    assert all(abs(row["rel_err_weights"]) <= 0.02 for row in rows)


def test_gpu_check_imports_galore_without_bitsandbytes():
    """The GPU image has no bitsandbytes; the check's stand-in must let galore_torch import."""
    import subprocess
    import sys

    from conftest import REPO_ROOT

    code = ("import importlib.util, sys; importlib.util.find_spec = lambda name, *a: None; "
            "sys.path.insert(0, 'scripts');"
            "import gpu_check; gpu_check.stub_bitsandbytes(); import galore_torch;"
            "assert sys.modules['bitsandbytes'].__spec__ is None; print(galore_torch.GaLoreAdamW.__name__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "AdamW" in done.stdout, done.stderr[-2000:]


def test_a_hook_that_needs_real_values_is_one_clear_error(monkeypatch):
    """A method whose prepare reads weight values (like an uncached calibration) cannot run on fake tensors."""
    from owlore_bench.registry import get_method_class

    cls = get_method_class("full_ft")
    original = cls.prepare

    def reads_values(self, model):
        if float(next(model.parameters()).abs().max()) > 1e9:  # data-dependent: impossible on fake tensors
            raise AssertionError("unreachable")
        return original(self, model)

    monkeypatch.setattr(cls, "prepare", reads_values)
    with pytest.raises(UserError, match="full_ft: cannot be estimated on fake tensors"):
        estimate_memory(ARCH, "full_ft", **SHAPE)
