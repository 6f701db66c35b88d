"""`owlore-bench memory --paper`: the paper's setting (LLaMA2-7B, batch 16 x 512, bf16, gradient checkpointing,
the paper's six methods) in one flag, and totals in GB (the paper's unit) beside GiB."""

from __future__ import annotations

import pytest

import owlore_bench.commands.memory as memory_command
from owlore_bench.cli import build_parser, main
from owlore_bench.commands.memory_paper import GB, GIB, PAPER_METHODS, apply_paper_preset, gb_totals_lines
from owlore_bench.errors import UserError


def preset(*flags: str):
    args = build_parser().parse_args(["memory", "--paper", *flags])
    apply_paper_preset(args)
    return args


def test_paper_sets_the_papers_shape_and_methods():
    args = preset()
    assert (args.model, args.batch_size, args.seq_len, args.dtype, args.grad_checkpointing) == (
        "llama2-7b", 16, 512, "bf16", True)
    assert args.methods == PAPER_METHODS == "full_ft,lora,galore,lisa,owlore,owlore_fullrank"
    assert preset("--methods", "owlore").methods == "owlore"
    assert preset("--batch-size", "16", "--dtype", "bf16").batch_size == 16  # the paper's own values may be given
    assert preset("--levers").grad_checkpointing is False  # the lever matrix has a checkpointing column of its own


@pytest.mark.parametrize("flags, named", [(["--batch-size", "8"], "--batch-size 8"),
                                          (["--model", "mistral-7b"], "--model mistral-7b"),
                                          (["--seq-len", "256", "--dtype", "fp32"], "--seq-len 256, --dtype fp32")])
def test_a_shape_flag_that_contradicts_the_paper_is_one_line(flags, named):
    with pytest.raises(UserError, match=f"--paper sets the paper's shape itself; drop {named}"):
        preset(*flags)


def test_without_paper_nothing_changes():
    args = build_parser().parse_args(["memory"])
    apply_paper_preset(args)
    assert (args.model, args.grad_checkpointing, args.methods) == ("smollm2-135m", False, None)


def test_totals_in_gib_and_gb_with_the_papers_claim():
    rows = [{"method": "owlore", "est_total_bytes": 20_866_000_000}, {"method": "lora", "est_total_bytes": GIB}]
    assert gb_totals_lines(rows) == [
        "estimated total, GiB = 2^30 bytes and GB = 10^9 bytes (the paper's unit):",
        "  owlore: 19.43 GiB = 20.87 GB (the paper: 21 GB)", f"  lora: 1.00 GiB = {GIB / GB:.2f} GB"]


def test_the_command_estimates_the_papers_setting(monkeypatch, capsys):
    """Wiring: --paper reaches the estimator and the printed title, and the GB lines follow the table."""
    asked = []

    def fake_estimate(architecture, method_name, method_config=None, **shape):
        asked.append((architecture, method_name, shape))
        return {"weights": GIB, "gradients": 0, "optimizer": 0, "activations": 0, "total": GIB,
                "trainable_params": 1}

    monkeypatch.setattr(memory_command, "estimate_memory", fake_estimate)
    assert main(["memory", "--paper", "--methods", "owlore"]) == 0
    printed = capsys.readouterr().out
    (architecture, method, shape), = asked
    assert (architecture, method) == ("llama2-7b", "owlore")
    assert {key: shape[key] for key in ("batch_size", "seq_len", "dtype", "grad_checkpointing")} == {
        "batch_size": 16, "seq_len": 512, "dtype": "bf16", "grad_checkpointing": True}
    assert printed.startswith("llama2-7b, batch 16 x seq 512, bf16, gradient checkpointing on; estimate")
    assert "  owlore: 1.00 GiB = 1.07 GB (the paper: 21 GB)" in printed


@pytest.mark.slow
def test_the_papers_owlore_estimate_is_the_papers_21_gb(capsys):
    """The real estimate (~10 s): OwLore on LLaMA2-7B at the paper's setting, 20.87 GB next to the paper's 21."""
    assert main(["memory", "--paper", "--methods", "owlore"]) == 0
    assert "  owlore: 19.43 GiB = 20.87 GB (the paper: 21 GB)" in capsys.readouterr().out
