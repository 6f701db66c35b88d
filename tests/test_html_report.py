"""`owlore-bench report DIR --html`: one report.html that references nothing outside itself (checked with the
stdlib's HTML parser, SVGs inside the data: URIs included), shows the stored numbers, figures and provenance,
escapes what it reads, and (marked `browser`) renders to a screenshot that is not blank in headless Chromium.

Input: the committed results/quickstart and results/mtbench_cpu folders, read only (output goes to tmp_path)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from matplotlib.figure import Figure

from owlore_bench.cli import main
from owlore_bench.evaluation.samples import write_samples
from owlore_bench.reporting.html import mtbench_section, provenance_section, svg_data_uri, tables_section
from owlore_bench.reporting.loading import GIB, load_results
from owlore_bench.reporting.mt_bench import question_categories
from owlore_bench.reporting.tables import table_from_results

QUICKSTART = REPO_ROOT / "results" / "quickstart"
MTBENCH = REPO_ROOT / "results" / "mtbench_cpu"
URL_ATTRIBUTES = {"src", "href", "xlink:href", "srcset", "poster", "data", "action", "formaction", "background",
                  "cite", "longdesc", "manifest", "ping"}
BROWSERS = ("chromium", "chromium-browser", "chromium-headless-shell", "google-chrome")


class Page(HTMLParser):
    """Every start tag with its attributes, the text of <style> and <script>, and the tables as lists of rows
    (cells as their text), each table tagged with the id of the <section> it is in."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self.tables: list[tuple[str | None, list[list[str]]]] = []
        self._section: str | None = None
        self._inside: str | None = None
        self._cell: list[str] | None = None
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "section":
            self._section = attributes.get("id")
        elif tag in ("style", "script"):
            self._inside = tag
        elif tag == "table":
            self.tables.append((self._section, []))
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        if attributes.get("style"):
            self.styles.append(attributes["style"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag in ("style", "script"):
            self._inside = None

    def handle_data(self, data):
        if self._inside == "style":
            self.styles.append(data)
        if self._cell is not None:
            self._cell.append(data)
        self.text.append(data)

    def table(self, section: str, first_header: str) -> dict[str, dict[str, str]]:
        """{first cell: {header: cell}} of the table in `section` whose first header is `first_header`."""
        for where, rows in self.tables:
            if where == section and rows and rows[0][0] == first_header:
                return {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
        raise AssertionError(f"no table starting with {first_header!r} in section {section!r}")


def _svg_references(uri: str) -> list[str]:
    """href / xlink:href / url(...) targets inside a data:image/svg+xml;base64 URI that are not #fragments or
    data: URIs; the SVG must also be well-formed XML."""
    svg = base64.b64decode(uri.split(",", 1)[1]).decode("utf-8")
    ElementTree.fromstring(svg)
    targets = re.findall(r'(?:href)\s*=\s*"([^"]*)"', svg) + re.findall(r"url\(\s*['\"]?([^)'\"]*)", svg)
    return [target for target in targets if not target.startswith(("#", "data:"))]


def external_references(text: str) -> list[str]:
    """'<tag> <attribute>=<value>' for everything a browser would fetch from outside the page: URL attributes
    that are neither data: URIs nor #fragments, url(...) and @import in CSS, any <script src> and stylesheet
    <link>, and references inside the embedded SVGs."""
    page = Page(text)
    found = []
    for tag, attributes in page.tags:
        if tag == "script" and "src" in attributes or tag == "link" and "stylesheet" in (attributes.get("rel") or ""):
            found.append(f"<{tag}> {attributes}")
        for name, value in attributes.items():
            value = (value or "").strip()
            if name in URL_ATTRIBUTES and not value.startswith(("data:", "#")):
                found.append(f"<{tag}> {name}={value}")
            elif name in URL_ATTRIBUTES and value.startswith("data:image/svg+xml;base64,"):
                found += [f"<{tag}> svg {target}" for target in _svg_references(value)]
    for style in page.styles:
        found += [f"css url({target})" for target in re.findall(r"url\(\s*['\"]?([^)'\"]*)", style)
                  if not target.startswith(("data:", "#"))]
        found += ["css @import" for _ in re.findall(r"@import", style)]
    return found


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[str, Path]:
    """(report.html of results/quickstart, the folder it was written to), made once through the CLI."""
    out = tmp_path_factory.mktemp("html") / "qs"
    assert main(["report", str(QUICKSTART), "--html", "--no-plots", "--out", str(out)]) == 0
    return (out / "report.html").read_text(encoding="ascii"), out


def test_the_page_references_nothing_outside_itself(report):
    text, out = report
    assert external_references(text) == []
    images = [attributes["src"] for tag, attributes in Page(text).tags if tag == "img"]
    assert len(images) == 6 and all(src.startswith("data:image/svg+xml;base64,") for src in images)
    assert not list(out.glob("*.png")) and (out / "table.md").is_file()  # --no-plots: figures only in the page


def test_the_checker_sees_every_kind_of_outside_reference():
    svg = base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg"><image href="http://x/i.png"/></svg>')
    planted = {'<img src="http://cdn.example/a.png">': "<img> src=http://cdn.example/a.png",
               '<script src="app.js"></script>': "<script> {'src': 'app.js'}",
               '<link rel="stylesheet" href="data:text/css,">': "<link> {'rel': 'stylesheet'",
               "<style>body { background: url(//x/bg.png) }</style>": "css url(//x/bg.png)",
               "<style>@import 'f.css';</style>": "css @import",
               f'<img src="data:image/svg+xml;base64,{svg.decode()}">': "<img> svg http://x/i.png"}
    for html, expected in planted.items():
        assert any(found.startswith(expected) for found in external_references(html)), html
    assert external_references('<a href="#tables">t</a><img src="data:image/png;base64,AA==">') == []


def test_the_table_shows_the_stored_accuracy_memory_and_params(report):
    rows = Page(report[0]).table("tables", "Method")
    assert list(rows) == ["base", "full_ft", "lora", "galore", "lisa", "owlore"]
    for label, cells in rows.items():
        run = QUICKSTART / label / "seed-0"
        for row in json.loads((run / "eval.json").read_text())["rows"]:
            if row["metric"] == "acc":  # the experiment's eval.metric
                assert cells[row["task"]].split()[0] == f"{100 * row['value']:.1f}", (label, row["task"])
        summary = json.loads((run / "summary.json").read_text())
        memory = summary.get("peak_mem_total_bytes")
        assert cells["Peak mem (GiB)"].split()[0] == ("—" if memory is None else f"{memory / GIB:.2f}")
    assert rows["lora"]["Trainable params"] == "4.88M" and rows["base"]["Trainable params"] == "0"


def test_sections_and_provenance_come_from_the_run_folders(report):
    text, _ = report
    page = Page(text)
    sections = [attributes.get("id") for tag, attributes in page.tags if tag == "section"]
    assert sections == ["tables", "figures", "provenance"]  # no MT-Bench scores in the quickstart
    runs = page.table("provenance", "row")
    assert list(runs) == ["base", "full_ft", "lora", "galore", "lisa", "owlore"]
    for label, cells in runs.items():
        summary = json.loads((QUICKSTART / label / "seed-0" / "summary.json").read_text())
        assert cells["commit"] == summary["git"]["commit"][:12] and cells["torch"] == summary["versions"]["torch"]
        assert cells["status"] == summary["status"]
    body = "".join(page.text)
    assert summary["git"]["commit"] in body
    owlore_config = json.loads((QUICKSTART / "owlore" / "seed-0" / "config.json").read_text())
    assert json.dumps(owlore_config, indent=2) in body and '"name": "quickstart"' in body


def test_mt_bench_table_and_radar_show_the_stored_scores():
    results = load_results([MTBENCH])
    page = Page(mtbench_section(results, table_from_results(results)))
    rows = page.table("mt-bench", "Row")
    intervals = (" [", " ±") if question_categories() else ("",)  # categories: the data root's question.jsonl
    for label, cells in rows.items():
        scores = json.loads(next((MTBENCH / label / "seed-0" / "mt_bench").glob("scores-*.json")).read_text())
        assert any(cells["Overall"].startswith(f"{scores['overall']:.2f}{shown}") for shown in intervals)
        assert any(cells["coding"].startswith(f"{scores['categories']['coding']:.2f}{shown}") for shown in intervals)
    assert len(rows) == 6 and [tag for tag, _ in page.tags].count("img") == 1


def test_every_stored_string_is_escaped(tmp_path: Path):
    """A label, an error and a config value that look like HTML come out as text, never as tags."""
    hostile = '<img src="http://evil.example/x.png">'
    run = tmp_path / "exp" / "<b>lisa&co" / "seed-0"
    shutil.copytree(QUICKSTART / "lisa" / "seed-0", run)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "failed", "error": hostile}))
    (run / "config.json").write_text(json.dumps({"method": hostile}))
    results = load_results([tmp_path / "exp"])
    text = tables_section(table_from_results(results)) + provenance_section(results)
    page = Page(text)
    assert external_references(text) == [] and {tag for tag, _ in page.tags} & {"b", "img"} == set()
    assert "<b>lisa&co" in "".join(page.text) and hostile in "".join(page.text)


def test_the_delta_table_shows_the_paired_differences(tmp_path: Path):
    """Runs with per-question outcomes get the delta table: each cell's Δ is the eval.json accuracy difference
    against full_ft (outcomes written to agree with eval.json: the first 100 * acc questions right)."""
    accuracy = {}
    for label in ("full_ft", "lisa"):
        run = tmp_path / "exp" / label / "seed-0"
        shutil.copytree(QUICKSTART / label / "seed-0", run)
        rows = [row for row in json.loads((run / "eval.json").read_text())["rows"] if row["metric"] == "acc"]
        accuracy[label] = {row["task"]: 100 * row["value"] for row in rows}
        write_samples(run, {row["task"]: [{"i": k, "t": 0, "acc": int(k < round(row["n"] * row["value"]))}
                                          for k in range(row["n"])] for row in rows})
    table = table_from_results(load_results([tmp_path / "exp"]), "acc", n_boot=200)
    page = Page(tables_section(table))
    (_, numbers), (_, deltas) = page.tables  # the numbers table, then the delta table
    from statsmodels.stats.proportion import proportion_confint  # an independent Wilson interval

    task, value = next(iter(accuracy["lisa"].items()))
    n = next(row["n"] for row in json.loads((tmp_path / "exp" / "lisa" / "seed-0" / "eval.json").read_text())["rows"]
             if row["task"] == task and row["metric"] == "acc")
    low, high = (100 * bound for bound in proportion_confint(round(n * value / 100), n, method="wilson"))
    cell = dict(zip(numbers[0], numbers[2]))[task]  # lisa's row: its accuracy and Wilson 95 % interval
    assert cell.startswith((f"{value:.1f} [{low:.1f}, {high:.1f}]", f"{value:.1f} ±{(high - low) / 2:.1f}")), cell
    line = dict(zip(deltas[0], next(row for row in deltas[1:] if row[0] == "lisa")))
    for task, value in accuracy["lisa"].items():
        assert line[task].split()[0] == f"{value - accuracy['full_ft'][task]:+.1f}", task


def test_svg_is_the_same_bytes_every_time():
    """No date and fixed ids: a rebuilt report of the same results is the same file."""
    def uri() -> str:
        figure = Figure(figsize=(2, 2))
        figure.add_subplot().plot([0, 1], [1, 0])
        return svg_data_uri(figure)

    assert uri() == uri()


def _browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@pytest.mark.browser
def test_headless_chromium_renders_the_page(report, tmp_path: Path):
    browser = _browser()
    if browser is None:
        pytest.skip(f"no headless browser ({', '.join(BROWSERS)}) on PATH; `make test-browser` installs chromium")
    image = pytest.importorskip("PIL.Image", reason="Pillow reads the screenshot")
    shot = tmp_path / "shot.png"
    # --no-sandbox: Chromium refuses to run as root with its sandbox (CI containers run as root)
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1280,1600", f"--screenshot={shot}", (report[1] / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = image.open(shot).convert("RGB")
    colours = pixels.getcolors(maxcolors=1 << 20) or []
    background = max(colours)[0] if colours else 0
    assert len(colours) > 50, "the screenshot is (nearly) one colour: the page did not render"
    assert pixels.width * pixels.height - background > 0.05 * pixels.width * pixels.height  # >5% not background
