"""Write docs/gradient-checks.md's list of checks from the checks themselves.

    python tools/render_gradcheck_doc.py          rewrite the block between the markers in place
    python tools/render_gradcheck_doc.py --check  write nothing; exit 1 when the committed block is stale

What stands between the markers (every check ``python -m beexnp gradcheck`` runs at its default shapes, how many
tensors each differentiates, the step and the tolerance) comes from ``beexnp.layer_checks`` and
``beexnp.gradcheck``: building the checks is cheap, only running them costs (the command prints every tensor's
relative error). ``tests/test_prose_numbers.py`` checks that the committed block is what this writes.
"""
import argparse
import inspect
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from beexnp.gradcheck import gradcheck  # noqa: E402
from beexnp.layer_checks import layer_cases, model_cases  # noqa: E402
from beexnp.outputs import UserError, reason, write_text  # noqa: E402

DOC = ROOT / "docs" / "gradient-checks.md"
START = "<!-- checks: written by tools/render_gradcheck_doc.py -->"
END = "<!-- end of checks -->"


def defaults(function, *names):
    signature = inspect.signature(function).parameters
    return [signature[name].default for name in names]


def short(x):
    """1e-05 as 1e-5."""
    return f"{x:g}".replace("e-0", "e-")


def block():
    """The Markdown between the markers."""
    batch, tokens, dim, heads = defaults(layer_cases, "batch", "tokens", "dim", "heads")
    h, tol = defaults(gradcheck, "h", "tol")
    cases = layer_cases(np.random.default_rng(0)) + model_cases(np.random.default_rng(0))
    whole = next(case for case in cases if hasattr(case.module, "model"))
    model, ids = whole.module.model.config, whole.constants["ids"]
    rows = [f"| {case.name.replace('|', chr(92) + '|')} | {len(case.inputs) + len(list(case.module.parameters()))} |"
            for case in cases]
    return "\n".join([
        f"Central differences with h = {short(h)}; a tensor passes when its relative error is at most {short(tol)}. "
        f"The {len(cases)} checks at the command's default shapes (batch {batch}, {tokens} tokens with padding, "
        f"width {dim}, {heads} heads), each with the number of tensors it differentiates (inputs and parameters); "
        "`python -m beexnp gradcheck` prints the relative error of every one and the largest:",
        "",
        "| check | tensors |",
        "|---|---:|",
        *rows,
        "",
        f"The whole model is vocab {model.vocab_size}, width {model.token_dim} + {model.position_dim}, "
        f"{model.heads} heads, {model.blocks} blocks, {ids.shape[1]} tokens with padding, batch {ids.shape[0]}.",
    ])


class DamagedDoc(ValueError):
    """The doc's markers are missing, doubled or out of order: a user's file to mend, not a bug here."""


def render(text):
    """``text`` with the block between its markers rewritten; DamagedDoc unless it holds each marker once, in order."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise DamagedDoc(f"it must hold {START!r} once and, after it, {END!r} once")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block()}\n{END}{tail}"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Rewrite docs/gradient-checks.md's list of checks from the checks.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when the committed block is stale")
    args = parser.parse_args(argv)
    name = DOC.relative_to(ROOT)
    try:
        text = DOC.read_text()
        new = render(text)
    except (OSError, UnicodeDecodeError, DamagedDoc) as err:
        sys.exit(f"error: cannot render {name}: {reason(err)}")
    if args.check:
        print(f"{name} is {'a fresh render' if new == text else 'stale: run python tools/render_gradcheck_doc.py'}")
        return 0 if new == text else 1
    try:
        write_text(DOC, new)          # a temporary file renamed over the doc: an interrupted write leaves it whole
    except UserError as err:
        sys.exit(f"error: {err}")
    print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
