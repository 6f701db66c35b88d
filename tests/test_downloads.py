"""Pinned downloads: the package-index fallback (for sdists newer pip refuses) and the sha256 pin."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from owlore_bench import downloads
from owlore_bench.errors import UserError


@pytest.fixture
def local_index(tmp_path, monkeypatch, isolated_cache):
    """A PEP 503 simple index served on loopback holding one sdist, with pip failing as pip 26 does for bigbench."""
    payload = b"not really a tarball, but bytes with a known digest"
    files = tmp_path / "files"
    files.mkdir()
    (files / "demo-1.0.tar.gz").write_bytes(payload)
    page = tmp_path / "simple" / "demo"
    page.mkdir(parents=True)
    # a relative link, as PEP 503 allows
    (page / "index.html").write_text('<a href="../../files/demo-1.0.tar.gz#sha256=x">demo-1.0.tar.gz</a>')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # loopback only
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_address[1]}/simple")
    monkeypatch.setattr(downloads, "_pip_download", lambda *args: "ERROR: Distributions from PyPI cannot declare "
                                                                  "direct URL dependencies.")
    yield payload, hashlib.sha256(payload).hexdigest()
    server.shutdown()


def test_an_sdist_pip_refuses_is_taken_from_the_index_and_verified(local_index, isolated_cache):
    payload, digest = local_index
    path = downloads.pip_download("demo==1.0", "demo-1.0.tar.gz", digest, source=True)
    assert path.read_bytes() == payload and path.parent == isolated_cache / "downloads"
    assert downloads.pip_download("demo==1.0", "demo-1.0.tar.gz", digest) == path  # cached: no second fetch


def test_a_file_whose_checksum_differs_from_the_pin_is_refused(local_index):
    with pytest.raises(UserError, match="does not match the pinned"):
        downloads.pip_download("demo==1.0", "demo-1.0.tar.gz", "0" * 64, source=True)
    assert not list((downloads.cache_dir() / "downloads").glob("demo*"))


def _build_once_under_the_lock(entry: str, log: str) -> None:
    """A cache builder as models.smollm2_checkpoint is: check, build slowly, publish; logs each build."""
    import time

    with downloads.cache_lock(Path(entry)):
        if not Path(entry).exists():
            with open(log, "a") as handle:
                handle.write("built\n")
            time.sleep(0.5)
            Path(entry).write_text("done")


def test_two_processes_on_a_cold_cache_build_an_entry_once(tmp_path, monkeypatch):
    import multiprocessing

    monkeypatch.setenv("OWLORE_BENCH_CACHE", str(tmp_path / "cache"))
    entry, log = tmp_path / "cache" / "entry", tmp_path / "builds.log"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_build_once_under_the_lock, args=(str(entry), str(log))) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert log.read_text() == "built\n" and entry.read_text() == "done"
