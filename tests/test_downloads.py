"""Pinned downloads: the package-index fallback, the sha256 pin, the way out, and the served-check."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from owlore_bench import downloads
from owlore_bench.errors import UserError
from owlore_bench.pins import PinnedFile

PAYLOAD = b"not really a wheel, but bytes with a known digest"
DEMO = PinnedFile(project="demo", version="1.0", filename="demo-1.0-py3-none-any.whl",
                  sha256=hashlib.sha256(PAYLOAD).hexdigest(), purpose="a test file",
                  way_out="set DEMO_FILE to a copy you have")


@pytest.fixture
def local_index(tmp_path, monkeypatch, isolated_cache):
    """A PEP 503 simple index served on loopback holding one file, with pip failing to fetch it."""
    files = tmp_path / "files"
    files.mkdir()
    (files / DEMO.filename).write_bytes(PAYLOAD)
    page = tmp_path / "simple" / "demo"
    page.mkdir(parents=True)
    # a relative link with the sha256 fragment, as PEP 503 allows
    (page / "index.html").write_text(f'<a href="../../files/{DEMO.filename}#sha256={DEMO.sha256}">x</a>')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # loopback only
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_address[1]}/simple")
    monkeypatch.setattr(downloads, "_pip_download", lambda *args: "ERROR: No matching distribution found")
    yield tmp_path
    server.shutdown()


def test_a_file_pip_refuses_is_taken_from_the_index_by_name_and_verified(local_index, isolated_cache):
    path = downloads.pip_download(DEMO)
    assert path.read_bytes() == PAYLOAD and path.parent == isolated_cache / "downloads"
    (local_index / "files" / DEMO.filename).unlink()
    assert downloads.pip_download(DEMO) == path  # cached: no second fetch


def test_a_file_whose_checksum_differs_from_the_pin_is_refused(local_index):
    with pytest.raises(UserError, match="does not match the pinned") as error:
        downloads.pip_download(replace(DEMO, sha256="0" * 64))
    assert "DEMO_FILE" in str(error.value)  # the way out
    assert not list((downloads.cache_dir() / "downloads").glob("demo*"))


def test_a_vanished_file_is_one_line_naming_the_way_out(local_index):
    (local_index / "files" / DEMO.filename).unlink()
    (local_index / "simple" / "demo" / "index.html").write_text("<html></html>")  # the index lists nothing
    with pytest.raises(UserError) as error:
        downloads.pip_download(DEMO)
    message = str(error.value)
    assert "\n" not in message and DEMO.filename in message and message.endswith(DEMO.way_out)


def test_unserved_names_each_missing_or_changed_pin(local_index):
    assert downloads.unserved((DEMO,)) == []
    missing = replace(DEMO, filename="demo-1.1-py3-none-any.whl")  # the planted bug: a wrong filename
    changed = replace(DEMO, sha256="f" * 64)
    problems = downloads.unserved((missing, DEMO, changed))
    assert len(problems) == 2
    assert problems[0].startswith("demo-1.1-py3-none-any.whl (a test file) is no longer served")
    assert "not the pinned" in problems[1]


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
