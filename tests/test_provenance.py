"""Provenance in every summary.json: package versions from the installed metadata (galore-torch has no
`__version__`, so reading the attribute recorded None), and every package a run's method does its work with
(Method.packages: reference_package and other_packages), zoo packages included."""

from __future__ import annotations

import ast
import json
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from owlore_bench.cli import main
from owlore_bench.registry import available_methods
from owlore_bench.results import BASE_PACKAGES, package_versions, provenance


def key(package: str) -> str:
    return package.replace("-", "_")


def test_every_base_package_is_recorded_with_its_installed_version():
    versions = provenance()["versions"]
    for package in BASE_PACKAGES:
        assert versions[key(package)] == version(package), package
    assert versions["galore_torch"] is not None  # the attribute lookup this replaced recorded None here


def test_a_package_that_is_not_installed_is_recorded_as_none():
    assert package_versions(["no-such-distribution-owlore"])["no_such_distribution_owlore"] is None


@pytest.mark.parametrize("name", sorted(available_methods()))
def test_each_methods_packages_are_installed_and_recorded(name):
    """Every method names real distributions (the dev install has the zoo), and provenance records each."""
    packages = available_methods()[name].packages()
    versions = provenance(packages)["versions"]
    for package in packages:
        assert versions[key(package)] == version(package), f"{name}: {package}"


def import_reference_packages(path: Path) -> set[str]:
    """The distributions a methods/ file imports through import_reference(module, method, "distribution")."""
    calls = [node for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "import_reference"]
    return {call.args[2].value for call in calls if isinstance(call.args[2], ast.Constant)}


def test_every_package_a_method_imports_is_declared():
    """A zoo method imports its packages through import_reference; each one it names is in its packages()."""
    declared: dict[str, set[str]] = {}
    for cls in available_methods().values():
        file = cls.__module__.removeprefix("owlore_bench.methods.")
        declared.setdefault(file, set()).update(cls.packages())
    missing = {file: imported - declared[file] for file in declared
               if (imported := import_reference_packages(REPO_ROOT / "methods" / f"{file}.py")) - declared[file]}
    assert missing == {}, f"packages imported but not declared (reference_package / other_packages): {missing}"
    assert import_reference_packages(REPO_ROOT / "methods" / "galore_8bit.py") == {"bitsandbytes"}


def test_a_training_runs_summary_records_its_methods_packages(tiny_data, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--method", "galore_8bit", "--model", "tiny-llama", "--data", str(tiny_data),
                 "--steps", "1", "--batch-size", "2", "--max-length", "64", "--template", "plain",
                 "--out", str(out)]) == 0
    versions = json.loads((out / "summary.json").read_text())["versions"]
    assert versions["galore_torch"] == version("galore-torch") and versions["bitsandbytes"] == version("bitsandbytes")
