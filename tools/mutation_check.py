"""Does the test suite bite?  Deliberate one-line mutations of the package, each caught or not.

    python tools/mutation_check.py               # every mutation; exit status 1 if any survives
    python tools/mutation_check.py --list        # the mutations, without running anything
    python tools/mutation_check.py --only scale  # those whose name contains "scale"

Each mutation is a textual replacement in one file of ``beexnp/`` (a few replace a line and
its backward twin together; a file may be named "new.py|old.py" across a planned move),
applied to a fresh temporary copy of the repository (``beexnp/``, ``tests/``, ``tools/``,
``pyproject.toml``); the replacement must match exactly once, so a
refactor that moves the line makes this script fail loudly instead of testing nothing.  On each
copy the fast core of the suite (``CORE_TESTS``, the equation tests first) runs with
``pytest -x``; a mutation is *caught* when pytest fails, by the first failing test.  Before the
mutations, the unmutated copy must pass (else every mutation would look caught).

The table: mutation, file, caught, by which test, seconds.  Every mutation must be caught: when
one survives, strengthen the tests, not this list.  (tests/test_mutations.py runs this script;
it is marked ``slow`` and the CI command leaves it out.)
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("beexnp", "tests", "tools", "pyproject.toml")
# The fast core of the suite, in the order it runs (no notebooks, experiments, GLUE files or slow tests).
CORE_TESTS = ["tests/test_equations.py", "tests/test_golden_trajectory.py", "tests/test_layer_properties.py",
              "tests/test_early_exit.py", "tests/test_xnor.py", "tests/test_packed.py",
              "tests/test_module_api.py", "tests/test_gradcheck_layers.py", "tests/test_model.py", "tests/test_pairs.py"]
TIMEOUT = 600      # seconds for one run of the core tests


@dataclass
class Mutation:
    name: str
    file: str                   # relative to the repository root
    edits: tuple                # ((old, new), ...): each old must occur exactly once

    def path(self, root):
        return root / self.file


MUTATIONS = [
    Mutation("attention without the 1/sqrt(d_h) scale", "beexnp/attention.py",
             (("self.scale = float(1 / np.sqrt(dh))", "self.scale = 1.0"),)),
    Mutation("attention mask on the queries instead of the keys", "beexnp/attention.py",
             (("masked_softmax(S, mask[:, None, None, :])", "masked_softmax(S, mask[:, None, :, None])"),)),
    Mutation("SLFN without its inner tanh (forward and backward)", "beexnp/slfn.py",
             (("self.t = np.tanh(self.f1 * H + self.l * self.c)", "self.t = self.f1 * H + self.l * self.c"),
              ("dm = dY * f2 * (1 - t * t)                                     # Y = f2 * tanh(m):  dm",
               "dm = dY * f2"))),
    Mutation("SLFN gates f1 and l swapped", "beexnp/slfn.py",
             (("z_f1, z_l, z_f2, z_c = np.split", "z_l, z_f1, z_f2, z_c = np.split"),)),
    Mutation("SLFN gates f2 and c swapped (activations too)", "beexnp/slfn.py",
             (("z_f1, z_l, z_f2, z_c = np.split", "z_f1, z_l, z_c, z_f2 = np.split"),)),
    Mutation("sign(0) = -1", "beexnp/sign.py",
             (("return np.where(x >= 0, one, -one)", "return np.where(x > 0, one, -one)"),)),
    Mutation("g with a wrong quadratic term", "beexnp/sign.py",
             (("return sign(x) * (2 * a - a * a)", "return sign(x) * (2 * a - a * a * a)"),)),
    Mutation("STE window open at |x| = 1", "beexnp/sign.py",
             (("return (np.abs(x) <= 1).astype(x.dtype)", "return (np.abs(x) < 1).astype(x.dtype)"),)),
    Mutation("alpha over the wrong axis (per input unit)", "beexnp/sign.py",
             (("def binarize_weight(W, estimator, relaxed, axis=0):",
               "def binarize_weight(W, estimator, relaxed, axis=1):"),)),
    Mutation("W1A1 without binarizing the input", "beexnp/linear.py",
             (("self.xb = binarize_activation(x, self.estimator, self.relaxed, self.input_levels)",
               "self.xb = x"),)),
    Mutation("binarized embedding: alpha over the batch axis", "beexnp/embedding.py",
             (("binarize_weight(rows, self.estimator, self.relaxed, axis=-1)",
               "binarize_weight(rows, self.estimator, self.relaxed, axis=0)"),)),
    Mutation("positions concatenated before the tokens", "beexnp/embedding.py",
             (("np.concatenate([x, np.broadcast_to(pe, (B, T, self.dim))], axis=-1)",
               "np.concatenate([np.broadcast_to(pe, (B, T, self.dim)), x], axis=-1)"),)),
    Mutation("sin and cos swapped in the position code", "beexnp/embedding.py",
             (("np.where(np.arange(dim) % 2 == 0, np.sin(angle), np.cos(angle))",
               "np.where(np.arange(dim) % 2 == 0, np.cos(angle), np.sin(angle))"),)),
    Mutation("LayerNorm without epsilon", "beexnp/norm.py",
             (("self.inv_sigma = 1 / np.sqrt(var + self.eps)", "self.inv_sigma = 1 / np.sqrt(var)"),)),
    Mutation("LayerNorm with the unbiased variance", "beexnp/norm.py",
             (("xc, xc)[..., None] / x.shape[-1]", "xc, xc)[..., None] / (x.shape[-1] - 1)"),)),
    Mutation("pre-norm block instead of post-norm", "beexnp/block.py",
             (("H = self.norm1.forward(X + self.drop1.forward(self.attn.forward(X, mask)))",
               "H = X + self.drop1.forward(self.attn.forward(self.norm1.forward(X), mask))"),)),
    Mutation("exit head mean over padding too", "beexnp/block.py",
             (("w = mask / mask.sum(axis=1, keepdims=True)", "w = np.ones_like(mask) / mask.shape[1]"),)),
    Mutation("entropy: log of the softmax (no log-softmax guard)", "beexnp/entropy.py",
             (("logp = log_softmax(logits)", "logp = np.log(np.exp(log_softmax(logits)))"),)),
    Mutation("fractional drop without the H_{i-1} ~ 0 guard", "beexnp/entropy.py",
             (("return np.where(sure, 0.0, (H_prev - H) / np.where(sure, 1.0, H_prev))",
               "return (H_prev - H) / H_prev"),)),
    Mutation("relative change without abs", "beexnp/entropy.py",
             (("return np.abs(cur - prev) / np.maximum(np.abs(prev), eps)",
               "return (cur - prev) / np.maximum(np.abs(prev), eps)"),)),
    Mutation("exit rule: first eligible block 3 instead of 2", "beexnp/criteria.py",
             (("        if i == 0:\n            return np.zeros(len(z), bool), {\"H\": H}",
               "        if i <= 1:\n            return np.zeros(len(z), bool), {\"H\": H}"),)),
    Mutation("early-exit engine writes logits to the wrong rows", "beexnp/inference.py",
             (("logits[active[leave]] = z[leave]", "logits[np.flatnonzero(leave)] = z[leave]"),)),
    Mutation("soft routing with q_1 != 0", "beexnp/exit_loss.py",
             (("q[0] = 0.0 ", "q[0] = 0.5 "),)),
    Mutation("soft routing: tau multiplies instead of dividing", "beexnp/exit_loss.py",
             (("sigmoid((delta - r[:-1]) / tau)", "sigmoid((delta - r[:-1]) * tau)"),)),
    Mutation("soft routing without the beta / N term", "beexnp/exit_loss.py",
             (("return (1 - beta) * pi + beta / N", "return (1 - beta) * pi"),)),
    Mutation("linear weighting not normalized", "beexnp/exit_loss.py",
             (("w = depth / depth.sum()", "w = depth / N"),)),
    Mutation("weighted cross-entropy divided by sum(w), not B", "beexnp/losses.py",
             (("labels]) / B", "labels]) / np.sum(w)"),)),
    Mutation("siamese features: u + v in place of |u - v|", "beexnp/pairs.py",
             (("parts = [u, v, np.abs(u - v), u * v]", "parts = [u, v, u + v, u * v]"),)),
    Mutation("pair cosine divided by |u| twice", "beexnp/pairs.py",
             (("/ (self.n_u * self.n_v)    # (B, 1)", "/ (self.n_u * self.n_u)    # (B, 1)"),)),
    Mutation("pair cosine backward without its projection term", "beexnp/pairs.py",
             (("du = du + dc * (v / (n_u * n_v) - c * u / n_u ** 2)", "du = du + dc * (v / (n_u * n_v))"),)),
    Mutation("packed bit order flipped", "beexnp/xnor.py",
             (('BITORDER = "little"\nWORD', 'BITORDER = "big"\nWORD'),)),
    Mutation("XNOR-popcount: n - popcount", "beexnp/xnor.py",
             (("return n - 2 * popcount_products(x_words, w_words, np.bitwise_xor)",
               "return n - popcount_products(x_words, w_words, np.bitwise_xor)"),)),
]


def copy_repository(dest):
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc"))
        else:
            shutil.copy2(src, dest / name)


def apply(mutation, root):
    path = mutation.path(root)
    text = path.read_text()
    for old, new in mutation.edits:
        count = text.count(old)
        if count != 1:
            raise SystemExit(f"mutation {mutation.name!r}: {old!r} occurs {count} times in "
                             f"{path.relative_to(root)} (must be exactly once; update the mutation to the code)")
        text = text.replace(old, new)
    path.write_text(text)


def environment(root):
    env = dict(os.environ, PYTHONPATH=str(root), OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg", BEEXNP_FAST="1",
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    return env


def run_tests(root, tests):
    """(passed, first failing test id or a reason, seconds)."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", *tests]
    try:
        done = subprocess.run(command, cwd=root, env=environment(root), capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return False, f"timeout after {TIMEOUT}s", time.perf_counter() - start
    seconds = time.perf_counter() - start
    if done.returncode == 0:
        return True, "", seconds
    output = done.stdout + done.stderr
    first = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.M)
    return False, first.group(1) if first else f"pytest exit {done.returncode}", seconds


def check_imports(root):
    """The copy, not the checkout, is what the tests import."""
    out = subprocess.run([sys.executable, "-c", "import beexnp; print(beexnp.__file__)"], cwd=root,
                         env=environment(root), capture_output=True, text=True, check=True).stdout.strip()
    if not Path(out).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"the tests would import {out}, not the temporary copy under {root}")


def one_run(mutation, tests):
    with tempfile.TemporaryDirectory(prefix="beexnp-mutation-") as tmp:
        root = Path(tmp)
        copy_repository(root)
        if mutation is None:
            check_imports(root)
        else:
            apply(mutation, root)
        return run_tests(root, tests)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--only", help="run only the mutations whose name contains this text")
    parser.add_argument("--tests", nargs="+", default=CORE_TESTS, help="test files to run (default: the core)")
    args = parser.parse_args(argv)
    mutations = [m for m in MUTATIONS if not args.only or args.only.lower() in m.name.lower()]
    if args.list:
        for m in mutations:
            print(f"{m.name:<55} {m.path(ROOT).relative_to(ROOT)}")
        return 0
    if not mutations:
        raise SystemExit(f"no mutation matches {args.only!r}")

    with tempfile.TemporaryDirectory() as tmp:                   # every replacement still matches exactly once
        copy_repository(Path(tmp))
        for m in mutations:
            apply(m, Path(tmp))
            shutil.copy2(m.path(ROOT), m.path(Path(tmp)))

    passed, why, baseline = one_run(None, args.tests)
    print(f"unmutated: the core tests {'pass' if passed else 'FAIL'} ({baseline:.1f}s){'' if passed else ': ' + why}",
          flush=True)
    if not passed:
        return 2

    rows = []
    header = f"{'mutation':<55} {'file':<22} {'caught':<7} {'by':<86} {'s':>6}"
    print(header + "\n" + "-" * len(header), flush=True)
    total = time.perf_counter()
    for m in mutations:
        survived, by, seconds = one_run(m, args.tests)
        rows.append((m, not survived, by, seconds))
        print(f"{m.name:<55} {str(m.path(ROOT).relative_to(ROOT / 'beexnp')):<22} {'no' if survived else 'yes':<7} "
              f"{by or '-':<86} {seconds:6.1f}", flush=True)
    caught = sum(row[1] for row in rows)
    print(f"\n{caught} of {len(rows)} mutations caught; {time.perf_counter() - total:.0f}s in all "
          f"(the unmutated core tests: {baseline:.1f}s)")
    return 0 if caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
