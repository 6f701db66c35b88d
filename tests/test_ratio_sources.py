"""Where a ratio file may come from: a path, `data:` under the data root, or a URL pinned by sha256 (the paper
configs fetch the official LLaMA2-7B file from pixeli99/OwLore at e415973 this way). The URL path is exercised
against a loopback HTTP server, since no public host is reachable here."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from owlore_bench.analysis.outliers import read_ratio_file
from owlore_bench.errors import UserError

RATIOS = b"1.5\n3.0\n0.5\n"


@pytest.fixture
def server():
    """(base URL, list of paths requested) of a loopback server that serves RATIOS at /ratios.txt."""
    requested = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            requested.append(self.path)
            found = self.path == "/ratios.txt"
            self.send_response(200 if found else 404)
            self.send_header("Content-Length", str(len(RATIOS) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(RATIOS)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requested
    httpd.shutdown()


def test_pinned_url_is_fetched_once_checked_and_then_read_from_the_cache(server, isolated_cache):
    base, requested = server
    spec = f"{base}/ratios.txt#sha256={hashlib.sha256(RATIOS).hexdigest()}"
    assert read_ratio_file(spec, 3).tolist() == [1.5, 3.0, 0.5]
    assert read_ratio_file(spec, 3).tolist() == [1.5, 3.0, 0.5]
    assert requested == ["/ratios.txt"]  # the second read came from the cache


@pytest.mark.parametrize("suffix, message", [
    ("/ratios.txt", "has no pin; append #sha256="),
    (f"/ratios.txt#sha256={'0' * 64}", "not the pinned 0000"),
    (f"/missing.txt#sha256={'0' * 64}", "could not download"),
])
def test_a_bad_url_spec_is_one_line_naming_the_field(server, isolated_cache, suffix, message):
    with pytest.raises(UserError, match=message) as error:
        read_ratio_file(server[0] + suffix, 3, field="owlore.outlier_ratios_file")
    assert str(error.value).startswith("owlore.outlier_ratios_file: ") and "\n" not in str(error.value)
    assert not list((isolated_cache / "downloads").rglob("*.txt"))  # nothing unverified is kept


def test_no_network_is_one_line(isolated_cache):
    with pytest.raises(UserError, match="could not download http://127.0.0.1:9/r.txt"):
        read_ratio_file(f"http://127.0.0.1:9/r.txt#sha256={'0' * 64}", 3)  # port 9 (discard): refused


def test_data_spec_reads_the_official_file_from_the_data_root(shared_data):
    ratios = read_ratio_file("data:reference/owlore_llama2_7b_outlier_ratio_M13.txt", 32)
    assert round(ratios[1] / ratios.sum(), 4) == 0.1351  # layer 1's official sampling probability


def test_offline_a_pinned_url_falls_back_to_the_same_bytes_in_the_data_roots_reference_folder(
        tmp_path, isolated_cache, monkeypatch):
    monkeypatch.setenv("OWLORE_BENCH_DATA", str(tmp_path / "data"))
    (tmp_path / "data" / "reference").mkdir(parents=True)
    (tmp_path / "data" / "reference" / "other.txt").write_bytes(b"9\n9\n9\n")
    (tmp_path / "data" / "reference" / "official.txt").write_bytes(RATIOS)
    spec = f"http://127.0.0.1:9/ratios.txt#sha256={hashlib.sha256(RATIOS).hexdigest()}"  # refused: offline
    assert read_ratio_file(spec, 3).tolist() == [1.5, 3.0, 0.5]
    with pytest.raises(UserError, match="could not download"):  # no file with those bytes: the download's line
        read_ratio_file(f"http://127.0.0.1:9/r.txt#sha256={'0' * 64}", 3)
