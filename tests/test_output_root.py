"""Where a sweep writes: runs/<name> under the working folder by default, --out to override, never into the
committed reference; and the printed comparison with that reference (memory to the byte)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import TINY_RECORDS, run_cli

from owlore_bench.reporting.reference import comparison_frame
from owlore_bench.reporting.tables import build_table

TASK = "arc_easy_choices"


def write_config(folder: Path, **changes) -> Path:
    config = {"name": "tiny_ref", "model": "tiny-llama", "data": {"path": "tiny.json", "template": "plain"},
              "train": {"steps": 3, "batch_size": 4, "max_length": 64, "lr": 3e-3, "progress": False},
              "methods": [{"name": "full_ft"}], "eval": {"tasks": [TASK], "limit": 8, "batch_size": 8},
              "evaluate_base": False, **changes}
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """A finished one-unit sweep that later runs treat as their committed reference."""
    folder = tmp_path_factory.mktemp("reference_project")
    (folder / "tiny.json").write_text(json.dumps(TINY_RECORDS))
    config = write_config(folder, out="reference_results")
    done = run_cli("run", str(config), "--no-plots", cwd=folder)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder / "reference_results"


def test_default_output_is_runs_name_and_the_reference_is_compared_to_the_byte(reference, tmp_path):
    (tmp_path / "tiny.json").write_text(json.dumps(TINY_RECORDS))
    config = write_config(tmp_path, reference=str(reference))
    stamps = {path: path.stat().st_mtime_ns for path in reference.rglob("*") if path.is_file()}
    done = run_cli("run", str(config), "--no-plots", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "runs" / "tiny_ref"
    assert (out / "full_ft" / "seed-0" / "summary.json").is_file()
    assert f"Compared with the committed reference {reference}" in done.stdout
    comparison = done.stdout.split("Compared with the committed reference")[1]
    full_ft_line = next(line for line in comparison.splitlines() if line.startswith("| full_ft"))
    assert "= to the byte" in full_ft_line and "(+0.0)" in full_ft_line  # same config, same CPU numerics
    assert {path: path.stat().st_mtime_ns for path in reference.rglob("*") if path.is_file()} == stamps


def test_comparison_shows_memory_differences_in_mib_and_speed_as_a_ratio(reference):
    table, ref = build_table([reference]), build_table([reference])
    ref.loc["full_ft", ("peak_mem_bytes", "mean")] -= 2**20
    ref.loc["full_ft", ("tokens_per_s", "mean")] = table.loc["full_ft", ("tokens_per_s", "mean")] / 2
    ref.loc["full_ft", (TASK, "mean")] = table.loc["full_ft", (TASK, "mean")] - 12.5
    ref.loc["full_ft", ("forgetting_delta_ce", "mean")] = table.loc["full_ft", ("forgetting_delta_ce", "mean")] - 0.004
    row = comparison_frame(table, ref).iloc[0]
    assert row["Peak mem (GiB)"].endswith("(+1.0 MiB)")
    assert row["Tokens/s"].endswith("(×2.00)")
    assert row[TASK].endswith("(+12.5)")
    forgetting = table.loc["full_ft", ("forgetting_delta_ce", "mean")]
    assert row["Forgetting (ΔCE)"] == f"{forgetting:+.3f} (+0.004)"  # nats at 3 decimals, not '0.0 (+0.0)'


def test_out_flag_overrides_and_resume_happens_in_the_users_folder(reference, tmp_path):
    (tmp_path / "tiny.json").write_text(json.dumps(TINY_RECORDS))
    config = write_config(tmp_path)
    first = run_cli("run", str(config), "--no-plots", "--out", "mine", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    summary = tmp_path / "mine" / "full_ft" / "seed-0" / "summary.json"
    stamp = summary.stat().st_mtime_ns
    again = run_cli("run", str(config), "--no-plots", "--output_path", "mine", cwd=tmp_path)
    assert again.returncode == 0 and summary.stat().st_mtime_ns == stamp  # finished unit skipped, not redone
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("out,expected", [("a_file", "is a file, not a folder"),
                                          ("REFERENCE", "is this config's committed reference")])
def test_bad_output_folders_are_one_line(reference, tmp_path, out, expected):
    (tmp_path / "a_file").write_text("not a folder")
    config = write_config(tmp_path, reference=str(reference))
    done = run_cli("run", str(config), "--out", str(reference) if out == "REFERENCE" else out, cwd=tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and expected in lines[0], done.stderr


def test_train_out_pointing_at_a_file_is_one_line(tmp_path, tiny_data):
    (tmp_path / "a_file").write_text("x")
    done = run_cli("train", "--method", "full_ft", "--model", "tiny-llama", "--data", str(tiny_data),
                   "--out", str(tmp_path / "a_file"))
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "is a file, not a folder" in lines[0], done.stderr
