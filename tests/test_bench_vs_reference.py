"""benchmarks/bench_vs_reference.py end to end on tiny-llama (2 × 16 tokens, 1 warm-up + 2 measured steps).

Behaviour, not timing: both sides train on the same tokens and do the same updates, the official design's
optimizer state grows with every layer it ever samples while the suite's stays flat, and the report has one
row per method × implementation.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
# γ 1 and K 1: a new draw every step; with seed 0 and equal ratios the 3 draws are layers 2, 1, 0 (3 switches).
TINY_ARGS = ["--model", "tiny-llama", "--sizes", "2x16", "--steps", "2", "--warmup", "1", "--repeats", "1",
             "--threads", "1", "--ratios", "equal", "--owlore-gamma", "1", "--owlore-interval", "1",
             "--lisa-gamma", "1", "--lisa-interval", "1", "--rank", "8"]


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_vs_reference

        yield bench_vs_reference
    finally:
        sys.path.remove(str(BENCHMARKS))


def quick_provenance() -> dict:
    """results.provenance() without its package-version lookups (importing peft and lm_eval takes ~10 s)."""
    return {"versions": {"torch": torch.__version__}, "git": {"commit": None, "dirty": None},
            "hardware": {"platform": "test", "cpu_count": 1, "torch_threads": 1, "cuda": None}}


@pytest.fixture(scope="module")
def result(bench):
    threads = torch.get_num_threads()
    args = bench.parse_args(TINY_ARGS)
    bench.check_args(args)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(bench, "provenance", quick_provenance)
            yield bench.benchmark(args, log=lambda line: None)
    finally:
        torch.set_num_threads(threads)


def runs_of(result, method: str) -> dict[str, dict]:
    return {run["implementation"]: run for run in result["runs"] if run["method"] == method}


def test_official_optimizer_state_grows_over_switches_while_the_suites_stays_flat(result):
    owlore = runs_of(result, "owlore")
    official, suite = owlore["official"]["optimizer_bytes_by_step"], owlore["suite"]["optimizer_bytes_by_step"]
    assert owlore["official"]["layers_ever_trained"] == owlore["suite"]["layers_ever_trained"] == [0, 1, 2]
    assert official[0] < official[1] < official[2]  # one more layer's GaLore state kept per switch
    assert len(set(suite)) == 1  # the leaving layer's state is freed: always-trained + one layer
    assert official[0] == suite[0] and official[-1] > suite[-1]
    lisa = runs_of(result, "lisa")
    assert lisa["official"]["optimizer_bytes_by_step"][-1] > lisa["suite"]["optimizer_bytes_by_step"][-1]


def test_both_sides_train_on_the_same_tokens_and_do_the_same_full_ft_update(result):
    assert len({run["batches_sha256"] for run in result["runs"]}) == 1
    assert {sum(run["tokens"]) for run in result["runs"]} == {2 * 2 * 16}  # 2 measured steps of 2 x 16, unpadded
    full_ft = runs_of(result, "full_ft")
    assert full_ft["suite"]["final_loss"] == pytest.approx(full_ft["official"]["final_loss"], rel=1e-6)


def test_the_report_has_one_row_per_method_and_implementation(bench, result):
    pairs = [(row["method"], row["implementation"]) for row in result["rows"]]
    assert pairs == [(m, i) for m in ("full_ft", "lisa", "owlore") for i in ("suite", "official")]
    assert all(row["status"] == "ok" and row["measured_steps"] == 2 for row in result["rows"])
    full_ft_steps = [s for run in result["runs"] if run["method"] == "full_ft" for s in run["step_s"]]
    for row in result["rows"]:  # the baseline pools both sides' full FT (the same arithmetic)
        assert row["full_ft_baseline_s"] == pytest.approx(statistics.median(full_ft_steps))
        assert row["vs_full_ft"] == pytest.approx(row["median_step_s"] / row["full_ft_baseline_s"])
    assert all(row["suite_vs_official"] is not None for row in result["rows"] if row["implementation"] == "suite")
    report = bench.markdown(result)
    assert sum(line.startswith("| 2x16 |") for line in report.splitlines()) == 6
    assert "no padding" in report and "machine load" in report and "Command:" in report


def test_every_step_is_split_into_phases_and_the_floor_is_forward_plus_backward(result):
    for run in result["runs"]:
        for step_s, *phases in zip(run["step_s"], run["forward_s"], run["backward_s"], run["update_s"]):
            assert all(seconds > 0 for seconds in phases), run["implementation"]
            assert sum(phases) <= step_s
    for row in result["rows"]:
        assert row["floor_vs_full_ft"] == pytest.approx(row["median_forward_backward_s"] / row["full_ft_baseline_s"])
        assert row["floor_vs_full_ft"] < row["vs_full_ft"]  # the optimizer's time is not in the floor


def test_mismatched_steps_and_sizes_are_one_line_and_exit_2(bench, capsys):
    assert bench.main(["--sizes", "2x16,4x16", "--steps", "1,2,3"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith("error: --steps")


def test_a_saved_run_re_renders_from_its_json_and_a_bad_file_is_one_line(bench, result, tmp_path, capsys):
    saved, report = tmp_path / "run.json", tmp_path / "run.md"
    bench.write_json_atomic(saved, result)
    assert bench.main(["--from-json", str(saved), "--out", str(report)]) == 0
    text = report.read_text()
    assert "Summary recomputed from that run's JSON" in text
    assert [line for line in text.splitlines() if line.startswith("| 2x16 |")] == \
        [line for line in bench.markdown(result).splitlines() if line.startswith("| 2x16 |")]
    capsys.readouterr()
    (tmp_path / "bad.json").write_text("{}")
    assert bench.main(["--from-json", str(tmp_path / "bad.json")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "--from-json" in error
