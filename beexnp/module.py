"""The module API every layer shares: parameters, gradients, modes.

A layer is a small class.  ``forward(...)`` computes the output and keeps what
``backward`` will need; ``backward(dout)`` returns the gradient of the input(s)
and *adds* the gradient of each parameter into ``param.grad``.  Nothing is
recorded behind the scenes: the chain rule is written out in every layer, and
a container's ``backward`` calls its children's ``backward`` in reverse order.

Modes (set on a module and all its children):

* ``train()`` / ``eval()``: dropout is active only in training.
* ``relax(True)``: binarized layers use the smooth approximation g in place of
  sign in their forward (DESIGN §1.3), so that central differences can check
  their backward.  ``relax(False)`` (the default) is the real binary forward.
"""
import contextlib

import numpy as np


class Parameter:
    """A tensor the optimizer updates, with its accumulated gradient.

    ``binary`` marks latent weights that the forward binarizes; optimizers
    clip those to [-1, 1] after each step (DESIGN §1.7: g' is 0 outside).
    """

    def __init__(self, data, binary=False):
        self.data = np.asarray(data)
        self.grad = np.zeros_like(self.data)
        self.binary = binary

    @property
    def shape(self):
        return self.data.shape

    def __repr__(self):
        kind = "binary " if self.binary else ""
        return f"Parameter({kind}{self.data.dtype}{list(self.data.shape)})"


class Module:
    """Base class.  Children are found among the instance attributes, in the
    order they were assigned: a ``Parameter``, a ``Module``, or a list of
    ``Module`` (named ``name.0``, ``name.1``, ...)."""

    training = True
    relaxed = False

    # ---- what subclasses write -------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- the tree ----------------------------------------------------------
    def children(self):
        """Yield (name, child module) pairs, in assignment order."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Module) for v in value):
                for i, child in enumerate(value):
                    yield f"{name}.{i}", child

    def parameters(self, prefix=""):
        """Yield (dotted name, Parameter) for this module and its children.

        The names are stable: checkpoints store weights under them."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.children():
            yield from child.parameters(prefix + name + ".")

    def modules(self):
        """This module and every descendant (depth first)."""
        yield self
        for _, child in self.children():
            yield from child.modules()

    def num_parameters(self):
        return sum(p.data.size for _, p in self.parameters())

    # ---- gradients and modes ---------------------------------------------
    def zero_grad(self):
        for _, p in self.parameters():
            p.grad[...] = 0

    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
            m.clear_weight_cache()
        return self

    def clear_weight_cache(self):
        """Drop what was computed from the parameters and kept; a layer that keeps something overrides this
        (BinaryLinear: its eval-mode W_b).  train(), eval() and load_state_dict call it on every module."""

    def eval(self):
        return self.train(False)

    def relax(self, mode=True):
        """Relaxed mode: binarized layers use g instead of sign in the forward."""
        for m in self.modules():
            m.relaxed = mode
        return self

    def astype(self, dtype):
        """Cast every parameter (and its gradient) to ``dtype`` in place."""
        for m in self.modules():
            for name, value in vars(m).items():
                if isinstance(value, Parameter):
                    value.data = value.data.astype(dtype)
                    value.grad = np.zeros_like(value.data)
        return self

    # ---- weights as a flat dict (checkpoints) ----------------------------
    def state_dict(self):
        return {name: p.data.copy() for name, p in self.parameters()}

    def load_state_dict(self, state):
        """Copy arrays into the parameters; every name and shape must match."""
        own = dict(self.parameters())
        problems = mismatches({n: p.shape for n, p in own.items()}, state, "parameters")
        if problems:
            raise ValueError("state does not fit the model:\n  " + "\n  ".join(problems))
        for name, p in own.items():
            p.data[...] = state[name]
        for m in self.modules():
            m.clear_weight_cache()


def mismatches(expected_shapes, given, what):
    """Lines naming what ``given`` (name -> array) lacks, adds, or shapes differently."""
    missing = sorted(set(expected_shapes) - set(given))
    unexpected = sorted(set(given) - set(expected_shapes))
    wrong = [f"{n}: expected {shape}, got {tuple(np.shape(given[n]))}"
             for n, shape in expected_shapes.items() if n in given and shape != tuple(np.shape(given[n]))]
    return ([f"missing {what}: " + ", ".join(missing)] if missing else []) \
        + ([f"unexpected {what}: " + ", ".join(unexpected)] if unexpected else []) \
        + (["shape mismatch: " + "; ".join(wrong)] if wrong else [])


@contextlib.contextmanager
def evaluating(module):
    """Eval mode inside the block, the previous mode after it."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
