"""Datasets by name (owlore_bench/datasets/hub.py) through the real huggingface_hub / datasets clients.

No hub is reachable here, so a loopback HTTP server in a thread serves files in the hub's resolve layout
(/datasets/<repo>/resolve/<revision>/<path>, HEAD and GET, with X-Repo-Commit, ETag and Content-Length, and the
hub's X-Error-Code on a 404), and huggingface_hub's endpoint is pointed at it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest

from owlore_bench.datasets.hub import parse_file_name
from owlore_bench.datasets.records import read_sources
from owlore_bench.errors import UserError

REPO = "someone/OwLore_Dataset"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FILE = "merge/merged_json.json"
CONTENT = json.dumps({"type": "text2text", "instances": [{"input": "Q: 2+2?\nA:", "output": " 4"}]}).encode()


class HubFiles(BaseHTTPRequestHandler):
    """The hub's resolve endpoint for one dataset repo at one commit (branch "main" = that commit)."""

    files = {FILE: CONTENT}
    requests: list[str] = []

    def do_HEAD(self):  # noqa: N802 — http.server's naming
        self._answer(body=False)

    def do_GET(self):  # noqa: N802
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        type(self).requests.append(f"{self.command} {self.path}")
        prefix = f"/datasets/{REPO}/resolve/"
        path = unquote(self.path.split("?")[0])
        if path.startswith(f"/api/datasets/{REPO}/tree/"):
            return self._tree(path.removeprefix(f"/api/datasets/{REPO}/tree/"))
        revision, _, filename = path.removeprefix(prefix).partition("/")
        if not path.startswith(prefix):
            return self._error("RepoNotFound", 404)
        if revision not in ("main", COMMIT):
            return self._error("RevisionNotFound", 404)
        if filename not in self.files:
            return self._error("EntryNotFound", 404)
        content = self.files[filename]
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha1(content).hexdigest()}"')
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if body:
            self.wfile.write(content)

    def _tree(self, rest: str) -> None:
        """The hub's tree API (/api/datasets/<repo>/tree/<revision>/<folder>): files and subfolders of one folder."""
        revision, _, folder = rest.partition("/")
        if revision not in ("main", COMMIT):
            return self._error("RevisionNotFound", 404)
        inside = [name for name in self.files if name.rpartition("/")[0] == folder]
        if not inside:
            return self._error("EntryNotFound", 404)
        listing = [{"type": "file", "path": name, "size": len(self.files[name]), "oid": "0" * 40} for name in inside]
        listing.append({"type": "directory", "path": f"{folder}/nested.json", "oid": "1" * 40})  # not a file
        content = json.dumps(listing).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def _error(self, code: str, status: int) -> None:
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


def _point_hub_at(monkeypatch, tmp_path, endpoint: str) -> None:
    """HF_ENDPOINT / HF_HOME for this test; huggingface_hub read them at import, so its constants are set too."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)


@pytest.fixture
def hub(monkeypatch, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubFiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _point_hub_at(monkeypatch, tmp_path, f"http://127.0.0.1:{server.server_address[1]}")
    HubFiles.requests = []
    yield HubFiles
    server.shutdown()
    server.server_close()


def test_a_hub_file_is_fetched_cached_and_its_repo_revision_commit_and_sha256_recorded(hub, tmp_path):
    records, facts = read_sources(f"hf://{REPO}/{FILE}@main")
    assert records == [{"type": "text2text", "input": "Q: 2+2?\nA:", "output": " 4"}]
    assert facts == [{"source": f"hf://{REPO}/{FILE}@main", "repo": REPO, "revision": "main", "commit": COMMIT,
                      "file": FILE, "sha256": hashlib.sha256(CONTENT).hexdigest()}]
    assert any(r.startswith("GET ") for r in hub.requests)
    assert list((tmp_path / "hf" / "hub").rglob("merged_json.json"))  # in the hub's own cache (HF_HOME)
    hub.requests.clear()
    again, _ = read_sources(f"hf://{REPO}/{FILE}@{COMMIT}")  # a pinned commit already cached: nothing fetched
    assert again == records and not any(r.startswith("GET ") for r in hub.requests)


@pytest.mark.parametrize("name, expected", [
    (f"hf://{REPO}/merge/absent.json@main", f"hub dataset {REPO}, file merge/absent.json@main: no such file"),
    (f"hf://{REPO}/{FILE}@v9", f"hub dataset {REPO}, file {FILE}: revision 'v9' does not exist"),
])
def test_a_missing_file_or_revision_is_one_line_naming_the_repo_and_file(hub, name, expected):
    with pytest.raises(UserError) as caught:
        read_sources(name)
    assert str(caught.value).startswith(expected) and "\n" not in str(caught.value)


def _closed_port() -> int:
    with ThreadingHTTPServer(("127.0.0.1", 0), HubFiles) as closed:  # a port that was just free: refused
        return closed.server_address[1]


# Before the probe (hub.unreachable), huggingface_hub retried the refused connection 5 times, 1+2+4+8+8 s apart:
# measured 23.5 s for a file and 23.7 s for a folder (which then escaped as a raw httpx2.ConnectError traceback).
# Now measured 0.05-0.2 s; the bound leaves room for a loaded machine.
OFFLINE_BOUND_S = 10


@pytest.mark.parametrize("name, expected", [
    (f"hf://{REPO}/{FILE}@main", f"hub dataset {REPO}, file {FILE}@main: the hub cannot be reached (ConnectError"),
    (f"hf://{REPO}/merge/@main", f"hub dataset {REPO}, folder merge/@main: the hub cannot be reached (ConnectError"),
])
def test_no_network_is_one_line_naming_the_repo_and_file_within_seconds(monkeypatch, tmp_path, name, expected):
    _point_hub_at(monkeypatch, tmp_path, f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        read_sources(name)
    took = time.monotonic() - started
    message = str(caught.value)
    assert "\n" not in message and message.startswith(expected), message
    assert took < OFFLINE_BOUND_S, f"{took:.1f} s to say the hub cannot be reached"


def test_a_cached_file_is_read_at_once_when_the_hub_goes_offline(hub, monkeypatch, tmp_path):
    records, facts = read_sources(f"hf://{REPO}/{FILE}@main")
    _point_hub_at(monkeypatch, tmp_path, f"http://127.0.0.1:{_closed_port()}")  # the same cache (HF_HOME)
    started = time.monotonic()
    again, facts_again = read_sources(f"hf://{REPO}/{FILE}@main")
    assert time.monotonic() - started < OFFLINE_BOUND_S
    assert (again, facts_again) == (records, facts) and facts[0]["commit"] == COMMIT


@pytest.mark.parametrize("name", ["hf://only-owner/file.json", "hf://a/b/c.json@"])
def test_a_malformed_hub_name_shows_the_expected_shape(name):
    with pytest.raises(UserError, match="expected hf://<owner>/<repo>/<path/in/repo>@<revision>"):
        parse_file_name(name)


def test_an_hf_dataset_goes_through_datasets_load_dataset(tmp_path, monkeypatch):
    """datasets.load_dataset takes a hub id or a local folder the same way; a local folder keeps this offline."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"instruction": "a", "input": "", "output": "b"}\n'
                                        '{"instruction": "c", "input": "d", "output": "e"}\n')
    records, facts = read_sources(f"hf-dataset://{folder}:train", limit=1)
    assert records == [{"instruction": "a", "input": "", "output": "b"}]
    assert facts[0]["repo"] == str(folder) and facts[0]["split"] == "train" and len(facts[0]["sha256"]) == 64
    with pytest.raises(UserError, match=f"hub dataset {folder}, split nope: could not be loaded"):
        read_sources(f"hf-dataset://{folder}:nope")


def test_a_hub_folder_reads_every_json_file_in_it_in_name_order_as_lmflow_reads_a_dataset_folder(hub):
    second = json.dumps({"type": "text_only", "instances": [{"text": "B comes later"}]}).encode()
    hub.files = {FILE: CONTENT, "merge/b_part.json": second, "merge/notes.txt": b"not data", "mmlu/x.json": second}
    try:
        records, facts = read_sources(f"hf://{REPO}/merge/@main")
    finally:
        hub.files = {FILE: CONTENT}
    assert [fact["file"] for fact in facts] == ["merge/b_part.json", FILE]  # .json only, sorted, this folder only
    assert records[0] == {"type": "text_only", "text": "B comes later"} and records[1]["output"] == " 4"
    with pytest.raises(UserError, match=f"hub dataset {REPO}, folder absent/@main: could not be listed"):
        read_sources(f"hf://{REPO}/absent/@main")
