r"""The Selective Learn-Forget Network, the block's second sub-layer (DESIGN §4.1),
and the binarized feed-forward network that replaces it in the ablation (DESIGN §4.3).

The equations below are this project's own formulation, not the paper's: the
paper names the SLFN's parts (two forget gates and a selective-learn gate) and
what they are for, but gives no equations.  DESIGN §4.1 says why we chose this
form (each gate one job, a bounded output, 4 d^2 binary weights).

    f1 = sigmoid(H Wf1_b + bf1)     forget gate 1: which parts of the context H to retain
    l  = sigmoid(H Wl_b  + bl)      selective-learn gate: how much new information to admit
    f2 = sigmoid(H Wf2_b + bf2)     forget gate 2: which parts of the merged state to pass on
    c  = tanh(H Wc_b + bc)          candidate information
    SLFN(H) = f2 * tanh(f1 * H + l * c)

The four matrices read the same H and have one alpha per output unit, so they
are one ``BinaryLinear(d, 4d)`` whose columns are [f1 | l | f2 | c].

The gate ablation (DESIGN §4.4, ``gates``): a gate left out is the constant 1,
and its matrix is not there, so the fused layer holds only the gates present:

    "all"      f2 * tanh(f1 * H + l * c)      [f1 | l | f2 | c]    4 d^2 weights
    "learn"    tanh(H + l * c)                [l | c]              2 d^2
    "forget"   f2 * tanh(f1 * H + c)          [f1 | f2 | c]        3 d^2
"""
import numpy as np

from beexnp.activations import ReLU, sigmoid
from beexnp.linear import make_linear
from beexnp.module import Module

GATE_SETS = {"all": ("f1", "l", "f2"), "learn": ("l",), "forget": ("f1", "f2")}   # in column order


class SLFN(Module):
    r"""SLFN(H) = f2 * tanh(f1 * H + l * c)          H (B, T, d) -> (B, T, d)

    After a forward, ``f1``, ``l``, ``f2`` and ``c`` hold the gate values (B, T, d)
    (the notebooks plot them); a gate left out by ``gates`` (DESIGN §4.4) is the
    constant 1.0.  ``binary=False``: the full-precision twin."""

    def __init__(self, dim, rng, binary=True, gates="all", **binary_options):
        if gates not in GATE_SETS:
            raise ValueError(f"gates must be one of {', '.join(GATE_SETS)}, got {gates!r}")
        self.dim, self.names = dim, GATE_SETS[gates]
        k = len(self.names) + 1                                            # the gates present and c
        self.gates = make_linear(dim, k * dim, rng, binary, **binary_options)   # e.g. [Wf1 | Wl | Wf2 | Wc]

    def forward(self, H):
        d, k = self.dim, len(self.names)
        z = self.gates.forward(H)                                          # (B, T, (k+1)d)
        g = sigmoid(z[..., :k * d])                                        # (B, T, kd): the gates present
        present = {name: g[..., i * d:(i + 1) * d] for i, name in enumerate(self.names)}
        self.f1, self.l, self.f2 = (present.get(name, 1.0) for name in ("f1", "l", "f2"))
        self.c = np.tanh(z[..., k * d:])                                   # (B, T, d)
        self.H = H
        self.t = np.tanh(self.f1 * H + self.l * self.c)                    # (B, T, d) merged state
        return self.f2 * self.t

    def backward(self, dout):
        f1, l, f2, c, t, H = self.f1, self.l, self.f2, self.c, self.t, self.H
        dm = dout * f2 * (1 - t * t)                                       # d/d(f1*H + l*c)
        through = {"f1": lambda: dm * H * f1 * (1 - f1),                   # through f1
                   "l": lambda: dm * c * l * (1 - l),                      # through l
                   "f2": lambda: dout * t * f2 * (1 - f2)}                 # through f2
        dz = np.concatenate([through[name]() for name in self.names]
                            + [dm * l * (1 - c * c)], axis=-1)             # (B, T, (k+1)d), through c last
        return dm * f1 + self.gates.backward(dz)                           # direct path + through the gates


class BinaryFeedForward(Module):
    r"""FFN(H) = ReLU(H W1_b + b1) W2_b + b2        H (B, T, d) -> (B, T, d), hidden d_ff

    The "no SLFN" ablation; d_ff = 2d matches the SLFN's 4 d^2 weights.  With
    ``binarize_input`` (W1A1) the second layer binarizes its input, ReLU(.) >= 0,
    to {0, 1} as BiT does ([x > 0]); sign would make it +1 everywhere (sign(0) =
    +1) and the output would not depend on H (DESIGN §1.5)."""

    def __init__(self, dim, rng, hidden=None, binary=True, **binary_options):
        hidden = hidden or 2 * dim
        self.up = make_linear(dim, hidden, rng, binary, **binary_options)
        self.act = ReLU()
        self.down = make_linear(hidden, dim, rng, binary, **dict(binary_options, input_levels="step"))

    def forward(self, H):
        return self.down.forward(self.act.forward(self.up.forward(H)))

    def backward(self, dout):
        return self.up.backward(self.act.backward(self.down.backward(dout)))
