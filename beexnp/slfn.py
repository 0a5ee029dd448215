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

The gate ablation (DESIGN §4.4, ``--slfn-gates``): a gate left out is the constant 1,
and its matrix is not there, so the fused layer holds only the gates present.  Each
variant is a small subclass with its own equation (``SLFN_VARIANTS``):

    "all"      SLFN               f2 * tanh(f1 * H + l * c)      [f1 | l | f2 | c]    4 d^2 weights
    "learn"    LearnGateSLFN      tanh(H + l * c)                [l | c]              2 d^2
    "forget"   ForgetGatesSLFN    f2 * tanh(f1 * H + c)          [f1 | f2 | c]        3 d^2
"""
from dataclasses import replace

import numpy as np

from beexnp.activations import ReLU, sigmoid
from beexnp.linear import Binarization, make_linear
from beexnp.module import Module


class SLFN(Module):
    r"""SLFN(H) = f2 * tanh(f1 * H + l * c)          H (B, T, d) -> (B, T, d)

    f1, l, f2 = sigmoid(z_f1), sigmoid(z_l), sigmoid(z_f2),  c = tanh(z_c),
    [z_f1 | z_l | z_f2 | z_c] = H [Wf1 | Wl | Wf2 | Wc]_b + b: one fused layer, ``gates``.

    After a forward, ``f1``, ``l``, ``f2`` and ``c`` hold the gate values (B, T, d)
    (the notebooks plot them), ``t`` = tanh(f1 * H + l * c).  The gates' layer binarizes
    as ``binarization`` says; ``binary=False``: the full-precision twin."""

    columns = ("f1", "l", "f2", "c")                                   # the fused layer's blocks of d outputs

    def __init__(self, dim, rng, binary=True, binarization=Binarization(), dtype=np.float32):
        self.dim = dim
        self.gates = make_linear(dim, len(self.columns) * dim, rng, binary, binarization, dtype)

    def forward(self, H):
        z_f1, z_l, z_f2, z_c = np.split(self.gates.forward(H), 4, axis=-1)   # (B, T, d) each
        self.f1 = sigmoid(z_f1)                                        # forget gate 1
        self.l = sigmoid(z_l)                                          # selective-learn gate
        self.f2 = sigmoid(z_f2)                                        # forget gate 2
        self.c = np.tanh(z_c)                                          # candidate
        self.H = H
        self.t = np.tanh(self.f1 * H + self.l * self.c)                # tanh(m), m = f1 * H + l * c
        return self.f2 * self.t

    def backward(self, dY):
        f1, l, f2, c, t, H = self.f1, self.l, self.f2, self.c, self.t, self.H
        dm = dY * f2 * (1 - t * t)                                     # Y = f2 * tanh(m):  dm
        dz_f1 = dm * H * f1 * (1 - f1)                                 # m = f1 * H + ...,  f1 = sigmoid(z_f1)
        dz_l = dm * c * l * (1 - l)                                    # m = ... + l * c,   l = sigmoid(z_l)
        dz_f2 = dY * t * f2 * (1 - f2)                                 # Y = f2 * t,        f2 = sigmoid(z_f2)
        dz_c = dm * l * (1 - c * c)                                    # m = ... + l * c,   c = tanh(z_c)
        dH_direct = dm * f1                                            # m = f1 * H + ...:  the direct path
        return dH_direct + self.gates.backward(np.concatenate([dz_f1, dz_l, dz_f2, dz_c], axis=-1))


class LearnGateSLFN(SLFN):
    r"""SLFN(H) = tanh(H + l * c): the selective-learn gate only, f1 = f2 = 1 (DESIGN §4.4)

    l = sigmoid(z_l), c = tanh(z_c), [z_l | z_c] = H [Wl | Wc]_b + b.  After a forward:
    ``l``, ``c``, and ``t`` = tanh(H + l * c), the output."""

    columns = ("l", "c")

    def forward(self, H):
        z_l, z_c = np.split(self.gates.forward(H), 2, axis=-1)         # (B, T, d) each
        self.l = sigmoid(z_l)
        self.c = np.tanh(z_c)
        self.t = np.tanh(H + self.l * self.c)                          # tanh(m), m = H + l * c
        return self.t

    def backward(self, dY):
        l, c, t = self.l, self.c, self.t
        dm = dY * (1 - t * t)                                          # Y = tanh(m):     dm
        dz_l = dm * c * l * (1 - l)                                    # m = H + l * c,   l = sigmoid(z_l)
        dz_c = dm * l * (1 - c * c)                                    # m = H + l * c,   c = tanh(z_c)
        return dm + self.gates.backward(np.concatenate([dz_l, dz_c], axis=-1))   # dm: the direct path


class ForgetGatesSLFN(SLFN):
    r"""SLFN(H) = f2 * tanh(f1 * H + c): the two forget gates only, l = 1 (DESIGN §4.4)

    f1, f2 = sigmoid(z_f1), sigmoid(z_f2), c = tanh(z_c), [z_f1 | z_f2 | z_c] = H [Wf1 | Wf2 | Wc]_b + b.
    After a forward: ``f1``, ``f2``, ``c``, and ``t`` = tanh(f1 * H + c)."""

    columns = ("f1", "f2", "c")

    def forward(self, H):
        z_f1, z_f2, z_c = np.split(self.gates.forward(H), 3, axis=-1)  # (B, T, d) each
        self.f1 = sigmoid(z_f1)
        self.f2 = sigmoid(z_f2)
        self.c = np.tanh(z_c)
        self.H = H
        self.t = np.tanh(self.f1 * H + self.c)                         # tanh(m), m = f1 * H + c
        return self.f2 * self.t

    def backward(self, dY):
        f1, f2, c, t, H = self.f1, self.f2, self.c, self.t, self.H
        dm = dY * f2 * (1 - t * t)                                     # Y = f2 * tanh(m): dm
        dz_f1 = dm * H * f1 * (1 - f1)                                 # m = f1 * H + c,   f1 = sigmoid(z_f1)
        dz_f2 = dY * t * f2 * (1 - f2)                                 # Y = f2 * t,       f2 = sigmoid(z_f2)
        dz_c = dm * (1 - c * c)                                        # m = f1 * H + c,   c = tanh(z_c)
        return dm * f1 + self.gates.backward(np.concatenate([dz_f1, dz_f2, dz_c], axis=-1))   # dm * f1: direct


SLFN_VARIANTS = {"all": SLFN, "learn": LearnGateSLFN, "forget": ForgetGatesSLFN}   # by --slfn-gates (DESIGN §4.4)


class BinaryFeedForward(Module):
    r"""FFN(H) = ReLU(H W1_b + b1) W2_b + b2        H (B, T, d) -> (B, T, d), hidden d_ff

    The "no SLFN" ablation; d_ff = 2d matches the SLFN's 4 d^2 weights.  With
    ``binarization.binarize_input`` (W1A1) the second layer binarizes its input, ReLU(.) >= 0,
    to {0, 1} as BiT does ([x > 0]); sign would make it +1 everywhere (sign(0) =
    +1) and the output would not depend on H (DESIGN §1.5)."""

    def __init__(self, dim, rng, hidden=None, binary=True, binarization=Binarization(), dtype=np.float32):
        hidden = hidden or 2 * dim
        self.up = make_linear(dim, hidden, rng, binary, binarization, dtype)
        self.act = ReLU()
        self.down = make_linear(hidden, dim, rng, binary, replace(binarization, input_levels="step"), dtype)

    def forward(self, H):
        return self.down.forward(self.act.forward(self.up.forward(H)))

    def backward(self, dout):
        return self.up.backward(self.act.backward(self.down.backward(dout)))
