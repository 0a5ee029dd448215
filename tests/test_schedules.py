"""LRSchedule at its key steps, by hand."""
import json

import numpy as np
import pytest

from beexnp.schedules import LRSchedule

# base 1.0, min 0.1, warm-up 10 steps, total 110: the decay runs over steps 10..110 (100 steps),
# progress q = (s - 10) / 100.
WARM = dict(base_lr=1.0, total_steps=110, warmup_steps=10, min_lr=0.1)


@pytest.mark.parametrize("decay", ["linear", "cosine", "constant"])
def test_warmup(decay):
    s = LRSchedule(decay=decay, **WARM)
    assert s(0) == pytest.approx(0.1)                  # base/W: step 0 is not wasted at lr 0
    assert s(4) == pytest.approx(0.5)                  # 5/10
    assert s(9) == pytest.approx(1.0)                  # last warm-up step reaches base
    assert s(10) == pytest.approx(1.0)                 # the decay starts from base


def test_linear_decay():
    s = LRSchedule(decay="linear", **WARM)
    assert s(35) == pytest.approx(0.775)               # q = 1/4: 0.1 + 0.9 * 3/4
    assert s(60) == pytest.approx(0.55)                # q = 1/2: 0.1 + 0.9 / 2
    assert s(85) == pytest.approx(0.325)               # q = 3/4: 0.1 + 0.9 / 4
    assert s(109) == pytest.approx(0.109)              # last step of a 110-step run: 0.1 + 0.9 / 100
    assert s(110) == pytest.approx(0.1)                # min_lr at total_steps
    assert s(500) == pytest.approx(0.1)                # clamped beyond


def test_cosine_decay():
    s = LRSchedule(decay="cosine", **WARM)
    assert s(35) == pytest.approx(0.8681980515339464)  # q = 1/4: 0.1 + 0.45 (1 + cos(pi/4))
    assert s(60) == pytest.approx(0.55)                # q = 1/2: 0.1 + 0.45 (1 + 0)
    assert s(85) == pytest.approx(0.2318019484660537)  # q = 3/4: 0.1 + 0.45 (1 - cos(pi/4))
    assert s(110) == pytest.approx(0.1)
    assert s(500) == pytest.approx(0.1)


def test_constant_after_warmup():
    s = LRSchedule(decay="constant", **WARM)
    assert [s(k) for k in (10, 60, 110, 500)] == [1.0] * 4


def test_no_warmup_starts_at_base_and_returns_python_floats():
    s = LRSchedule(0.5, total_steps=4, decay="linear")
    assert [s(k) for k in range(6)] == pytest.approx([0.5, 0.375, 0.25, 0.125, 0.0, 0.0])
    assert type(s(np.int64(2))) is float


def test_warmup_spanning_the_whole_run():
    s = LRSchedule(1.0, total_steps=4, warmup_steps=4, decay="cosine", min_lr=0.2)
    assert [s(k) for k in range(6)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 0.2, 0.2])


def test_dict_round_trip():
    s = LRSchedule(3e-4, total_steps=1000, warmup_steps=100, decay="cosine", min_lr=1e-5)
    d = json.loads(json.dumps(s.to_dict()))
    t = LRSchedule.from_dict(d)
    assert t.to_dict() == s.to_dict()
    assert [t(k) for k in (0, 99, 100, 550, 1000, 2000)] == [s(k) for k in (0, 99, 100, 550, 1000, 2000)]
    with pytest.raises(ValueError, match="unknown fields"):
        LRSchedule.from_dict({**d, "gamma": 0.5})
    with pytest.raises(ValueError, match="missing fields"):
        LRSchedule.from_dict({"base_lr": 0.1})


@pytest.mark.parametrize("kwargs", [
    dict(base_lr=0.0, total_steps=10),
    dict(base_lr=-1.0, total_steps=10),
    dict(base_lr=float("nan"), total_steps=10),
    dict(base_lr="0.1", total_steps=10),
    dict(base_lr=0.1, total_steps=0),
    dict(base_lr=0.1, total_steps=10.0),
    dict(base_lr=0.1, total_steps=True),
    dict(base_lr=0.1, total_steps=10, warmup_steps=-1),
    dict(base_lr=0.1, total_steps=10, warmup_steps=11),
    dict(base_lr=0.1, total_steps=10, decay="exponential"),
    dict(base_lr=0.1, total_steps=10, min_lr=-0.01),
    dict(base_lr=0.1, total_steps=10, min_lr=0.2),
])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        LRSchedule(**kwargs)


@pytest.mark.parametrize("step", [-1, 1.5, "3"])
def test_invalid_step(step):
    with pytest.raises(ValueError, match="step"):
        LRSchedule(0.1, 10)(step)
