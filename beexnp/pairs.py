r"""Sentence pairs: segment ids, and the siamese encoding whose exits compare the two sentences.

The tokenizer writes a pair as one sequence, ``[CLS] a [SEP] b`` (DESIGN §2.1),
and batches carry only ids and a mask, (B, T).  Everything a pair needs is
derived from the ids here, so batching needs no change:

* ``segment_ids`` (DESIGN §2.5, as BERT's token types): 0 up to and including
  the first [SEP], 1 after it.

      s_bt = 1  if some t' < t has ids[b, t'] = [SEP],  else 0          (B, T)

* ``split_pair`` (DESIGN §5.6): the siamese encoding cuts every row at its
  first [SEP] into ``[CLS] a`` and ``[SEP] b`` (each part keeps one marker
  token, so neither is ever empty), and stacks the parts as 2B rows, the a
  parts first, each padded to the longest part:

      (B, T) -> (2B, T'),   T' = max over parts of their length

  The shared blocks then encode each sentence on its own (no attention across
  the pair, positions from 0 in each), and ``PairExitHead`` reads the masked
  means u (of a) and v (of b) as InferSent and Sentence-BERT do, and with
  ``pair_cosine`` their cosine c as one more column (Sentence-BERT's
  regression objective reads c alone):

      f = [u, v, |u - v|, u * v (, c)]   (B, 4d (+ 1))
      z = f @ W_exit + b_exit            (B, C)
"""
import numpy as np

from beexnp.block import ExitHead
from beexnp.glue.tokenizer import PAD_ID, SEP_ID


def segment_ids(ids):
    r"""s_bt = 1 after the first [SEP] of row b, else 0         ids (B, T) int -> (B, T) int64"""
    is_sep = ids == SEP_ID                                                 # (B, T)
    return ((np.cumsum(is_sep, axis=1) - is_sep) > 0).astype(np.int64)     # [SEP] itself stays segment 0


def part_lengths(ids, mask):
    r"""(B, 2) real lengths of ``[CLS] a`` and ``[SEP] b`` in each row     ids, mask (B, T)

    Every row needs a [SEP] among its real tokens, and its padding at the end (clear ValueErrors otherwise)."""
    real = mask > 0
    if not np.array_equal(real, np.arange(real.shape[1]) < real.sum(axis=1, keepdims=True)):
        raise ValueError("pair_encoding='siamese' needs every input's padding at its end (a mask of 1s, then 0s)")
    is_sep = (ids == SEP_ID) & real                                        # (B, T)
    missing = np.flatnonzero(~is_sep.any(axis=1))
    if missing.size:
        raise ValueError(f"pair_encoding='siamese' needs a sentence pair ([CLS] a [SEP] b) in every input; "
                         f"rows {missing[:5].tolist()} have no [SEP]")
    sep = is_sep.argmax(axis=1)                                            # (B,) the first [SEP]
    return np.stack([sep, real.sum(axis=1) - sep], axis=1).astype(np.int64)


def split_pair(ids, mask, *more):
    r"""[CLS] a [SEP] b  ->  rows [CLS] a (first B) and [SEP] b (last B), right-padded.

    ids (B, T) int, mask (B, T) with 1 on real tokens, ``more``: other (B, T)
    arrays cut the same way (segment ids).  Returns (ids, mask, *more), each
    (2B, T').  Every row needs a [SEP] among its real tokens."""
    B = ids.shape[0]
    parts = part_lengths(ids, mask)                                        # (B, 2)
    starts = np.concatenate([np.zeros(B, np.int64), parts[:, 0]])          # (2B,) where each part begins
    lengths = np.concatenate([parts[:, 0], parts[:, 1]])                   # (2B,) [CLS] a | [SEP] b
    steps = np.arange(lengths.max())                                       # (T',)
    inside = steps < lengths[:, None]                                      # (2B, T')
    cols = np.where(inside, starts[:, None] + steps, 0)                    # (2B, T') columns of the pair row
    rows = np.tile(np.arange(B), 2)[:, None]                               # (2B, 1)  a parts, then b parts
    new_ids = np.where(inside, ids[rows, cols], PAD_ID)
    return (new_ids, inside.astype(mask.dtype), *(np.where(inside, m[rows, cols], 0) for m in more))


class PairExitHead(ExitHead):
    r"""z = Linear([u, v, |u - v|, u * v (, c)])      Y (2B, T', d), mask (2B, T') -> z (B, C)   (DESIGN §5.6)

    u, v (B, d): the masked means of the a parts (rows :B) and b parts (rows B:).  With ``cosine`` the
    features end with one more column, the cosine of u and v (``pair_cosine``; eps keeps it finite at u = 0):

        n_u = sqrt(u . u + eps),  n_v = sqrt(v . v + eps),  c = u . v / (n_u n_v)        (B, 1)

    Backward, with df = [du_f, dv_f, dd_f, dp_f (, dc)] from the Linear and s = sign(u - v):

        du = du_f + s * dd_f + v * dp_f  (+ dc * (v / (n_u n_v) - c u / n_u^2))
        dv = dv_f - s * dd_f + u * dp_f  (+ dc * (u / (n_u n_v) - c v / n_v^2))
    """

    width = 4
    eps = 1e-12

    def __init__(self, dim, num_outputs, rng, dtype=np.float32, cosine=False):
        self.cosine = cosine
        super().__init__(dim, num_outputs, rng, dtype=dtype)

    def feature_width(self, dim):
        return self.width * dim + self.cosine                              # 4d (+ 1)

    def features(self, pooled):
        B = pooled.shape[0] // 2
        u, v = self.u, self.v = pooled[:B], pooled[B:]                     # (B, d) each
        parts = [u, v, np.abs(u - v), u * v]
        if self.cosine:
            self.n_u = np.sqrt(np.sum(u * u, axis=-1, keepdims=True) + self.eps)     # (B, 1)
            self.n_v = np.sqrt(np.sum(v * v, axis=-1, keepdims=True) + self.eps)
            self.c = np.sum(u * v, axis=-1, keepdims=True) / (self.n_u * self.n_v)    # (B, 1)
            parts.append(self.c)
        return np.concatenate(parts, axis=-1)                              # (B, 4d (+ 1))

    def features_backward(self, df):
        u, v = self.u, self.v
        d = u.shape[-1]
        df_u, df_v, df_diff, df_prod = (df[:, i * d:(i + 1) * d] for i in range(4))
        s = np.sign(u - v)
        du = df_u + s * df_diff + v * df_prod                              # (B, d)
        dv = df_v - s * df_diff + u * df_prod
        if self.cosine:
            dc, n_u, n_v, c = df[:, 4 * d:], self.n_u, self.n_v, self.c  # (B, 1) each
            du = du + dc * (v / (n_u * n_v) - c * u / n_u ** 2)
            dv = dv + dc * (u / (n_u * n_v) - c * v / n_v ** 2)
        return np.concatenate([du, dv])                                    # (2B, d): the a rows, then the b rows
