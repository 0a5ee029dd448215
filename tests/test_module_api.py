"""The module API every layer shares (beexnp/module.py): named parameters,
gradients, modes, dtypes and checkpoints."""
import numpy as np
import pytest

from beexnp.activations import ReLU
from beexnp.attention import BinaryMultiHeadAttention
from beexnp.block import Block, ExitHead
from beexnp.dropout import Dropout
from beexnp.embedding import Embedding, SinusoidalPositions
from beexnp.layer_checks import layer_cases, padding_mask, with_fresh_dropout
from beexnp.linear import Binarization, BinaryLinear, Linear
from beexnp.losses import MSE, SoftmaxCrossEntropy, SoftTargetKL
from beexnp.mlm import MLMHead
from beexnp.module import Module
from beexnp.norm import LayerNorm
from beexnp.pairs import PairExitHead
from beexnp.sign import Sign
from beexnp.slfn import SLFN, BinaryFeedForward, ForgetGatesSLFN, LearnGateSLFN

SHAPE = dict(batch=3, tokens=5, dim=8, heads=2, classes=3, vocab=11)
D, HEADS = SHAPE["dim"], SHAPE["heads"]

BLOCK_NAMES = {
    "slfn": ["attn.qkv.weight", "attn.qkv.bias", "attn.out.weight", "attn.out.bias", "norm1.gamma", "norm1.beta",
             "ffn.gates.weight", "ffn.gates.bias", "norm2.gamma", "norm2.beta"],
    "ffn": ["attn.qkv.weight", "attn.qkv.bias", "attn.out.weight", "attn.out.bias", "norm1.gamma", "norm1.beta",
            "ffn.up.weight", "ffn.up.bias", "ffn.down.weight", "ffn.down.bias", "norm2.gamma", "norm2.beta"],
}


def names(module):
    return [name for name, _ in module.parameters()]


def block(rng, ffn="slfn", **options):
    return Block(D, HEADS, rng, ffn=ffn, dropout=0.2, **options)


def block_input(rng, dtype=np.float32):
    return (rng.standard_normal((SHAPE["batch"], SHAPE["tokens"], D)).astype(dtype),
            padding_mask(rng, SHAPE["batch"], SHAPE["tokens"]).astype(dtype))


class Stack(Module):
    """A container with a list of children, as a model holds its blocks."""

    def __init__(self, rng):
        self.blocks = [block(rng), block(rng, ffn="ffn")]
        self.head = ExitHead(D, 2, rng)


# ---- parameter names ---------------------------------------------------------

@pytest.mark.parametrize("ffn", ["slfn", "ffn"])
def test_block_parameter_names_are_stable_dotted_names(rng, ffn):
    b = block(rng, ffn)
    assert names(b) == BLOCK_NAMES[ffn]
    assert names(block(rng, ffn)) == names(b), "other weights, same names"
    assert names(block(rng, ffn, binary=False)) == names(b), "the full-precision twin uses the same names"
    x, mask = block_input(rng)
    b.astype(np.float64).relax().eval().forward(x, mask)
    b.backward(np.ones_like(x))
    b.zero_grad()
    assert names(b) == BLOCK_NAMES[ffn], "modes, casts and passes do not rename"


def test_lists_of_children_are_numbered(rng):
    stack_names = names(Stack(rng))
    expected = ([f"blocks.0.{n}" for n in BLOCK_NAMES["slfn"]] + [f"blocks.1.{n}" for n in BLOCK_NAMES["ffn"]]
                + ["head.linear.weight", "head.linear.bias"])
    assert stack_names == expected


def test_only_the_binarized_matrices_are_marked_binary(rng):
    marked = [name for name, p in block(rng).parameters() if p.binary]
    assert marked == ["attn.qkv.weight", "attn.out.weight", "ffn.gates.weight"]
    assert not any(p.binary for _, p in block(rng, binary=False).parameters())


# ---- every layer: gradients and passes ---------------------------------------

def cases_with_parameters(rng):
    return [case for case in layer_cases(rng, **SHAPE) if any(True for _ in case.module.parameters())]


def forward_backward(case, dout=None, rng=None):
    """One pass of ``case``; returns the upstream gradient it used."""
    forward = case.forward or case.module.forward
    out = forward(*case.inputs, **case.constants)
    if dout is None:
        dout = case.dout if case.dout is not None else rng.standard_normal(np.shape(out))
    case.module.backward(dout)
    return dout


PARAM_CASES = [case.name for case in cases_with_parameters(np.random.default_rng(0))]


def case_named(name, rng):
    return next(case for case in layer_cases(rng, **SHAPE) if case.name == name)


@pytest.mark.parametrize("name", PARAM_CASES)
def test_zero_grad_zeroes_every_gradient(rng, name):
    case = case_named(name, rng)
    forward_backward(case, rng=rng)
    grads = [p.grad for _, p in case.module.parameters()]
    assert all(np.any(g != 0) for g in grads), "the pass should reach every parameter"
    case.module.zero_grad()
    assert all(np.all(p.grad == 0) for _, p in case.module.parameters())


ALL_CASES = [case.name for case in layer_cases(np.random.default_rng(0))]


def snapshot(values):
    return [np.array(v, copy=True) for v in values]


@pytest.mark.parametrize("name", ALL_CASES)
def test_no_layer_overwrites_what_it_is_given(rng, name):
    """forward leaves its inputs and constants as they were, backward its upstream gradient: a reader
    never has to prove that a layer's arrays do not alias what the caller still holds."""
    case = case_named(name, rng)
    given = list(case.inputs) + list(case.constants.values())
    before = snapshot(given)
    forward = case.forward or case.module.forward
    out = forward(*case.inputs, **case.constants)
    dout = case.dout if case.dout is not None else rng.standard_normal(np.shape(out))
    dout_before = np.array(dout, copy=True)
    case.module.backward(dout)
    for value, kept in zip(given, before):
        np.testing.assert_array_equal(value, kept)
    np.testing.assert_array_equal(dout, dout_before)


def test_the_eval_mode_weight_cache_follows_every_weight_change(rng):
    """In eval mode W_b is computed once; a load_state_dict or a train()/eval() switch drops it, so a
    forward always uses the weights as they are."""
    layer = BinaryLinear(6, 3, rng).eval()
    x = rng.standard_normal((4, 6)).astype(np.float32)
    y = layer.forward(x)
    assert layer.eval_weight is not None and layer.forward(x) is not y
    np.testing.assert_array_equal(layer.forward(x), y)
    layer.load_state_dict({name: -value for name, value in layer.state_dict().items()})
    np.testing.assert_array_equal(layer.forward(x), -y)                 # sign(-W) = -sign(W) off 0
    layer.train()
    layer.weight.data[...] = np.abs(layer.weight.data)
    fresh = layer.forward(x)
    np.testing.assert_array_equal(layer.eval().forward(x), fresh)
    assert np.any(fresh != -y)


@pytest.mark.parametrize("name", PARAM_CASES)
def test_backward_accumulates_into_grad(rng, name):
    case = case_named(name, rng)
    case.module.zero_grad()
    dout = forward_backward(case, rng=rng)
    once = {n: p.grad.copy() for n, p in case.module.parameters()}
    forward_backward(case, dout)
    for n, p in case.module.parameters():
        assert np.any(once[n] != 0), n
        # scatter-adds (Embedding) accumulate in a different order: equal up to rounding
        np.testing.assert_allclose(p.grad, 2 * once[n], rtol=1e-12, atol=1e-15, err_msg=n)


# ---- modes -------------------------------------------------------------------

def test_train_and_eval_propagate(rng):
    b = block(rng)
    x, mask = block_input(rng)
    assert b.eval() is b and not any(m.training for m in b.modules())
    np.testing.assert_array_equal(b.forward(x, mask), b.forward(x, mask))
    assert b.train() is b and all(m.training for m in b.modules())
    assert np.any(b.forward(x, mask) != b.forward(x, mask)), "dropout is active in training"


def test_relax_propagates_and_changes_binary_outputs(rng):
    b = block(rng).eval()
    x, mask = block_input(rng)
    binary_out = b.forward(x, mask)
    assert b.relax() is b and all(m.relaxed for m in b.modules())
    assert np.any(b.forward(x, mask) != binary_out)
    b.relax(False)
    assert not any(m.relaxed for m in b.modules())
    np.testing.assert_array_equal(b.forward(x, mask), binary_out)


def test_relaxed_binary_linear_uses_g_and_real_linear_ignores_relax(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    layer = BinaryLinear(6, 3, rng)
    binary = layer.forward(x)
    relaxed = layer.relax().forward(x)
    assert np.any(relaxed != binary)
    W = layer.weight.data
    g = np.where(W >= 0, 1, -1) * (2 * np.abs(W) - W * W)                      # g(W) inside [-1, 1]
    np.testing.assert_allclose(layer.effective_weight(), np.abs(W).mean(axis=0) * g, rtol=1e-6)
    real = Linear(6, 3, rng)
    np.testing.assert_array_equal(real.relax().forward(x), real.relax(False).forward(x))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_astype_casts_every_parameter_and_gradient(rng, dtype):
    s = Stack(rng)
    assert s.astype(dtype) is s
    for name, p in s.parameters():
        assert p.data.dtype == dtype and p.grad.dtype == dtype and p.grad.shape == p.shape, name
    x, mask = block_input(rng, dtype)
    assert s.blocks[0].forward(x, mask).dtype == dtype


# ---- checkpoints -------------------------------------------------------------

def test_state_dict_round_trip(rng):
    source, target = Stack(rng), Stack(rng)                       # two different initializations
    x, mask = block_input(rng)
    state = source.state_dict()
    assert list(state) == names(source)
    assert np.any(target.blocks[0].eval().forward(x, mask) != source.blocks[0].eval().forward(x, mask))
    target.load_state_dict(state)
    for (name, p), (_, q) in zip(source.parameters(), target.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    np.testing.assert_array_equal(target.blocks[0].forward(x, mask), source.blocks[0].forward(x, mask))
    before = state["head.linear.weight"].copy()
    source.head.linear.weight.data += 1
    np.testing.assert_array_equal(state["head.linear.weight"], before)  # the state is a copy


def spoil(state, how, name):
    state = dict(state)
    if how == "missing":
        del state[name]
    elif how == "wrong shape":
        state[name] = np.zeros(state[name].shape + (2,), state[name].dtype)
    else:
        state[name] = np.zeros(3)
    return state


@pytest.mark.parametrize("how, name", [("missing", "blocks.1.norm1.gamma"),
                                       ("wrong shape", "blocks.0.attn.out.weight"),
                                       ("unexpected", "blocks.2.norm1.gamma")])
def test_load_state_dict_names_what_does_not_fit(rng, how, name):
    model = Stack(rng)
    before = model.state_dict()
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        model.load_state_dict(spoil(Stack(rng).state_dict(), how, name))
    for n, p in model.parameters():
        np.testing.assert_array_equal(p.data, before[n], err_msg=f"{n} changed by a failed load")


# ---- float32 in, float32 out -------------------------------------------------

def builders(rng, dtype, dim, heads, classes, vocab, **_):
    """Every case of layer_cases, built by its constructor in ``dtype``."""
    t = dict(dtype=dtype)
    return {
        "Sign (second order)": lambda: Sign("second_order"),
        "Sign (STE)": lambda: Sign("ste"),
        "Linear": lambda: Linear(dim, classes, rng, **t),
        "BinaryLinear": lambda: BinaryLinear(dim, classes, rng, **t),
        "BinaryLinear (STE)": lambda: BinaryLinear(dim, classes, rng, estimator="ste", **t),
        "BinaryLinear (W1A1)": lambda: BinaryLinear(dim, classes, rng, binarize_input=True, **t),
        "BinaryLinear (W1A1, {0,1} inputs)": lambda: BinaryLinear(dim, classes, rng, binarize_input=True,
                                                                  input_levels="step", **t),
        "ReLU": ReLU,
        "LayerNorm": lambda: LayerNorm(dim, **t),
        "SinusoidalPositions (concat)": lambda: SinusoidalPositions(4),
        "SinusoidalPositions (add)": lambda: SinusoidalPositions(dim, mode="add"),
        "BinaryMultiHeadAttention": lambda: BinaryMultiHeadAttention(dim, heads, rng, **t),
        "MultiHeadAttention (full precision)": lambda: BinaryMultiHeadAttention(dim, heads, rng, binary=False, **t),
        "SLFN": lambda: SLFN(dim, rng, **t),
        "SLFN (full precision)": lambda: SLFN(dim, rng, binary=False, **t),
        "BinaryFeedForward": lambda: BinaryFeedForward(dim, rng, **t),
        "BinaryFeedForward (W1A1)": lambda: BinaryFeedForward(dim, rng, binarization=Binarization(binarize_input=True),
                                                               **t),
        "ExitHead": lambda: ExitHead(dim, classes, rng, **t),
        "Dropout": lambda: Dropout(0.3, rng),
        "Block (slfn)": lambda: Block(dim, heads, rng, ffn="slfn", dropout=0.2, **t),
        "Block (ffn)": lambda: Block(dim, heads, rng, ffn="ffn", dropout=0.2, **t),
        "Embedding": lambda: Embedding(vocab, dim, rng, **t),
        "Embedding (binarized)": lambda: Embedding(vocab, dim, rng, binarize=True, **t),
        "SoftmaxCrossEntropy": SoftmaxCrossEntropy,
        "MSE": MSE,
        "SLFN (learn gate only)": lambda: LearnGateSLFN(dim, rng, **t),
        "SLFN (forget gates only)": lambda: ForgetGatesSLFN(dim, rng, **t),
        "PairExitHead": lambda: PairExitHead(dim, classes, rng, **t),
        "PairExitHead (with cosine)": lambda: PairExitHead(dim, classes, rng, cosine=True, **t),
        "SoftTargetKL (T = 2)": lambda: SoftTargetKL(2.0),
        "MLMHead": lambda: MLMHead(dim, vocab, rng, **t),
    }


def in_dtype(value, dtype):
    """Float arrays cast to ``dtype``; ids, labels and the rest unchanged."""
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return value.astype(dtype)
    return value


def test_every_case_has_a_constructor_build():
    assert set(builders(None, np.float32, **SHAPE)) == {case.name for case in layer_cases(np.random.default_rng(0))}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(builders(None, np.float32, **SHAPE)))
def test_constructors_honour_dtype(rng, name, dtype):
    module = builders(rng, dtype, **SHAPE)[name]()
    for pname, p in module.parameters():
        assert p.data.dtype == dtype and p.grad.dtype == dtype, pname


@pytest.mark.parametrize("name", list(builders(None, np.float32, **SHAPE)))
def test_float32_in_float32_out_in_binary_mode(rng, name):
    case = case_named(name, rng)
    module = builders(rng, np.float32, **SHAPE)[name]()
    assert not module.relaxed
    inputs = tuple(in_dtype(x, np.float32) for x in case.inputs)
    constants = {k: in_dtype(v, np.float32) for k, v in case.constants.items()}
    out = with_fresh_dropout(module)(*inputs, **constants)
    assert np.asarray(out).dtype == np.float32
    dout = in_dtype(np.asarray(case.dout if case.dout is not None else rng.standard_normal(np.shape(out))),
                    np.float32)
    grads = module.backward(dout)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for g in grads:
        assert g is None or g.dtype == np.float32
    for pname, p in module.parameters():
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32, pname
        assert np.all(np.isfinite(p.grad)), pname
