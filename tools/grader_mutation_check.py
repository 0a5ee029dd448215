"""Do the notebooks' graders bite?  Deliberate mutations of each reference solution, each graded.

    python tools/grader_mutation_check.py            # every mutation; exit status 1 if a grader lets one pass
    python tools/grader_mutation_check.py --list     # the mutations, without grading anything
    python tools/grader_mutation_check.py --only 6.2 # those of one exercise (or whose name contains the text)

A mutation is a textual replacement in one reference solution (``notebooks/solutions/exNN.py``): a
sign, an axis, an off-by-one, a missing guard or rule, a wrong constant, ``<`` for ``<=``, a dtype, a
padding length.  Each replacement must match exactly once, so a solution rewritten under the list
makes this script fail loudly instead of grading nothing.  The mutated module is executed in a fresh
namespace and its functions go to the exercise's grader (``notebooks/grading.py``), in this process;
the grader's verdict line is read.  The unmutated solutions must say PASS; every mutation must say
FAIL (ERROR, the mutated code raising, counts as caught too, and the table says which).  The
learner-style wrong answers of ``tests/exercise_mistakes.py`` are graded the same way and listed as
"mistake: ...".  Mutations that change nothing a grader can see (equivalent mutants, such as
``x > 0`` for ``x >= 0`` in g, whose value at 0 is 0 either way) are not on the list.

The table: exercise, mutation, verdict.  ``tests/test_grader_mutations.py`` runs every row.
"""
import argparse
import contextlib
import io
import re
import sys
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
SOLUTIONS = NOTEBOOK_DIR / "solutions"
GRADE = re.compile(r"^GRADE: (PASS|FAIL|TODO|ERROR)  ", re.M)
sys.path.insert(0, str(ROOT / "tools"))
import mutation_check as package_mutation  # noqa: E402  (its rule for applying an edit)

# exercise -> (solution file, grader, the functions it grades)
EXERCISES = {
    "1.1": ("ex01.py", "check_central_differences", ("central_differences",)),
    "1.2": ("ex01.py", "check_sign_surrogate", ("g", "g_prime")),
    "2.1": ("ex02.py", "check_binary_linear_backward", ("binary_linear_backward",)),
    "3.1": ("ex03.py", "check_attention_weights", ("attention_weights",)),
    "3.2": ("ex03.py", "check_scores_gradient", ("scores_gradient",)),
    "4.1": ("ex04.py", "check_slfn_backward", ("slfn_backward",)),
    "5.1": ("ex05.py", "check_soft_routing", ("soft_routing",)),
    "6.1": ("ex06.py", "check_exit_entropy", ("exit_entropy",)),
    "6.2": ("ex06.py", "check_fractional_exit", ("fractional_exit",)),
    "7.1": ("ex07.py", "check_pack_bits", ("pack_bits",)),
    "7.2": ("ex07.py", "check_xnor_dot", ("xnor_dot",)),
}
CAUGHT = ("FAIL", "ERROR")


@dataclass
class Mutation:
    exercise: str
    name: str
    edits: tuple                 # ((old, new), ...): each old occurs exactly once in the exercise's solution


def m(exercise, name, *edits):
    return Mutation(exercise, name, edits)


MUTATIONS = [
    # 1.1 central differences
    m("1.1", "a step of h, not 2h, in the quotient", ("/ (2 * h)", "/ h")),
    m("1.1", "sign: f_minus - f_plus", ("(f_plus - f_minus)", "(f_minus - f_plus)")),
    m("1.1", "forward difference f(x + h) - f(x)", ("x[i] = old - h\n", "x[i] = old\n"), ("/ (2 * h)", "/ h")),
    m("1.1", "x not restored", ("        x[i] = old\n        grad", "        grad")),
    m("1.1", "off by one: the first entry skipped", ("for i in np.ndindex(x.shape):",
                                                     "for i in list(np.ndindex(x.shape))[1:]:")),
    m("1.1", "dtype: an integer gradient array", ("grad = np.zeros(x.shape)", "grad = np.zeros(x.shape, int)")),
    m("1.1", "wrong constant: h = 1e-2", ("h=1e-5", "h=1e-2")),
    # 1.2 g and g'
    m("1.2", "g: |x| not taken (no abs)", ("a = np.minimum(np.abs(x), 1)", "a = np.minimum(x, 1)")),
    m("1.2", "g: sign of the quadratic term", ("(2 * a - a * a)", "(2 * a + a * a)")),
    m("1.2", "g: clipped at 2, not 1", ("np.minimum(np.abs(x), 1)", "np.minimum(np.abs(x), 2)")),
    m("1.2", "g: the sign flipped", ("np.where(x >= 0, 1.0, -1.0)", "np.where(x >= 0, -1.0, 1.0)")),
    m("1.2", "g': no floor at 0 (max missing)", ("np.maximum(0, 2 - 2 * np.abs(x))", "2 - 2 * np.abs(x)")),
    m("1.2", "g': no abs", ("2 - 2 * np.abs(x))", "2 - 2 * x)")),
    m("1.2", "g': wrong constant 1 - |x|", ("2 - 2 * np.abs(x))", "1 - np.abs(x))")),
    # 2.1 BinaryLinear backward
    m("2.1", "no path through alpha", ("dW = alpha * SecondOrderSign.grad(W) * dWb + dalpha * np.sign(W) / n",
                                       "dW = alpha * SecondOrderSign.grad(W) * dWb")),
    m("2.1", "alpha path divided by out, not in", ("np.sign(W) / n", "np.sign(W) / W.shape[1]")),
    m("2.1", "sign of the alpha path", ("+ dalpha * np.sign(W)", "- dalpha * np.sign(W)")),
    m("2.1", "dx through s, not alpha * s", ("dy2 @ (alpha * s).T", "dy2 @ s.T")),
    m("2.1", "the STE box for g'", ("SecondOrderSign.grad(W)", "(np.abs(W) <= 1)")),
    m("2.1", "dalpha over the wrong axis", ("np.sum(dWb * s, axis=0)", "np.sum(dWb * s, axis=1, keepdims=True)")),
    m("2.1", "db not summed over the batch", ("dy2.sum(axis=0)", "dy2[0]")),
    # 3.1 masked softmax
    m("3.1", "mask ignored", ("S = np.where(mask > 0, S, -np.inf)", "S = S")),
    m("3.1", "mask inverted", ("np.where(mask > 0, S, -np.inf)", "np.where(mask > 0, -np.inf, S)")),
    m("3.1", "<= for <: mask >= 0 keeps every key", ("mask > 0", "mask >= 0")),
    m("3.1", "no max subtracted (overflow)", ("np.exp(S - S.max(axis=-1, keepdims=True))", "np.exp(S)")),
    m("3.1", "normalized over the queries (axis -2)", ("e / e.sum(axis=-1, keepdims=True)",
                                                        "e / e.sum(axis=-2, keepdims=True)")),
    m("3.1", "wrong constant: -1e4 for -inf", ("-np.inf", "-1e4")),
    # 3.2 softmax backward
    m("3.2", "row sum missing", ("P * (dP - np.sum(dP * P, axis=-1, keepdims=True))", "P * dP")),
    m("3.2", "sign of the row sum", ("(dP - np.sum(", "(dP + np.sum(")),
    m("3.2", "row sum over the wrong axis", ("np.sum(dP * P, axis=-1,", "np.sum(dP * P, axis=-2,")),
    m("3.2", "P missing inside the sum", ("np.sum(dP * P,", "np.sum(dP,")),
    m("3.2", "P missing outside", ("return P * (dP - ", "return (dP - ")),
    m("3.2", "P transposed", ("return P * (dP", "return P.swapaxes(-1, -2) * (dP")),
    # 4.1 SLFN backward
    m("4.1", "direct path lost", ("return dm * f1, dz", "return 0 * H, dz")),
    m("4.1", "direct path from dy, not dm", ("return dm * f1, dz", "return dy * f1, dz")),
    m("4.1", "tanh' missing", ("dm = dy * f2 * (1 - t * t)", "dm = dy * f2")),
    m("4.1", "dz_f1 and dz_l swapped", ("[dm * H * f1 * (1 - f1), dm * c * l * (1 - l),",
                                         "[dm * c * l * (1 - l), dm * H * f1 * (1 - f1),")),
    m("4.1", "sigmoid' of l missing", ("dm * c * l * (1 - l)", "dm * c * (1 - l)")),
    m("4.1", "tanh' of c as 1 - c", ("dm * l * (1 - c * c)", "dm * l * (1 - c)")),
    m("4.1", "dz_f2 from dm, not dy", ("dy * t * f2 * (1 - f2)", "dm * t * f2 * (1 - f2)")),
    m("4.1", "dz_c through c, not l", ("dm * l * (1 - c * c)", "dm * c * (1 - c * c)")),
    # 5.1 soft routing
    m("5.1", "no entropy guard: certain inputs get the sigmoid",
      ("q = np.where(certain, 1.0, 1 / (1 + np.exp(-(delta - r) / tau)))", "q = 1 / (1 + np.exp(-(delta - r) / tau))")),
    m("5.1", "<= for < in the guard", ("certain = H[:-1] < 1e-6", "certain = H[:-1] <= 1e-6")),
    m("5.1", "wrong constant: guard at 1e-3", ("certain = H[:-1] < 1e-6", "certain = H[:-1] < 1e-3")),
    m("5.1", "sign of r: H_i - H_{i-1}", ("(H[:-1] - H[1:])", "(H[1:] - H[:-1])")),
    m("5.1", "tau multiplies", ("(delta - r) / tau", "(delta - r) * tau")),
    m("5.1", "no beta share", ("(1 - beta) * q * stay + beta / N", "q * stay")),
    m("5.1", "wrong constant: beta / (N - 1)", ("stay + beta / N", "stay + beta / (N - 1)")),
    m("5.1", "off by one: q_i from r_{i+1}", ("q[:-1], np.ones_like", "q[1:], np.ones_like")),
    m("5.1", "cumprod over the inputs (axis 1)", ("1 - q[:-1]]), axis=0)", "1 - q[:-1]]), axis=1)")),
    m("5.1", "q_1 = 1 instead of 0", ("[np.zeros_like(H[:1]), q[:-1]", "[np.ones_like(H[:1]), q[:-1]")),
    # 6.1 exit entropy
    m("6.1", "no max subtracted (overflow)", ("z = z - z.max(axis=-1, keepdims=True)", "z = z + 0")),
    m("6.1", "max over the wrong axis", ("z.max(axis=-1, keepdims=True)", "z.max(axis=0, keepdims=True)")),
    m("6.1", "sign: +sum p log p", ("return -np.sum(", "return np.sum(")),
    m("6.1", "log of p itself: 0 * log 0 = NaN", ("np.exp(log_p) * log_p", "np.exp(log_p) * np.log(np.exp(log_p))")),
    m("6.1", "log base 2", ("log_p = z - np.log(np.sum(", "log_p = z - np.log2(np.sum(")),
    m("6.1", "normalized by log C", ("return -np.sum(np.exp(log_p) * log_p, axis=-1)",
                                     "return -np.sum(np.exp(log_p) * log_p, axis=-1) / np.log(z.shape[-1])")),
    m("6.1", "summed over the wrong axis", ("log_p, axis=-1)", "log_p, axis=0)")),
    # 6.2 fractional exit
    m("6.2", "no entropy guard in the rule (delta = 0 keeps certain inputs)",
      ("leave = (r < delta) | certain", "leave = r < delta")),
    m("6.2", "<= for < (equal entropies leave at delta = 0)", ("(r < delta)", "(r <= delta)")),
    m("6.2", "<= for < in the guard", ("certain = H[:-1] < 1e-6", "certain = H[:-1] <= 1e-6")),
    m("6.2", "wrong constant: guard at 1e-3", ("certain = H[:-1] < 1e-6", "certain = H[:-1] < 1e-3")),
    m("6.2", "off by one: 0-based + 1", ("np.argmax(leave, axis=0) + 2", "np.argmax(leave, axis=0) + 1")),
    m("6.2", "nobody forced out at block N", ("    leave[-1] = True", "    pass")),
    m("6.2", "sign of r: H_i - H_{i-1}", ("(H[:-1] - H[1:])", "(H[1:] - H[:-1])")),
    m("6.2", "dtype: float exit blocks", ("return np.argmax(leave, axis=0) + 2", "return np.argmax(leave, axis=0) + 2.0")),
    # 7.1 pack bits
    m("7.1", "big bit order", ('bitorder="little"', 'bitorder="big"')),
    m("7.1", "sign(0) = -1 (> for >=)", ("x >= 0", "x > 0")),
    m("7.1", "bits inverted", ("np.packbits(x >= 0,", "np.packbits(x < 0,")),
    m("7.1", "dtype: int64 bytes", ('bitorder="little")', 'bitorder="little").astype(np.int64)')),
    m("7.1", "padding length: the last partial byte dropped", ("np.packbits(x >= 0,", "np.packbits(x[:len(x) // 8 * 8] >= 0,")),
    m("7.1", "padding bits 1", ("np.packbits(x >= 0,", "np.packbits(np.concatenate([x >= 0, np.ones(-len(x) % 8, bool)]),")),
    m("7.1", "elements reversed", ("np.packbits(x >= 0,", "np.packbits(x[::-1] >= 0,")),
    # 7.2 xnor dot
    m("7.2", "n - popcount, not n - 2 popcount", ("return n - 2 * differ", "return n - differ")),
    m("7.2", "sign: 2 popcount - n", ("return n - 2 * differ", "return 2 * differ - n")),
    m("7.2", "AND for XOR", ("np.bitwise_xor(a_bytes, w_bytes)", "np.bitwise_and(a_bytes, w_bytes)")),
    m("7.2", "padding length: n rounded up to whole bytes", ("return n - 2 * differ", "return 8 * len(a_bytes) - 2 * differ")),
    m("7.2", "dtype: unsigned count (wraps around below 0)", ("int(np.bitwise_count(np.bitwise_xor(a_bytes, w_bytes)).sum())",
                                                             "np.bitwise_count(np.bitwise_xor(a_bytes, w_bytes)).sum()")),
    m("7.2", "off by one: the last byte not counted", ("np.bitwise_xor(a_bytes, w_bytes)).sum()",
                                                        "np.bitwise_xor(a_bytes[:-1], w_bytes[:-1])).sum()")),
]


def apply(mutation, text):
    """``text`` (a solution's source) with the mutation's edits, each of which must match exactly once
    (tools/mutation_check.py's rule, and its code: on a scratch copy of the file)."""
    file = EXERCISES[mutation.exercise][0]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "solutions" / file
        copy.parent.mkdir()
        copy.write_text(text)
        package_mutation.apply(package_mutation.Mutation(f"{mutation.exercise} {mutation.name}",
                                                         f"solutions/{file}", mutation.edits), Path(tmp))
        return copy.read_text()


def grading():
    """notebooks/grading.py, imported as the notebooks import it."""
    for path in (str(ROOT), str(NOTEBOOK_DIR)):
        if path not in sys.path:
            sys.path.insert(0, path)
    import grading as module
    return module


def verdict(exercise, source, label):
    """The grader's verdict (PASS, FAIL, TODO, ERROR) for the functions ``source`` defines, and its output."""
    file, grader, names = EXERCISES[exercise]
    module = types.ModuleType(f"answer_{file[:-3]}")
    exec(compile(source, f"<{label}>", "exec"), module.__dict__)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        getattr(grading(), grader)(*(getattr(module, name) for name in names))
    found = GRADE.findall(out.getvalue())
    return (found[-1] if found else "no verdict"), out.getvalue()


def solution(exercise):
    return (SOLUTIONS / EXERCISES[exercise][0]).read_text()


def mistakes():
    """[(exercise, name, source)] of tests/exercise_mistakes.py, one per exercise."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from exercise_mistakes import MISTAKES
    finally:
        sys.path.remove(str(ROOT / "tests"))
    by_first = {names[0]: exercise for exercise, (_, _, names) in EXERCISES.items()}
    rows = []
    for first, source in MISTAKES.items():
        note = re.search(r"# mistake: (.+)", source)
        rows.append((by_first[first], "mistake: " + (note.group(1).strip() if note else first), source))
    return rows


def rows(only=None):
    """Every row of the table: (exercise, what, expected verdicts, source), the unmutated solutions first."""
    table = [(exercise, "reference solution", ("PASS",), solution(exercise)) for exercise in EXERCISES]
    table += [(mu.exercise, mu.name, CAUGHT, apply(mu, solution(mu.exercise))) for mu in MUTATIONS]
    table += [(exercise, name, CAUGHT, source) for exercise, name, source in mistakes()]
    return [row for row in table if not only or only == row[0] or only.lower() in row[1].lower()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--only", help="an exercise (e.g. 6.2), or text in the mutations' names")
    args = parser.parse_args(argv)
    table = rows(args.only)
    if not table:
        raise SystemExit(f"no mutation matches {args.only!r}")
    if args.list:
        for exercise, name, _, _ in table:
            print(f"{exercise}  {name}")
        return 0
    print(f"{'exercise':<9} {'mutation':<66} verdict")
    print("-" * 84)
    bad = 0
    for exercise, name, expected, source in table:
        got, _ = verdict(exercise, source, f"{exercise} {name}")
        ok = got in expected
        bad += not ok
        print(f"{exercise:<9} {name:<66} {got}{'' if ok else '   <- expected ' + ' or '.join(expected)}", flush=True)
    mutated = sum(expected == CAUGHT for _, _, expected, _ in table)
    print(f"\n{len(table) - mutated} solutions and {mutated} mutations or mistakes graded; "
          f"{bad} {'row' if bad == 1 else 'rows'} not as expected")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
