r"""Learning-rate schedule: linear warm-up, then linear, cosine or no decay.

With s the step (the number of updates already done, counted from 0),
W = warmup_steps, S = total_steps, b = base_lr, m = min_lr:

    lr(s) = b * (s + 1) / W                           s < W          (warm-up)
    q     = min(1, (s - W) / (S - W))                 s >= W         (decay progress; q = 1 if S = W)
    lr(s) = m + (b - m) * (1 - q)                     decay="linear"
          = m + (b - m) * (1 + cos(pi * q)) / 2       decay="cosine"
          = b                                         decay="constant"  (min_lr unused)

Decisions:

* Step 0 of a warm-up gives b / W, not 0: a step at lr 0 would be wasted (and
  would still move Adam's moments).  The rate climbs b/W, 2b/W, ..., b and
  reaches b at step W - 1; the decay starts from b at step W.
* The decay reaches min_lr at step S and stays there (clamped) beyond, so a
  run of S updates (steps 0..S-1) ends one decay step above min_lr.

Use: ``opt.lr = schedule(opt.t)`` before each ``opt.step()``.  ``to_dict()``
and ``from_dict()`` store the schedule in a (JSON) checkpoint.
"""
import math

import numpy as np

DECAYS = ("linear", "cosine", "constant")


def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


class LRSchedule:
    """lr(step) for a warm-up then linear / cosine / constant schedule (module docstring)."""

    def __init__(self, base_lr, total_steps, warmup_steps=0, decay="linear", min_lr=0.0):
        if not (isinstance(base_lr, (int, float, np.floating)) and math.isfinite(base_lr) and base_lr > 0):
            raise ValueError(f"base_lr must be a finite number > 0, got {base_lr!r}")
        if not (_is_int(total_steps) and total_steps >= 1):
            raise ValueError(f"total_steps must be an integer >= 1, got {total_steps!r}")
        if not (_is_int(warmup_steps) and 0 <= warmup_steps <= total_steps):
            raise ValueError(f"warmup_steps must be an integer in [0, total_steps={total_steps}], got {warmup_steps!r}")
        if decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}, got {decay!r}")
        if not (isinstance(min_lr, (int, float, np.floating)) and 0 <= min_lr <= base_lr):
            raise ValueError(f"min_lr must be in [0, base_lr={base_lr}], got {min_lr!r}")
        self.base_lr, self.min_lr = float(base_lr), float(min_lr)
        self.total_steps, self.warmup_steps = int(total_steps), int(warmup_steps)
        self.decay = decay

    def __call__(self, step):
        if not (_is_int(step) and step >= 0):
            raise ValueError(f"step must be an integer >= 0, got {step!r}")
        step = int(step)                                           # a NumPy int would make the lr a NumPy float
        b, m, W, S = self.base_lr, self.min_lr, self.warmup_steps, self.total_steps
        if step < W:
            return b * (step + 1) / W                              # warm-up: b/W at step 0, b at step W-1
        if self.decay == "constant":
            return b
        q = 1.0 if step >= S else (step - W) / (S - W)             # decay progress in [0, 1], clamped
        if self.decay == "linear":
            return m + (b - m) * (1 - q)
        return m + (b - m) * (1 + math.cos(math.pi * q)) / 2       # cosine

    def to_dict(self):
        return {"base_lr": self.base_lr, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "decay": self.decay, "min_lr": self.min_lr}

    @classmethod
    def from_dict(cls, d):
        unknown = sorted(set(d) - set(cls(1.0, 1).to_dict()))
        missing = sorted({"base_lr", "total_steps"} - set(d))
        if unknown or missing:
            raise ValueError(f"bad LRSchedule dict: unknown fields {unknown}, missing fields {missing}")
        return cls(**d)

    def __repr__(self):
        return "LRSchedule(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"
