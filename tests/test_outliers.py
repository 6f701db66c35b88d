"""OWL outlier ratios: the metric by hand, the streamed column statistics, cache, ratio files, layer finder, CLI."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from conftest import run_cli

from owlore_bench.analysis.outliers import (
    cached_outlier_ratios,
    calibration_text,
    calibration_windows,
    column_sq_means,
    layer_outlier_ratio,
    read_ratio_file,
    scored_modules,
)
from owlore_bench.errors import UserError
from owlore_bench.models import byte_tokenizer, tiny_llama
from owlore_bench.train.layers import always_trained_parameters, decoder_layers


def test_layer_outlier_ratio_by_hand():
    # Module A: W = [[1, 1], [1, 20]], s = [1, 4] → scores [[1, 2], [1, 40]].
    # Module B: W = [[2, 2]], s = [1, 1] → scores [[2, 2]].
    # All six scores: 1, 2, 1, 40, 2, 2 → mean 8; M = 2 → threshold 16 → one outlier (40) of 6 = 16.67 %.
    weights = [torch.tensor([[1.0, 1.0], [1.0, 20.0]]), torch.tensor([[2.0, -2.0]])]
    sq_means = [torch.tensor([1.0, 4.0]), torch.tensor([1.0, 1.0])]
    assert layer_outlier_ratio(weights, sq_means, threshold=2.0) == pytest.approx(100 / 6)
    assert layer_outlier_ratio(weights, sq_means, threshold=5.0) == pytest.approx(0.0)  # 40 is not > 40


def test_the_mean_is_pooled_over_the_layer_not_taken_per_module():
    # Module A scores all 10, module B all 1: pooled mean 5.5, M = 1.5 → threshold 8.25 → A's 4 of 8 are outliers
    # (50 %). Against each module's own mean no score exceeds 1.5 × itself (0 %).
    weights = [torch.full((2, 2), 10.0), torch.full((2, 2), 1.0)]
    sq_means = [torch.ones(2), torch.ones(2)]
    assert layer_outlier_ratio(weights, sq_means, threshold=1.5) == pytest.approx(50.0)


def test_column_statistics_are_the_mean_over_sequences_of_summed_squared_inputs():
    model, _ = tiny_llama(seed=0)
    windows = torch.randint(0, 256, (3, 10), generator=torch.Generator().manual_seed(0))
    target = decoder_layers(model)[2].mlp.down_proj
    captured = []
    handle = target.register_forward_pre_hook(lambda module, inputs: captured.append(inputs[0].detach().clone()))
    with torch.no_grad():
        for row in windows:
            model(input_ids=row[None], use_cache=False)
    handle.remove()
    expected = sum(x.reshape(-1, x.shape[-1]).pow(2).sum(0) for x in captured) / 3
    streamed = column_sq_means(model, windows, batch_size=2)
    assert len(streamed) == 4 and set(streamed[2]) == set(scored_modules(decoder_layers(model)[2]))
    assert streamed[2]["mlp.down_proj"] == pytest.approx(expected, rel=1e-4)


def test_cache_second_call_is_instant_and_keyed_by_threshold(isolated_cache):
    model, _ = tiny_llama(seed=0)
    windows = calibration_windows(calibration_text(None), byte_tokenizer(), n=4, length=48)
    first, info = cached_outlier_ratios(model, windows, threshold=3.0)
    started = time.perf_counter()
    second, again = cached_outlier_ratios(model, windows, threshold=3.0)
    assert not info["cached"] and again["cached"] and time.perf_counter() - started < 2.0
    assert np.array_equal(first, second)
    other, other_info = cached_outlier_ratios(model, windows, threshold=5.0)
    assert not other_info["cached"] and (other <= first).all()
    assert len(list(isolated_cache.glob("outliers/*.json"))) == 2


def test_calibration_windows_are_seeded_and_sized(tmp_path):
    path = tmp_path / "calib.json"
    path.write_text(json.dumps([{"instruction": "word " * 50, "input": "", "output": "x"}]))
    text = calibration_text(path)
    one = calibration_windows(text, byte_tokenizer(), n=5, length=16)
    assert one.shape == (5, 16) and torch.equal(one, calibration_windows(text, byte_tokenizer(), n=5, length=16))
    with pytest.raises(UserError, match="fewer than one window"):
        calibration_windows("short", byte_tokenizer(), n=1, length=64)


def test_reference_ratio_file_reads(shared_data):
    ratios = read_ratio_file(shared_data / "reference" / "owlore_llama2_7b_outlier_ratio_M13.txt", 32)
    assert len(ratios) == 32 and (ratios > 0).all()


@pytest.mark.parametrize("lines, message", [("1\n2\n", "has 2 lines but the model has 3"),
                                            ("1\n-2\n3\n", "negative"), ("1\nabc\n3\n", "one number per line")])
def test_bad_ratio_file_is_one_clear_error(tmp_path, lines, message):
    path = tmp_path / "r.txt"
    path.write_text(lines)
    with pytest.raises(UserError, match=message):
        read_ratio_file(path, 3)


def test_layer_finder_llama_gpt2_peft_and_unsupported():
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    model, _ = tiny_llama()
    assert decoder_layers(model) is model.model.layers
    wrapped = get_peft_model(tiny_llama()[0], LoraConfig(r=2, target_modules=["q_proj"]))
    assert len(decoder_layers(wrapped)) == 4
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=300, n_positions=64))
    assert decoder_layers(gpt2) is gpt2.transformer.h
    assert len(scored_modules(gpt2.transformer.h[0])) == 4  # Conv1D: c_attn, c_proj, c_fc, mlp.c_proj
    assert {id(p) for p in always_trained_parameters(model)} == {id(p) for p in (
        model.model.embed_tokens.weight, model.model.norm.weight, model.lm_head.weight)}
    with pytest.raises(UserError, match="model.layers, transformer.h"):
        decoder_layers(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_outliers_cli_writes_table_json_and_plot(tmp_path, isolated_cache):
    done = run_cli("outliers", "--model", "tiny-llama", "--n", "4", "--seq-len", "32", "--threshold", "3",
                   "--out", str(tmp_path / "o"), env={"OWLORE_BENCH_CACHE": str(isolated_cache)})
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "o" / "outliers.json").read_text())
    assert [row["index"] for row in result["layers"]] == [0, 1, 2, 3]
    assert {"outlier_ratio_percent", "probability", "pl_alpha_hill"} <= set(result["layers"][0])
    assert sum(row["probability"] for row in result["layers"]) == pytest.approx(1.0)
    assert (tmp_path / "o" / "outliers.png").stat().st_size > 1000
    assert "Spearman" in done.stdout
    bad = run_cli("outliers", "--model", "tiny-llama", "--threshold", "0", "--out", str(tmp_path / "b"))
    errors = [line for line in bad.stderr.splitlines() if line.startswith("owlore-bench: error")]
    assert bad.returncode == 2 and len(errors) == 1 and "--threshold" in errors[0] and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_smollm2_outlier_ratios(tmp_path):
    from owlore_bench.analysis.outliers import tokenizer_for
    from owlore_bench.models import load_model

    model, _ = load_model("smollm2-135m", dtype="fp32", device="cpu")
    windows = calibration_windows(calibration_text(None), tokenizer_for(model), n=8, length=128)
    ratios, _ = cached_outlier_ratios(model, windows, use_cache=False)
    assert ratios.shape == (30,) and (ratios >= 0).all() and ratios.sum() > 0


def _reference_ratio(layer: torch.nn.Module, inputs: dict[str, torch.Tensor], threshold: float) -> float:
    """OWL's D_l computed independently, in float64 numpy from the full captured inputs (not the streamed sums):
    A_ij = |W_ij| · ||X_j||_2 / sqrt(n_sequences), pooled over all of the layer's Linears."""
    scores = []
    for name, module in scored_modules(layer).items():
        x = inputs[name].double().numpy()  # (sequences, tokens, in)
        norms = np.sqrt((x ** 2).sum(axis=(0, 1)) / x.shape[0])
        scores.append((np.abs(module.weight.detach().double().numpy()) * norms[None, :]).ravel())
    pooled = np.concatenate(scores)
    return 100.0 * np.count_nonzero(pooled > threshold * pooled.mean()) / pooled.size


@pytest.mark.slow
def test_smollm2_ratios_match_an_independent_reference_on_three_layers():
    from owlore_bench.analysis.outliers import outlier_ratios, tokenizer_for
    from owlore_bench.models import load_model

    model, _ = load_model("smollm2-135m", dtype="fp32", device="cpu")
    windows = calibration_windows(calibration_text(None), tokenizer_for(model), n=4, length=64)
    layers = decoder_layers(model)
    captured: dict[int, dict[str, list[torch.Tensor]]] = {index: {} for index in (0, 1, 2)}
    hooks = [module.register_forward_pre_hook(
        lambda module, args, index=index, name=name: captured[index].setdefault(name, []).append(args[0].detach()))
        for index in captured for name, module in scored_modules(layers[index]).items()]
    with torch.no_grad():
        model(input_ids=windows, use_cache=False)
    for hook in hooks:
        hook.remove()
    ours = outlier_ratios(model, windows, threshold=13.0)
    for index, inputs in captured.items():
        reference = _reference_ratio(layers[index], {name: torch.cat(xs) for name, xs in inputs.items()}, 13.0)
        assert reference > 0 and ours[index] == pytest.approx(reference, abs=1e-6), index
