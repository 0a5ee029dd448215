"""Every ``backward`` in the package against central differences.

float64, relaxed mode for the binarized layers (DESIGN §1), a random upstream
gradient, relative error <= 1e-6, over several shapes: one token, batch size 1,
odd sizes, padding in the batch.  ``pytest -s`` prints each table.

Also here: the completeness check (a class with a ``backward`` and no gradient
check fails the suite), BinaryLinear without the alpha gradient, and proof that
the checker catches wrong backwards.
"""
import importlib
import inspect
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import beexnp
from beexnp import layer_checks
from beexnp.activations import softmax, softmax_backward
from beexnp.gradcheck import gradcheck, numerical_gradient, randomize_parameters, rel_error
from beexnp.layer_checks import kink_free, layer_cases
from beexnp.embedding import Embedding
from beexnp.linear import BinaryLinear
from beexnp.module import Module
from beexnp.norm import LayerNorm
from beexnp.sign import get_estimator

TOL = 1e-6

# name -> (seed, shape).  The seeds are fixed so that every batch with more than
# one row really holds padding (asserted by test_shape_sets_cover_the_edge_cases).
SHAPES = {
    "one-token": (0, dict(batch=1, tokens=1, dim=4, heads=1, classes=2, vocab=5)),
    "batch-1": (1, dict(batch=1, tokens=6, dim=6, heads=2, classes=3, vocab=7)),
    "default": (2, dict(batch=3, tokens=5, dim=8, heads=2, classes=3, vocab=11)),
    "odd": (3, dict(batch=2, tokens=7, dim=6, heads=3, classes=5, vocab=13)),
    "odd-width": (4, dict(batch=5, tokens=3, dim=9, heads=3, classes=1, vocab=6)),
}

CASE_NAMES = [case.name for case in layer_cases(np.random.default_rng(0))]

# Classes with a backward whose gradient check is not run here (too slow for this
# suite): "module.Class" -> the case builder of beexnp.layer_checks that checks
# them.  The class must appear among the modules of the builder's cases, and
# another test file (tests/test_model.py) must run that builder.  Keep this short.
GRADCHECKED_ELSEWHERE = {
    "beexnp.model.BEExformer": "model_cases",
    "beexnp.exit_loss.MultiExitLoss": "model_cases",
    "beexnp.exit_loss.ModelWithLoss": "model_cases",
    "beexnp.mlm.MaskedLM": "mlm_cases",
}


def build_cases(shape_name):
    """(rng, {case name: Case}) for one shape set; the rng then drives the check."""
    seed, shape = SHAPES[shape_name]
    rng = np.random.default_rng(seed)
    return rng, {case.name: case for case in layer_cases(rng, **shape)}


def batch_mask(cases):
    """The padding mask the cases of one shape set share."""
    return next(case.constants["mask"] for case in cases.values() if "mask" in case.constants)


@pytest.mark.parametrize("case_name", CASE_NAMES)
@pytest.mark.parametrize("shape_name", SHAPES)
def test_backward_matches_central_differences(shape_name, case_name):
    rng, cases = build_cases(shape_name)
    case = cases[case_name]
    report = case.check(rng, tol=TOL)
    print(f"\n[{shape_name}: {SHAPES[shape_name][1]}]\n{report}")
    checked = {row.name for row in report.rows}
    expected = {name for name, _ in case.module.parameters()}
    assert expected <= checked and len(report.rows) == len(expected) + len(case.inputs), \
        "the report must hold one row per input and per parameter"
    assert report.ok, f"{case_name} on {shape_name}:\n{report}"


def test_shape_sets_cover_the_edge_cases():
    shapes = [shape for _, shape in SHAPES.values()]
    assert any(s["batch"] == 1 for s in shapes)
    assert any(s["tokens"] == 1 for s in shapes)
    assert any(s["dim"] % 2 for s in shapes) and any(s["tokens"] % 2 for s in shapes)
    assert any((s["dim"] // s["heads"]) % 2 for s in shapes), "some head width should be odd"
    for name, (_, shape) in SHAPES.items():
        mask = batch_mask(build_cases(name)[1])
        assert mask.shape == (shape["batch"], shape["tokens"])
        assert np.all(mask.sum(axis=1) >= 1), "every row needs a real token"
        if shape["batch"] > 1:
            assert np.any(mask == 0), f"shape set {name!r} has no padding: pick another seed"


# ---- completeness: every backward in the package has a check ----------------

def classes_with_backward():
    """{"module.Class": class} for every class in beexnp (not beexnp.glue) with a
    concrete ``backward`` (its own or inherited, other than Module's abstract one)."""
    found = {}
    for info in pkgutil.walk_packages(beexnp.__path__, "beexnp."):
        name = info.name
        if name == "beexnp.__main__" or name == "beexnp.glue" or name.startswith("beexnp.glue."):
            continue
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            backward = getattr(cls, "backward", None)
            if cls.__module__ == name and callable(backward) and backward is not Module.backward:
                found[f"{name}.{cls.__qualname__}"] = cls
    return found


def test_every_class_with_a_backward_has_a_gradient_check():
    found = classes_with_backward()
    assert {"beexnp.norm.LayerNorm", "beexnp.linear.BinaryLinear", "beexnp.block.Block"} <= set(found), \
        "the package walk missed known layers"
    covered = {type(case.module) for case in layer_cases(np.random.default_rng(0))}
    unchecked = sorted(name for name, cls in found.items()
                       if cls not in covered and name not in GRADCHECKED_ELSEWHERE)
    assert not unchecked, ("classes with a backward but no gradient check: add a Case to beexnp.layer_checks."
                           f"layer_cases (or an entry to GRADCHECKED_ELSEWHERE): {unchecked}")


@pytest.mark.parametrize("name", sorted(GRADCHECKED_ELSEWHERE))
def test_exclusions_are_checked_elsewhere(name):
    found = classes_with_backward()
    assert name in found, f"{name} no longer exists: remove it from GRADCHECKED_ELSEWHERE"
    builder = getattr(layer_checks, GRADCHECKED_ELSEWHERE[name])
    in_cases = {type(m) for case in builder(np.random.default_rng(0)) for m in case.module.modules()}
    assert found[name] in in_cases, f"{name} is not among the modules of layer_checks.{builder.__name__}"
    runners = [path.name for path in Path(__file__).parent.glob("test_*.py")
               if path.name != Path(__file__).name and builder.__name__ in path.read_text(encoding="utf-8")]
    assert runners, f"no test file runs layer_checks.{builder.__name__}, so {name} is never gradient-checked"


# ---- BinaryLinear(alpha_grad=False): alpha treated as a constant -------------

def binary_linear_pair(rng, estimator, n_in=7, n_out=5):
    """Two float64 BinaryLinear with the same random weights, alpha_grad on and off,
    an input away from the kinks and an upstream gradient."""
    layers = [BinaryLinear(n_in, n_out, rng, estimator=estimator, alpha_grad=flag, dtype=np.float64)
              for flag in (True, False)]
    randomize_parameters(layers[0], rng)
    layers[1].load_state_dict(layers[0].state_dict())
    return layers, kink_free(rng, (3, 4, n_in)), rng.standard_normal((3, 4, n_out))


def weight_grad(layer, x, dout):
    layer.zero_grad()
    layer.forward(x)
    layer.backward(dout)
    return layer.weight.grad.copy()


@pytest.mark.parametrize("estimator", ["second_order", "ste"])
def test_binary_linear_without_alpha_grad_is_the_derivative_with_alpha_frozen(rng, estimator):
    (full, frozen), x, dout = binary_linear_pair(rng, estimator)
    full.relax(True)
    frozen.relax(True)
    W, b = frozen.weight.data, frozen.bias.data
    s = get_estimator(estimator).relaxed
    alpha = np.abs(W).mean(axis=0)                       # held constant below, while W moves

    def f():
        return np.sum((x @ (alpha * s(W)) + b) * dout)   # DESIGN §1 forward, relaxed, alpha frozen

    numeric = numerical_gradient(f, W)
    assert rel_error(weight_grad(frozen, x, dout), numeric) <= TOL
    # the alpha term is not negligible: the full gradient does not pass this check
    assert rel_error(weight_grad(full, x, dout), numeric) > 1e-3


@pytest.mark.parametrize("relaxed", [False, True])
@pytest.mark.parametrize("estimator", ["second_order", "ste"])
def test_binary_linear_alpha_term_is_the_whole_difference(rng, estimator, relaxed):
    (full, frozen), x, dout = binary_linear_pair(rng, estimator)
    full.relax(relaxed)
    frozen.relax(relaxed)
    W = full.weight.data
    est = get_estimator(estimator)
    s = est.relaxed(W) if relaxed else np.where(W >= 0, 1.0, -1.0)
    dWb = x.reshape(-1, W.shape[0]).T @ dout.reshape(-1, W.shape[1])       # dL/d(alpha * s(W))
    alpha_term = np.sum(dWb * s, axis=0) * np.sign(W) / W.shape[0]        # dL/dalpha * dalpha/dW
    sign_term = np.abs(W).mean(axis=0) * est.grad(W) * dWb               # alpha * s'(W) * dL/dWb
    g_full, g_frozen = weight_grad(full, x, dout), weight_grad(frozen, x, dout)
    np.testing.assert_allclose(g_frozen, sign_term, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g_full - g_frozen, alpha_term, rtol=1e-9, atol=1e-12)
    assert np.max(np.abs(alpha_term)) > 1e-3


@pytest.mark.parametrize("estimator", ["second_order", "ste"])
def test_binarized_embedding_honours_alpha_grad(rng, estimator):
    """Embedding(binarize=True, alpha_grad=False) is the derivative with alpha_r frozen (relaxed mode), as
    BinaryLinear's; with alpha_grad=True the alpha term adds to it."""
    V, d = 7, 5
    layers = [Embedding(V, d, rng, binarize=True, estimator=estimator, alpha_grad=flag, dtype=np.float64)
              for flag in (True, False)]
    randomize_parameters(layers[0], rng)
    layers[1].load_state_dict(layers[0].state_dict())
    ids = rng.integers(1, V, size=(3, 4))
    dout = rng.standard_normal((3, 4, d))
    E = layers[1].weight.data
    s = get_estimator(estimator).relaxed
    alpha = np.abs(E).mean(axis=1, keepdims=True)                 # (V, 1), held constant while E moves

    def f():
        return np.sum((alpha * s(E))[ids] * dout)                 # DESIGN §2.3, relaxed, alpha frozen

    grads = []
    for layer in layers:
        layer.relax(True)
        layer.zero_grad()
        layer.forward(ids)
        layer.backward(dout)
        grads.append(layer.weight.grad.copy())
    numeric = numerical_gradient(f, E)
    numeric[0] = 0                                                # the padding row gets no gradient
    assert rel_error(grads[1], numeric) <= TOL
    assert rel_error(grads[0], numeric) > 1e-3                    # the alpha term is not negligible


# ---- the checker catches wrong backwards ------------------------------------

class LayerNormWithoutProjection(LayerNorm):
    """Broken: dx drops the  - xhat * mean(dxhat * xhat)  term (parameter gradients stay right)."""

    def backward(self, dy):
        super().backward(dy)                                   # gamma, beta gradients
        dxhat = dy * self.gamma.data
        return self.inv_sigma * (dxhat - dxhat.mean(axis=-1, keepdims=True))


class Softmax(Module):
    """p = softmax(z) as a layer of its own, built on the package's softmax and softmax_backward
    (the attention's): the correct layer the broken ones below start from."""

    def forward(self, z):
        self.p = softmax(z)
        return self.p

    def backward(self, dp):
        return softmax_backward(self.p, dp.copy())


def test_softmax_backward_matches_central_differences(rng):
    report = gradcheck(Softmax(), (kink_free(rng, (3, 4, 6)),), rng=rng, tol=TOL)
    print(f"\n{report}")
    assert report.ok


class SoftmaxReturningDp(Softmax):
    """Broken: passes the upstream gradient through unchanged."""

    def backward(self, dp):
        return dp


class SoftmaxReturningZero(Softmax):
    """Broken: no gradient at all (right only when dp is constant along each row)."""

    def backward(self, dp):
        return np.zeros_like(dp)


def broken_layer(kind, rng, dim):
    if kind == "LayerNorm without projection term":
        return randomize_parameters(LayerNormWithoutProjection(dim, dtype=np.float64), rng)
    return {"Softmax returning dp": SoftmaxReturningDp, "Softmax returning zero": SoftmaxReturningZero}[kind]()


BROKEN = ["LayerNorm without projection term", "Softmax returning dp", "Softmax returning zero"]


@pytest.mark.parametrize("kind", BROKEN)
def test_gradcheck_reports_a_broken_backward(rng, kind):
    layer = broken_layer(kind, rng, dim=6)
    report = gradcheck(layer, (kink_free(rng, (3, 4, 6)),), rng=rng, tol=TOL)
    print(f"\n{report}")
    assert not report.ok
    assert [row.name for row in report.rows if not row.ok] == ["input"], "only the input gradient is wrong"


@pytest.mark.parametrize("kind", ["LayerNorm without projection term", "Softmax returning zero"])
def test_only_a_random_upstream_gradient_exposes_it(rng, kind):
    """With dout = 1 (checking sum(out)) these broken backwards agree with the truth:
    LayerNorm at its initial gamma = 1 and Softmax both have a zero gradient of the
    plain sum.  The checker's random dout is what catches them."""
    layer = broken_layer(kind, rng, dim=6)
    if isinstance(layer, LayerNorm):
        layer.gamma.data[...] = 1
        layer.beta.data[...] = 0
    x = kink_free(rng, (3, 4, 6))
    layer.forward(x)
    analytic = layer.backward(np.ones_like(x))
    numeric = numerical_gradient(lambda: np.sum(layer.forward(x)), x)
    assert np.max(np.abs(analytic - numeric)) < 1e-8, "with dout = 1 the bug is invisible"
    assert not gradcheck(layer, (x,), rng=rng, tol=TOL).ok


def test_gradcheck_gives_the_module_back_in_its_own_dtype(rng):
    layer = BinaryLinear(4, 3, rng)                                       # float32
    before = layer.state_dict()
    report = gradcheck(layer, (kink_free(rng, (2, 4)),), rng=rng)
    assert report.ok
    assert {n: p.data.dtype for n, p in layer.parameters()} == {n: np.dtype(np.float32) for n in before}
    for name, p in layer.parameters():
        np.testing.assert_array_equal(p.data, before[name])


def test_progress_counts_every_entry_differenced(rng):
    """The gradcheck command's bar has ``Case.entries`` as its total: each check calls ``on_entry`` once per
    entry of its inputs and parameters, so the bar ends at exactly 100%."""
    for case in layer_cases(rng, batch=2, tokens=3, dim=4, heads=2):
        calls = []
        case.check(rng, on_entry=calls.append)
        assert calls == [1] * case.entries, case.name


def test_gradcheck_command_shows_progress_on_stderr_only(capsys, two_gradchecks):
    """The table goes to stdout, the bar to stderr (so ``gradcheck > table.txt`` stays clean); --no-progress
    leaves stderr empty."""
    from beexnp import cli
    cases = two_gradchecks
    assert cli.main(["gradcheck"]) == 0
    out, err = capsys.readouterr()
    total = sum(case.entries for case in cases)
    assert f"{total}/{total}" in err and cases[-1].name in err and "entry" not in out
    assert "2 layers, largest relative error" in out
    assert cli.main(["gradcheck", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
