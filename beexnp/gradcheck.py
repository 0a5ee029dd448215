r"""Check any module's ``backward`` against central differences.

For a random upstream gradient G (same shape as the output) the scalar

    f = sum(forward(inputs) * G)

has df/dx = backward(G).  We nudge every entry of every input and parameter
by +-h and compare

    numerical = (f(x + h) - f(x - h)) / 2h        with the analytic gradient,

reporting  rel = max|a - n| / max(max(|a| + |n|), eps)  per tensor.  G must be
random: the gradient of a plain ``sum(out)`` through a softmax or a LayerNorm
is exactly zero, so a wrong backward there would pass unnoticed.

Everything runs in float64 (the module is cast in place, and cast back to its
own dtypes afterwards) and, by default, in relaxed mode, where binarized layers use g instead of sign so that their
forward is differentiable and their backward is its exact derivative.
"""
from dataclasses import dataclass, field

import numpy as np


def rel_error(analytic, numeric, eps=1e-12):
    """max|a - n| / max(max(|a| + |n|), eps)."""
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - n)) / max(np.max(np.abs(a) + np.abs(n)), eps))


def numerical_gradient(f, x, h=1e-5, on_entry=None):
    """Central differences of the scalar f() with respect to the array x.

    x is changed in place, one entry at a time, and restored; ``on_entry(1)``, if given, is called after each
    entry (a progress bar's ``update``)."""
    grad = np.zeros_like(x, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        f_plus = f()
        x[ix] = old - h
        f_minus = f()
        x[ix] = old
        grad[ix] = (f_plus - f_minus) / (2 * h)
        if on_entry:
            on_entry(1)
    return grad


def randomize_parameters(module, rng, low=0.1, high=0.9):
    """Give every parameter random values of magnitude in [low, high] and random sign.

    Non-trivial (LayerNorm's gamma is not 1, biases are not 0) and away from the
    kinks of g and |W| (0 and +-1), so central differences are trustworthy."""
    for _, p in module.parameters():
        values = rng.uniform(low, high, p.shape) * rng.choice([-1.0, 1.0], p.shape)
        p.data = values.astype(p.data.dtype)
        p.grad = np.zeros_like(p.data)
    return module


@dataclass
class GradCheckRow:
    name: str
    shape: tuple
    rel_error: float
    ok: bool


@dataclass
class GradCheckReport:
    """Per-tensor result of a gradient check; ``ok`` is the verdict."""

    title: str
    rows: list = field(default_factory=list)
    tol: float = 1e-6

    @property
    def ok(self):
        return all(r.ok for r in self.rows)

    @property
    def max_error(self):
        return max((r.rel_error for r in self.rows), default=0.0)

    def __str__(self):
        return format_table([self], header=True)


def format_table(reports, header=True):
    """An aligned table: layer, tensor, shape, rel. error, ok."""
    lines = []
    rows = [(rep.title, r.name, "x".join(map(str, r.shape)) or "scalar", f"{r.rel_error:.2e}", "ok" if r.ok else "FAIL")
            for rep in reports for r in rep.rows]
    head = ("layer", "tensor", "shape", "rel. error", "")
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    if header:
        lines += [fmt.format(*head).rstrip(), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*row).rstrip() for row in rows]
    return "\n".join(lines)


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def gradcheck(module, inputs=(), constants=None, forward=None, dout=None, rng=None,
              h=1e-5, tol=1e-6, relaxed=True, title=None, on_entry=None):
    """Check ``module.backward`` for the float ``inputs`` and every parameter.

    inputs:    tuple of float arrays, differentiated (copied to float64).
    constants: dict of keyword arguments passed to forward and not
               differentiated (token ids, masks, labels, weights).
    forward:   callable(*inputs, **constants) -> output, for a forward that
               needs more than ``module.forward`` (default).
    dout:      upstream gradient; random normal (from ``rng``) if None.
    on_entry:  called with 1 after each entry is differenced (a progress bar's ``update``).

    ``module.backward(dout)`` must return the gradients of ``inputs`` in order
    (one array, or a tuple).  Returns a ``GradCheckReport``.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    constants = constants or {}
    forward = forward or module.forward
    dtypes = [(p, p.data.dtype) for _, p in module.parameters()]
    module.astype(np.float64)
    inputs = tuple(np.array(x, dtype=np.float64) for x in inputs)
    before = [(m, m.relaxed) for m in module.modules()]
    module.relax(relaxed)
    try:
        out = forward(*inputs, **constants)
        if dout is None:
            dout = rng.standard_normal(np.shape(out))
        dout = np.asarray(dout, np.float64)

        module.zero_grad()
        forward(*inputs, **constants)
        analytic_inputs = _as_tuple(module.backward(dout))
        analytic_params = {name: p.grad.copy() for name, p in module.parameters()}

        def f():
            return float(np.sum(forward(*inputs, **constants) * dout))

        report = GradCheckReport(title or type(module).__name__, tol=tol)
        for i, x in enumerate(inputs):
            err = rel_error(analytic_inputs[i], numerical_gradient(f, x, h, on_entry))
            report.rows.append(GradCheckRow(f"input{i}" if len(inputs) > 1 else "input", x.shape, err, err <= tol))
        for name, p in module.parameters():
            err = rel_error(analytic_params[name], numerical_gradient(f, p.data, h, on_entry))
            report.rows.append(GradCheckRow(name, p.shape, err, err <= tol))
        return report
    finally:
        for m, mode in before:
            m.relaxed = mode
        for p, dtype in dtypes:
            p.data, p.grad = p.data.astype(dtype), p.grad.astype(dtype)
        for m in module.modules():
            m.clear_weight_cache()
