"""The layout's rules, checked rather than kept by habit: no import circle, no module over 300 lines, and the
rooms import one way only (a lower room never imports a higher one).

Imports are read from the source (late, function-level imports included: a late import hides a circle or a
wrong-way arrow from Python, not from a reader)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest
from conftest import REPO_ROOT

MAX_MODULE_LINES = 300

# Rooms from the bottom up. A module may import its own room and any room of a lower rank, nothing above.
# The longest matching prefix names a module's room. Why each rank sits where it does:
#  - core: what every room uses (errors, paths, the results store, config, models, the method seam, registry);
#  - datasets, memory.ledger: leaves the training loop reads (benchmark records, the per-step memory ledger);
#  - train: one run; never evaluation, reporting, mtbench or commands;
#  - analysis, evaluation: weights and scores of a model, independent of each other; analysis uses train.layers;
#  - methods (the plugins) and memory (the estimator runs the loop under FakeTensorMode);
#  - mtbench: answers and judges; reporting reads the store, MT-Bench's tables and judge labels included;
#  - experiment/runner: the sweep over everything below; launch starts it; commands and cli are the top.
ROOMS = {
    "owlore_bench": 0, "owlore_bench.architectures": 0,
    "owlore_bench.datasets": 1, "owlore_bench.memory.ledger": 1,
    "owlore_bench.train": 2,
    "owlore_bench.analysis": 3, "owlore_bench.evaluation": 3,
    "owlore_bench.methods": 4, "owlore_bench.memory": 4,
    "owlore_bench.mtbench": 5,
    "owlore_bench.reporting": 6,
    "owlore_bench.experiment": 7, "owlore_bench.runner": 8,
    "owlore_bench.launch": 9,
    "owlore_bench.commands": 10,
    "owlore_bench.cli": 11,
}
# The registry loads the built-in plugins by name (its one job); that is discovery, not a dependency.
ALLOWED_UPWARD = {("owlore_bench.registry", "owlore_bench.methods")}


def _modules() -> dict[str, Path]:
    """{dotted name: source file} of the package, with methods/ under its installed name owlore_bench.methods."""
    found = {}
    sources = ((REPO_ROOT / "owlore_bench", "owlore_bench"), (REPO_ROOT / "methods", "owlore_bench.methods"))
    for root, package in sources:
        for path in root.rglob("*.py"):
            name = ".".join((package, *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
            found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules a file imports (`from owlore_bench.x import y` counts y when y is a module, else x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("owlore_bench"):
            for alias in node.names:
                found.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("owlore_bench")}
    return found


def room_of(module: str) -> str:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in ROOMS:
            return ".".join(parts[:end])
    raise AssertionError(f"{module} is in no room; add it to ROOMS")


def wrong_way_imports(graph: dict[str, set[str]]) -> list[str]:
    """'a -> b' for every import of a higher room than the importer's own."""
    wrong = []
    for module, imported in sorted(graph.items()):
        for target in sorted(imported):
            here, there = room_of(module), room_of(target)
            upward = ROOMS[there] > ROOMS[here] or (ROOMS[there] == ROOMS[here] and here != there)
            if upward and (module, room_of(target)) not in ALLOWED_UPWARD:
                wrong.append(f"{module} ({here}) -> {target} ({there})")
    return wrong


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    # the package's __init__ re-exports the public API; importing `owlore_bench` itself is not an edge
    return {name: {m for m in _imports(path, modules) if m in modules and m not in (name, "owlore_bench")}
            for name, path in modules.items()}


def test_the_package_has_no_import_circle(graph):
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        pytest.fail(f"import circle: {' -> '.join(error.args[1])}")


def test_rooms_import_only_downward(graph):
    assert wrong_way_imports(graph) == []


def test_the_rule_catches_a_new_wrong_way_arrow(graph):
    """A loop that imported the report (or a room beside it) would be caught; so would the estimator's arrow if
    the ledger were ranked with the estimator."""
    planted = {**graph, "owlore_bench.train.loop": graph["owlore_bench.train.loop"] | {"owlore_bench.reporting.tables"}}
    assert wrong_way_imports(planted) == ["owlore_bench.train.loop (owlore_bench.train) -> "
                                          "owlore_bench.reporting.tables (owlore_bench.reporting)"]
    sideways = {"owlore_bench.evaluation.harness": {"owlore_bench.analysis.outliers"}}
    assert len(wrong_way_imports(sideways)) == 1


def test_every_module_is_in_a_room_and_under_300_lines():
    long = {}
    for name, path in _modules().items():
        room_of(name)
        lines = path.read_text().count("\n")
        if lines > MAX_MODULE_LINES:
            long[name] = lines
    assert long == {}, f"split these by job (at most {MAX_MODULE_LINES} lines a module)"
