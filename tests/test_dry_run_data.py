"""`owlore-bench run --dry-run` prints the data plan (records, tokens, blocks, steps per epoch, tokens per step)
of each distinct data setting, each run's steps, and still the memory plan when the data cannot be read."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import run_cli

from owlore_bench.cli import main
from owlore_bench.experiment import load_experiment, plan
from owlore_bench.memory.estimate import estimate_memory
from owlore_bench.runner import dry_run_plan
from owlore_bench.train import data_plan

# LMFlow text2text records: input "x" * (i + 1), output "yy". The byte tokenizer gives one token a byte and
# adds nothing to text2text (LMFlow: add_special_tokens=False), so record i is i + 3 tokens: 3, 4, ..., 11.
RECORDS = [{"input": "x" * (i + 1), "output": "yy"} for i in range(9)]
# By hand, packed in blocks of 5 tokens with groups of 4 records (each group's remainder is dropped):
#   records 0-3: 3+4+5+6 = 18 tokens -> 3 blocks; records 4-7: 7+8+9+10 = 34 -> 6 blocks; record 8: 11 -> 2 blocks
#   = 11 blocks, 55 tokens. Global batch 2 x grad_accum 2 = 4: floor(11 / 4) = 2 steps per epoch (the partial
#   batch is dropped), 1.25 epochs -> ceil(2.5) = 3 steps, 4 x 5 = 20 tokens a step. The `wide` run (grad_accum 1,
#   global batch 2): floor(11 / 2) = 5 steps per epoch -> ceil(6.25) = 7 steps.
PLAN = ["records 9, tokens 55 in 11 blocks of 5 tokens",
        "steps per epoch 2 (global batch 4), tokens per step 20, steps to run 3 (1.25 epoch(s))"]
WIDE = "steps per epoch 5 (global batch 2), tokens per step 10, steps to run 7 (1.25 epoch(s))"
LISA = {"gamma": 1, "interval": 2, "keep_state": True}


def write_experiment(tmp_path: Path, data: str, **changes) -> Path:
    config = {
        "name": "dry_data",
        "model": "tiny-llama",
        "data": {"path": data, "packing": True, "block_size": 5, "group_texts_batch_size": 4},
        "train": {"epochs": 1.25, "batch_size": 2, "grad_accum": 2, "dtype": "fp32", "device": "cpu"},
        "methods": [{"name": "full_ft"}, {"name": "lisa", "config": LISA},
                    {"name": "wide", "method": "full_ft", "train": {"grad_accum": 1}}],
        "seeds": [0],
        "eval": {"tasks": ["arc_easy_choices"], "limit": 8},
        "out": str(tmp_path / "out"),
        **changes,
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def records_file(tmp_path: Path) -> str:
    path = tmp_path / "t2t.json"
    path.write_text(json.dumps({"type": "text2text", "instances": RECORDS}))
    return str(path)


def test_dry_run_prints_each_data_plan_once_and_each_runs_steps(tmp_path, capsys, monkeypatch):
    calls = []
    tokenize = data_plan.tokenize_data
    monkeypatch.setattr(data_plan, "tokenize_data", lambda cfg: calls.append(cfg.method) or tokenize(cfg))
    assert main(["run", str(write_experiment(tmp_path, records_file(tmp_path))), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert len(calls) == 1  # three runs, one data setting: read and tokenized once
    assert printed.count(PLAN[0]) == 2  # two plans (global batch 4 and 2) over the same blocks
    assert f"data plan of full_ft seed 0, lisa seed 0:\n  data: {tmp_path / 't2t.json'}\n  {PLAN[0]}\n  {PLAN[1]}\n" \
        in printed
    assert f"data plan of wide seed 0:\n  data: {tmp_path / 't2t.json'}\n  {PLAN[0]}\n  {WIDE}\n" in printed
    rows = {line.split()[0]: line for line in printed.splitlines() if " todo " in line}
    assert "steps 3 " in rows["full_ft"] and "steps 3 " in rows["lisa"] and "steps 7 " in rows["wide"]
    assert "est." in rows["full_ft"] and "at the end (optimizer state kept)" in rows["lisa"]
    assert not (tmp_path / "out").exists()


def test_one_data_setting_prints_the_train_dry_run_lines_as_they_are(tmp_path, capsys):
    methods = [{"name": "full_ft"}, {"name": "lora"}]
    assert main(["run", str(write_experiment(tmp_path, records_file(tmp_path), methods=methods)), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"\ndata: {tmp_path / 't2t.json'}\n{PLAN[0]}\n{PLAN[1]}\n" in printed
    main(["train", "--method", "full_ft", "--model", "tiny-llama", "--data", str(tmp_path / "t2t.json"),
          "--epochs", "1.25", "--batch-size", "2", "--set", "train.grad_accum=2", "--set", "data.packing=true",
          "--set", "data.block_size=5", "--set", "data.group_texts_batch_size=4", "--dry-run"])
    assert capsys.readouterr().out == f"data: {tmp_path / 't2t.json'}\n{PLAN[0]}\n{PLAN[1]}\n"  # the same code


def test_the_derived_steps_reach_the_kept_state_estimate(tmp_path):
    experiment = load_experiment(write_experiment(tmp_path, records_file(tmp_path)))
    rows = {row["label"]: row for row in dry_run_plan(experiment, plan(experiment))}
    assert rows["lisa"]["steps"] == 3 and rows["wide"]["steps"] == 7 and rows["base"].get("steps") is None
    shape = dict(batch_size=2, seq_len=5, dtype="fp32", seed=0)
    after_3 = estimate_memory("tiny-llama", "lisa", LISA, steps=3, **shape)["total_state_kept"]
    bound = estimate_memory("tiny-llama", "lisa", LISA, steps=None, **shape)["total_state_kept"]
    # 3 steps with interval 2 draw twice (steps 0 and 2): at most 2 of the 4 layers hold state, not all 4
    assert rows["lisa"]["estimated_total_state_kept_bytes"] == after_3 < bound
    assert "estimated_total_state_kept_bytes" not in rows["full_ft"]


def test_unreadable_data_is_one_line_and_the_memory_plan_still_prints(tmp_path, capsys):
    missing = tmp_path / "missing.json"
    assert main(["run", str(write_experiment(tmp_path, str(missing))), "--dry-run"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    reason = [line for line in lines if line.startswith("data plan:")]
    assert reason == [f"data plan: not available, the data or the tokenizer cannot be read (data file not found: "
                      f"{missing}); steps unknown with train.epochs"]
    rows = [line for line in lines if " todo " in line and "evaluation only" not in line]
    assert len(rows) == 3 and all("steps ?" in row and "est." in row for row in rows)
    assert "at most" in next(row for row in rows if row.split()[0] == "lisa")  # the every-layer bound
    assert "Traceback" not in captured.err


def test_a_hub_tokenizer_offline_is_one_line_and_the_memory_plan_still_prints(tmp_path):
    config = write_experiment(tmp_path, records_file(tmp_path), model="no-such-org/no-such-model",
                              architecture="tiny-llama", methods=[{"name": "full_ft"}],
                              train={"steps": 4, "batch_size": 2, "dtype": "fp32", "device": "cpu"})
    done = run_cli("run", str(config), "--dry-run", env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    reason = [line for line in done.stdout.splitlines() if line.startswith("data plan:")]
    assert len(reason) == 1 and "model 'no-such-org/no-such-model': its tokenizer/config could not be loaded" \
        in reason[0] and "steps unknown" not in reason[0]  # train.steps is known without the data
    assert "steps 4 " in done.stdout and "est." in done.stdout
    assert "Traceback" not in done.stderr


def test_the_dry_run_estimate_applies_the_runs_memory_levers(tmp_path):
    """A run with updates in backward and 8-bit moments is estimated with them, not as plain AdamW."""
    levers = {"update_in_backward": True, "optimizer_state_bits": 8}
    methods = [{"name": "full_ft"}, {"name": "levered", "method": "full_ft", "train": levers}]
    experiment = load_experiment(write_experiment(tmp_path, records_file(tmp_path), methods=methods))
    rows = {row["label"]: row for row in dry_run_plan(experiment, plan(experiment))}
    shape = dict(batch_size=2, seq_len=5, dtype="fp32", seed=0, steps=3)
    assert rows["full_ft"]["estimated_total_bytes"] == estimate_memory("tiny-llama", "full_ft", {}, **shape)["total"]
    levered = estimate_memory("tiny-llama", "full_ft", {}, **shape, **levers)["total"]
    assert rows["levered"]["estimated_total_bytes"] == levered < rows["full_ft"]["estimated_total_bytes"]
