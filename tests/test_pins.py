"""The next vanished file fails CI, not a newcomer: every file the front door downloads is still on the index.

This asks the real package index (PyPI, or $PIP_INDEX_URL) in the default suite, by exact filename and sha256.
"""

from __future__ import annotations

from owlore_bench.downloads import index_url, unserved
from owlore_bench.pins import PINNED_FILES


def test_every_pinned_file_is_still_served_with_its_sha256():
    problems = unserved(PINNED_FILES)
    assert problems == [], f"pinned files missing from {index_url()}: " + "; ".join(problems)


def test_the_pins_cover_the_embedded_model_and_each_names_a_way_out():
    from owlore_bench import models

    assert models.SMOLLM2_WHEEL in PINNED_FILES
    for pin in PINNED_FILES:
        assert len(pin.sha256) == 64 and pin.filename.startswith(pin.project.replace("-", "_"))
        assert pin.way_out and "\n" not in pin.way_out
