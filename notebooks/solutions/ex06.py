"""Notebook 6: the exit entropy and the fractional exit rule (DESIGN §6.1, §6.2)."""
import numpy as np


def exit_entropy(z):
    """H = -sum_c p_c log p_c over the last axis, with log p from a stable log-softmax."""
    z = z - z.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    return -np.sum(np.exp(log_p) * log_p, axis=-1)


def fractional_exit(H, delta):
    """1-based exit block per input: the first i >= 2 with r_i < delta or H_{i-1} < 1e-6, else N.
    H (N, B) -> (B,) int."""
    certain = H[:-1] < 1e-6                                                          # (N-1, B): H_1 .. H_{N-1}
    r = np.where(certain, 0.0, (H[:-1] - H[1:]) / np.where(certain, 1.0, H[:-1]))   # (N-1, B): r_2 .. r_N
    leave = (r < delta) | certain                                                    # (N-1, B): blocks 2 .. N
    leave[-1] = True                                                                 # at block N, everyone leaves
    return np.argmax(leave, axis=0) + 2                                              # the first True: block 2 .. N
