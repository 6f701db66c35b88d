"""Training data by name on the Hugging Face hub.

- `hf://<owner>/<repo>/<path/in/repo>[@<revision>]`: one file of a dataset repo, fetched with
  huggingface_hub.hf_hub_download (repo_type="dataset") into the hub's own cache (HF_HOME), so a second run reads
  it offline; e.g. the official OwLore data `hf://pengxiang/OwLore_Dataset/merge/merged_json.json@<revision>`.
- `hf://<owner>/<repo>/<folder>/[@<revision>]` (a trailing slash): every `.json` file directly in that folder,
  in name order, as LMFlow reads a dataset folder (`--dataset_path data/gsm`; LMFlow globs `*.json` in
  file-system order, which the hub does not have, so name order is this suite's choice). The official sets
  without a single known file name (`gsm/`, `alpaca_gpt4/`) are named this way.
- `hf-dataset://<owner>/<repo>[:<split>]`: a dataset through datasets.load_dataset (split default "train").

Each fetch returns the facts a run records in summary.json (`data_sources`): the repo, the revision asked for,
the commit it resolved to, the file and the sha256 of the bytes read. Every failure (no such repo / file /
revision, no network) is one UserError line naming the repo and the file. Offline, that line comes at once:
before the hub's client is asked (it retries a refused connection 5 times, 1+2+4+8+8 s apart: ~23 s of waiting),
one probe of the endpoint says whether it answers at all, and a file is then read from the cache alone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from owlore_bench.downloads import sha256_of
from owlore_bench.errors import UserError, one_line

FILE_SCHEME = "hf://"
DATASET_SCHEME = "hf-dataset://"
PROBE_TIMEOUT_S = 5.0  # seconds the probe waits for the endpoint; a refused connection or failed DNS lookup
# answers at once, so this only bounds a network that drops packets (the client's own timeout is 10 s a try)


def is_hub_name(text: str) -> bool:
    return text.startswith((FILE_SCHEME, DATASET_SCHEME))


def parse_file_name(text: str) -> tuple[str, str, str]:
    """`hf://owner/repo/path/in/repo@rev` -> (repo, path, revision); revision "main" when omitted."""
    body, _, revision = text.removeprefix(FILE_SCHEME).partition("@")
    parts = body.split("/")
    if len(parts) < 3 or not all(parts) or (_ and not revision):
        raise UserError(f"data.path {text!r}: expected hf://<owner>/<repo>/<path/in/repo>@<revision>, e.g. "
                        f"hf://pengxiang/OwLore_Dataset/merge/merged_json.json@main")
    return "/".join(parts[:2]), "/".join(parts[2:]), revision or "main"


def unreachable() -> str | None:
    """Why the hub endpoint (HF_ENDPOINT) cannot be reached, or None when it answers: one HEAD request through
    huggingface_hub's own session (its proxies and certificates), no retries. Any HTTP answer, an error status
    too, counts as reachable; the hub's client then reports what is wrong. Online this costs one request."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    try:
        get_session().head(constants.ENDPOINT, timeout=PROBE_TIMEOUT_S)
    except Exception as error:  # noqa: BLE001 — no HTTP answer at all; requests' errors are OSErrors, httpx's not
        return one_line(error)
    return None


def is_folder_name(text: str) -> bool:
    return text.startswith(FILE_SCHEME) and text.partition("@")[0].endswith("/")


def folder_files(text: str) -> list[str]:
    """The `hf://repo/file@revision` name of every .json file directly in an `hf://repo/folder/@revision` folder
    (listed through the hub's tree API), in name order; one line when the folder holds none or cannot be listed."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    body, _, revision = text.removeprefix(FILE_SCHEME).partition("@")
    repo, folder = "/".join(body.split("/")[:2]), "/".join(body.split("/")[2:]).rstrip("/")
    revision = revision or "main"
    offline = unreachable()
    if offline:
        raise UserError(f"hub dataset {repo}, folder {folder}/@{revision}: the hub cannot be reached ({offline}), "
                        f"and a folder is listed on the hub each time; connect, or name its files one by one "
                        f"(hf://{repo}/{folder}/<file>.json@{revision}: read from the cache once fetched), or pass "
                        f"a local copy")
    try:
        entries = list(HfApi().list_repo_tree(repo, path_in_repo=folder, repo_type="dataset", revision=revision))
    except (HfHubHTTPError, OSError) as error:
        raise UserError(f"hub dataset {repo}, folder {folder}/@{revision}: could not be listed "
                        f"({type(error).__name__}); check the repo, folder and revision, and the network") from None
    files = sorted(entry.path for entry in entries
                   if getattr(entry, "size", None) is not None and entry.path.endswith(".json"))
    if not files:
        raise UserError(f"hub dataset {repo}, folder {folder}/@{revision}: holds no .json file")
    return [f"{FILE_SCHEME}{repo}/{path}@{revision}" for path in files]


def fetch_file(text: str) -> tuple[Path, dict[str, Any]]:
    """The local (cached) copy of an `hf://` file and its facts {source, repo, revision, commit, file, sha256}."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo, filename, revision = parse_file_name(text)
    where = f"hub dataset {repo}, file {filename}"
    offline = unreachable()  # then the cache alone: the client would wait ~23 s in retries first
    try:
        local = Path(hf_hub_download(repo, filename, repo_type="dataset", revision=revision,
                                     local_files_only=offline is not None))
    except RevisionNotFoundError:
        raise UserError(f"{where}: revision {revision!r} does not exist; give a branch, tag or commit of the "
                        f"repo after '@'") from None
    except RepositoryNotFoundError:
        raise UserError(f"{where}: no such dataset repo (or it is private: log in with `hf auth login`)") from None
    except EntryNotFoundError as error:  # also raised offline when the file is not cached (LocalEntryNotFound)
        if type(error).__name__ != "LocalEntryNotFoundError":
            raise UserError(f"{where}@{revision}: no such file at that revision") from None
        why = f" ({offline})" if offline else ""
        raise UserError(f"{where}@{revision}: the hub cannot be reached{why} and the file is not in the cache "
                        f"(HF_HOME); connect once, or pass a local copy") from None
    except (HfHubHTTPError, OSError) as error:
        raise UserError(f"{where}@{revision}: could not be fetched ({type(error).__name__}: "
                        f"{str(error).splitlines()[0] if str(error) else 'no detail'})") from None
    facts = {"source": text, "repo": repo, "revision": revision, "commit": _snapshot_commit(local, filename),
             "file": filename, "sha256": sha256_of(local)}
    return local, facts


def _snapshot_commit(local: Path, filename: str) -> str | None:
    """The commit hf_hub_download resolved to: the cache keeps files under snapshots/<commit>/<filename>."""
    parts = local.parts
    depth = len(Path(filename).parts)
    return parts[-depth - 1] if len(parts) > depth + 1 and parts[-depth - 2] == "snapshots" else None


def load_rows(text: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows of an `hf-dataset://repo[:split]` dataset and its facts {source, repo, split, fingerprint,
    sha256 of the rows as canonical JSON}."""
    repo, _, split = text.removeprefix(DATASET_SCHEME).partition(":")
    split = split or "train"
    try:
        import datasets
    except ImportError:
        raise UserError(f"data.path {text!r}: needs the `datasets` package (pip install datasets)") from None
    try:
        table = datasets.load_dataset(repo, split=split)
    except (ValueError, OSError, ConnectionError) as error:  # DatasetNotFoundError is a FileNotFoundError
        detail = str(error).splitlines()[0] if str(error) else "no detail"
        raise UserError(f"hub dataset {repo}, split {split}: could not be loaded ({type(error).__name__}: "
                        f"{detail})") from None
    rows = table.to_list()
    canonical = json.dumps(rows, sort_keys=True, ensure_ascii=False).encode("utf-8")
    facts = {"source": text, "repo": repo, "split": split, "fingerprint": getattr(table, "_fingerprint", None),
             "rows": len(rows), "sha256": hashlib.sha256(canonical).hexdigest()}
    return rows, facts
