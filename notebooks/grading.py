r"""Graders for the notebooks' exercises.

Each exercise cell of a notebook defines a function or two whose body is
``raise NotImplementedError``; the cell after it calls one grader below with
your functions.  A grader runs them on its own seeded inputs, compares them
with the package (``beexnp``) -- through the package's gradient checker where
the exercise is a backward pass -- and prints one line per check and a verdict:

    rel. error 3.1e-11 <= 1e-07: correct
    GRADE: PASS  exercise 1.2: g and g'

The last line is one of ``GRADE: PASS``, ``GRADE: FAIL`` (a check failed),
``GRADE: TODO`` (a function still raises NotImplementedError) or
``GRADE: ERROR`` (your code raised something else: the line of your code
that raised is shown).  A failed check shows one case where your answer and
the package's differ: the input, yours, and the expected value.  A grader
never raises, so a notebook with exercises left undone still runs to the end.

Relative error is the package's: max|a - b| / max(|a| + |b|), in float64.
Reference solutions: ``solutions/exNN.py`` next to this file.
"""
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import beexnp

from beexnp.activations import softmax_backward as package_softmax_backward
from beexnp.attention import masked_softmax as package_masked_softmax
from beexnp.config import SoftRouting
from beexnp.criteria import FractionalEntropy
from beexnp.entropy import certain, entropy as package_entropy
from beexnp.exit_loss import soft_routing_weights
from beexnp.gradcheck import gradcheck, numerical_gradient as package_numerical_gradient, \
    randomize_parameters, rel_error
from beexnp.inference import simulate_exits
from beexnp.layer_checks import kink_free
from beexnp.linear import BinaryLinear
from beexnp.sign import SecondOrderSign
from beexnp.slfn import SLFN
from beexnp.xnor import pack_signs

TOL = 1e-7              # relative error that counts as correct (float64 central differences reach ~1e-10)


@dataclass
class Check:
    """One line of a verdict: what was compared, the measured detail, whether it passed, and (when it
    failed) one case where the answers differ."""

    what: str
    detail: str
    ok: bool
    case: str = ""


def entry(value):
    """One entry of an array, printed short."""
    return f"{value:.6g}" if isinstance(value, (float, np.floating)) else str(value)


def differing_case(index, yours, reference, describe):
    """'at [i, j] (<the input>): yours ..., expected ...' for one entry where the arrays differ."""
    where = f"at {list(map(int, index))}" if index else "the value"
    about = f" ({describe(index)})" if describe else ""
    return f"{where}{about}: yours {entry(yours[index])}, expected {entry(reference[index])}"


def close(what, yours, reference, tol=TOL, describe=None):
    """Check that two arrays agree to a relative error of ``tol`` (NaN or a shape mismatch fails); on a
    failure show the entry that differs most (``describe(index)``: the input it came from)."""
    yours, reference = np.asarray(yours, np.float64), np.asarray(reference, np.float64)
    if yours.shape != reference.shape:
        return Check(what, f"shape {yours.shape}, expected {reference.shape}", False)
    error = rel_error(yours, reference)
    ok = bool(error <= tol)                                       # NaN compares False
    check = Check(what, f"rel. error {error:.1e} {'<=' if ok else '>'} {tol:.0e}", ok)
    if not ok and yours.size:
        gap = np.abs(yours - reference)
        worst = np.unravel_index(np.argmax(np.where(np.isnan(gap), np.inf, gap)), gap.shape)
        check.case = differing_case(worst, yours, reference, describe)
    return check


def equal(what, yours, reference, unit="entries", describe=None, dtype=None):
    """Check exact equality, counting the entries that agree; on a failure show the first that differs.
    ``dtype``: the kind of array expected too (e.g. np.uint8 for bytes, np.integer for block numbers)."""
    yours, reference = np.asarray(yours), np.asarray(reference)
    if yours.shape != reference.shape:
        return Check(what, f"shape {yours.shape}, expected {reference.shape}", False)
    if dtype is not None and not np.issubdtype(yours.dtype, dtype):
        expected = "an integer dtype" if dtype is np.integer else np.dtype(dtype).name
        return Check(what, f"dtype {yours.dtype}, expected {expected}", False)
    differ = np.argwhere(yours != reference)
    check = Check(what, f"{reference.size - len(differ)} of {reference.size} {unit} equal", len(differ) == 0)
    if len(differ):
        check.case = differing_case(tuple(differ[0]), yours, reference, describe)
    return check


def from_report(report):
    """A gradient-check report (``beexnp.gradcheck``) as one Check per tensor."""
    return [Check(f"{report.title}: d{row.name} vs central differences",
                  f"rel. error {row.rel_error:.1e} {'<=' if row.ok else '>'} {report.tol:.0e}", row.ok)
            for row in report.rows]


LIBRARIES = tuple(str(Path(module.__file__).resolve().parent) for module in (np, beexnp)) \
    + (str(Path(__file__).resolve()),)


def where_it_raised(error):
    """The line of the learner's own code that raised (the innermost frame outside NumPy, beexnp and
    this file); if the error came from the grader using what the learner's code returned, that line."""
    frames = traceback.extract_tb(error.__traceback__)
    yours = [f for f in frames if not str(Path(f.filename).resolve()).startswith(LIBRARIES)
             and "site-packages" not in f.filename]
    if yours:
        return f"  at line {yours[-1].lineno} of your code ({yours[-1].name}): {yours[-1].line}"
    here = [f for f in frames if str(Path(f.filename).resolve()) == LIBRARIES[-1]]
    frame = (here or frames)[-1]
    return f"  while the grader used what your code returned: {frame.line}"


def grade(exercise, run):
    """Run ``run()`` (it returns a list of Checks), print the verdict; never raises."""
    try:
        with np.errstate(all="ignore"):                          # overflow in a wrong answer is a WRONG, not noise
            checks = run()
    except NotImplementedError:
        print(f"{exercise}: not implemented yet -- write it in the cell above, run that cell, then this one.")
        print(f"GRADE: TODO  {exercise}")
        return
    except Exception as error:                                     # the learner's code failed: show where
        print(f"{exercise}: your code raised {type(error).__name__}: {error}\n{where_it_raised(error)}")
        print(f"GRADE: ERROR  {exercise}")
        return
    width = max(len(c.what) for c in checks)
    for c in checks:
        print(f"  {c.what:<{width}}  {c.detail}: {'correct' if c.ok else 'WRONG'}")
        if c.case:
            print(f"      e.g. {c.case}")
    print(f"GRADE: {'PASS' if all(c.ok for c in checks) else 'FAIL'}  {exercise}")


# ---- notebook 1 -----------------------------------------------------------------------------
def check_central_differences(central_differences):
    """Your central differences against the exact gradient of f(x) = sum(sin(x) * G) and a coupled f."""
    def run():
        rng = np.random.default_rng(101)
        x, G = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
        x_before = x.copy()
        yours = central_differences(lambda: float(np.sum(np.sin(x) * G)), x)
        coupled = central_differences(lambda: float(np.sum(x) ** 2 + np.prod(x[0])), x)
        exact = 2 * np.sum(x_before) + np.zeros_like(x)
        exact[0] += np.prod(x_before[0]) / x_before[0]
        return [close("f = sum(sin(x) * G): vs the exact cos(x) * G", yours, np.cos(x_before) * G),
                close("f = (sum x)^2 + prod(x[0]): vs its exact gradient", coupled, exact),
                equal("x is given back unchanged", x, x_before)]
    grade("exercise 1.1: central differences", run)


def check_sign_surrogate(g, g_prime):
    """g against SecondOrderSign.relaxed, g' against the package and against central differences of your g."""
    def run():
        rng = np.random.default_rng(102)
        grid = np.concatenate([np.linspace(-1.5, 1.5, 301), [-1.0, 0.0, 1.0, -0.0]])
        x = kink_free(rng, (500,), scale=0.8)
        numeric = package_numerical_gradient(lambda: float(np.sum(g(x))), x)
        return [close("g(x) on [-1.5, 1.5] vs SecondOrderSign.relaxed", g(grid), SecondOrderSign.relaxed(grid)),
                close("g'(x) on [-1.5, 1.5] vs SecondOrderSign.grad", g_prime(grid), SecondOrderSign.grad(grid)),
                close("g'(x) vs central differences of your g", g_prime(x), numeric)]
    grade("exercise 1.2: g and g'", run)


# ---- notebook 2 -----------------------------------------------------------------------------
class YourBinaryLinear(BinaryLinear):
    """A BinaryLinear whose backward is your function."""

    def __init__(self, your_backward, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.your_backward = your_backward

    def backward(self, dy):
        s = self.w.s                                               # sign(W) (relaxed: g(W)), as the forward used
        dx, dW, db = self.your_backward(dy, self.x, self.weight.data, s)
        self.weight.grad += dW
        self.bias.grad += db
        return dx


def check_binary_linear_backward(binary_linear_backward):
    """Relaxed mode: gradcheck of a BinaryLinear using your backward; binary mode: equal to the package's."""
    def run():
        rng = np.random.default_rng(103)
        layer = randomize_parameters(YourBinaryLinear(binary_linear_backward, 7, 4, rng, dtype=np.float64), rng)
        x = kink_free(rng, (2, 3, 7))
        checks = from_report(gradcheck(layer, (x,), rng=rng, tol=TOL, title="relaxed"))
        reference = BinaryLinear(7, 4, rng, dtype=np.float64)
        reference.load_state_dict(layer.state_dict())
        dy = rng.standard_normal((2, 3, 4))
        reference.forward(x)
        dx_ref = reference.backward(dy)
        dx, dW, db = binary_linear_backward(dy, x, layer.weight.data, np.where(layer.weight.data >= 0, 1.0, -1.0))
        return checks + [close("binary mode: dx vs BinaryLinear.backward", dx, dx_ref),
                         close("binary mode: dW vs BinaryLinear.backward", dW, reference.weight.grad),
                         close("binary mode: db vs BinaryLinear.backward", db, reference.bias.grad)]
    grade("exercise 2.1: BinaryLinear's backward through sign and alpha", run)


# ---- notebook 3 -----------------------------------------------------------------------------
def padded_scores(rng):
    """Scores (B, h, T, T) and a key mask (B, 1, 1, T) with padding in the second sequence."""
    S = 3 * rng.standard_normal((2, 2, 5, 5))
    mask = np.ones((2, 1, 1, 5))
    mask[1, ..., 3:] = 0
    return S, mask


def check_attention_weights(attention_weights):
    """Your masked softmax against the package's, with padding and with huge scores."""
    def run():
        S, mask = padded_scores(np.random.default_rng(104))
        P = attention_weights(S.copy(), mask)
        huge = attention_weights(1e4 * S, mask)
        return [close("P vs beexnp.attention.masked_softmax", P, package_masked_softmax(S.copy(), mask)),
                equal("padded keys get exactly 0", P[1, ..., 3:], np.zeros((2, 5, 2))),
                close("scores x 1e4 (no overflow)", huge, package_masked_softmax(1e4 * S, mask))]
    grade("exercise 3.1: the masked softmax", run)


def check_scores_gradient(scores_gradient):
    """dS from your backward against central differences of the package's masked softmax."""
    def run():
        rng = np.random.default_rng(105)
        S, mask = padded_scores(rng)
        G = rng.standard_normal(S.shape)
        P = package_masked_softmax(S.copy(), mask)
        yours = scores_gradient(P.copy(), G.copy())
        numeric = package_numerical_gradient(lambda: float(np.sum(package_masked_softmax(S.copy(), mask) * G)), S)
        return [close("dS vs central differences (padded batch)", yours, numeric),
                close("dS vs beexnp.activations.softmax_backward", yours, package_softmax_backward(P, G.copy()))]
    grade("exercise 3.2: the softmax backward", run)


# ---- notebook 4 -----------------------------------------------------------------------------
class YourSLFN(SLFN):
    """An SLFN whose backward is your function (then the gates' own backward)."""

    def __init__(self, your_backward, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.your_backward = your_backward

    def backward(self, dy):
        dH_direct, dz = self.your_backward(dy, self.H, self.f1, self.l, self.f2, self.c)
        return dH_direct + self.gates.backward(dz)


def slfn_gradients(layer, dy):
    """The package's (dH through the direct path, dz) of an SLFN after its forward: dz as its backward
    hands it to the fused gate matrix, the direct path as the rest of its input gradient."""
    handed = {}
    gates_backward = layer.gates.backward

    def record(dz):
        handed["dz"] = dz
        handed["through gates"] = gates_backward(dz)
        return handed["through gates"]
    layer.gates.backward = record
    try:
        dH = layer.backward(dy)
    finally:
        del layer.gates.backward                                  # the class's method again
    return dH - handed["through gates"], handed["dz"]


def check_slfn_backward(slfn_backward):
    """Gradcheck (relaxed, float64) of an SLFN whose backward is yours, on every tensor; then each of
    your outputs, gate by gate, against the package's SLFN."""
    def run():
        rng = np.random.default_rng(106)
        layer = randomize_parameters(YourSLFN(slfn_backward, 6, rng, dtype=np.float64), rng)
        H = rng.standard_normal((2, 4, 6))
        checks = from_report(gradcheck(layer, (H,), rng=rng, tol=TOL, title="SLFN"))
        reference = SLFN(6, rng, dtype=np.float64)
        reference.load_state_dict(layer.state_dict())
        reference.forward(H)
        dy = rng.standard_normal(H.shape)
        direct, dz = slfn_gradients(reference, dy)
        your_direct, your_dz = slfn_backward(dy, reference.H, reference.f1, reference.l, reference.f2, reference.c)
        checks.append(close("dH through the direct path f1 * H", your_direct, direct))
        your_dz = np.asarray(your_dz)
        if your_dz.shape != dz.shape:
            return checks + [Check("dz = [dz_f1 | dz_l | dz_f2 | dz_c]", f"shape {your_dz.shape}, expected {dz.shape}",
                                   False)]
        d = H.shape[-1]
        for k, gate in enumerate(("f1", "l", "f2", "c")):
            checks.append(close(f"dz_{gate} (columns {k * d}..{(k + 1) * d - 1} of dz)",
                                your_dz[..., k * d:(k + 1) * d], dz[..., k * d:(k + 1) * d]))
        return checks
    grade("exercise 4.1: the SLFN's backward", run)


# ---- notebooks 5 and 6: inputs at the edges of the exit rule -------------------------------
def exactly_at_the_guard():
    """A two-class logit margin m whose entropy is exactly at the guard (not below it: not certain),
    found by bisection against the package's ``certain``."""
    def H(m):
        return package_entropy(np.array([m, 0.0]))
    lo, hi = 5.0, 40.0                                            # H(lo) above the guard, H(hi) below
    while np.nextafter(lo, hi) < hi:
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        lo, hi = (lo, mid) if certain(H(mid)) else (mid, hi)
    return lo


def edge_logits(rng, width=8):
    """Logits (5, B, 2) of inputs at the edges of the rule, then random ones: margins m per block
    (logits (m, 0)); 60 gives H ~ 1e-24 (certain), 19 gives 1e-7 (certain), 11.5 and 14 give ~1e-4
    and ~1e-5 (small, not certain)."""
    edge = np.array([[60, 60, 60, 60, 60],                       # certain from block 1: leaves at 2, any delta
                     [0.5, 60, 60, 60, 60],                      # certain from block 2
                     [0.5, 2, 60, 60, 60],                       # certain from block 3
                     [0.5, 2, 3, 60, 60],                        # certain from block 4
                     [1, 60, 0.3, 0.2, 0.1],                     # certain at block 2 only
                     [exactly_at_the_guard(), 30, 30, 30, 30],   # H_1 exactly 1e-6: not certain, r_2 ~ 1
                     [11.5, 14, 19, 60, 60],                     # small entropies, not certain until block 3
                     [0.7, 0.7, 2, 3, 4],                        # H_1 = H_2 exactly: r_2 = 0
                     [0.5, 2, 2, 2, 2],                          # equal from block 2 on: r_3 = r_4 = r_5 = 0
                     [2, 1, 0.5, 3, 4]], np.float64)             # entropy rises: r < 0
    random = np.abs(rng.standard_normal((width, 5))) * np.linspace(0.5, 4, 5)
    margins = np.concatenate([edge, random]).T                    # (5, B)
    return np.stack([margins, np.zeros_like(margins)], axis=-1)


def describe_input(H, settings=""):
    """describe(index) for an (N, B) or (B,) array: the input's entropies at every block."""
    def describe(index):
        b = index[-1]
        return f"input {b}, H per block {np.array2string(H[:, b], precision=3)}{settings}"
    return describe


# ---- notebook 5 -----------------------------------------------------------------------------
def check_soft_routing(soft_routing):
    """Your weights from the entropies against beexnp.exit_loss.soft_routing_weights from the logits:
    random inputs, and inputs at the edges of the rule (already certain, exactly equal entropies)."""
    def run():
        rng = np.random.default_rng(107)
        checks = []
        cases = [(N, scale, SoftRouting(delta=0.1, tau=0.05, beta=0.2)) for N, scale in ((4, 1.0), (6, 3.0), (2, 1.0))]
        cases.append((5, 2.0, SoftRouting(delta=0.3, tau=0.1, beta=0.4)))
        for N, scale, routing in cases:
            logits = [scale * i * rng.standard_normal((50, 2)) / N for i in range(1, N + 1)]
            checks.append(weights_check(soft_routing, f"N = {N}, random", np.stack(logits), routing))
        edge = edge_logits(rng)
        for routing in (SoftRouting(delta=0.0), SoftRouting(delta=0.1), SoftRouting(delta=0.5, tau=0.2, beta=0.1)):
            checks.append(weights_check(soft_routing, "N = 5, certain and equal entropies", edge, routing))
        w = soft_routing(package_entropy(edge), 0.1, 0.05, 0.2)
        checks.append(close("every column sums to 1", np.sum(w, axis=0), np.ones(edge.shape[1])))
        return checks
    grade("exercise 5.1: the soft-routing weights", run)


def weights_check(soft_routing, what, logits, routing):
    """One comparison of your soft-routing weights with the package's."""
    H = package_entropy(logits)                                   # (N, B)
    settings = f"; delta {routing.delta:g}, tau {routing.tau:g}, beta {routing.beta:g}"
    yours = soft_routing(H, routing.delta, routing.tau, routing.beta)
    return close(f"{what}, delta = {routing.delta:g}: w vs soft_routing_weights", yours,
                 soft_routing_weights(list(logits), routing), describe=describe_input(H, settings))


# ---- notebook 6 -----------------------------------------------------------------------------
def check_exit_entropy(exit_entropy):
    """Your exit entropy against the package's, on ordinary and on extreme logits."""
    def run():
        rng = np.random.default_rng(108)
        z = rng.standard_normal((3, 40, 2))
        sharp = np.array([[800.0, -800.0], [0.0, 0.0], [-50.0, 60.0]])
        three = z[..., :1] * [1, 2, -1]
        return [close("H of ordinary logits vs beexnp.entropy.entropy", exit_entropy(z), package_entropy(z)),
                close("H of 3 classes", exit_entropy(three), package_entropy(three)),
                close("H of extreme logits (+-800): finite, 0", exit_entropy(sharp), package_entropy(sharp),
                      describe=lambda index: f"logits {sharp[index]}")]
    grade("exercise 6.1: the exit entropy", run)


def check_fractional_exit(fractional_exit):
    """Your exit blocks against simulate_exits with FractionalEntropy: random inputs, then inputs at
    the edges of the rule (already certain at several blocks, exactly equal entropies, delta = 0)."""
    def run():
        rng = np.random.default_rng(109)
        N, B = 5, 400
        logits = rng.standard_normal((N, B, 2)) * np.linspace(0.3, 3, N)[:, None, None]
        logits[:, :20] = [60.0, -60.0]                            # certain from block 1: H ~ 0, the guard
        logits[2:, 20:40] *= 0.1                                  # entropy rises at block 3
        edge = edge_logits(rng)
        checks = []
        for what, z, deltas in (("random", logits, (0.05, 0.3)), ("certain, equal H", edge, (0.0, 0.1, 0.5))):
            H = package_entropy(z)
            for delta in deltas:
                checks.append(equal(f"{what}, delta = {delta:g}: exit blocks vs simulate_exits",
                                    fractional_exit(H, delta), simulate_exits(z, FractionalEntropy(delta)), "inputs",
                                    describe_input(H, f"; delta {delta:g}"), dtype=np.integer))
        return checks
    grade("exercise 6.2: the fractional exit rule", run)


# ---- notebook 7 -----------------------------------------------------------------------------
def check_pack_bits(pack_bits):
    """Your packed bytes against beexnp.xnor.pack_signs, for lengths that are and are not multiples of 8."""
    def run():
        rng = np.random.default_rng(110)
        checks = []
        for n in (8, 10, 1, 64, 13):
            x = rng.standard_normal(n)
            x[rng.integers(n)] = 0.0                               # sign(0) = +1
            checks.append(equal(f"n = {n}: bytes vs pack_signs", pack_bits(x), pack_signs(x), "bytes",
                                lambda index, x=x: f"byte {index[0]} of x = {np.array2string(x, precision=2)}",
                                dtype=np.uint8))
        return checks
    grade("exercise 7.1: packing sign bits", run)


def check_xnor_dot(xnor_dot):
    """Your popcount dot product against the float a . w, for many random pairs of +-1 vectors."""
    def run():
        rng = np.random.default_rng(111)
        checks = []
        for n in (10, 64, 100):
            a, w = np.where(rng.standard_normal((2, 200, n)) >= 0, 1.0, -1.0)
            yours = [xnor_dot(pack_signs(ai), pack_signs(wi), n) for ai, wi in zip(a, w)]
            checks.append(equal(f"n = {n}: a . w from bits vs the float product", yours,
                                np.sum(a * w, axis=1).astype(int), "dot products",
                                lambda index, a=a, w=w: f"pair {index[0]}: a = {signs(a[index[0]])}, "
                                                        f"w = {signs(w[index[0]])}"))
        return checks
    grade("exercise 7.2: the XNOR-popcount dot product", run)


def signs(v):
    """A +-1 vector as a string of + and -."""
    return "".join("+" if x > 0 else "-" for x in v)
