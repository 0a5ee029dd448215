"""Notebook 4: the SLFN's backward (DESIGN §4.2)."""
import numpy as np


def slfn_backward(dy, H, f1, l, f2, c):
    """(dH through the direct path f1 * H, dz = [dz_f1 | dz_l | dz_f2 | dz_c]) for y = f2 * tanh(f1 * H + l * c)."""
    t = np.tanh(f1 * H + l * c)
    dm = dy * f2 * (1 - t * t)
    dz = np.concatenate([dm * H * f1 * (1 - f1), dm * c * l * (1 - l),
                         dy * t * f2 * (1 - f2), dm * l * (1 - c * c)], axis=-1)
    return dm * f1, dz
