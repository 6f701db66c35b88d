"""MkDocs hook: links from docs/ pages to repository files outside docs/ (the committed plots in results/).

A page writes `![memory](../results/quickstart/memory.png)`, which GitHub resolves from docs/. For the site this
hook copies every such file that exists into the site under its repository path and points the link there. A link
to a file that does not exist is left as written, so `mkdocs build --strict` fails on it like on any broken link.
Only non-page files are carried (images, tables as CSV/TeX, JSON, and the committed report.html files, which are
self-contained: inline CSS, figures as data: URIs, so the copy opens from the built site on disk too): a Markdown
file outside docs/ would become a page with links of its own, so link those in code spans instead.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

LINK = re.compile(r"(\]\()([^)\s]+)")  # the target of [text](target) and ![alt](target)
CARRIED = {".png", ".svg", ".jpg", ".csv", ".tex", ".json", ".txt", ".html"}


def _repo_file(config, page_src_uri: str, target: str) -> str | None:
    """The repository-relative path of an existing file outside docs/ that `target` points to, else None."""
    if "://" in target or target.startswith(("#", "/", "mailto:")):
        return None
    path = target.split("#", 1)[0]
    repo = Path(config.config_file_path).parent.resolve()
    docs = Path(config.docs_dir).resolve()
    resolved = (docs / posixpath.dirname(page_src_uri) / path).resolve()
    if resolved.suffix not in CARRIED or resolved.is_relative_to(docs) or not resolved.is_relative_to(repo):
        return None
    return resolved.relative_to(repo).as_posix() if resolved.is_file() else None


def on_files(files, config):
    for page in [f for f in files if f.src_uri.endswith(".md")]:
        text = Path(page.abs_src_path).read_text(encoding="utf-8")
        for match in LINK.finditer(text):
            uri = _repo_file(config, page.src_uri, match.group(2))
            if uri and files.get_file_from_path(uri) is None:
                repo = Path(config.config_file_path).parent.resolve()
                files.append(File.generated(config, uri, abs_src_path=str(repo / uri)))
    return files


def on_page_markdown(markdown, page, config, files):
    def retarget(match: re.Match) -> str:
        uri = _repo_file(config, page.file.src_uri, match.group(2))
        if uri is None:
            return match.group(0)
        return match.group(1) + posixpath.relpath(uri, posixpath.dirname(page.file.src_uri) or ".")

    return LINK.sub(retarget, markdown)
