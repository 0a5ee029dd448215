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
from beexnp.module import Module, dataclass_from_dict


@dataclass
class ModelConfig:
    """Everything that fixes the architecture; JSON-serializable."""

    vocab_size: int
    num_classes: int = 2               # 1 with regression=True (STS-B)
    regression: bool = False
    token_dim: int = 112               # d_tok
    position_dim: int = 16             # d_pos (concat); ignored with position_mode="add"
    position_mode: str = "concat"      # "concat" (the paper) or "add"
    heads: int = 4
    blocks: int = 6
    ffn: str = "slfn"                  # "slfn" or "ffn" (binarized feed-forward ablation)
    binarize: bool = True              # False: the full-precision twin, same architecture
    estimator: str = "second_order"    # "second_order" or "ste"
    alpha_grad: bool = True            # gradient through alpha = mean|W|
    binarize_activations: bool = False # W1A1
    binarize_embeddings: bool = False  # sign with a per-row alpha (DESIGN §7)
    dropout: float = 0.1
    max_len: int = 128

    @property
    def dim(self):
        """Model width d."""
        return self.token_dim + (self.position_dim if self.position_mode == "concat" else 0)

    def validate(self):
        problems = []
        if self.regression and self.num_classes != 1:
            problems.append(f"regression needs num_classes=1, got {self.num_classes}")
        if not self.regression and self.num_classes < 2:
            problems.append(f"classification needs num_classes >= 2, got {self.num_classes}")
        if self.position_mode not in ("concat", "add"):
            problems.append(f"position_mode must be 'concat' or 'add', got {self.position_mode!r}")
        if self.dim % self.heads:
            problems.append(f"width d={self.dim} is not divisible by heads={self.heads}")
        if self.ffn not in ("slfn", "ffn"):
            problems.append(f"ffn must be 'slfn' or 'ffn', got {self.ffn!r}")
        if self.estimator not in ("second_order", "ste"):
            problems.append(f"estimator must be 'second_order' or 'ste', got {self.estimator!r}")
        if self.blocks < 1 or self.vocab_size < 5:
            problems.append("need blocks >= 1 and vocab_size >= 5 (4 special tokens)")
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
