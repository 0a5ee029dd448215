"""One deliberately wrong answer per notebook exercise, each a mistake a learner could make.

``tests/test_notebooks.py`` puts each in place of its exercise cell and checks that
the grader says ``GRADE: FAIL``.  Keyed by the first function the exercise cell
defines; each source defines every function of that cell.
"""
MISTAKES = {
    "central_differences": '''
import numpy as np

def central_differences(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        f_plus = f()
        x[i] = old - h
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / h          # mistake: the step between the two points is 2h
    return grad
''',
    "g": '''
import numpy as np

def g(x):
    a = np.minimum(np.abs(x), 1)
    return np.where(x >= 0, 1.0, -1.0) * (2 * a - a * a)

def g_prime(x):
    return (np.abs(x) <= 1).astype(float)         # mistake: the STE's box, not the derivative of g
''',
    "binary_linear_backward": '''
import numpy as np
from beexnp.sign import SecondOrderSign

def binary_linear_backward(dy, x, W, s):
    alpha = np.mean(np.abs(W), axis=0)
    x2, dy2 = x.reshape(-1, W.shape[0]), dy.reshape(-1, W.shape[1])
    dx = (dy2 @ (alpha * s).T).reshape(x.shape)
    dW = alpha * SecondOrderSign.grad(W) * (x2.T @ dy2)    # mistake: no path through alpha = mean|W|
    return dx, dW, dy2.sum(axis=0)
''',
    "attention_weights": '''
import numpy as np

def attention_weights(S, mask):
    e = np.exp(S - S.max(axis=-1, keepdims=True))      # mistake: the mask is ignored
    return e / e.sum(axis=-1, keepdims=True)
''',
    "scores_gradient": '''
def scores_gradient(P, dP):
    return P * dP                                      # mistake: the row sum is missing
''',
    "slfn_backward": '''
import numpy as np

def slfn_backward(dy, H, f1, l, f2, c):
    t = np.tanh(f1 * H + l * c)
    dm = dy * f2 * (1 - t * t)
    dz = np.concatenate([dm * H * f1 * (1 - f1), dm * c * l * (1 - l),
                         dy * t * f2 * (1 - f2), dm * l * (1 - c * c)], axis=-1)
    return np.zeros_like(H), dz                        # mistake: the direct path through f1 * H is lost
''',
    "soft_routing": '''
import numpy as np

def soft_routing(H, delta, tau, beta):
    safe = np.where(H[:-1] < 1e-6, 1.0, H[:-1])
    r = np.where(H[:-1] < 1e-6, 0.0, (H[:-1] - H[1:]) / safe)
    q = 1 / (1 + np.exp(-(delta - r) / tau))           # mistake: an already-certain input gets the sigmoid, not q = 1
    q = np.concatenate([np.zeros_like(H[:1]), q[:-1], np.ones_like(H[:1])])
    stay = np.cumprod(np.concatenate([np.ones_like(H[:1]), 1 - q[:-1]]), axis=0)
    return (1 - beta) * q * stay + beta / len(H)
''',
    "exit_entropy": '''
import numpy as np

def exit_entropy(z):
    p = np.exp(z) / np.sum(np.exp(z), axis=-1, keepdims=True)
    return -np.sum(p * np.log(p), axis=-1)             # mistake: overflows, and 0 * log 0 is NaN
''',
    "fractional_exit": '''
import numpy as np

def fractional_exit(H, delta):
    leave = H[:-1] - H[1:] < delta                     # mistake: the absolute drop, not the fraction
    leave[-1] = True
    return np.argmax(leave, axis=0) + 2
''',
    "pack_bits": '''
import numpy as np

def pack_bits(x):
    return np.packbits(x >= 0)                         # mistake: big bit order, element 0 in the top bit
''',
    "xnor_dot": '''
import numpy as np

def xnor_dot(a_bytes, w_bytes, n):
    differ = int(np.bitwise_count(np.bitwise_xor(a_bytes, w_bytes)).sum())
    return n - differ                                  # mistake: agreeing - disagreeing is n - 2 differ
''',
}
