"""Memory levers that combine with any method: train.optimizer_state_bits: 8 (bitsandbytes AdamW8bit through one
seam), train.offload_activations (saved tensors on the host), the estimator's view of both, the
`memory --levers` matrix and `owlore-bench methods`' package versions. All on tiny-llama, CPU."""

from __future__ import annotations

import copy
import json
import tempfile
from importlib.metadata import version

import pytest
import torch

from owlore_bench.cli import main
from owlore_bench.config import TrainConfig
from owlore_bench.errors import UserError
from owlore_bench.memory import levers
from owlore_bench.memory.estimate import SyntheticBatches, estimate_memory
from owlore_bench.models import load_model
from owlore_bench.registry import available_methods, build_method
from owlore_bench.train import optimizer_bits
from owlore_bench.train.loop import train
from owlore_bench.train.optimizer_bits import adamw_8bit_state_bytes, check_state_bits, with_state_bits

bnb = pytest.importorskip("bitsandbytes", reason="the 8-bit lever needs bitsandbytes (pip install bitsandbytes)")
SEQ = 16


def tiny(method_name: str = "full_ft", config: dict | None = None):
    torch.manual_seed(0)
    model, _ = load_model("tiny-llama", dtype="fp32", device="cpu")
    method = build_method(method_name, config or {})
    return method.prepare(model), method


def trained(steps: int = 3, method_name: str = "full_ft", **train_settings):
    """(summary, weights) after `steps` fp32 loop steps on fixed synthetic batches; no clipping, constant lr."""
    model, method = tiny(method_name)
    cfg = TrainConfig(steps=steps, batch_size=2, max_length=SEQ, grad_clip=0.0, lr=1e-2, weight_decay=0.01,
                      schedule="constant", progress=False, **train_settings)
    with tempfile.TemporaryDirectory() as out_dir:
        summary = train(model, method, SyntheticBatches(model.config.vocab_size, SEQ), cfg, out_dir)
    assert summary["status"] == "ok", summary["error"]
    return summary, {name: value.detach().clone() for name, value in model.state_dict().items()}


def tiny_numels() -> list[int]:
    model, _ = tiny()
    return [p.numel() for p in model.parameters()]


def test_8bit_state_estimate_equals_the_closed_form():
    """bnb's layout: < 4096 elements -> 2 fp32 moments; else 2 uint8 moments + 2 fp32 absmax per 256-block,
    + 2 shared 1-KiB quantile maps. tiny-llama has both sizes and a partial block (259 x 64 = 16576 = 64.75 x 256)."""
    numels = tiny_numels()
    assert min(numels) < optimizer_bits.MIN_8BIT_SIZE <= max(numels) and 259 * 64 in numels
    small = sum(8 * n for n in numels if n < 4096)
    large = sum(2 * n + 8 * -(-n // 256) for n in numels if n >= 4096)
    assert adamw_8bit_state_bytes(numels) == small + large + 2048
    estimate = estimate_memory("tiny-llama", "full_ft", batch_size=1, seq_len=8, dtype="fp32", optimizer_state_bits=8)
    assert estimate["optimizer"] == small + large + 2048  # fp32 AdamW: 8 x 181184 + step counts = 1449628


def test_8bit_loop_equals_bitsandbytes_directly_and_its_ledger_the_estimate():
    """3 loop steps with optimizer_state_bits 8 = bnb.optim.AdamW8bit called by hand on the same model and
    batches (bit-identical expected; tolerance 0), and the measured optimizer bytes = the estimate."""
    summary, loop_weights = trained(optimizer_state_bits=8)
    model, _ = tiny()
    manual = bnb.optim.AdamW8bit([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.01)
    batches = SyntheticBatches(model.config.vocab_size, SEQ)
    torch.manual_seed(0)  # the loop seeds before its first step
    for step in range(3):
        model(**batches.batch(step, 2)).loss.backward()
        manual.step()
        manual.zero_grad(set_to_none=True)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(loop_weights[name], value, rtol=0, atol=0, msg=name)
    _, plain_weights = trained(optimizer_state_bits=32)
    assert any(not torch.equal(plain_weights[k], loop_weights[k]) for k in plain_weights), "8 bits changed nothing"
    estimate = estimate_memory("tiny-llama", "full_ft", batch_size=2, seq_len=SEQ, dtype="fp32",
                               optimizer_state_bits=8)
    assert summary["peak_mem_optimizer_bytes"] == estimate["optimizer"] == adamw_8bit_state_bytes(tiny_numels())


def test_8bit_with_update_in_backward_is_the_same_update():
    """The in-backward hook steps bnb's optimizer over a one-parameter view: same weights as the normal step."""
    _, normal = trained(optimizer_state_bits=8)
    _, in_backward = trained(optimizer_state_bits=8, update_in_backward=True)
    for name, value in normal.items():
        torch.testing.assert_close(in_backward[name], value, rtol=1e-6, atol=1e-7, msg=name)


def test_8bit_keeps_each_groups_settings():
    """LoRA+-style groups (own lr, weight decay, extra keys) survive the swap."""
    model, method = tiny()
    params = list(model.parameters())
    optimizer = torch.optim.AdamW([{"params": params[:2], "lr": 0.5, "tag": "a"},
                                   {"params": params[2:], "weight_decay": 0.3}], lr=1e-3, betas=(0.8, 0.9), eps=1e-6)
    swapped = with_state_bits(optimizer, 8, "test")
    assert isinstance(swapped, bnb.optim.AdamW8bit)
    first, second = swapped.param_groups
    assert (first["lr"], first["tag"], first["params"]) == (0.5, "a", params[:2])
    assert (second["lr"], second["weight_decay"], second["betas"], second["eps"]) == (1e-3, 0.3, (0.8, 0.9), 1e-6)
    assert with_state_bits(optimizer, 32, "test") is optimizer


def test_8bit_refused_for_a_non_adamw_optimizer_in_one_line(tmp_path, tiny_data, capsys):
    out = tmp_path / "run"
    assert main(["train", "--method", "galore", "--model", "tiny-llama", "--data", str(tiny_data), "--steps", "1",
                 "--template", "plain", "--out", str(out), "--set", "train.optimizer_state_bits=8"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "optimizer_state_bits" in error and "galore_torch" in error, error
    assert not out.exists()  # refused before anything is written


def test_8bit_refused_where_bitsandbytes_cannot_run_it(monkeypatch):
    """One line naming the device (bitsandbytes before 0.48 has no CPU kernel), and the pip line when absent."""
    check_state_bits(8, "cpu")  # bitsandbytes >= 0.48 runs 8-bit AdamW on the CPU: no refusal here

    def no_kernel(self, closure=None):
        raise NotImplementedError("no kernel for cpu")

    monkeypatch.setattr(bnb.optim.AdamW8bit, "step", no_kernel)
    with pytest.raises(UserError, match="does not run on cpu with bitsandbytes"):
        check_state_bits(8, "cpu")
    monkeypatch.setitem(__import__("sys").modules, "bitsandbytes", None)
    with pytest.raises(UserError, match="pip install bitsandbytes"):
        check_state_bits(8, "cpu")
    check_state_bits(32, "cpu")  # 32 bits needs nothing


def test_offload_on_cpu_changes_nothing_and_claims_no_savings():
    """On CPU save_on_cpu moves nothing: same weights (bit-identical), same activation bytes, 0 offloaded;
    combined with checkpointing and updates in backward too (no conflict between the levers)."""
    for settings in ({}, {"grad_checkpointing": True, "update_in_backward": True}):
        plain, plain_weights = trained(**settings)
        offloaded, offloaded_weights = trained(offload_activations=True, **settings)
        for name, value in plain_weights.items():
            torch.testing.assert_close(offloaded_weights[name], value, rtol=0, atol=0, msg=name)
        assert offloaded["peak_mem_activations_bytes"] == plain["peak_mem_activations_bytes"] > 0
        assert offloaded["peak_mem_activations_offloaded_bytes"] == 0
        assert "peak_mem_activations_offloaded_bytes" not in plain


def test_estimator_moves_the_saved_tensors_off_the_device():
    """Estimated as on an accelerator: every saved tensor leaves the device; checkpointed layer inputs stay."""
    shape = dict(batch_size=2, seq_len=SEQ, dtype="fp32")
    plain = estimate_memory("tiny-llama", "full_ft", **shape)
    offload = estimate_memory("tiny-llama", "full_ft", offload_activations=True, **shape)
    assert offload["activations"] == 0 and offload["activations_offloaded"] >= plain["activations"]
    assert offload["total"] == plain["total"] - plain["activations"]
    checkpointed = estimate_memory("tiny-llama", "full_ft", grad_checkpointing=True, **shape)
    both = estimate_memory("tiny-llama", "full_ft", grad_checkpointing=True, offload_activations=True, **shape)
    layer_inputs = 4 * 2 * SEQ * 64 * 4  # 4 layers x batch x seq x hidden x fp32 (+ rotary cos/sin, positions)
    assert layer_inputs <= both["activations"] < min(1.1 * layer_inputs, checkpointed["activations"])


def fake_estimates(monkeypatch, refusals: dict[tuple[str, str], str], unit: int = 1):
    """estimate_memory replaced by a ledger whose total (in `unit` bytes) drops by a fixed amount per lever;
    (method, setting) pairs in `refusals` raise that UserError."""
    savings = {"grad_checkpointing": 100, "update_in_backward": 20, "offload_activations": 10,
               "optimizer_state_bits": 40}

    def estimate(architecture, method, config, **settings):
        for key, value in settings.items():
            if (method, key) in refusals and value not in (False, 32):
                raise UserError(refusals[(method, key)])
        total = 1000 - sum(savings[k] for k, v in settings.items() if k in savings and v not in (False, 32))
        return {"weights": 0, "gradients": 0, "optimizer": 0, "activations": 0, "total": total * unit}

    monkeypatch.setattr(levers, "estimate_memory", estimate)


def test_lever_matrix_stacks_in_torchtunes_order_and_skips_refusals(monkeypatch):
    fake_estimates(monkeypatch, {("lora", "update_in_backward"): "not offered for lora"})
    matrix = levers.lever_matrix("tiny-llama", {"full_ft": {}, "lora": {}}, batch_size=1, seq_len=8)
    assert list(matrix["full_ft"]) == ["none", "grad_checkpointing", "update_in_backward", "offload_activations",
                                       "optimizer_state_bits=8", "ckpt+in_bwd", "ckpt+in_bwd+offload",
                                       "ckpt+in_bwd+offload+8bit"]
    totals = {column: cell.ledger["total"] for column, cell in matrix["full_ft"].items()}
    assert totals == {"none": 1000, "grad_checkpointing": 900, "update_in_backward": 980, "offload_activations": 990,
                      "optimizer_state_bits=8": 960, "ckpt+in_bwd": 880, "ckpt+in_bwd+offload": 870,
                      "ckpt+in_bwd+offload+8bit": 830}
    lora = matrix["lora"]
    assert lora["update_in_backward"].ledger is None and "not offered" in lora["update_in_backward"].refused
    assert lora["ckpt+in_bwd+offload+8bit"].skipped == ["update_in_backward"]
    assert lora["ckpt+in_bwd+offload+8bit"].ledger["total"] == 1000 - 100 - 10 - 40
    assert levers.best_cell(matrix["full_ft"])[0] == "ckpt+in_bwd+offload+8bit"
    records = levers.matrix_records(matrix)
    assert len(records) == 16 and {r["refused"] for r in records if r["method"] == "full_ft"} == {""}


def test_memory_levers_cli_prints_the_matrix(tmp_path, capsys, monkeypatch):
    """The command's table, refusal lines, each method's best and the CSV in bytes (the estimates themselves are
    faked here: the estimator has its own tests above and in test_estimate.py)."""
    fake_estimates(monkeypatch, {("lora", "update_in_backward"): "not offered for lora"}, unit=2**20)
    out = tmp_path / "levers"
    assert main(["memory", "--model", "tiny-llama", "--methods", "full_ft,lora", "--levers", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = {line.split()[0]: line.split()[1:] for line in printed.splitlines()[2:4]}  # title, header, 2 rows
    assert table["full_ft"] == ["1000.00", "900.00", "980.00", "990.00", "960.00", "880.00", "870.00", "830.00"]
    assert table["lora"] == ["1000.00", "900.00", "n/a", "990.00", "960.00", "900.00*", "890.00*", "850.00*"]
    assert "lora update_in_backward: n/a, not offered for lora" in printed
    assert "lora: smallest 850.00 MiB with ckpt+in_bwd+offload+8bit (without update_in_backward)" in printed
    csv = (out / "levers.csv").read_text().splitlines()
    assert csv[0].startswith("method,levers,skipped,refused,est_weights_bytes") and len(csv) == 17
    assert f",{830 * 2**20}" in csv[8]
    assert main(["memory", "--model", "tiny-llama", "--methods", "lora", "--levers", "--measure"]) == 2


def test_methods_lists_each_package_with_its_installed_version(capsys):
    assert main(["methods"]) == 0
    printed = capsys.readouterr().out
    expected = {"full_ft": "torch", "lora": "peft", "galore": "galore-torch", "owlore": "galore-torch",
                "lisa": "torch", "owlore_fullrank": "torch"}
    for name, package in expected.items():
        assert available_methods()[name].reference_package == package
        assert f"{name}: " in printed
        block = printed.split(f"\n{name}: ", 1)[1] if not printed.startswith(f"{name}: ") else printed
        assert block.splitlines()[1].strip() == f"package: {package} {version(package)}"
    from owlore_bench.commands.methods import installed_version

    assert installed_version("no-such-distribution-owlore") == "not installed"


def test_train_config_offers_only_32_or_8_bits():
    with pytest.raises(ValueError):
        TrainConfig(optimizer_state_bits=16)
    assert json.loads(TrainConfig(optimizer_state_bits=8).model_dump_json())["optimizer_state_bits"] == 8
    assert copy.deepcopy(TrainConfig()).offload_activations is False
