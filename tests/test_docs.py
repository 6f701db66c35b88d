"""The documentation: the MkDocs site builds under --strict, the README stays a short front door, every module
and file path the pages name still exists (a module moved by a reorganisation leaves a stale name behind), and
every page the site promises is in its navigation."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
MAX_README_LINES = 250

# The pages the site must have, and the modules its API reference must document (`::: module` directives).
REQUIRED_PAGES = [
    "index.md", "getting-started.md", "architecture.md", "methods.md", "experiments-and-runner.md", "memory.md",
    "evaluation.md", "mt-bench.md", "scale-out.md", "performance.md", "adding-a-method.md", "known-limitations.md",
]
REQUIRED_API = [
    "owlore_bench", "owlore_bench.registry", "owlore_bench.config", "owlore_bench.train.loop",
    "owlore_bench.memory.ledger", "owlore_bench.memory.estimate", "owlore_bench.evaluation.harness",
    "owlore_bench.analysis.outliers", "owlore_bench.reporting.tables", "owlore_bench.reporting.render",
    "owlore_bench.results",
]

DOTTED = re.compile(r"(?<![\w.])owlore_bench(?:\.[A-Za-z_]\w*)+")
# Paths into the source folders, e.g. owlore_bench/train/loop.py, methods/full_ft.py, configs/paper/mmlu_{a,b}.yaml
# (not results/ or runs/: commands there name output folders that need not exist).
SOURCE_PATH = re.compile(r"(?<![\w./-])(?:owlore_bench|methods|tasks|benchmarks|scripts|tests|configs)/[\w./{},-]*")
BRACES = re.compile(r"\{([^{}]*)\}")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def build_site(site_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's banner about its successor
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(REPO_ROOT / "mkdocs.yml"), "--site-dir", str(site_dir)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_site_builds_in_strict_mode(tmp_path):
    """Broken links and anchors, pages outside the nav, docstrings mkdocstrings cannot read: any warning fails."""
    result = build_site(tmp_path / "site")
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()


def test_the_readme_is_a_short_front_door():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, f"README.md: {lines} lines (at most {MAX_README_LINES}); move detail into docs/"


def resolves(dotted: str) -> bool:
    """An importable module, or an attribute of one (owlore_bench.reporting.tables.build_table)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:end]))
        except ModuleNotFoundError:
            continue
        for name in parts[end:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def expand_braces(path: str) -> list[str]:
    match = BRACES.search(path)
    if match is None:
        return [path]
    return [expanded for option in match.group(1).split(",")
            for expanded in expand_braces(path[:match.start()] + option + path[match.end():])]


def stale_names(text: str) -> list[str]:
    stale = [name for name in sorted(set(DOTTED.findall(text))) if not resolves(name)]
    for mention in sorted(set(SOURCE_PATH.findall(text))):
        mention = mention.rstrip(".,")
        stale += [path for path in expand_braces(mention) if not (REPO_ROOT / path).exists()]
    return stale


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(REPO_ROOT)))
def test_every_module_and_path_named_exists(page):
    stale = stale_names(page.read_text(encoding="utf-8"))
    assert stale == [], f"{page.relative_to(REPO_ROOT)} names what does not exist (moved or renamed?): {stale}"


def test_the_stale_name_check_catches_old_paths():
    """Names from before the reorganisation into rooms are reported; their new homes are not."""
    old = "`owlore_bench/memory.py`, `owlore_bench.report.build_table`, `owlore_bench/loop.py`, `methods/nope.py`"
    assert set(stale_names(old)) == {"owlore_bench.report.build_table", "owlore_bench/loop.py",
                                     "owlore_bench/memory.py", "methods/nope.py"}
    new = ("`owlore_bench/memory/ledger.py`, `owlore_bench.reporting.tables.build_table`, `owlore_bench/train/`, "
           "`configs/paper/mmlu_{llama2_7b,mistral_7b}.yaml`, owlore_bench.cli.")
    assert stale_names(new) == []
    assert stale_names("owlore_bench.reporting.tables.no_such_function") != []


def test_readme_links_resolve():
    """mkdocs checks the links between pages; the README's links (into docs/ and results/) are checked here."""
    targets = [t.split("#", 1)[0] for t in LINK.findall(README.read_text(encoding="utf-8")) if "://" not in t]
    missing = [t for t in targets if t and not (REPO_ROOT / t).exists()]
    assert missing == [], f"README.md links to missing files: {missing}"


def nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return []


def test_every_promised_page_is_in_the_nav():
    config = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = nav_pages(config["nav"])
    missing = [page for page in REQUIRED_PAGES if page not in listed]
    assert missing == [], f"pages missing from mkdocs.yml's nav: {missing}"
    assert [page for page in listed if not (DOCS / page).is_file()] == []
    api_pages = [page for page in listed if page.startswith("api/")]
    documented = {match for page in api_pages
                  for match in re.findall(r"^:::\s*(\S+)", (DOCS / page).read_text(encoding="utf-8"), re.M)}
    assert [module for module in REQUIRED_API if module not in documented] == [], "API reference incomplete"
