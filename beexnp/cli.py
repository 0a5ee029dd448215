"""Command line: ``python -m beexnp <command> ...``.

Each command lives beside the code it drives and exposes ``register(subparsers)``,
which adds its sub-parser and sets ``func`` (called with the parsed arguments;
its return value is the exit status).  This file only lists them.
"""
import argparse
import importlib
import sys

from beexnp.train import TrainingDiverged

# (module, attribute) pairs; each attribute is a register(subparsers) function.
COMMANDS = [
    ("beexnp.layer_checks", "register"),
    ("beexnp.train", "register"),
    ("beexnp.evaluate", "register"),     # evaluate, predict
    ("beexnp.sweep", "register"),
    ("beexnp.glue.cli", "register"),          # data, download
    ("beexnp.size", "register"),              # export, size
]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m beexnp",
        description="BEExformer in plain NumPy: binarized transformer with entropy-based early exits.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module_name, attr in COMMANDS:
        getattr(importlib.import_module(module_name), attr)(sub)
    return parser


def main(argv=None):
    """Run a command; a user's mistake (bad value, missing file, unreadable checkpoint, diverged training)
    ends with ``error: <message>`` and status 1 instead of a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, TrainingDiverged) as err:      # CheckpointError, GlueFormatError: ValueErrors
        print(f"error: {err}", file=sys.stderr)
        return 1
