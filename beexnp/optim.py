r"""Optimizers (SGD with momentum, Adam, AdamW) and global-norm gradient clipping.

One training step::

    loss = ...; model.backward(dloss)           # fills p.grad
    clip_grad_norm(model.parameters(), 1.0)     # optional
    opt.lr = schedule(opt.t)                    # optional (beexnp.schedules)
    opt.step()                                  # updates p.data in place
    opt.zero_grad()

An optimizer takes the (dotted name, Parameter) pairs of ``model.parameters()``
(a list or the generator itself) and keeps, per parameter, its state arrays
("slots": SGD's velocity, Adam's m and v).  Each ``step()`` uses the current
``opt.lr`` attribute, so a schedule only has to set it.

Decisions (DESIGN §1.7 for the binary weights, §9 for the recipe):

* **Weight decay only on real weight matrices** (``ndim >= 2`` and not
  ``binary``): the matrices of the real linear layers, the exit heads and the
  real embeddings.  Not on biases nor LayerNorm gamma/beta: they are offsets
  and per-feature scales, few numbers that hardly add capacity, and decaying
  gamma toward 0 would shrink the normalized signal itself (BERT practice).
  Not on latent binary weights: the forward uses only sign(W) and
  alpha = mean |W|, so |W| is no capacity to penalize but the weight's distance
  to a sign flip; decay would pull every latent weight toward the flip point 0
  (more random flips) and shrink alpha, while clipping (below) bounds them anyway.
* **Latent binary weights are clipped to [-1, 1] after every step**
  (``clip_binary=True``, the default; BinaryConnect practice).  Both surrogate
  derivatives are 0 outside [-1, 1] (the triangle g'(x) and the STE's
  1{|x| <= 1}), so a latent weight pushed beyond +-1 gets no gradient through
  sign any more (only the small alpha term sign(W)/in * dL/dalpha): its sign
  would be frozen for good.  Clipping keeps every latent weight where its sign
  can still learn.  They are initialized inside (``linear.init_weight``:
  uniform in +-1/sqrt(in)).  Real parameters are never clipped.
* **Dtype**: the state arrays are allocated with the parameter's dtype when the
  optimizer is built (build it after ``model.astype``), updated in place, and
  every scalar (lr, betas, bias corrections) is a Python float, which NumPy 2
  does not let upcast an array: float32 training stays float32.  ``lr`` is read
  through ``float()`` so a NumPy float64 from a schedule does not leak.
* **Resume**: ``state_dict()`` holds the step count t, lr and copies of every
  state array ("<slot>.<param name>"); ``load_state_dict`` copies them back in
  place, so the following steps are bitwise those of an uninterrupted run.
"""
import math

import numpy as np

from beexnp.module import Module, Parameter, mismatches


def _require(ok, message):
    if not ok:
        raise ValueError(message)


def _as_pairs(params):
    """The (name, Parameter) pairs as a list: checked, names and objects unique."""
    if isinstance(params, Module):
        raise TypeError("pass model.parameters() (the (name, Parameter) pairs), not the model")
    pairs = list(params)
    for item in pairs:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Parameter)):
            raise TypeError(f"params must be (name, Parameter) pairs as model.parameters() yields, got {item!r}")
    names = [name for name, _ in pairs]
    _require(len(set(names)) == len(names), f"duplicate parameter names: {sorted({n for n in names if names.count(n) > 1})}")
    _require(len({id(p) for _, p in pairs}) == len(pairs), "the same Parameter appears twice: it would be updated twice")
    return pairs


class Optimizer:
    """Shared bookkeeping: the parameter list, the step count ``t``, the state
    arrays, which parameters decay, binary clipping, ``zero_grad`` and the
    state dict.  A subclass names its ``slots`` and writes ``update(p, lr, *slots)``."""

    slots = ()                                                     # names of the per-parameter state arrays

    def __init__(self, params, lr, weight_decay=0.0, clip_binary=True):
        self.params = _as_pairs(params)
        _require(len(self.params) > 0, "no parameters to optimize")
        _require(float(lr) >= 0, f"lr must be >= 0, got {lr}")
        _require(float(weight_decay) >= 0, f"weight_decay must be >= 0, got {weight_decay}")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.clip_binary = bool(clip_binary)
        self.t = 0                                                 # updates done so far
        self.state = {name: [np.zeros_like(p.data) for _ in self.slots] for name, p in self.params}

    def decays(self, p):
        """Weight decay applies to real weight matrices only (module docstring)."""
        return self.weight_decay > 0 and p.data.ndim >= 2 and not p.binary

    def update(self, p, lr, *slots):
        raise NotImplementedError

    def step(self):
        lr = float(self.lr)
        _require(math.isfinite(lr) and lr >= 0, f"lr must be finite and >= 0, got {self.lr}")
        self.t += 1
        for name, p in self.params:
            self.update(p, lr, *self.state[name])
            if self.clip_binary and p.binary:
                np.clip(p.data, -1.0, 1.0, out=p.data)             # keep latent weights where g' != 0

    def zero_grad(self):
        for _, p in self.params:
            p.grad[...] = 0

    # ---- checkpoints ------------------------------------------------------
    def _arrays(self):
        """The live state arrays under their state-dict keys "<slot>.<param name>"."""
        return {f"{slot}.{name}": array
                for name, arrays in self.state.items() for slot, array in zip(self.slots, arrays)}

    def state_dict(self):
        return {"step": self.t, "lr": float(self.lr),
                "arrays": {key: array.copy() for key, array in self._arrays().items()}}

    def load_state_dict(self, state):
        """Restore step, lr and every state array; names and shapes must match."""
        _require(isinstance(state, dict) and {"step", "lr", "arrays"} <= set(state),
                 "optimizer state must be a dict with keys 'step', 'lr', 'arrays'")
        own, given = self._arrays(), state["arrays"]
        problems = mismatches({k: a.shape for k, a in own.items()}, given, "arrays")
        if problems:
            raise ValueError(f"{type(self).__name__} state does not fit these parameters:\n  " + "\n  ".join(problems))
        for key, array in own.items():
            array[...] = given[key]                                # in place: keeps dtype and identity
        self.t = int(state["step"])
        self.lr = float(state["lr"])


class SGD(Optimizer):
    r"""Stochastic gradient descent with momentum and (coupled, L2) weight decay.

        g <- grad + wd * p              only for decayed parameters (the gradient of wd/2 |p|^2)
        v <- mu * v + g                 velocity, v_0 = 0 (no dampening: PyTorch's convention)
        p <- p - lr * v                 heavy ball
        p <- p - lr * (g + mu * v)      nesterov=True: look one velocity step ahead

    momentum=0 is plain SGD.
    """

    slots = ("velocity",)

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0, nesterov=False, clip_binary=True):
        _require(0 <= momentum < 1, f"momentum must be in [0, 1), got {momentum}")
        _require(not nesterov or momentum > 0, "nesterov needs momentum > 0")
        super().__init__(params, lr, weight_decay, clip_binary)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def update(self, p, lr, v):
        g = p.grad + self.weight_decay * p.data if self.decays(p) else p.grad   # p's shape
        v *= self.momentum
        v += g                                                     # v = mu v + g
        p.data -= lr * (g + self.momentum * v if self.nesterov else v)


class Adam(Optimizer):
    r"""Adam (Kingma & Ba), with bias correction; no weight decay (see AdamW).

        m <- b1 * m + (1 - b1) * g              running mean of g,   m_0 = 0
        v <- b2 * v + (1 - b2) * g^2            running mean of g^2, v_0 = 0
        m_hat = m / (1 - b1^t)                  bias corrections: the means start at 0
        v_hat = v / (1 - b2^t)                  (t = 1 on the first step)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)
    """

    slots = ("m", "v")

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, clip_binary=True):
        b1, b2 = betas
        _require(0 <= b1 < 1 and 0 <= b2 < 1, f"betas must be in [0, 1), got {betas}")
        _require(eps > 0, f"eps must be > 0, got {eps}")
        super().__init__(params, lr, 0.0, clip_binary)
        self.betas = (float(b1), float(b2))
        self.eps = float(eps)

    def update(self, p, lr, m, v):
        b1, b2 = self.betas
        g = p.grad                                                 # p's shape
        m *= b1
        m += (1 - b1) * g                                          # m = b1 m + (1 - b1) g
        v *= b2
        v += (1 - b2) * np.square(g)                               # v = b2 v + (1 - b2) g^2
        denom = np.sqrt(v / (1 - b2 ** self.t))                    # sqrt(v_hat)
        denom += self.eps
        p.data -= (lr / (1 - b1 ** self.t)) * m / denom            # lr * m_hat / (sqrt(v_hat) + eps)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight
    Decay Regularization"):

        p <- p - lr * wd * p            decayed parameters only, outside the moments
        p <- Adam step (m, v from the raw gradient)

    With Adam + L2 (g + wd * p fed into the moments) the decay is divided by
    sqrt(v_hat) like the gradient, so weights with large gradients are barely
    decayed; here every decayed weight shrinks by the same factor (1 - lr * wd).
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, clip_binary=True):
        _require(weight_decay >= 0, f"weight_decay must be >= 0, got {weight_decay}")
        super().__init__(params, lr, betas, eps, clip_binary)
        self.weight_decay = float(weight_decay)

    def update(self, p, lr, m, v):
        if self.decays(p):
            p.data *= 1 - lr * self.weight_decay                   # p = p - lr wd p
        super().update(p, lr, m, v)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def _sum_squares(g):
    """sum(g^2) as a Python float, without a spurious float32 overflow."""
    s = float(np.vdot(g, g))                                       # vdot flattens; BLAS dot in g's dtype
    if math.isinf(s) and np.isfinite(g).all():                     # squares overflowed float32: redo in float64
        g64 = g.astype(np.float64)
        s = float(np.vdot(g64, g64))
    return s


def clip_grad_norm(params, max_norm):
    r"""Scale all gradients together so that their global L2 norm is at most max_norm.

        norm = sqrt(sum over parameters of sum_i grad_i^2)
        grad <- grad * max_norm / norm      for every parameter, in place, if norm > max_norm

    Returns the norm before clipping as a Python float.  If it is not finite
    (nan or inf), the gradients are left untouched: the caller reports it.
    """
    _require(max_norm > 0, f"max_norm must be > 0, got {max_norm}")
    grads = [p.grad for _, p in _as_pairs(params)]
    norm = math.sqrt(sum(_sum_squares(g) for g in grads))
    if math.isfinite(norm) and norm > max_norm:
        scale = max_norm / norm                                    # Python float: keeps the grads' dtype
        for g in grads:
            g *= scale
    return norm
