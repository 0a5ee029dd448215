"""Optimizers and gradient clipping against hand-computed steps."""
import io

import numpy as np
import pytest

from beexnp.module import Module, Parameter
from beexnp.optim import SGD, Adam, AdamW, clip_grad_norm
from beexnp.schedules import LRSchedule


def vector(values, dtype=np.float64):
    return Parameter(np.array(values, dtype))


class Tiny(Module):
    """One parameter of each kind the decay rule tells apart."""

    def __init__(self, dtype=np.float32, seed=0):
        rng = np.random.default_rng(seed)
        self.weight = Parameter(rng.uniform(-0.5, 0.5, (3, 4)).astype(dtype))             # real matrix: decays
        self.bias = Parameter(rng.uniform(-0.5, 0.5, 4).astype(dtype))                    # vector: no decay
        self.gamma = Parameter(np.ones(4, dtype))                                         # LayerNorm scale: no decay
        self.latent = Parameter(rng.uniform(-0.5, 0.5, (4, 2)).astype(dtype), binary=True)  # binary: no decay


def fill_grads(model, rng):
    for _, p in model.parameters():
        p.grad[...] = rng.standard_normal(p.shape)


# ---- SGD ----------------------------------------------------------------------

def test_sgd_momentum_two_steps_by_hand():
    # p0 = [1, -2], lr 0.1, mu 0.9.
    # step 1, g = [0.5, -1]: v = [0.5, -1];                        p = [1 - 0.05, -2 + 0.1]   = [0.95, -1.9]
    # step 2, g = [1, 2]:    v = 0.9*[0.5, -1] + [1, 2] = [1.45, 1.1]; p = [0.95 - 0.145, -1.9 - 0.11] = [0.805, -2.01]
    p = vector([1.0, -2.0])
    opt = SGD([("p", p)], lr=0.1, momentum=0.9)
    p.grad[...] = [0.5, -1.0]
    opt.step()
    np.testing.assert_allclose(p.data, [0.95, -1.9], rtol=1e-14)
    np.testing.assert_allclose(opt.state["p"][0], [0.5, -1.0], rtol=1e-14)
    p.grad[...] = [1.0, 2.0]
    opt.step()
    np.testing.assert_allclose(opt.state["p"][0], [1.45, 1.1], rtol=1e-14)
    np.testing.assert_allclose(p.data, [0.805, -2.01], rtol=1e-14)


def test_sgd_nesterov_two_steps_by_hand():
    # Same data, nesterov: p -= lr * (g + mu v).
    # step 1: v = [0.5, -1];   g + 0.9 v = [0.95, -1.9];  p = [1 - 0.095, -2 + 0.19]       = [0.905, -1.81]
    # step 2: v = [1.45, 1.1]; g + 0.9 v = [2.305, 2.99]; p = [0.905 - 0.2305, -1.81 - 0.299] = [0.6745, -2.109]
    p = vector([1.0, -2.0])
    opt = SGD([("p", p)], lr=0.1, momentum=0.9, nesterov=True)
    p.grad[...] = [0.5, -1.0]
    opt.step()
    np.testing.assert_allclose(p.data, [0.905, -1.81], rtol=1e-14)
    p.grad[...] = [1.0, 2.0]
    opt.step()
    np.testing.assert_allclose(p.data, [0.6745, -2.109], rtol=1e-14)


def test_sgd_weight_decay_is_l2_on_matrices():
    # W = [[1, -2]] (a matrix), g = [[0.5, 0]], wd 0.1, lr 0.1, no momentum:
    # g + wd W = [[0.6, -0.2]];  W = [[1 - 0.06, -2 + 0.02]] = [[0.94, -1.98]]
    W = Parameter(np.array([[1.0, -2.0]]))
    opt = SGD([("W", W)], lr=0.1, momentum=0.0, weight_decay=0.1)
    W.grad[...] = [[0.5, 0.0]]
    opt.step()
    np.testing.assert_allclose(W.data, [[0.94, -1.98]], rtol=1e-14)
    np.testing.assert_array_equal(W.grad, [[0.5, 0.0]])             # the grad itself is not modified


# ---- Adam / AdamW -------------------------------------------------------------

def test_adam_two_steps_with_bias_correction_by_hand():
    # p0 = [1, -2], lr 0.1, b1 0.9, b2 0.999, eps 1e-8.
    # step 1, g = [0.5, -1]: m = [0.05, -0.1], v = [0.00025, 0.001]; m_hat = m/0.1 = [0.5, -1],
    #   v_hat = v/0.001 = [0.25, 1]; update = [0.5/(0.5+1e-8), -1/(1+1e-8)]
    #   p = [1 - 0.1*0.99999998, -2 + 0.1*0.99999999] = [0.900000002, -1.900000001]
    # step 2, g = [1, 2]: m = 0.9 m + 0.1 g = [0.145, 0.11]; v = 0.999 v + 0.001 g^2 = [0.00124975, 0.004999]
    #   m_hat = m / (1 - 0.81) = [0.7631578947368421, 0.5789473684210527]
    #   v_hat = v / (1 - 0.998001) = [0.6251875937968984, 2.500750375187594]
    #   sqrt(v_hat) = [0.7906880508752478, 1.5813761017504956]
    #   update = m_hat / (sqrt(v_hat) + eps) = [0.9651820136149124, 0.3661035247207510]
    #   p = [0.900000002 - 0.09651820136149124, -1.900000001 - 0.03661035247207510]
    #     = [0.8034818006385087, -1.9366103534720751]
    p = vector([1.0, -2.0])
    opt = Adam([("p", p)], lr=0.1)
    p.grad[...] = [0.5, -1.0]
    opt.step()
    np.testing.assert_allclose(p.data, [0.900000002, -1.900000001], rtol=1e-14)
    p.grad[...] = [1.0, 2.0]
    opt.step()
    m, v = opt.state["p"]
    np.testing.assert_allclose(m, [0.145, 0.11], rtol=1e-14)
    np.testing.assert_allclose(v, [0.00124975, 0.004999], rtol=1e-12)
    np.testing.assert_allclose(p.data, [0.8034818006385087, -1.9366103534720751], rtol=1e-14)


def test_adamw_decoupled_decay_differs_from_adam_with_l2():
    # W = [[1, -2]], g = [[0.5, -1]], lr 0.1, wd 0.1, one step (update = m_hat/sqrt(v_hat) = sign(g) up to eps).
    # AdamW:     W = W (1 - 0.01) - 0.1 sign(g) = [[0.99 - 0.1, -1.98 + 0.1]] = [[0.89, -1.88]]
    # Adam + L2: g' = g + 0.1 W = [[0.6, -1.2]], update = sign(g') = [1, -1]: W = [[0.9, -1.9]]
    #            the decay vanishes in the normalization by sqrt(v_hat).
    W1, W2 = (Parameter(np.array([[1.0, -2.0]])) for _ in range(2))
    adamw = AdamW([("W", W1)], lr=0.1, weight_decay=0.1)
    adam = Adam([("W", W2)], lr=0.1)
    W1.grad[...] = [[0.5, -1.0]]
    W2.grad[...] = np.array([[0.5, -1.0]]) + 0.1 * W2.data         # L2 folded into the gradient
    adamw.step()
    adam.step()
    np.testing.assert_allclose(W1.data, [[0.89, -1.88]], rtol=1e-7)
    np.testing.assert_allclose(W2.data, [[0.9, -1.9]], rtol=1e-7)
    assert np.abs(W1.data - W2.data).min() > 0.009


def test_adamw_without_decay_is_adam_bitwise():
    a, b = Tiny(seed=1), Tiny(seed=1)
    opt_a, opt_b = Adam(a.parameters(), lr=0.01), AdamW(b.parameters(), lr=0.01, weight_decay=0.0)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(3):
        fill_grads(a, rng_a), fill_grads(b, rng_b)
        opt_a.step(), opt_b.step()
    for (_, p), (_, q) in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.5),
    lambda ps: AdamW(ps, lr=0.1, weight_decay=0.5),
], ids=["sgd", "adamw"])
def test_decay_only_on_real_matrices(make):
    # Zero gradients: the only change is the decay, W <- W (1 - lr wd) = 0.95 W for both optimizers
    # (SGD: v = wd W, W -= lr v; AdamW: m = v = 0 so the Adam update is 0).
    model = Tiny(np.float64)
    before = {name: p.data.copy() for name, p in model.parameters()}
    make(model.parameters()).step()
    np.testing.assert_allclose(model.weight.data, 0.95 * before["weight"], rtol=1e-14)
    for name in ("bias", "gamma", "latent"):
        np.testing.assert_array_equal(getattr(model, name).data, before[name])


def test_binary_weights_clipped_to_unit_interval():
    # SGD lr 1, no momentum: p = p - g. Binary [0.95, -0.95, 0.5] - [-0.2, 0.2, 0] = [1.15, -1.15, 0.5]
    # -> clipped to [1, -1, 0.5]; the real parameter with the same numbers is not clipped.
    def run(clip_binary):
        latent = Parameter(np.array([0.95, -0.95, 0.5]), binary=True)
        real = Parameter(np.array([0.95, -0.95, 0.5]))
        opt = SGD([("latent", latent), ("real", real)], lr=1.0, momentum=0.0, clip_binary=clip_binary)
        for p in (latent, real):
            p.grad[...] = [-0.2, 0.2, 0.0]
        opt.step()
        return latent.data, real.data

    latent, real = run(clip_binary=True)
    np.testing.assert_allclose(latent, [1.0, -1.0, 0.5], rtol=1e-14)
    np.testing.assert_allclose(real, [1.15, -1.15, 0.5], rtol=1e-14)
    latent, _ = run(clip_binary=False)
    np.testing.assert_allclose(latent, [1.15, -1.15, 0.5], rtol=1e-14)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_binary_clipping_over_many_steps(cls):
    # Large steps on every parameter for a while: latent weights never leave [-1, 1].
    model = Tiny()
    opt = cls(model.parameters(), lr=0.5)
    rng = np.random.default_rng(0)
    for _ in range(20):
        fill_grads(model, rng)
        opt.step()
    assert np.abs(model.latent.data).max() <= 1.0
    assert np.abs(model.latent.data).max() == 1.0                  # some did hit the bound
    assert np.abs(model.weight.data).max() > 1.0                   # real weights are not clipped


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, weight_decay=0.01, nesterov=True),
    lambda ps: Adam(ps, lr=0.1),
    lambda ps: AdamW(ps, lr=0.1),
], ids=["sgd", "adam", "adamw"])
def test_float32_stays_float32_and_in_place(make):
    def run(lr_type):
        model = Tiny(np.float32)
        arrays = {name: p.data for name, p in model.parameters()}
        opt = make(model.parameters())
        rng = np.random.default_rng(0)
        for step in range(3):
            fill_grads(model, rng)
            opt.lr = lr_type(0.1 / (step + 1))
            opt.step()
        for name, p in model.parameters():
            assert p.data.dtype == np.float32 and p.grad.dtype == np.float32, name
            assert p.data is arrays[name], f"{name} was replaced, not updated in place"
        for key, array in opt.state_dict()["arrays"].items():
            assert array.dtype == np.float32, key
        return model

    # A NumPy float64 lr (as np.cos in a schedule would give) must not upcast the arithmetic:
    # in-place ops would hide the float64 temporaries, but they round differently.
    for (name, p), (_, q) in zip(run(float).parameters(), run(np.float64).parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_zero_grad():
    model = Tiny()
    opt = Adam(model.parameters(), lr=0.1)
    fill_grads(model, np.random.default_rng(0))
    opt.zero_grad()
    for _, p in model.parameters():
        assert not p.grad.any()


# ---- resume -------------------------------------------------------------------

def save_and_load(d):
    """A state dict through an .npz file, as a checkpoint would store it."""
    buf = io.BytesIO()
    np.savez(buf, **d["arrays"])
    buf.seek(0)
    with np.load(buf) as z:
        return {"step": d["step"], "lr": d["lr"], "arrays": {k: z[k] for k in z.files}}


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, weight_decay=0.01, nesterov=True),
    lambda ps: Adam(ps, lr=0.1),
    lambda ps: AdamW(ps, lr=0.1, weight_decay=0.1),
], ids=["sgd", "adam", "adamw"])
def test_resume_is_bitwise_identical(make):
    schedule = LRSchedule(0.1, total_steps=8, warmup_steps=2, decay="cosine")

    def run(model, opt, steps):
        for s in steps:
            fill_grads(model, np.random.default_rng(100 + s))         # the gradient of step s
            opt.lr = schedule(opt.t)
            opt.step()

    full = Tiny()
    opt = make(full.parameters())
    run(full, opt, range(8))

    first = Tiny()
    opt1 = make(first.parameters())
    run(first, opt1, range(4))
    weights, state = first.state_dict(), opt1.state_dict()
    run(first, opt1, range(4, 6))                                    # must not leak into the saved state
    state = save_and_load(state)

    second = Tiny(seed=99)                                           # fresh objects, different init
    second.load_state_dict(weights)
    opt2 = make(second.parameters())
    opt2.load_state_dict(state)
    assert opt2.t == 4 and opt2.lr == schedule(3)
    run(second, opt2, range(4, 8))

    for (name, p), (_, q) in zip(full.parameters(), second.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    for key, a in opt.state_dict()["arrays"].items():
        np.testing.assert_array_equal(a, opt2.state_dict()["arrays"][key], err_msg=key)


def test_state_dict_format():
    model = Tiny()
    d = Adam(model.parameters(), lr=0.01).state_dict()
    assert d["step"] == 0 and isinstance(d["step"], int) and d["lr"] == 0.01
    assert sorted(d["arrays"]) == sorted(f"{slot}.{name}" for slot in ("m", "v")
                                         for name in ("weight", "bias", "gamma", "latent"))
    assert sorted(SGD(model.parameters(), lr=0.1).state_dict()["arrays"]) == \
        sorted(f"velocity.{name}" for name in ("weight", "bias", "gamma", "latent"))


def test_load_state_dict_mismatch_errors():
    model = Tiny()
    opt = Adam(model.parameters(), lr=0.01)
    good = opt.state_dict()

    bad = {**good, "arrays": {k: v for k, v in good["arrays"].items() if k != "m.bias"}}
    with pytest.raises(ValueError, match=r"missing arrays: m\.bias"):
        opt.load_state_dict(bad)
    bad = {**good, "arrays": {**good["arrays"], "m.weight": np.zeros((4, 3), np.float32)}}
    with pytest.raises(ValueError, match=r"shape mismatch: m\.weight: expected \(3, 4\), got \(4, 3\)"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match=r"unexpected arrays: velocity\.bias"):
        opt.load_state_dict(SGD(model.parameters(), lr=0.1).state_dict())
    with pytest.raises(ValueError, match="'step', 'lr', 'arrays'"):
        opt.load_state_dict({"arrays": good["arrays"]})


# ---- convergence --------------------------------------------------------------

def test_adam_minimizes_an_ill_conditioned_quadratic():
    # f(x) = 1/2 sum_i a_i (x_i - c_i)^2, curvatures 0.5 .. 100; f(0) = 37.25, minimum 0 at x = c.
    a = np.array([1.0, 10.0, 100.0, 0.5])
    c = np.array([3.0, -2.0, 0.5, 1.0])
    x = vector(np.zeros(4))
    opt = Adam([("x", x)], lr=0.1)
    for _ in range(500):
        x.grad[...] = a * (x.data - c)                               # df/dx
        opt.step()
    loss = 0.5 * np.sum(a * (x.data - c) ** 2)
    assert loss < 1e-10, loss
    np.testing.assert_allclose(x.data, c, atol=1e-5)


# ---- gradient clipping --------------------------------------------------------

def test_clip_grad_norm_scales_all_grads():
    # grads [3, 4] and [12]: norm = sqrt(9 + 16 + 144) = 13; max_norm 6.5 -> scale 0.5
    a, b = vector([0.0, 0.0]), Parameter(np.zeros((1, 1), np.float32))
    a.grad[...] = [3.0, 4.0]
    b.grad[...] = 12.0
    norm = clip_grad_norm([("a", a), ("b", b)], 6.5)
    assert isinstance(norm, float) and norm == pytest.approx(13.0, rel=1e-12)
    np.testing.assert_allclose(a.grad, [1.5, 2.0], rtol=1e-12)
    np.testing.assert_allclose(b.grad, [[6.0]], rtol=1e-6)
    assert b.grad.dtype == np.float32


def test_clip_grad_norm_below_max_is_untouched():
    a = vector([3.0, 4.0])
    a.grad[...] = [3.0, 4.0]
    assert clip_grad_norm([("a", a)], 5.0) == pytest.approx(5.0, rel=1e-12)     # norm == max: no scaling
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])


def test_clip_grad_norm_accepts_the_generator():
    model = Tiny()
    fill_grads(model, np.random.default_rng(0))
    expected = np.sqrt(sum(np.sum(p.grad.astype(np.float64) ** 2) for _, p in model.parameters()))
    assert clip_grad_norm(model.parameters(), 1.0) == pytest.approx(expected, rel=1e-5)
    after = np.sqrt(sum(np.sum(p.grad.astype(np.float64) ** 2) for _, p in model.parameters()))
    assert after == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_grad_norm_non_finite_leaves_grads(bad):
    a, b = vector([3.0, 4.0]), vector([bad, 1.0])
    a.grad[...] = [3.0, 4.0]
    b.grad[...] = [bad, 1.0]
    norm = clip_grad_norm([("a", a), ("b", b)], 1.0)
    assert not np.isfinite(norm)
    assert np.isnan(norm) == np.isnan(bad)
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])


def test_clip_grad_norm_no_float32_overflow():
    # 3e20^2 overflows float32 (max ~3.4e38), the norm 5e20 does not.
    a = Parameter(np.zeros(2, np.float32))
    a.grad[...] = [3e20, 4e20]
    assert clip_grad_norm([("a", a)], 1.0) == pytest.approx(5e20, rel=1e-6)
    np.testing.assert_allclose(a.grad, [0.6, 0.8], rtol=1e-6)


# ---- argument checks ----------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=-0.1),
    lambda ps: SGD(ps, lr=0.1, momentum=1.0),
    lambda ps: SGD(ps, lr=0.1, momentum=-0.1),
    lambda ps: SGD(ps, lr=0.1, momentum=0.0, nesterov=True),
    lambda ps: SGD(ps, lr=0.1, weight_decay=-1e-4),
    lambda ps: Adam(ps, lr=float("nan")),
    lambda ps: Adam(ps, lr=0.1, betas=(1.0, 0.999)),
    lambda ps: Adam(ps, lr=0.1, betas=(0.9, -0.1)),
    lambda ps: Adam(ps, lr=0.1, eps=0.0),
    lambda ps: AdamW(ps, lr=0.1, weight_decay=-0.01),
])
def test_invalid_optimizer_arguments(make):
    with pytest.raises(ValueError):
        make(Tiny().parameters())


def test_invalid_params():
    model = Tiny()
    with pytest.raises(ValueError, match="no parameters"):
        Adam([], lr=0.1)
    with pytest.raises(ValueError, match="duplicate parameter names"):
        Adam([("w", model.weight), ("w", model.bias)], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        Adam([("a", model.weight), ("b", model.weight)], lr=0.1)
    with pytest.raises(TypeError, match="model.parameters()"):
        Adam(model, lr=0.1)
    with pytest.raises(TypeError, match="pairs"):
        Adam([model.weight], lr=0.1)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(model.parameters(), 0.0)


def test_invalid_lr_at_step():
    model = Tiny()
    opt = SGD(model.parameters(), lr=0.1)
    opt.lr = float("inf")
    with pytest.raises(ValueError, match="lr"):
        opt.step()
    assert opt.t == 0                                                # nothing happened
