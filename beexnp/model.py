r"""The BEExformer: embeddings, N binarized blocks, an exit after every block.

    X_0 = [E[ids], PE]                     (B, T, d)      token embedding joined to positions
    X_i = Block_i(X_{i-1}, mask)           (B, T, d)      i = 1..N
    z_i = Exit_i(X_i, mask)                (B, C)         every exit's logits

Training uses every exit (``forward`` returns all N logits); ``backward`` takes
the gradients of all exits at once, so block i receives the sum of what comes
from its own exit and from the blocks above.  Early-exit inference runs the
blocks one at a time (``start``, ``block_forward``, ``keep_rows``) on the
inputs still active.

Two options for sentence pairs (``beexnp.pairs``): ``segments`` adds a learned
vector per sentence to the token embeddings (DESIGN §2.5), and
``pair_encoding="siamese"`` encodes the two sentences separately, as 2B rows,
with exit heads that compare them (DESIGN §5.6).
"""
from functools import partial

import numpy as np

from beexnp.block import Block, ExitHead
from beexnp.embedding import Embedding, SinusoidalPositions
from beexnp.linear import Binarization
from beexnp.module import Module
from beexnp.pairs import PairExitHead, segment_ids, split_pair


class BEExformer(Module):
    r"""z_1..z_N = Exit_i(Block_i(... Block_1([E[ids], PE]) ...))     ids (B, T), mask (B, T) -> N x (B, C)"""

    def __init__(self, config, rng, dtype=np.float32):
        config.validate()
        self.config = config
        binarization = Binarization(estimator=config.estimator, alpha_grad=config.alpha_grad,
                                    binarize_input=config.binarize_activations)
        self.embedding = Embedding(config.vocab_size, config.token_dim, rng, padding_idx=0,
                                   binarize=config.binarize_embeddings, estimator=binarization.estimator,
                                   alpha_grad=binarization.alpha_grad, dtype=dtype)
        pos_dim = config.position_dim if config.position_mode == "concat" else config.token_dim
        self.positions = SinusoidalPositions(pos_dim, config.position_mode, config.max_len)
        self.blocks = [Block(config.dim, config.heads, rng, ffn=config.ffn, dropout=config.dropout,
                             binary=config.binarize, slfn_gates=config.slfn_gates, binarization=binarization,
                             dtype=dtype)
                       for _ in range(config.blocks)]
        self.siamese = config.pair_encoding == "siamese"
        head = partial(PairExitHead, cosine=config.pair_cosine) if self.siamese else ExitHead
        self.exits = [head(config.dim, config.num_classes, rng, dtype=dtype) for _ in range(config.blocks)]
        if config.segments:          # created last and zero: at start, the model without segments (DESIGN §2.5)
            self.segment = Embedding(2, config.token_dim, rng, padding_idx=None, dtype=dtype)
            self.segment.weight.data[...] = 0

    @property
    def dtype(self):
        """The parameters' float type: float32 to train, float64 in gradient checks (``astype``).

        Read from the first exit head, which stays real in every variant (packed ones included)."""
        return self.exits[0].linear.weight.data.dtype

    # ---- pieces, for early-exit inference --------------------------------
    def start(self, ids, mask):
        """(X_0, mask) that the blocks run on:  X_0 = [E[ids] (+ S[segment]), PE]     (B, T, d), (B, T)

        With the siamese pair encoding, the rows are the 2B sentences (``beexnp.pairs.split_pair``)."""
        mask = mask.astype(self.dtype)
        segments = (segment_ids(ids),) if self.config.segments else ()
        if self.siamese:
            ids, mask, *segments = split_pair(ids, mask, *segments)      # (2B, T') each
        tokens = self.embedding.forward(ids)                              # (B, T, d_tok)
        if segments:
            tokens = tokens + self.segment.forward(segments[0])          # BERT's token types, added
        return self.positions.forward(tokens), mask

    def block_forward(self, i, X, mask):
        """X_i and z_i from X_{i-1} (block index i from 0)."""
        Y = self.blocks[i].forward(X, mask)
        return Y, self.exits[i].forward(Y, mask)

    def keep_rows(self, X, mask, stay):
        """The state of the inputs ``stay`` (bool (n,)) only, without the columns that are padding in every one of them (DESIGN §6.5).

        Siamese: both sentences of an input stay or leave together."""
        if self.siamese:
            stay = np.concatenate([stay, stay])                           # the a rows, then the b rows
        mask = mask[stay]
        read = mask.any(axis=0)                                           # (T,) columns some row still reads
        return X[stay][:, read], mask[:, read]

    # ---- training -----------------------------------------------------------
    def forward(self, ids, mask):
        """Every exit's logits: a list of N arrays (B, C)."""
        if ids.shape != mask.shape:
            raise ValueError(f"ids {ids.shape} and mask {mask.shape} must have the same shape")
        X, mask = self.start(ids, mask)
        logits = []
        for i in range(len(self.blocks)):
            X, z = self.block_forward(i, X, mask)
            logits.append(z)
        return logits

    def backward(self, dlogits):
        """dlogits: N arrays (B, C), one per exit.  Accumulates every parameter's grad."""
        return self.backward_hidden([head.backward(dz) for head, dz in zip(self.exits, dlogits)])

    def backward_hidden(self, dhidden):
        """dhidden: N arrays (B, T, d) (or 0), the gradient of each block's output from outside the blocks
        (its exit head; an MLM head, ``beexnp.mlm``).  Accumulates every block's and embedding's grad."""
        dX = 0
        for block, dH in zip(reversed(self.blocks), reversed(dhidden)):
            dX = block.backward(dX + dH)                     # own exit + the blocks above
        dtokens = self.positions.backward(dX)
        if self.config.segments:
            self.segment.backward(dtokens)
        self.embedding.backward(dtokens)
        return None                                          # token ids have no gradient
