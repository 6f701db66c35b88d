"""Errors that used to end in a traceback, lose finished work or block their own fix: each is one line (exit 2)
before any work, or a recorded status with its traceback kept in error.log."""

from __future__ import annotations

import json

import pytest
from conftest import TINY_RECORDS, run_cli

from owlore_bench.cli import main

TRAIN = ["train", "--method", "lora", "--model", "tiny-llama", "--steps", "2", "--batch-size", "2", "--max-length",
         "64", "--template", "plain"]


def _one_line_error(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error, error
    return error


@pytest.mark.parametrize("command", [
    ["memory", "--model", "tiny-llama", "--methods", "lora", "--batch-size", "1", "--seq-len", "8"],
    ["outliers", "--model", "tiny-llama", "--n", "2", "--seq-len", "8"],
    ["mtbench", "answer", "--model", "tiny-llama", "--limit", "1"],
    ["report", "RESULTS"],
], ids=["memory", "outliers", "mtbench-answer", "report"])
def test_out_pointing_at_a_file_is_one_line(tmp_path, capsys, command):
    taken = tmp_path / "taken.txt"
    taken.write_text("keep me")
    command = [str(tmp_path) if part == "RESULTS" else part for part in command]
    assert main([*command, "--out", str(taken)]) == 2
    assert f"--out: {taken} is a file, not a folder" in _one_line_error(capsys)
    assert taken.read_text() == "keep me"


def test_eval_out_is_a_folder_and_a_json_path_is_the_file(shared_data, tmp_path, capsys):
    base = ["eval", "--model", "tiny-llama", "--tasks", "arc_easy_choices", "--limit", "2"]
    folder = tmp_path / "existing"
    folder.mkdir()
    assert main([*base, "--out", str(folder)]) == 0  # an existing folder: the rows land inside, not lost
    assert json.loads((folder / "eval.json").read_text())["rows"]
    assert main([*base, "--output_path", str(tmp_path / "rows.json")]) == 0  # lm-eval's spelling: the file itself
    assert json.loads((tmp_path / "rows.json").read_text())["rows"]
    capsys.readouterr()
    taken = tmp_path / "notes.txt"
    taken.write_text("x")
    assert main([*base, "--out", str(taken)]) == 2  # refused before the evaluation runs
    assert "is a file, not a folder" in _one_line_error(capsys)


@pytest.mark.parametrize("problem", ["empty data", "unknown model", "data folder"])
def test_a_refused_train_leaves_no_folder_and_the_fixed_rerun_runs(tmp_path, tiny_data, capsys, problem):
    out = tmp_path / "run"
    data, model = tiny_data, "tiny-llama"
    if problem == "empty data":
        data = tmp_path / "empty.json"
        data.write_text("[]")
    elif problem == "data folder":
        data = tmp_path
    else:
        model = "no-such-model"
    bad = [*TRAIN, "--data", str(data), "--out", str(out)]
    bad[bad.index("tiny-llama")] = model
    assert main(bad) == 2
    error = _one_line_error(capsys)
    if problem == "data folder":
        assert f"data: {tmp_path} is a folder" in error
    assert not out.exists()
    assert main([*TRAIN, "--data", str(tiny_data), "--out", str(out)]) == 0  # no "different config … --force"


def test_a_typo_in_a_config_key_gets_a_did_you_mean(tmp_path, tiny_data, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(f"method: lora\nmodel: tiny-llama\ndata: {{path: {tiny_data}, template: plain}}\n"
                      f"train: {{stpes: 2, batch_size: 2, max_length: 64}}\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "train.stpes: unknown key" in (error := _one_line_error(capsys)) and "Did you mean 'steps'?" in error


def test_a_record_with_a_wrong_field_name_lists_the_keys_it_has(tmp_path, capsys):
    data = tmp_path / "data.json"
    data.write_text(json.dumps([{"instruction": "a", "outptu": "b"}]))
    assert main([*TRAIN, "--data", str(data), "--out", str(tmp_path / "run")]) == 2
    error = _one_line_error(capsys)
    assert "record 0 has no string 'output'" in error and "found keys: 'instruction', 'outptu'" in error
    assert "Did you mean 'outptu'?" in error


def test_a_bug_inside_the_loop_is_recorded_with_its_traceback_in_error_log(tmp_path, tiny_data):
    from owlore_bench.config import TrainConfig
    from owlore_bench.models import tiny_llama
    from owlore_bench.registry import build_method
    from owlore_bench.train.data import TrainingData
    from owlore_bench.train.loop import train
    from owlore_bench.train.tokenize import tokenize_record

    model, tokenizer = tiny_llama()
    method = build_method("full_ft")

    def broken(step, model, optimizer):
        if step == 1:
            return {}["missing_key"]  # a programming error, not bad input
        return {}

    method.on_step_start = broken
    data = TrainingData([tokenize_record(r, tokenizer, "plain", 64) for r in TINY_RECORDS], tokenizer.pad_token_id)
    summary = train(method.prepare(model), method, data, TrainConfig(steps=3, batch_size=2, progress=False),
                    tmp_path / "run")
    assert summary["status"] == "failed" and summary["steps"] == 1
    log = tmp_path / "run" / "error.log"
    assert str(log) in summary["error"] and "KeyError" in summary["error"]
    assert "Traceback" in log.read_text() and "in broken" in log.read_text()



def test_a_third_party_method_with_its_own_saved_format_evaluates_from_its_run_folder(
        tmp_path, tiny_data, fresh_registry):
    """eval --run goes through Method.load_trained and Method.for_eval, not a peft-only shortcut."""
    import torch

    from owlore_bench import register_method
    from owlore_bench.methods.full_ft import FullFineTuning
    from owlore_bench.models import load_model
    from owlore_bench.train.run import load_trained

    calls = []

    @register_method("state_dict_only")
    class StateDictOnly(FullFineTuning):
        """Saves a bare torch state dict instead of a Hugging Face folder."""

        def save_trained(self, model, tokenizer, path):
            path.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), path / "weights.pt")

        def load_trained(self, path, base_model, dtype, device):
            model, tokenizer = load_model(base_model, dtype=dtype, device=device)
            model.load_state_dict(torch.load(path / "weights.pt"))
            return model, tokenizer

        def for_eval(self, model):
            calls.append("for_eval")
            return model

    out = tmp_path / "run"
    assert main([*TRAIN[:2], "state_dict_only", *TRAIN[3:], "--data", str(tiny_data), "--out", str(out)]) == 0
    assert not (out / "model" / "config.json").exists()
    model, _ = load_trained(out, dtype="fp32", device="cpu")
    trained = torch.load(out / "model" / "weights.pt")
    assert all(torch.equal(value, trained[key]) for key, value in model.state_dict().items())
    assert calls == ["for_eval"]


def test_a_one_line_error_keeps_its_cause_for_owlore_bench_debug(tmp_path, tiny_data):
    args = ["train", "--method", "lora", "--model", "no-org/no-such-model", "--data", str(tiny_data), "--out", "o"]
    quiet = run_cli(*args, cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    loud = run_cli(*args, cwd=tmp_path, env={"HF_HUB_OFFLINE": "1", "OWLORE_BENCH_DEBUG": "1"})
    assert loud.returncode == 2 and "Traceback" in loud.stderr
    assert quiet.stderr.strip().splitlines()[-1] == loud.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("text, where", [
    ("name: x\n  model: y\n", "line 2, column 8: mapping values are not allowed here"),
    ("name: x\nmodel: [oops\n", "(while parsing a flow sequence at line 2, column 8)"),
])
def test_malformed_yaml_is_one_line_naming_line_and_column(tmp_path, text, where):
    from owlore_bench.config import read_yaml
    from owlore_bench.errors import UserError

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        read_yaml(path)
    assert where in str(error.value) and "\n" not in str(error.value)
