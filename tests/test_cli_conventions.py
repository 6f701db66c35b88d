"""The CLI in the conventions users know: --version, help with examples everywhere, lm-eval's option spellings."""

from __future__ import annotations

import argparse
import re

import pytest

from owlore_bench import __version__
from owlore_bench.cli import COMMANDS, build_parser, main
from owlore_bench.commands.eval import apply_model_args
from owlore_bench.errors import UserError


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"owlore-bench {__version__}"


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"] if command else ["--help"])
    text = capsys.readouterr().out
    assert "example" in text and f"owlore-bench {command or ''}".strip() in text.split("example", 1)[1]


def test_eval_takes_lm_evals_spellings():
    args = build_parser().parse_args(["eval", "--model_args", "pretrained=tiny-llama,dtype=float32,device=cpu",
                                      "--num_fewshot", "3", "--batch_size", "4", "--output_path", "rows.json"])
    apply_model_args(args)
    assert (args.model, args.dtype, args.device) == ("tiny-llama", "fp32", "cpu")
    assert (args.num_fewshot, args.batch_size, args.out) == (3, 4, "rows.json")
    ours = build_parser().parse_args(["eval", "--num-fewshot", "3", "--batch-size", "4", "--out", "rows.json"])
    assert (ours.num_fewshot, ours.batch_size, ours.out) == (3, 4, "rows.json")


@pytest.mark.parametrize("text,expected", [("pretrained", "cannot use 'pretrained'"),
                                           ("revision=main", "cannot use 'revision=main'"),
                                           ("dtype=float16", "dtype=float16 is not supported"),
                                           ("device=mps", "device=mps is not supported")])
def test_bad_model_args_are_one_line(text, expected):
    args = build_parser().parse_args(["eval", "--model_args", text])
    with pytest.raises(UserError, match=expected):
        apply_model_args(args)


def test_train_and_run_take_underscore_spellings():
    train = build_parser().parse_args(["train", "--batch_size", "2", "--max_length", "16", "--output_path", "x"])
    assert (train.batch_size, train.max_length, train.out) == (2, 16, "x")
    run = build_parser().parse_args(["run", "c.yaml", "--output_path", "y"])
    assert run.out == "y"


def _flags_without_help(parser: argparse.ArgumentParser, command: str) -> list[str]:
    found = []
    for action in parser._actions:  # argparse keeps a parser's arguments and subcommands here (no public accessor)
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                found += _flags_without_help(subparser, f"{command} {name}")
        elif action.option_strings and not action.help:
            found.append(f"{command} {action.option_strings[0]}")
    return found


def test_every_flag_of_every_command_has_help():
    assert _flags_without_help(build_parser(), "owlore-bench") == []


def test_train_help_names_every_data_source_and_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    data = text.split("options:", 1)[1].split("--data DATA", 1)[1].split("--template", 1)[0]
    assert all(scheme in data for scheme in ("commonsense:", "'data:", "bigbench:", "hf://", "hf-dataset://"))
    assert "--lr LR peak learning rate (default 0.0001)" in text
    assert "--seed SEED seeds torch, data order and layer sampling (default 0)" in text
    assert "--steps STEPS optimizer steps to run (40 when neither steps nor epochs is given" in text


def _epilogs(parser: argparse.ArgumentParser, command: str) -> dict[str, str]:
    found = {command: parser.epilog or ""}
    for action in parser._actions:  # argparse keeps subcommands here (no public accessor)
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                found.update(_epilogs(subparser, f"{command} {name}"))
    return found


def test_help_examples_keep_their_continuation_lines():
    """A lone backslash before a newline in a Python string joins the example's two lines into one."""
    joined = {command: line for command, epilog in _epilogs(build_parser(), "owlore-bench").items()
              for line in epilog.splitlines() if re.search(r"\\ {2,}--", line)}
    assert joined == {}


def test_a_count_flag_below_one_is_argparse_s_one_line():
    with pytest.raises(SystemExit) as exit_code:
        build_parser().parse_args(["mtbench", "answer", "--model", "m", "--out", "o", "--max-new-tokens", "0"])
    assert exit_code.value.code == 2
