"""The documentation: the MkDocs site builds under --strict, the README stays a short front door, every module
and file path the pages name still exists (a module moved by a reorganisation leaves a stale name behind), and
every page the site promises is in its navigation.

The built site is checked too (built once per run, `built_site`), for what --strict does not see: a list that
renders as a paragraph of literal "- ", docstring text the API pages lose (a `<placeholder>` read as an HTML tag,
underscores read as italics), a page that loads something from another host, the front page's method list and
report links, and (marked `browser`, in headless Chromium) the quickstart table's width."""

from __future__ import annotations

import html
import importlib
import inspect
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

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


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    """The site, built once for every test here that reads it."""
    site = tmp_path_factory.mktemp("docs") / "site"
    result = build_site(site)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return site


def test_the_site_builds_in_strict_mode(built_site):
    """Broken links and anchors, pages outside the nav, docstrings mkdocstrings cannot read: any warning fails."""
    assert (built_site / "index.html").is_file()


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


def committed_result_links(page: Path) -> list[str]:
    """The results/ files a page links to, as paths from the repository root."""
    targets = [t.split("#", 1)[0] for t in LINK.findall(page.read_text(encoding="utf-8")) if "://" not in t]
    resolved = [os.path.relpath((page.parent / t).resolve(), REPO_ROOT) for t in targets if t]
    return [t for t in resolved if t.startswith("results/")]


def test_every_linked_result_is_committed_not_ignored():
    """A results/ folder the docs link to must be in git, or a fresh clone's site build fails (it did, once:
    results/decide_pilot was linked from the front page but ignored by .gitignore's `results/*`)."""
    if not (REPO_ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: nothing to say about what a clone holds")
    linked = sorted({t for page in pages() for t in committed_result_links(page)})
    assert linked, "no page links into results/: has the link pattern changed?"
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *linked], cwd=REPO_ROOT,
                             capture_output=True, text=True).stdout.split()
    assert ignored == [], f"linked but ignored by .gitignore (add a `!results/<name>/` line): {ignored}"


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


# ---- the built site -------------------------------------------------------------------------------------------

LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d+\.)\s")
TAGS = re.compile(r"<[^>]*>")
CODE_SPAN = re.compile(r"``.*?``|`[^`]*`", re.S)
# Docstring words a renderer can lose: a <placeholder> (read as an HTML tag) or a word with an underscore or
# asterisk (read as emphasis), outside code spans.
FRAGILE = re.compile(r"\S*(?:<[^<>\s]+>|[_*])\S*")
# Placeholders the API pages lost before their docstrings quoted them (issue 32), each on its page.
KNOWN_PLACEHOLDERS = {"api/reporting.html": ["<column>_mean", "<task>_<metric>[_<k>shot]", "forgetting_delta_ce_*",
                                             "'k/n <status>'", "an <img> each"],
                      "api/core.html": ["<dir>/config.json"]}
# Attributes whose URL the browser fetches by itself (<a href> waits for a click and is left out).
FETCHED = {"src", "srcset", "href", "poster", "data", "action", "formaction", "background", "manifest"}


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of each <p> (tags inside it dropped)."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.paragraphs: list[str] = []
        self._paragraph: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {name: value or "" for name, value in attrs}))
        if tag == "p":
            self._paragraph = []

    def handle_endtag(self, tag):
        if tag == "p" and self._paragraph is not None:
            self.paragraphs.append("".join(self._paragraph))
            self._paragraph = None

    def handle_data(self, data):
        if self._paragraph is not None:
            self._paragraph.append(data)


def site_pages(site: Path) -> list[Path]:
    """The site's own pages (the report.html copies under results/ are the report's, tested with it)."""
    return [page for page in sorted(site.rglob("*.html")) if not page.relative_to(site).parts[0] == "results"]


def list_paragraphs(text: str) -> list[str]:
    """Lines of <p> paragraphs that start with a list marker: a list Python-Markdown did not see (it needs a blank
    line before a list that follows a paragraph; GitHub does not, so the page looked right there)."""
    return [line.strip() for paragraph in Tags(text).paragraphs for line in paragraph.split("\n")
            if LIST_MARKER.match(line)]


def external_fetches(text: str) -> list[str]:
    """'<tag> attribute=url' for every URL on another host that the page loads by itself: scripts, stylesheets,
    fonts, icons, preconnects, images, frames, and url(...) / @import in inline CSS.

    The rule: a page may LINK anywhere (an <a href> to a paper or a repository loads nothing until it is clicked)
    but may LOAD nothing from another host, so the site reads the same from disk on an air-gapped machine. A
    relative URL or a data: URI is this site's own; http(s) and protocol-relative (//host) URLs are not."""
    found = []
    for tag, attributes in Tags(text).tags:
        for name, value in attributes.items():
            urls = [part.split()[0] for part in value.split(",") if part.strip()] if name == "srcset" else [value]
            if tag != "a" and name in FETCHED:
                found += [f"<{tag}> {name}={url}" for url in urls if urlsplit(url.strip()).netloc]
            if name == "style":
                found += [f"<{tag}> style {url}" for url in css_fetches(value)]
    for style in re.findall(r"<style[^>]*>(.*?)</style>", text, re.S | re.I):
        found += [f"<style> {url}" for url in css_fetches(style)]
    return found


def css_fetches(css: str) -> list[str]:
    """url(...) and @import targets on another host."""
    targets = re.findall(r"url\(\s*['\"]?([^)'\"]*)", css) + re.findall(r"@import\s+['\"]([^'\"]+)", css)
    return [target for target in targets if urlsplit(target.strip()).netloc]


def page_text(page: Path) -> str:
    """A built page's visible text: scripts and styles dropped, tags removed, entities decoded."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", page.read_text(encoding="utf-8"), flags=re.S)
    return html.unescape(TAGS.sub("", text))


def documented_docstrings(api_page: Path) -> list[tuple[str, str]]:
    """(object name, docstring) of what each `::: module` directive of an API page renders: the module and its
    public classes and functions with their public methods (mkdocstrings' `filters: ["!^_"]`), or the names in
    the directive's `members:` list."""
    found = []
    for directive, members in re.findall(r"^:::\s*(\S+)((?:\n[ \t]+.*)*)", api_page.read_text(encoding="utf-8"),
                                         re.M):
        module = importlib.import_module(directive)
        listed = re.search(r"members:\s*\[([^\]]*)\]", members)
        if listed:
            objects = {name.strip(): getattr(module, name.strip()) for name in listed.group(1).split(",")}
        else:
            found.append((directive, module.__doc__ or ""))
            objects = {name: value for name, value in vars(module).items() if not name.startswith("_")
                       and (inspect.isclass(value) or inspect.isfunction(value))
                       and getattr(value, "__module__", None) == directive}
        for name, value in objects.items():
            found.append((name, value.__doc__ or ""))
            if inspect.isclass(value):
                found += [(f"{name}.{attribute}", member.__doc__ or "") for attribute, member in vars(value).items()
                          if not attribute.startswith("_") and isinstance(member, (property, classmethod,
                                                                                   staticmethod))
                          or not attribute.startswith("_") and inspect.isfunction(member)]
    return found


def lost_docstring_words(docstring: str, rendered: str) -> list[str]:
    """The docstring's fragile words (outside code spans) that the rendered page text does not contain."""
    words = {word.strip(".,;:()'\"") for word in FRAGILE.findall(CODE_SPAN.sub(" ", docstring))}
    return sorted(word for word in words if word and word not in rendered)


def test_no_list_renders_as_a_paragraph(built_site):
    found = {str(page.relative_to(built_site)): lines for page in site_pages(built_site)
             if (lines := list_paragraphs(page.read_text(encoding="utf-8")))}
    assert found == {}, ("lists rendered as paragraphs of literal '- ' (put a blank line before the list): "
                         f"{found}")


def test_nested_lists_are_indented_four_spaces():
    """Python-Markdown nests a list item only at 4 spaces; at 2 (GitHub's habit) it silently flattens the list."""
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        fenced = False
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            fenced ^= line.lstrip().startswith("```")
            if not fenced and re.match(r"^ {1,3}(?:[-*+]|\d+\.)\s", line):
                found.append(f"{page.relative_to(REPO_ROOT)}:{number}")
    assert found == [], f"list items indented 1-3 spaces (nest with 4): {found}"


def test_api_pages_keep_every_docstring_word(built_site):
    """A `<placeholder>` outside backticks is an HTML tag to Markdown and vanishes; `_a/_b` and `x_*` turn into
    italics. Quote them in backticks. Checked for every docstring the API pages render, and the known ones by name."""
    for page, words in KNOWN_PLACEHOLDERS.items():
        rendered = page_text(built_site / page)
        assert [word for word in words if word not in rendered] == [], f"{page} lost text"
    lost = {}
    for api_page in sorted((DOCS / "api").glob("*.md")):
        rendered = page_text(built_site / "api" / api_page.with_suffix(".html").name)
        for name, docstring in documented_docstrings(api_page):
            if words := lost_docstring_words(docstring, rendered):
                lost[name] = words
    assert lost == {}, f"docstring text the API pages lose (quote it in backticks): {lost}"


def test_the_built_pages_load_nothing_from_another_host(built_site):
    found = {str(page.relative_to(built_site)): urls for page in sorted(built_site.rglob("*.html"))
             if (urls := external_fetches(page.read_text(encoding="utf-8")))}
    found.update({str(sheet.relative_to(built_site)): urls for sheet in sorted(built_site.rglob("*.css"))
                  if (urls := css_fetches(sheet.read_text(encoding="utf-8")))})
    assert found == {}, f"pages that load from another host (the site must read the same offline): {found}"
    assert (built_site / "search" / "search_index.js").is_file(), "the offline plugin's search index for file://"


def test_the_checkers_catch_each_planted_bug():
    """Each check above, fed a page with the bug it guards against."""
    assert list_paragraphs("<p>What it shows:\n- <strong>Memory</strong>: less\n- Speed</p>") == [
        "- Memory: less", "- Speed"]
    assert list_paragraphs("<p>Text - with a dash.</p><ul><li>an item</li></ul>") == []
    planted = ['<link href="https://fonts.googleapis.com/css?family=Roboto" rel="stylesheet">',
               '<link rel="preconnect" href="https://fonts.gstatic.com">', '<script src="https://unpkg.com/x"></script>',
               '<img src="//cdn.example/a.png">', '<img srcset="a.png 1x, https://cdn.example/b.png 2x">',
               '<div style="background: url(https://cdn.example/c.png)"></div>',
               "<style>@import 'https://cdn.example/d.css';</style>"]
    for page in planted:
        assert len(external_fetches(page)) == 1, page
    assert external_fetches('<a href="https://arxiv.org/abs/2405.18380">paper</a><script src="assets/x.js"></script>'
                            '<img src="data:image/png;base64,AA=="><link href="../extra.css" rel="stylesheet">') == []
    assert lost_docstring_words("Columns <column>_mean/_std/_n and `<kept>`.", "Columns _mean/std/n and <kept>.") == [
        "<column>_mean/_std/_n"]
    assert lost_docstring_words("Columns `<column>_mean` and x_y.", "Columns <column>_mean and x_y.") == []


# ---- what the front page and the methods page promise --------------------------------------------------------

METHOD_NAME = re.compile(r"`([a-z][a-z0-9_]*)`")


def methods_in_front_page() -> list[str]:
    """The method names in index.md's "The methods" list (the paper's six, then the zoo)."""
    text = (DOCS / "index.md").read_text(encoding="utf-8")
    section = text.split("## The methods", 1)[1].split("\n## ", 1)[0]
    return [name for item in section.split("\n- ")[1:] for name in METHOD_NAME.findall(item)]


def methods_in_methods_table() -> list[str]:
    """The first column of docs/methods.md's method table (its first table)."""
    lines = (DOCS / "methods.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| method |"))
    rows = itertools.takewhile(lambda line: line.startswith("|"), lines[start + 2:])  # past the header and |---|
    return [METHOD_NAME.fullmatch(row.split("|")[1].strip()).group(1) for row in rows]


def test_the_front_page_lists_every_registered_method_once():
    from owlore_bench.registry import available_methods

    listed = methods_in_front_page()
    assert len(listed) == len(set(listed)), f"docs/index.md names a method twice: {listed}"
    assert sorted(listed) == sorted(available_methods()), "docs/index.md's method list differs from the registry"


def test_the_methods_table_has_one_row_per_registered_method():
    """docs/methods.md's table is written by hand (its columns say where each default comes from); this keeps its
    rows the registry's methods, so a new method cannot be left out or a removed one left in."""
    from owlore_bench.registry import available_methods

    rows = methods_in_methods_table()
    assert len(rows) == len(set(rows)), f"docs/methods.md's table has a method twice: {rows}"
    assert sorted(rows) == sorted(available_methods()), "docs/methods.md's table differs from the registry"


def test_the_front_page_links_every_committed_report(built_site):
    """The report.html files are copied into the site (docs/_hooks/results_files.py carries them: each is one
    self-contained page) and linked relatively from the front page, so the links work from disk too."""
    reports = sorted(path.relative_to(REPO_ROOT).as_posix() for path in REPO_ROOT.glob("results/*/report.html"))
    assert reports, "no committed report.html"
    links = {attributes["href"] for tag, attributes in Tags((built_site / "index.html").read_text("utf-8")).tags
             if tag == "a" and attributes.get("href", "").endswith("report.html")}
    assert sorted(links) == reports, f"the front page links {sorted(links)}, the repository has {reports}"
    for link in links:
        copied = built_site / link
        assert copied.is_file() and copied.read_bytes() == (REPO_ROOT / link).read_bytes(), link


# ---- in a browser ---------------------------------------------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "chromium-headless-shell", "google-chrome")
# Runs in the page after load: per table of the article, how far its scroll box overflows, the most lines any
# cell of a row takes, and the first-column cells (method names) that take more than one line.
MEASURE = """<script>window.addEventListener("load", () => {
  const lines = (cell) => { const range = document.createRange(); range.selectNodeContents(cell);
    return Math.round(range.getBoundingClientRect().height / parseFloat(getComputedStyle(cell).lineHeight)); };
  const out = [...document.querySelectorAll("article table")].map((table) => {
    const box = table.closest(".md-typeset__scrollwrap") || table, rows = [...table.querySelectorAll("tbody tr")];
    return {first: table.rows[0].cells[0].textContent.trim(), overflow: box.scrollWidth - box.clientWidth,
            row_lines: Math.max(...rows.map(r => Math.max(...[...r.cells].map(lines)))),
            split_names: rows.map(r => r.cells[0]).filter(c => lines(c) > 1).map(c => c.textContent.trim())};
  });
  const pre = document.createElement("pre"); pre.id = "measured"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});</script>"""


def measure_tables(page: Path, width: int) -> list[dict]:
    browser = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if browser is None:
        pytest.skip(f"no headless browser ({', '.join(BROWSERS)}) on PATH; `make test-browser` installs chromium")
    probe = page.with_name(f"measure-{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    # --no-sandbox: Chromium refuses to run as root with its sandbox (CI containers run as root)
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--no-first-run", f"--user-data-dir={page.parent / '.chromium'}",
                          f"--window-size={width},1000", "--virtual-time-budget=3000", "--dump-dom", probe.as_uri()],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    return json.loads(html.unescape(re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S).group(1)))


@pytest.mark.browser
def test_results_tables_fit_a_laptop_screen(built_site):
    """At 1280 px the quickstart table (ten columns) neither scrolls sideways nor wraps a row onto more lines,
    and no method name in the zoo table breaks mid-word (docs/stylesheets/extra.css)."""
    quickstart = next(t for t in measure_tables(built_site / "getting-started.html", 1280) if t["first"] == "Method")
    assert quickstart["overflow"] <= 1 and quickstart["row_lines"] == 1, quickstart
    for table in measure_tables(built_site / "methods.html", 1280):
        assert table["split_names"] == [], table


def _numbers(value) -> set[float]:
    """Every number in a config default (tuples and lists flattened)."""
    if isinstance(value, bool) or value is None:
        return set()
    if isinstance(value, (int, float)):
        return {float(value)}
    if isinstance(value, (list, tuple)):
        return set().union(*map(_numbers, value)) if value else set()
    return set()


def test_the_methods_table_lists_the_registry_and_its_defaults():
    """docs/methods.md's first table is written by hand: every registered method has a row and no other row does,
    and every number its defaults column states is one of that method's config defaults (source notes in
    parentheses, such as "(the apollo-torch README)", are left out)."""
    from owlore_bench.registry import available_methods

    text = (DOCS / "methods.md").read_text()
    table = text.split("\n\n")[2].splitlines()[2:]
    rows = {re.match(r"\| `([^`]+)` \|", line).group(1): line.rsplit("|", 2)[1] for line in table}
    methods = available_methods()
    assert sorted(rows) == sorted(methods)
    wrong = {}
    for name, cell in rows.items():
        stated = re.sub(r"\([^()]*[a-zA-Z][^()]*\)", "", cell.split("as `galore`:")[-1])  # drop source notes
        stated = re.sub(r"`[^`]*`", "", stated)
        numbers = {float(n) for n in re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e-?\d+)?", stated)}
        defaults = set().union(*(_numbers(v) for v in methods[name].Config().model_dump().values()), set())
        if numbers - defaults:
            wrong[name] = sorted(numbers - defaults)
    assert wrong == {}
