"""One name for a judge in every table a report writes. The committed results/mtbench_cpu had
`MT-Bench (smollm2-135m)` in table.md and `MT-Bench (hf-smollm2-135m-prefill-max8)` in delta.md; now the numbers
table, the delta table, mt_bench.md and the HTML page all name the judge by its slug (the name of its judgment,
score and radar files), and headings add what the judge is."""

from __future__ import annotations

import re

from conftest import REPO_ROOT

from owlore_bench.reporting.delta_tables import render_delta_markdown
from owlore_bench.reporting.html import mtbench_section, tables_section
from owlore_bench.reporting.loading import load_results
from owlore_bench.reporting.mt_bench import write_mtbench_files
from owlore_bench.reporting.render import render_markdown
from owlore_bench.reporting.tables import table_from_results

MTBENCH = REPO_ROOT / "results" / "mtbench_cpu"
SLUG = "hf-smollm2-135m-prefill-max8"  # judge_slug of hf:smollm2-135m with the reply prefilled, max_tokens 8


def test_every_table_names_the_judge_by_its_slug(tmp_path):
    results = load_results([MTBENCH])
    table = table_from_results(results, delta=True, n_boot=200)
    write_mtbench_files(results, tmp_path, plots=False, n_boot=200)
    texts = {"table.md": render_markdown(table), "delta.md": render_delta_markdown(table),
             "mt_bench.md": (tmp_path / "mt_bench.md").read_text(),
             "report.html": tables_section(table) + mtbench_section(results, table)}
    columns = {name: set(re.findall(r"MT-Bench \(([^)]*)\)", text)) for name, text in texts.items()}
    assert columns == {"table.md": {SLUG}, "delta.md": {SLUG}, "mt_bench.md": set(), "report.html": {SLUG}}
    headings = {name: set(re.findall(r"MT-Bench, judge (\S+)", text)) for name, text in texts.items()}
    assert headings == {"table.md": set(), "delta.md": set(), "mt_bench.md": {f"{SLUG}:"},
                        "report.html": {f"{SLUG}:"}}
    assert "MT-Bench, judge hf-smollm2-135m-prefill-max8: hf:smollm2-135m (temperature 0, max_tokens 8" in \
        texts["mt_bench.md"]
