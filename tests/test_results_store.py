"""The results store never loses a line: blank lines are skipped, only a torn last line is dropped, any other bad
line stops the caller before it writes, and rewrites are atomic with the mode a plain open() gives."""

from __future__ import annotations

import json
import os
import stat

import pytest

from owlore_bench.errors import UserError
from owlore_bench.results import (
    MetricsLog,
    atomic_path,
    drop_torn_tail,
    read_jsonl,
    write_json_atomic,
    write_jsonl_atomic,
)

ROWS = [{"step": k, "loss": 1.0 / (k + 1)} for k in range(9)]


def _lines(rows):
    return [json.dumps(row) + "\n" for row in rows]


def test_blank_lines_anywhere_are_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = _lines(ROWS)
    path.write_text("\n" + "".join(lines[:3]) + "\n  \n" + "".join(lines[3:]) + "\n\n")
    assert read_jsonl(path) == ROWS


def test_only_a_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "answers.jsonl"
    torn = json.dumps(ROWS[-1])[:-5]
    path.write_text("".join(_lines(ROWS[:-1])) + torn)
    assert read_jsonl(path) == ROWS[:-1]
    path.write_text("".join(_lines(ROWS[:-1])) + json.dumps(ROWS[-1]))  # complete but without its newline: kept
    assert read_jsonl(path) == ROWS


@pytest.mark.parametrize("bad, number", [("{not json}\n", 4), ("[1, 2]\n", 4), ("  {\"step\": 3} x\n", 4)])
def test_a_bad_line_inside_the_file_names_file_and_line(tmp_path, bad, number):
    path = tmp_path / "judgments.jsonl"
    lines = _lines(ROWS)
    path.write_text("".join(lines[:3]) + bad + "".join(lines[3:]))
    with pytest.raises(UserError, match=rf"judgments.jsonl line {number}: "):
        read_jsonl(path)


def test_two_files_concatenated_without_a_newline_are_an_error_not_a_truncation(tmp_path):
    path = tmp_path / "judgments.jsonl"
    first, second = "".join(_lines(ROWS[:2])).rstrip("\n"), "".join(_lines(ROWS[2:]))
    path.write_text(first + second)
    with pytest.raises(UserError, match="line 2: not valid JSON"):
        read_jsonl(path)


def test_drop_torn_tail_cuts_the_torn_line_and_completes_a_missing_newline(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(_lines(ROWS[:2])) + '{"step": 2, "lo')
    assert drop_torn_tail(path) == ROWS[:2]
    assert path.read_text() == "".join(_lines(ROWS[:2]))
    path.write_text("".join(_lines(ROWS[:2])).rstrip("\n"))
    drop_torn_tail(path)
    with open(path, "a") as out:  # the next append starts on a fresh line
        out.write(json.dumps(ROWS[2]) + "\n")
    assert read_jsonl(path) == ROWS[:3]


def test_drop_torn_tail_writes_nothing_when_a_middle_line_is_bad(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(_lines(ROWS[:2])) + "oops\n" + json.dumps(ROWS[2]))
    before = path.read_bytes()
    with pytest.raises(UserError, match="line 3"):
        drop_torn_tail(path)
    assert path.read_bytes() == before


def test_metrics_log_resume_keeps_every_earlier_step_across_a_blank_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = _lines(ROWS)
    path.write_text("".join(lines[:2]) + "\n" + "".join(lines[2:]))
    log = MetricsLog(path, resume_step=6)
    log.write({"step": 6, "loss": 0.0})
    log.close()
    assert [row["step"] for row in read_jsonl(path)] == [0, 1, 2, 3, 4, 5, 6]


def test_metrics_log_refuses_a_corrupt_file_and_leaves_it_alone(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(_lines(ROWS[:2])) + "garbage\n" + "".join(_lines(ROWS[2:])))
    before = path.read_bytes()
    with pytest.raises(UserError, match="metrics.jsonl line 3"):
        MetricsLog(path, resume_step=5)
    assert path.read_bytes() == before


@pytest.mark.parametrize("writer", ["json", "jsonl", "png"])
def test_atomic_writes_honour_the_umask(tmp_path, writer):
    previous = os.umask(0o022)
    try:
        path = tmp_path / f"out.{writer}"
        if writer == "json":
            write_json_atomic(path, {"a": 1})
        elif writer == "jsonl":
            write_jsonl_atomic(path, ROWS)
        else:
            from matplotlib.figure import Figure

            from owlore_bench.reporting.plots import _save

            _save(Figure(), path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # mkstemp alone would leave 0o600
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    finally:
        os.umask(previous)


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"status": "ok"})
    with pytest.raises(RuntimeError), atomic_path(path) as temp:
        temp.write_text("half")
        raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"status": "ok"}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
