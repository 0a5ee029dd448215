"""Notebook 5: the soft-routing weights (DESIGN §6.8)."""
import numpy as np


def soft_routing(H, delta, tau, beta):
    """w (N, B) from the exit entropies H (N, B): q_1 = 0, q_i = sigmoid((delta - r_i) / tau) (1 < i < N),
    q_i = 1 where H_{i-1} < 1e-6 (already certain), q_N = 1; pi_i = q_i prod_{j<i} (1 - q_j),
    w = (1 - beta) pi + beta / N."""
    N = len(H)
    certain = H[:-1] < 1e-6                                                  # (N-1, B): H_1 .. H_{N-1}
    r = np.where(certain, 0.0, (H[:-1] - H[1:]) / np.where(certain, 1.0, H[:-1]))   # (N-1, B): r_2 .. r_N
    q = np.where(certain, 1.0, 1 / (1 + np.exp(-(delta - r) / tau)))        # q_2 .. q_N (q_N replaced below)
    q = np.concatenate([np.zeros_like(H[:1]), q[:-1], np.ones_like(H[:1])])   # (N, B)
    stay = np.cumprod(np.concatenate([np.ones_like(H[:1]), 1 - q[:-1]]), axis=0)
    return (1 - beta) * q * stay + beta / N
