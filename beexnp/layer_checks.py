r"""Every layer of the package with small random inputs, ready for ``gradcheck``.

``layer_cases`` builds one ``Case`` per layer (and per notable option) for any
shape; the test suite checks each of them over many shapes, and
``python -m beexnp gradcheck`` prints the table for one shape.  Inputs carry
padding (each row keeps at least one real token) and stay away from the kinks
of g, |x| and ReLU, where central differences are not valid.
"""
import sys
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from beexnp.activations import ReLU
from beexnp.attention import BinaryMultiHeadAttention
from beexnp.block import Block, ExitHead
from beexnp.dropout import Dropout
from beexnp.embedding import Embedding, SinusoidalPositions
from beexnp.config import ModelConfig
from beexnp.exit_loss import WEIGHTINGS, ModelWithLoss, MultiExitLoss
from beexnp.gradcheck import gradcheck, randomize_parameters
from beexnp.linear import Binarization, BinaryLinear, Linear
from beexnp.glue.tokenizer import CLS_ID, SEP_ID
from beexnp.losses import MSE, SoftmaxCrossEntropy, SoftTargetKL
from beexnp.mlm import MaskedLM, MLMHead, mask_tokens
from beexnp.model import BEExformer
from beexnp.norm import LayerNorm
from beexnp.pairs import PairExitHead
from beexnp.sign import Sign
from beexnp.slfn import SLFN, SLFN_VARIANTS, BinaryFeedForward


@dataclass
class Case:
    name: str
    module: object
    inputs: tuple = ()
    constants: dict = field(default_factory=dict)
    forward: object = None
    dout: object = None

    def check(self, rng, **kwargs):
        return gradcheck(self.module, self.inputs, self.constants, forward=self.forward,
                         dout=self.dout, rng=rng, title=self.name, **kwargs)

    @property
    def entries(self):
        """How many numbers the check differences: every entry of the inputs and of the parameters."""
        return sum(np.size(x) for x in self.inputs) + sum(p.data.size for _, p in self.module.parameters())


def kink_free(rng, shape, scale=1.0, margin=1e-3):
    """Normal values, nudged off 0 and +-1 (kinks of sign, g, |x|, ReLU, clip)."""
    x = rng.standard_normal(shape) * scale
    for kink in (-1.0, 0.0, 1.0):
        near = np.abs(x - kink) < margin
        x[near] = kink + 10 * margin
    return x


def padding_mask(rng, batch, tokens):
    """(B, T) of 1 for real tokens then 0 for padding; lengths random in [1, T],
    with the longest row always full (as a padded batch is)."""
    lengths = rng.integers(1, tokens + 1, size=batch)
    lengths[rng.integers(batch)] = tokens
    return (np.arange(tokens)[None, :] < lengths[:, None]).astype(np.float64)


def with_fresh_dropout(module, seed=0, call=None):
    """A forward (``module.forward``, or ``call``) that redraws the same dropout masks on every call (so f is a
    function)."""
    def forward(*args, **kwargs):
        for m in module.modules():
            if isinstance(m, Dropout):
                m.rng = np.random.default_rng(seed)
        return (call or module.forward)(*args, **kwargs)
    return forward


def layer_cases(rng, batch=3, tokens=5, dim=8, heads=2, classes=3, vocab=11):
    """One Case per layer (float64, random non-trivial parameters, padded batch)."""
    B, T, d, C = batch, tokens, dim, classes
    mask = padding_mask(rng, B, T)
    x = kink_free(rng, (B, T, d))
    dt = np.float64

    def prepared(module):
        return randomize_parameters(module.astype(dt), rng)

    cases = [
        Case("Sign (second order)", Sign("second_order"), (kink_free(rng, (B, d), 0.8),)),
        Case("Sign (STE)", Sign("ste"), (kink_free(rng, (B, d), 0.8),)),
        Case("Linear", prepared(Linear(d, C, rng, dtype=dt)), (x,)),
        Case("BinaryLinear", prepared(BinaryLinear(d, C, rng, dtype=dt)), (x,)),
        Case("BinaryLinear (STE)", prepared(BinaryLinear(d, C, rng, estimator="ste", dtype=dt)), (x,)),
        Case("BinaryLinear (W1A1)", prepared(BinaryLinear(d, C, rng, binarize_input=True, dtype=dt)),
             (kink_free(rng, (B, T, d), 0.8),)),
        Case("BinaryLinear (W1A1, {0,1} inputs)",
             prepared(BinaryLinear(d, C, rng, binarize_input=True, input_levels="step", dtype=dt)),
             (kink_free(rng, (B, T, d), 0.8),)),
        Case("ReLU", ReLU(), (x,)),
        Case("LayerNorm", prepared(LayerNorm(d, dtype=dt)), (x,)),
        Case("SinusoidalPositions (concat)", SinusoidalPositions(4), (x,)),
        Case("SinusoidalPositions (add)", SinusoidalPositions(d, mode="add"), (x,)),
        Case("BinaryMultiHeadAttention", prepared(BinaryMultiHeadAttention(d, heads, rng, dtype=dt)),
             (x,), {"mask": mask}),
        Case("MultiHeadAttention (full precision)",
             prepared(BinaryMultiHeadAttention(d, heads, rng, binary=False, dtype=dt)), (x,), {"mask": mask}),
        Case("SLFN", prepared(SLFN(d, rng, dtype=dt)), (x,)),
        Case("SLFN (full precision)", prepared(SLFN(d, rng, binary=False, dtype=dt)), (x,)),
        Case("BinaryFeedForward", prepared(BinaryFeedForward(d, rng, dtype=dt)), (x,)),
        Case("BinaryFeedForward (W1A1)",
             prepared(BinaryFeedForward(d, rng, binarization=Binarization(binarize_input=True), dtype=dt)),
             (kink_free(rng, (B, T, d), 0.8),)),
        Case("ExitHead", prepared(ExitHead(d, C, rng, dtype=dt)), (x,), {"mask": mask}),
    ]

    drop = Dropout(0.3, np.random.default_rng(0))
    cases.append(Case("Dropout", drop, (x,), forward=with_fresh_dropout(drop)))

    for ffn in ("slfn", "ffn"):
        block = prepared(Block(d, heads, rng, ffn=ffn, dropout=0.2, dtype=dt))
        cases.append(Case(f"Block ({ffn})", block, (x,), {"mask": mask}, forward=with_fresh_dropout(block)))

    ids = rng.integers(1, vocab, size=(B, T)) * mask.astype(np.int64)        # padding id 0 where mask is 0
    g_ids = rng.standard_normal((B, T, d)) * mask[:, :, None]               # the model sends no gradient to padding
    for binarize in (False, True):
        emb = prepared(Embedding(vocab, d, rng, binarize=binarize, dtype=dt))
        emb.weight.data[0] = 0
        name = "Embedding (binarized)" if binarize else "Embedding"
        cases.append(Case(name, emb, (), {"ids": ids}, dout=g_ids))

    labels = rng.integers(0, C, size=B)
    weights = rng.uniform(0.1, 1.0, size=B)
    cases.append(Case("SoftmaxCrossEntropy", SoftmaxCrossEntropy(), (rng.standard_normal((B, C)),),
                      {"labels": labels, "weights": weights}))
    cases.append(Case("MSE", MSE(), (rng.standard_normal(B),),
                      {"target": rng.standard_normal(B), "weights": weights}))

    # this project's additions (DESIGN §4.4, §5.6, §6.9): drawn last, so the cases above keep their inputs
    for gates, name in (("learn", "learn gate only"), ("forget", "forget gates only")):
        cases.append(Case(f"SLFN ({name})", prepared(SLFN_VARIANTS[gates](d, rng, dtype=dt)), (x,)))
    cases.append(Case("PairExitHead", prepared(PairExitHead(d, C, rng, dtype=dt)), (kink_free(rng, (2 * B, T, d)),),
                      {"mask": padding_mask(rng, 2 * B, T)}))
    cases.append(Case("SoftTargetKL (T = 2)", SoftTargetKL(2.0), (rng.standard_normal((B, C)),),
                      {"teacher_logits": 2 * rng.standard_normal((B, C)), "weights": weights}))
    chosen = (mask > 0) & (rng.random((B, T)) < 0.5)                        # masked-LM positions (DESIGN §11)
    chosen[np.arange(B), 0] = True                                          # at least one in every row
    cases.append(Case("MLMHead", prepared(MLMHead(d, vocab, rng, dtype=dt)), (x,), {"chosen": chosen}))
    cases.append(Case("PairExitHead (with cosine)", prepared(PairExitHead(d, C, rng, dtype=dt, cosine=True)),
                      (kink_free(rng, (2 * B, T, d)),), {"mask": padding_mask(rng, 2 * B, T)}))
    return cases


def pair_batch(rng, batch, tokens, vocab):
    """(ids, mask) of sentence pairs [CLS] a [SEP] b, padded: every row at least [CLS] [SEP], one row full."""
    lengths = rng.integers(2, tokens + 1, size=batch)
    lengths[rng.integers(batch)] = tokens
    mask = (np.arange(tokens)[None, :] < lengths[:, None]).astype(np.float64)
    ids = rng.integers(4, vocab, size=(batch, tokens))
    ids[:, 0] = CLS_ID
    ids[np.arange(batch), rng.integers(1, lengths)] = SEP_ID                  # one [SEP] inside each row
    return ids * mask.astype(np.int64), mask


# The whole-model checks' tiny config: width 6 (4 token + 2 position), 2 heads of 3, 2 blocks (two exits, so the
# gradient crosses a block boundary and every exit weighting differs).  Central differences cost two forwards per
# parameter entry: a model this small keeps every entry checked and the suite fast.
TINY_MODEL = dict(token_dim=4, position_dim=2, heads=2, blocks=2, dropout=0.1)


def model_cases(rng, batch=3, tokens=5, vocab=13, classes=3):
    """The whole model and its loss, for each exit weighting, binarized and full precision; then this
    project's pair options (segments, the siamese encoding), distillation, and the pair cosine (DESIGN §2.5,
    §5.6, §6.9).

    Tiny config (``TINY_MODEL``).  The soft-routing weights are computed once and frozen: the loss treats them as
    constants, so the numerical gradient must too; so are the teacher's outputs."""
    mask = padding_mask(rng, batch, tokens)
    ids = rng.integers(4, vocab, size=(batch, tokens)) * mask.astype(np.int64)
    variants = [(w, binarize, False) for binarize in (True, False) for w in WEIGHTINGS] + [("soft_routing", True, True)]
    cases = [model_case(rng, f"{'BEExformer' if binarize else 'BEExformer (full precision)'} + {weighting} loss"
                        + (" (regression)" if regression else ""), ids, mask, weighting, regression, classes,
                        dict(vocab_size=vocab, binarize=binarize))
             for weighting, binarize, regression in variants]
    pair_ids, pair_mask = pair_batch(rng, batch, tokens, vocab)
    pairs = [("segments (joint pairs)", False, dict(segments=True)),
             ("segments + siamese pairs", False, dict(segments=True, pair_encoding="siamese")),
             ("segments + siamese pairs", True, dict(segments=True, pair_encoding="siamese"))]
    for name, regression, options in pairs:
        cases.append(model_case(rng, f"BEExformer, {name} + soft_routing loss" + (" (regression)" * regression),
                                pair_ids, pair_mask, "soft_routing", regression, classes,
                                dict(vocab_size=vocab, **options)))
    for regression in (False, True):
        cases.append(model_case(rng, "BEExformer + soft_routing loss + distillation" + (" (regression)" * regression),
                                ids, mask, "soft_routing", regression, classes, dict(vocab_size=vocab), distill=True))
    cases.append(model_case(rng, "BEExformer, segments + siamese pairs + pair cosine + soft_routing loss "
                                 "(regression)", pair_ids, pair_mask, "soft_routing", True, classes,
                            dict(vocab_size=vocab, segments=True, pair_encoding="siamese", pair_cosine=True)))
    return cases


def model_case(rng, name, ids, mask, weighting, regression, classes, overrides, distill=False):
    """One whole-model Case: a tiny random float64 BEExformer (``overrides`` on its config) and its loss."""
    batch = len(ids)
    config = ModelConfig(num_classes=1 if regression else classes, regression=regression, **TINY_MODEL, **overrides)
    model = randomize_parameters(BEExformer(config, rng, dtype=np.float64), rng)
    model.embedding.weight.data[0] = 0
    loss = MultiExitLoss(config.blocks, weighting, regression=regression, distill_weight=0.4, temperature=2.0)
    objective = ModelWithLoss(model, loss)
    labels = rng.standard_normal(batch) if regression else rng.integers(0, classes, size=batch)
    constants = {"ids": ids, "mask": mask, "labels": labels,
                 "weights": objective.loss.weights(model.relax().forward(ids, mask))}
    if distill:                                          # the teacher's outputs: constants, as in training
        constants["targets"] = [2 * rng.standard_normal((batch, config.num_classes)) for _ in range(config.blocks)]
    return Case(name, objective, (), constants, forward=with_fresh_dropout(objective))


def mlm_cases(rng, batch=3, tokens=6, vocab=13):
    """The masked-LM objective on a tiny float64 BEExformer (DESIGN §11): the head reading the last block or every
    block, binarized and full precision, and the siamese pair encoding.  The masking is drawn once and held
    fixed (a constant, as in a training step)."""
    mask = padding_mask(rng, batch, tokens)
    ids = rng.integers(4, vocab, size=(batch, tokens)) * mask.astype(np.int64)
    pair_ids, pair_mask = pair_batch(rng, batch, tokens, vocab)
    variants = [("last", True, {}, ids, mask), ("all", True, {}, ids, mask), ("all", False, {}, ids, mask),
                ("all", True, dict(segments=True, pair_encoding="siamese"), pair_ids, pair_mask)]
    cases = []
    for levels, binarize, options, x, m in variants:
        config = ModelConfig(num_classes=2, vocab_size=vocab, binarize=binarize, **TINY_MODEL, **options)
        model = randomize_parameters(BEExformer(config, rng, dtype=np.float64), rng)
        model.embedding.weight.data[0] = 0
        objective = MaskedLM(model, MLMHead(config.dim, vocab, rng, dtype=np.float64), levels=levels, rate=0.4)
        randomize_parameters(objective.head, rng)
        inputs, chosen = mask_tokens(x, m, vocab, rng, rate=0.4)
        name = (f"MaskedLM ({'last block' if levels == 'last' else 'every block'}{'' if binarize else ', full precision'}"
                + (", siamese pairs" if options else "") + ")")
        cases.append(Case(name, objective, (), {"inputs": inputs, "mask": m, "chosen": chosen, "originals": x},
                          forward=with_fresh_dropout(objective, call=objective.masked_loss)))
    return cases


def check_all(rng, progress=False, **shape):
    """Run every case; returns the list of reports.  ``progress``: a bar on stderr counting the entries
    differenced, with the layer being checked (a check at width 256 takes minutes)."""
    cases = layer_cases(rng, **shape) + model_cases(rng) + mlm_cases(rng)
    with tqdm(total=sum(case.entries for case in cases), unit="entry", desc="gradcheck", disable=not progress,
              file=sys.stderr) as bar:
        reports = []
        for case in cases:
            bar.set_postfix_str(case.name, refresh=False)
            reports.append(case.check(rng, on_entry=bar.update if progress else None))
    return reports
