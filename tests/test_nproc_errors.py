"""Bad input under `--nproc N` is one line and exit 2, as without it, for replicate and FSDP alike.

What the command can check before torchrun starts (the method and loop settings on N processes, the data, its
tokenization and the steps it gives) is checked there: no rank starts. What only a rank can find (e.g. a method
setting the model's shape refuses) is written by each rank to the supervisor's folder and printed once by the
supervisor (owlore_bench/launch/torchrun.py), without torchrun's elastic traceback and SIGTERM notices.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

from owlore_bench.cli import main
from owlore_bench.launch import torchrun


@pytest.fixture
def no_torchrun(monkeypatch):
    monkeypatch.setattr("owlore_bench.launch.torchrun.subprocess.call",
                        lambda *a, **k: pytest.fail("torchrun must not start"))


@pytest.mark.parametrize("parallel", ["replicate", "fsdp"])
@pytest.mark.parametrize("records,expected", [
    ([{"instruction": 1}], "record 0 has no string 'instruction'"),
    ([{"instruction": "Say a word." * 40, "input": "", "output": "apple"}], "no example keeps a response token"),
])
def test_a_data_error_under_nproc_is_one_line_before_any_rank_starts(tmp_path, capsys, no_torchrun, parallel,
                                                                    records, expected):
    data = tmp_path / "data.json"
    data.write_text(json.dumps(records))
    code = main(["train", "--method", "lisa", "--model", "tiny-llama", "--data", str(data), "--device", "cpu",
                 "--max-length", "16", "--out", str(tmp_path / "out"), "--nproc", "2", "--parallel", parallel])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("owlore-bench: error")]
    assert code == 2 and len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "out").exists()


def test_run_checks_the_data_of_every_unit_before_torchrun(tmp_path, capsys, no_torchrun):
    (tmp_path / "bad.json").write_text(json.dumps([{"instruction": 1}]))
    config = tmp_path / "exp.yaml"
    config.write_text(f"name: bad\nmodel: tiny-llama\ndata: {{path: {tmp_path / 'bad.json'}}}\n"
                      f"methods: [{{name: full_ft}}]\nseeds: [0]\neval: {{tasks: [boolq_labels], limit: 2}}\n"
                      f"out: {tmp_path / 'out'}\n")
    code = main(["run", str(config), "--nproc", "2", "--parallel", "fsdp"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("owlore-bench: error")]
    assert code == 2 and len(err) == 1 and "record 0 has no string 'instruction'" in err[0], err


def test_a_rank_writes_its_error_for_the_supervisor_instead_of_printing_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(torchrun.RANK_ERRORS_ENV, str(tmp_path))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["memory", "--model", "no-such-architecture"]) == 2
    assert capsys.readouterr().err == ""
    assert "unknown architecture 'no-such-architecture'" in (tmp_path / "rank1.txt").read_text()
    monkeypatch.delenv(torchrun.RANK_ERRORS_ENV)
    assert main(["memory", "--model", "no-such-architecture"]) == 2  # a hand-started torchrun: printed as usual
    assert "unknown architecture" in capsys.readouterr().err


def test_the_supervisor_prints_each_distinct_rank_error_once_and_names_a_crashed_rank(monkeypatch, capsys):
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    def failing(messages):
        def run(args):
            folder = os.environ[torchrun.RANK_ERRORS_ENV]
            for rank, message in enumerate(messages):
                with open(os.path.join(folder, f"rank{rank}.txt"), "w") as file:
                    file.write(message)
            failure = ProcessFailure(local_rank=1, pid=1, exitcode=-9, error_file="")
            raise ChildFailedError("owlore_bench.cli", {1: failure})
        return run

    monkeypatch.setattr("torch.distributed.run.run", failing(["train.x: bad", "train.x: bad"]))
    assert torchrun.supervise(["--standalone", "--nproc_per_node=2", "-m", "owlore_bench.cli"]) == 2
    assert capsys.readouterr().err.splitlines() == ["owlore-bench: error: train.x: bad"]
    monkeypatch.setattr("torch.distributed.run.run", failing([]))
    assert torchrun.supervise(["--standalone", "--nproc_per_node=2", "-m", "owlore_bench.cli"]) == 1
    assert capsys.readouterr().err.splitlines() == ["owlore-bench: rank 1 failed (exit code -9); its traceback is "
                                                    "above"]


@pytest.mark.slow
def test_an_error_only_the_ranks_find_reaches_the_user_once_with_exit_2(tiny_data, tmp_path):
    """For real: 2 FSDP ranks both refuse LISA's gamma 9 on tiny-llama's 4 layers (found in method.prepare)."""
    done = subprocess.run([sys.executable, "-m", "owlore_bench.cli", "train", "--method", "lisa", "--model",
                           "tiny-llama", "--data", str(tiny_data), "--template", "plain", "--device", "cpu",
                           "--steps", "2", "--set", "method.gamma=9", "--nproc", "2", "--parallel", "fsdp",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == ["owlore-bench: error: lisa.gamma: 9 is more than the model's 4 "
                                                "decoder layers"], done.stderr
