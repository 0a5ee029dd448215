r"""One BEExformer block and its exit head (DESIGN §5).

    H = LayerNorm1(X + Dropout(MHA(X)))            post-norm
    Y = LayerNorm2(H + Dropout(SLFN(H)))

After block i, exit head i reads Y:  masked mean over real tokens -> Linear(d, C).
"""
import numpy as np

from beexnp.attention import BinaryMultiHeadAttention
from beexnp.dropout import Dropout
from beexnp.linear import Binarization, Linear
from beexnp.module import Module
from beexnp.norm import LayerNorm
from beexnp.slfn import SLFN_VARIANTS, BinaryFeedForward


class Block(Module):
    r"""Y = LN2(H + Drop(F(H))),  H = LN1(X + Drop(MHA(X, mask)))     X (B, T, d) -> Y (B, T, d)

    F is the SLFN (``ffn="slfn"``, with the gates ``slfn_gates``, one of ``SLFN_VARIANTS``:
    DESIGN §4.4) or the binarized feed-forward (``ffn="ffn"``).  MHA's and F's layers
    binarize as ``binarization`` says (``binary=False``: the full-precision twin)."""

    def __init__(self, dim, heads, rng, ffn="slfn", dropout=0.1, binary=True, slfn_gates="all",
                 binarization=Binarization(), dtype=np.float32):
        if ffn not in ("slfn", "ffn"):
            raise ValueError(f"ffn must be 'slfn' or 'ffn', got {ffn!r}")
        if slfn_gates not in SLFN_VARIANTS:
            raise ValueError(f"slfn_gates must be one of {', '.join(SLFN_VARIANTS)}, got {slfn_gates!r}")
        self.attn = BinaryMultiHeadAttention(dim, heads, rng, binary, binarization, dtype)
        self.drop1 = Dropout(dropout, rng)
        self.norm1 = LayerNorm(dim, dtype=dtype)
        feed_forward = SLFN_VARIANTS[slfn_gates] if ffn == "slfn" else BinaryFeedForward
        self.ffn = feed_forward(dim, rng, binary=binary, binarization=binarization, dtype=dtype)
        self.drop2 = Dropout(dropout, rng)
        self.norm2 = LayerNorm(dim, dtype=dtype)

    def forward(self, X, mask):
        H = self.norm1.forward(X + self.drop1.forward(self.attn.forward(X, mask)))   # (B, T, d)
        return self.norm2.forward(H + self.drop2.forward(self.ffn.forward(H)))      # (B, T, d)

    def backward(self, dY):
        dS = self.norm2.backward(dY)                                      # gradient of H + Drop(F(H))
        dH = dS + self.ffn.backward(self.drop2.backward(dS))
        dR = self.norm1.backward(dH)                                      # gradient of X + Drop(MHA(X))
        return dR + self.attn.backward(self.drop1.backward(dR))


def masked_mean(Y, mask):
    r"""m_b = sum_t mask_bt Y_bt / sum_t mask_bt        Y (B, T, d), mask (B, T) -> (B, d)"""
    w = mask / mask.sum(axis=1, keepdims=True)                            # (B, T) weights of real tokens
    return np.einsum("bt,btd->bd", w.astype(Y.dtype), Y), w


class ExitHead(Module):
    r"""z = Linear(features(masked_mean(Y, mask)))        Y (B, T, d), mask (B, T) -> z (B, C)

    Real precision (DESIGN §1.6, §5.4).  C = 1 for regression (STS-B).  Here the
    features are the pooled vector itself; ``beexnp.pairs.PairExitHead`` compares
    the two sentences of a pair instead (DESIGN §5.6)."""

    width = 1                                                             # features per pooled unit

    def __init__(self, dim, num_outputs, rng, dtype=np.float32):
        self.linear = Linear(self.feature_width(dim), num_outputs, rng, dtype=dtype)

    def feature_width(self, dim):
        return self.width * dim

    def features(self, pooled):
        return pooled

    def features_backward(self, dfeatures):
        return dfeatures

    def forward(self, Y, mask):
        pooled, self.w = masked_mean(Y, mask)                             # (B, d)
        return self.linear.forward(self.features(pooled))                 # (B, C)

    def backward(self, dz):
        dpooled = self.features_backward(self.linear.backward(dz))        # (B, d)
        return self.w.astype(dz.dtype)[:, :, None] * dpooled[:, None, :]   # (B, T, d): spread over real tokens
