"""Forgetting (forgetting.json): CE on general text against the base model, the built-in text, the runner hook."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from owlore_bench.datasets.general_text import BUILTIN, load_general_text, strip_header
from owlore_bench.errors import UserError
from owlore_bench.evaluation import forgetting
from owlore_bench.models import byte_tokenizer, tiny_llama

TEXT = "The quick brown fox jumps over the lazy dog while the cat sleeps by the warm fire. " * 8  # 672 bytes
SCHEMA = {"text": str, "sha256": str, "tokens": int, "chunks": int, "window_tokens": int, "base_ce": float,
          "trained_ce": float, "delta_ce": float, "ci95": list}


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "general.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def perturbed(model: torch.nn.Module, scale: float = 0.5, seed: int = 1) -> torch.nn.Module:
    """A copy of `model` with Gaussian noise (std `scale`) added to every weight: a stand-in for a bad fine-tune."""
    import copy

    noisy = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in noisy.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)
    return noisy


def test_chunk_ce_equals_a_direct_log_softmax_computation():
    model, tokenizer = tiny_llama()
    windows = forgetting.token_windows(tokenizer, TEXT, window_tokens=32)
    assert windows.shape == (len(TEXT.encode()) // 32, 32)
    got = forgetting.chunk_cross_entropy(model, windows, batch_chunks=3)  # 3 does not divide 21: a ragged last batch
    expected = []
    with torch.no_grad():
        for chunk in windows:  # one chunk at a time, log-probabilities gathered by hand
            log_probs = torch.log_softmax(model(input_ids=chunk[None]).logits[0].double(), dim=-1)
            expected.append(-log_probs[torch.arange(31), chunk[1:]].mean().item())
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_a_model_with_known_logits_has_the_closed_form_ce():
    """Logits that are 0 everywhere give CE = log(vocab) on every token, whatever the text."""

    class Uniform(torch.nn.Module):
        vocab = 259

        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids):
            logits = torch.zeros(*input_ids.shape, self.vocab) * self.weight
            return type("Output", (), {"logits": logits})()

    windows = forgetting.token_windows(byte_tokenizer(), TEXT, window_tokens=64)
    np.testing.assert_allclose(forgetting.chunk_cross_entropy(Uniform(), windows), math.log(259), rtol=1e-6)


def test_a_perturbed_model_forgets_and_the_base_model_does_not(tmp_path: Path, text_file: Path):
    base, tokenizer = tiny_llama()
    cache = tmp_path / "cache"
    same = forgetting.write_forgetting(tmp_path / "base", base, tokenizer, str(text_file), "tiny-llama", cache,
                                       load_base=None, window_tokens=32)
    assert same["delta_ce"] == 0 and same["ci95"] == [0.0, 0.0] and same["base_ce"] == same["trained_ce"]
    worse = forgetting.write_forgetting(tmp_path / "run", perturbed(base), tokenizer, str(text_file), "tiny-llama",
                                        cache, load_base=lambda: pytest.fail("base CE must come from the cache"),
                                        window_tokens=32)
    assert worse["base_ce"] == same["base_ce"]
    assert worse["delta_ce"] > 0 and 0 < worse["ci95"][0] <= worse["delta_ce"] <= worse["ci95"][1]
    assert worse["delta_ce"] == pytest.approx(worse["trained_ce"] - worse["base_ce"])
    again = forgetting.write_forgetting(tmp_path / "again", perturbed(base), tokenizer, str(text_file), "tiny-llama",
                                        cache, load_base=lambda: base, window_tokens=32)
    assert again == worse  # seeded bootstrap: the same record every time


def test_forgetting_json_has_the_schema_the_tables_read(tmp_path: Path, text_file: Path):
    base, tokenizer = tiny_llama()
    forgetting.write_forgetting(tmp_path, perturbed(base, 0.05), tokenizer, str(text_file), "tiny-llama",
                                tmp_path / "cache", load_base=lambda: base, window_tokens=32)
    record = json.loads((tmp_path / forgetting.FORGETTING_FILE).read_text())
    assert {key: type(value) for key, value in record.items()} == SCHEMA
    assert record["text"] == str(text_file) and len(record["sha256"]) == 64
    assert record["chunks"] == len(TEXT.encode()) // 32 and record["tokens"] == 32 * record["chunks"]
    assert len(record["ci95"]) == 2 and record["ci95"][0] <= record["delta_ce"] <= record["ci95"][1]


def test_the_interval_is_a_paired_bootstrap_of_the_mean_difference():
    """Chunks that differ a lot between each other but move together: a paired interval is narrow, an unpaired
    one would straddle 0 (so a bug that resampled base and trained independently fails here)."""
    rng = np.random.default_rng(5)
    base = rng.uniform(2.0, 6.0, size=40)
    trained = base + 0.1 + rng.normal(0, 0.01, size=40)
    low, high = forgetting.paired_interval(base, trained)
    assert 0.09 < low < 0.1 < high < 0.11
    assert forgetting.paired_interval(base, trained) == [low, high]  # seed 0: reproducible


def test_the_base_cache_is_keyed_by_model_dtype_and_text(tmp_path: Path):
    calls = []

    def compute(value):
        return lambda: calls.append(value) or np.array([value, value])

    key = {"model": "m", "dtype": "torch.float32", "sha256": "a", "window_tokens": 8, "tokens": 16}
    assert forgetting.cached_base_ce(tmp_path, key, compute(1.0)).tolist() == [1.0, 1.0]
    assert forgetting.cached_base_ce(tmp_path, dict(key), compute(2.0)).tolist() == [1.0, 1.0]
    assert forgetting.cached_base_ce(tmp_path, {**key, "sha256": "b"}, compute(3.0)).tolist() == [3.0, 3.0]
    assert forgetting.cached_base_ce(tmp_path, {**key, "model": "n"}, compute(4.0)).tolist() == [4.0, 4.0]
    assert calls == [1.0, 3.0, 4.0]


def test_the_builtin_text_is_the_documented_public_domain_slice():
    text = load_general_text(BUILTIN)
    assert text.text.startswith("To Sherlock Holmes she is always THE woman.")
    assert 20_000 <= len(text.text) <= 30_000 and "# " not in text.text[:2]
    assert "Project Gutenberg" not in text.text and text.sha256 == load_general_text(BUILTIN).sha256
    assert strip_header("# a\n# b\n\nbody\n# kept\n") == "body\n# kept\n"


@pytest.mark.parametrize("content, expected", [(None, "not found"), (b"\xff\xfe", "not UTF-8"), (b"  \n", "empty")])
def test_a_bad_text_file_is_one_line_naming_the_field(tmp_path: Path, content, expected):
    path = tmp_path / "text.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=rf"^eval.forgetting: .*{expected}"):
        load_general_text(str(path))


def test_windows_are_consecutive_and_a_long_text_is_cut_at_max_tokens():
    tokenizer = byte_tokenizer()
    windows = forgetting.token_windows(tokenizer, TEXT, window_tokens=50, max_tokens=220)
    assert windows.shape == (4, 50)  # 220 tokens allowed: 4 whole windows, the rest dropped
    assert windows.flatten().tolist() == tokenizer(TEXT, add_special_tokens=False)["input_ids"][:200]


def test_a_text_too_short_for_two_windows_is_one_line():
    with pytest.raises(UserError, match="fewer than 2 windows of 64"):
        forgetting.token_windows(byte_tokenizer(), "short text")


def test_the_experiment_field_accepts_off_and_refuses_a_missing_file_before_training():
    from owlore_bench.config import parse
    from owlore_bench.experiment import EvalConfig

    assert parse(EvalConfig, {}).forgetting == BUILTIN
    assert parse(EvalConfig, {"forgetting": False}).forgetting is None  # YAML `off` reads as False
    assert parse(EvalConfig, {"forgetting": "off"}).forgetting is None
    with pytest.raises(UserError, match="forgetting: .*missing.txt not found"):
        parse(EvalConfig, {"forgetting": "missing.txt"})


def test_the_runner_writes_forgetting_for_every_unit_and_scores_the_base_model_once(tmp_path, tiny_data, text_file,
                                                                                    monkeypatch):
    from owlore_bench import models, runner
    from owlore_bench.config import parse
    from owlore_bench.evaluation import harness
    from owlore_bench.experiment import ExperimentConfig, plan

    monkeypatch.setattr(harness, "evaluate_model_with_samples", lambda *args, **kwargs: ([], {}, {}))
    loads = []
    real_load = models.load_model
    monkeypatch.setattr(models, "load_model", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))
    experiment = parse(ExperimentConfig, {
        "name": "forget", "model": "tiny-llama", "data": {"path": str(tiny_data), "template": "plain"},
        "train": {"steps": 2, "batch_size": 2, "max_length": 32, "lr": 0.05, "progress": False},
        "methods": [{"name": "full_ft"}], "seeds": [0],
        "eval": {"tasks": ["any"], "forgetting": str(text_file)}, "out": str(tmp_path / "out")})
    for unit in plan(experiment):
        assert runner.run_unit(experiment, unit)["status"] == "ok"
    records = {label: json.loads((tmp_path / "out" / label / "seed-0" / "forgetting.json").read_text())
               for label in ("base", "full_ft")}
    assert records["base"]["delta_ce"] == 0
    assert len({record["base_ce"] for record in records.values()}) == 1  # one base measurement for all
    assert records["full_ft"]["delta_ce"] != 0
    assert loads == ["tiny-llama"]  # the base unit's load; the trained unit did not reload the base model
    assert len(list((tmp_path / "out" / forgetting.BASE_CACHE_DIR).glob("*.json"))) == 1
