"""The golden training trajectory: 10 steps of the real Trainer on a tiny fixed SST-2, recorded.

    python tools/golden_trajectory.py            # run it and compare with tests/data/golden_trajectory.json
    python tools/golden_trajectory.py --write    # run it and (re)write that file

Run from the repository root (or with the checkout on PYTHONPATH).  The run: the 40
training rows of ``tests/data/golden_glue/SST-2`` (16 dev rows for the end of each
epoch), the tiny model ``MODEL``, the training config ``TRAIN`` (seed fixed,
``max_steps=10``), through ``beexnp.train.Trainer`` unchanged; a subclass only records
what each ``train_step`` returns.  Recorded, per step: the loss (the objective of that
step's batch, before its update) and the exit weights (mean over the batch, per exit);
after the last step, per parameter: the float64 sum, the sum of absolute values and the
sum of squares (``checksums``).  ``compare`` allows 1e-6 relative (a sum relative to its sum of absolute
values): robust to the order of float32 summation, while any real change to a forward,
a backward, the loss weights, the optimizer or the data order moves some number far more.

When an intended change moves the trajectory, regenerate the file with ``--write`` and
commit the diff with the change: the diff is part of it.  tests/test_golden_trajectory.py
imports ``trajectory`` and ``compare`` from here: one source of truth.
"""
import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:                                    # `python tools/golden_trajectory.py` from anywhere
    sys.path.insert(0, str(ROOT))

# The package names used here, in one place.
from beexnp.config import TrainConfig  # noqa: E402
from beexnp.train import Trainer

DATA = ROOT / "tests" / "data" / "golden_glue"
GOLDEN = ROOT / "tests" / "data" / "golden_trajectory.json"
RTOL = 1e-6
MODEL = dict(token_dim=12, position_dim=4, heads=2, blocks=3, dropout=0.1)
TRAIN = dict(task="sst2", epochs=3, max_steps=10, batch_size=8, max_len=16, min_freq=1, lr=3e-3, warmup=0.2,
             exit_weighting="soft_routing", delta=0.1, tau=0.05, beta=0.2, seed=1234)


class RecordingTrainer(Trainer):
    """The Trainer, recording each step's loss and mean exit weights (nothing else changes)."""

    def __init__(self, *args, **kwargs):
        self.steps = []
        super().__init__(*args, **kwargs)

    def train_step(self, ids, mask, labels):
        loss = super().train_step(ids, mask, labels)
        self.steps.append(dict(loss=loss, exit_weights=self.objective.loss.w.mean(axis=1).tolist()))
        return loss


def checksums(model):
    """Per parameter: float64 sum, sum of |values|, sum of squares.

    Without the key bias bk (the middle third of ``attn.qkv.bias``): softmax is unchanged by
    adding one constant to a row of scores, and q . bk is one, so bk gets no gradient in exact
    arithmetic and changes nothing downstream.  Its float gradient is rounding noise, which Adam
    scales up to full-size steps: bk would record the rounding of the machine, not the math."""
    out = {}
    for name, p in model.parameters():
        x = p.data.astype(np.float64)
        if name.endswith("attn.qkv.bias"):
            d = len(x) // 3
            x = np.concatenate([x[:d], x[2 * d:]])                     # bq and bv
        out[name] = dict(sum=float(x.sum()), abs=float(np.abs(x).sum()), squares=float((x * x).sum()))
    return out


def trajectory():
    """Run the 10 steps; the record that the golden file holds."""
    with tempfile.TemporaryDirectory(prefix="beexnp-golden-") as out, contextlib.redirect_stdout(io.StringIO()):
        trainer = RecordingTrainer(TrainConfig(**TRAIN), MODEL, out, glue_dir=DATA, progress=False)
        trainer.fit()
    return dict(model=MODEL, train=TRAIN, steps=trainer.steps, parameters=checksums(trainer.model))


def close(a, b, scale, rtol=RTOL):
    return abs(a - b) <= rtol * max(abs(scale), 1e-30)


def compare(actual, golden, rtol=RTOL):
    """Lines naming every difference beyond rtol (empty: the same trajectory)."""
    problems = [f"{key} differs: {actual[key]} vs golden {golden.get(key)}"
                for key in ("model", "train") if actual[key] != golden.get(key)]
    if len(actual["steps"]) != len(golden["steps"]):
        return problems + [f"{len(actual['steps'])} steps, golden {len(golden['steps'])}"]
    for k, (a, g) in enumerate(zip(actual["steps"], golden["steps"]), 1):
        if not close(a["loss"], g["loss"], g["loss"], rtol):
            problems.append(f"step {k}: loss {a['loss']!r}, golden {g['loss']!r}")
        if len(a["exit_weights"]) != len(g["exit_weights"]) or not all(
                close(x, y, y, rtol) for x, y in zip(a["exit_weights"], g["exit_weights"])):
            problems.append(f"step {k}: exit weights {a['exit_weights']}, golden {g['exit_weights']}")
    if actual["parameters"].keys() != golden["parameters"].keys():
        names = sorted(actual["parameters"].keys() ^ golden["parameters"].keys())
        return problems + [f"parameter names differ: {names}"]
    for name, a in actual["parameters"].items():
        g = golden["parameters"][name]
        for stat in ("sum", "abs", "squares"):
            scale = g["abs"] if stat == "sum" else g[stat]                   # a sum: relative to its terms
            if not close(a[stat], g[stat], scale, rtol):
                problems.append(f"{name}: {stat} {a[stat]!r}, golden {g[stat]!r}")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"(re)write {GOLDEN.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    record = trajectory()
    if args.write:
        GOLDEN.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {GOLDEN.relative_to(ROOT)}: losses {[round(s['loss'], 6) for s in record['steps']]}")
        return 0
    problems = compare(record, json.loads(GOLDEN.read_text()))
    print("\n".join(problems) if problems else f"same trajectory as {GOLDEN.relative_to(ROOT)} (rtol {RTOL})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
