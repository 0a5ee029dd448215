"""Sizes checked before any work: a generous estimate of the memory a run or an evaluation needs.

``memory_estimate`` over-counts on purpose (tests/test_limits.py measures real peaks below it):

    parameters  P = V d_tok + N (10 d^2 + 10 d) + N d_exit C           (8 d^2 per block, measured)
    position table  L d_pos float64
    a base of 8 MiB, whatever the sizes
    training:   P floats x 6 (weight, gradient, two moments, binarized copy, slack)
    activations: N blocks x (40 B L d + 4 B h L^2) floats (every intermediate kept for backward,
                the attention scores and their softmax, dropout masks, gradients)
    pretrain (DESIGN §11): the MLM head's d V + V parameters, and for each of the S blocks it reads
                4 M V floats of logits, softmax, gradient and slack, M = (rate L + 1) B masked tokens at most

``check_sizes`` refuses settings whose estimate exceeds the machine's memory with one line naming the
flag whose reduction to its default helps most.
"""
import os

from beexnp.outputs import problem

FLOAT = 4
BASE = 2 ** 23                  # 8 MiB: what a step allocates whatever the sizes (index arrays, copies)


def memory_estimate(token_dim, position_dim, heads, blocks, vocab, max_len, batch_size, classes=2,
                    position_mode="concat", exit_width=None, training=True, mlm_levels=0, mask_rate=0.0):
    """Bytes a forward (and, ``training``, backward and optimizer step) at these sizes may need, generously;
    ``mlm_levels`` > 0 (or "all": every block): pretraining, its head reading that many blocks' states,
    ``mask_rate`` of the words.  (The end of an epoch scores the masked tokens ``batch_size`` rows at a time too.)"""
    mlm_levels = blocks if mlm_levels == "all" else mlm_levels
    d = token_dim + (position_dim if position_mode == "concat" else 0)
    exit_width = exit_width or d
    params = vocab * token_dim + blocks * (10 * d * d + 10 * d) + blocks * exit_width * max(classes, 1)
    params += (d * vocab + vocab) if mlm_levels else 0
    param_bytes = params * FLOAT * (6 if training else 2)
    table = max_len * position_dim * 8
    per_block = 40 * batch_size * max_len * d + 4 * batch_size * heads * max_len * max_len
    logits = mlm_levels * 4 * (mask_rate * max_len + 1) * batch_size * vocab
    return float(BASE + param_bytes + table + ((blocks if training else 2) * per_block + logits) * FLOAT)


def machine_memory():
    """Bytes of memory of this machine (physical), or None where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):      # pragma: no cover
        return None


def gib(n):
    return f"{n / 2 ** 30:,.1f} GiB" if n < 2 ** 50 else f"{n:.2e} bytes"


def check_sizes(sizes, defaults, flags, training=True, what="training", memory=None):
    """Refuse (one-line ValueError) ``sizes`` (keyword arguments of ``memory_estimate``) whose estimate exceeds
    ``memory`` (default: the machine's).  ``flags`` maps a size's name to its flag; the flag named is the
    one whose value, put back to ``defaults``, lowers the estimate most."""
    memory = memory or machine_memory()
    need = memory_estimate(**sizes, training=training)
    if memory is None or need <= memory:
        return need
    best = min((name for name in flags if name in defaults and sizes[name] != defaults[name]),
               key=lambda name: memory_estimate(**dict(sizes, **{name: defaults[name]}), training=training),
               default=None)
    flag = flags.get(best, "sizes")
    shown = f"{flag} {sizes[best]}" if best else ", ".join(f"{f} {sizes[n]}" for n, f in flags.items())
    raise problem(f"{what} at these sizes needs about {gib(need)} of memory, more than this machine's "
                             f"{gib(memory)}", shown, f"lower {flag}" if best else
                             "lower " + ", ".join(flags.values()))
