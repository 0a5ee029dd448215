r"""The BEExformer: embeddings, N binarized blocks, an exit after every block.

    X_0 = [E[ids], PE]                     (B, T, d)      token embedding joined to positions
    X_i = Block_i(X_{i-1}, mask)           (B, T, d)      i = 1..N
    z_i = Exit_i(X_i, mask)                (B, C)         every exit's logits

Training uses every exit (``forward`` returns all N logits); ``backward`` takes
the gradients of all exits at once, so block i receives the sum of what comes
from its own exit and from the blocks above.  Early-exit inference runs the
blocks one at a time (``embed``, ``block_forward``) on the inputs still active.
"""
import numpy as np

from beexnp.block import Block, ExitHead
from beexnp.embedding import Embedding, SinusoidalPositions
from beexnp.module import Module


class BEExformer(Module):
    r"""z_1..z_N = Exit_i(Block_i(... Block_1([E[ids], PE]) ...))     ids (B, T), mask (B, T) -> N x (B, C)"""

    def __init__(self, config, rng, dtype=np.float32):
        config.validate()
        self.config = config
        binary_options = dict(estimator=config.estimator, alpha_grad=config.alpha_grad,
                              binarize_input=config.binarize_activations, dtype=dtype)
        self.embedding = Embedding(config.vocab_size, config.token_dim, rng, padding_idx=0,
                                   binarize=config.binarize_embeddings, estimator=config.estimator,
                                   alpha_grad=config.alpha_grad, dtype=dtype)
        pos_dim = config.position_dim if config.position_mode == "concat" else config.token_dim
        self.positions = SinusoidalPositions(pos_dim, config.position_mode, config.max_len)
        self.blocks = [Block(config.dim, config.heads, rng, ffn=config.ffn, dropout=config.dropout,
                             binary=config.binarize, **binary_options) for _ in range(config.blocks)]
        self.exits = [ExitHead(config.dim, config.num_classes, rng, dtype=dtype) for _ in range(config.blocks)]

    @property
    def dtype(self):
        """The parameters' float type: float32 to train, float64 in gradient checks (``astype``).

        Read from the first exit head, which stays real in every variant (packed ones included)."""
        return self.exits[0].linear.weight.data.dtype

    # ---- pieces, for early-exit inference --------------------------------
    def embed(self, ids):
        """X_0 = [E[ids], PE]          ids (B, T) -> (B, T, d)"""
        return self.positions.forward(self.embedding.forward(ids))

    def block_forward(self, i, X, mask):
        """X_i and z_i from X_{i-1} (block index i from 0)."""
        Y = self.blocks[i].forward(X, mask)
        return Y, self.exits[i].forward(Y, mask)

    # ---- training -----------------------------------------------------------
    def forward(self, ids, mask):
        """Every exit's logits: a list of N arrays (B, C)."""
        if ids.shape != mask.shape:
            raise ValueError(f"ids {ids.shape} and mask {mask.shape} must have the same shape")
        mask = mask.astype(self.dtype)
        X = self.embed(ids)
        logits = []
        for i in range(len(self.blocks)):
            X, z = self.block_forward(i, X, mask)
            logits.append(z)
        return logits

    def backward(self, dlogits):
        """dlogits: N arrays (B, C), one per exit.  Accumulates every parameter's grad."""
        dX = 0
        for block, head, dz in zip(reversed(self.blocks), reversed(self.exits), reversed(dlogits)):
            dX = block.backward(dX + head.backward(dz))      # own exit + the blocks above
        self.embedding.backward(self.positions.backward(dX))
        return None                                          # token ids have no gradient
