"""The CLI in the conventions users know: --version, help with examples everywhere, lm-eval's option spellings."""

from __future__ import annotations

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
