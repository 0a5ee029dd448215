r"""The BEExformer: embeddings, N binarized blocks, an exit after every block.

    X_0 = [E[ids], PE]                     (B, T, d)      token embedding joined to positions
    X_i = Block_i(X_{i-1}, mask)           (B, T, d)      i = 1..N
    z_i = Exit_i(X_i, mask)                (B, C)         every exit's logits

Training uses every exit (``forward`` returns all N logits); ``backward`` takes
the gradients of all exits at once, so block i receives the sum of what comes
from its own exit and from the blocks above.  Early-exit inference runs the
blocks one at a time (``embed``, ``block_forward``) on the inputs still active.
"""
import json
from dataclasses import asdict, dataclass

import numpy as np

from beexnp.block import Block, ExitHead
from beexnp.embedding import Embedding, SinusoidalPositions
from beexnp.module import Module, choice_problems, dataclass_from_dict, option
from beexnp.sign import ESTIMATORS


@dataclass
class ModelConfig:
    """Everything that fixes the architecture; JSON-serializable."""

    vocab_size: int                    # set from the tokenizer
    num_classes: int = option(2, "number of classes C (1 with regression, set from the task)")
    regression: bool = option(False, "one real output and MSE (STS-B; set from the task)")
    token_dim: int = option(112, "token embedding width d_tok")
    position_dim: int = option(16, "sinusoidal position width d_pos, concatenated (ignored with 'add')")
    position_mode: str = option("concat", "join positions to tokens: 'concat' (the paper) or 'add'",
                                ("concat", "add"))
    heads: int = option(4, "attention heads (must divide the width d)")
    blocks: int = option(6, "blocks, hence exits")
    ffn: str = option("slfn", "the block's second sublayer: 'slfn' or 'ffn' (binarized feed-forward ablation)",
                      ("slfn", "ffn"))
    binarize: bool = option(True, "binarized block weights (False: the full-precision twin)")
    estimator: str = option("second_order", "gradient of sign: 'second_order' approximation or 'ste'",
                            tuple(ESTIMATORS))
    alpha_grad: bool = option(True, "gradient through alpha = mean|W| (off: Bi-Real Net, BiBERT, larq)")
    binarize_activations: bool = option(False, "W1A1: binarize the inputs of binarized layers too")
    binarize_embeddings: bool = option(False, "token embeddings as sign with a per-row alpha (DESIGN §2.3)")
    dropout: float = option(0.1, "dropout probability")
    max_len: int = option(128, "longest input, in tokens (set from the training config)")

    @property
    def dim(self):
        """Model width d."""
        return self.token_dim + (self.position_dim if self.position_mode == "concat" else 0)

    def validate(self):
        problems = choice_problems(self)
        if self.regression and self.num_classes != 1:
            problems.append(f"regression needs num_classes=1, got {self.num_classes}")
        if not self.regression and self.num_classes < 2:
            problems.append(f"classification needs num_classes >= 2, got {self.num_classes}")
        if min(self.token_dim, self.heads, self.blocks) < 1 or self.position_dim < 0:
            problems.append("need token_dim, heads, blocks >= 1 and position_dim >= 0")
        elif self.dim % self.heads:
            problems.append(f"width d={self.dim} is not divisible by heads={self.heads}")
        if self.vocab_size < 5:
            problems.append(f"need vocab_size >= 5 (4 special tokens), got {self.vocab_size}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if problems:
            raise ValueError("invalid model config: " + "; ".join(problems))
        return self

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return dataclass_from_dict(cls, d, "model config").validate()

    @classmethod
    def from_json(cls, path):
        with open(path) as f:
            return cls.from_dict(json.load(f))


class BEExformer(Module):
    r"""z_1..z_N = Exit_i(Block_i(... Block_1([E[ids], PE]) ...))     ids (B, T), mask (B, T) -> N x (B, C)"""

    def __init__(self, config, rng, dtype=np.float32):
        config.validate()
        self.config = config
        binary_options = dict(estimator=config.estimator, alpha_grad=config.alpha_grad,
                              binarize_input=config.binarize_activations, dtype=dtype)
        self.embedding = Embedding(config.vocab_size, config.token_dim, rng, padding_idx=0,
                                   binarize=config.binarize_embeddings, estimator=config.estimator,
                                   dtype=dtype)
        pos_dim = config.position_dim if config.position_mode == "concat" else config.token_dim
        self.positions = SinusoidalPositions(pos_dim, config.position_mode, config.max_len)
        self.blocks = [Block(config.dim, config.heads, rng, ffn=config.ffn, dropout=config.dropout,
                             binary=config.binarize, **binary_options) for _ in range(config.blocks)]
        self.exits = [ExitHead(config.dim, config.num_classes, rng, dtype=dtype) for _ in range(config.blocks)]

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
        mask = mask.astype(self.exits[0].linear.weight.data.dtype)
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
