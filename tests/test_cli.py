"""The command line: every option of every command is documented, and a user's mistake is one line, not a traceback."""
import argparse

import pytest

from beexnp.cli import DERIVED, UsageError, build_parser, main
from beexnp.config import ModelConfig, TrainConfig


def subcommands():
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_command_and_option_has_help():
    commands = subcommands()
    assert {"train", "evaluate", "predict", "sweep", "export", "size", "data", "download", "gradcheck"} <= set(commands)
    for name, parser in commands.items():
        assert parser.description, f"{name} has no description"
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help and len(action.help) > 8, f"{name} {action.option_strings or action.dest}"


def test_train_has_a_flag_for_every_config_field():
    args = build_parser().parse_args(["train"])
    flags = {s for a in subcommands()["train"]._actions for s in a.option_strings}
    assert args.model_flags == [f for f in ModelConfig.__dataclass_fields__ if f not in DERIVED]
    assert args.train_flags == list(TrainConfig.__dataclass_fields__)
    assert all(f"--{name.replace('_', '-')}" in flags for name in args.model_flags + args.train_flags)
    assert {"--full-precision", "--no-bucket", "--no-alpha-grad"} <= flags and "--vocab-size" not in flags


def test_train_flags_reach_the_configs():
    args = build_parser().parse_args(["train", "--ffn", "ffn", "--no-alpha-grad", "--epochs", "2", "--no-bucket",
                                      "--train-subset", "10"])
    from beexnp.cli import given
    assert given(args, args.model_flags) == {"ffn": "ffn", "alpha_grad": False}
    assert given(args, args.train_flags) == {"epochs": 2, "bucket": False, "train_subset": 10}


def test_a_bad_choice_is_refused_by_the_parser(capsys):
    """Usage errors are user errors like any other: one line, status 1 (not argparse's usage text and 2)."""
    with pytest.raises(UsageError, match="invalid choice: 'rmsprop'"):
        build_parser().parse_args(["train", "--optimizer", "rmsprop"])
    assert main(["train", "--optimizer", "rmsprop"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: python -m beexnp train: argument --optimizer")


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "/no/such/checkpoint"], "not a checkpoint: nothing there (/no/such/checkpoint)"),
    (["train", "--task", "nosuchtask"], "unknown GLUE task 'nosuchtask'"),
    (["train", "--lr", "0"], "lr must be > 0"),
    (["train", "--heads", "3", "--glue-dir", "/no/such/glue"], "not divisible by heads=3"),   # before the data
    (["train", "--glue-dir", "/no/such/glue", "--out", "/no/such/out"], "looked"),
])
def test_user_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
