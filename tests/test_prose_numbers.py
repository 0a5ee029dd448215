"""Every number in the hand-written prose of results/README.md is one the records hold.

The tables of results/README.md are rendered by ``experiments/tables.py`` (``tests/test_readme.py`` checks
they are fresh). The prose around them is written by hand, so this test reads it paragraph by paragraph
(a table row, a list item and a paragraph each count as one) and requires every number in it to be

* a number of that section's sources (the rendered tables, the ``results/sst2/`` files the section cites),
  at the precision the prose shows it, directly or in a unit the prose uses (a fraction as a percentage,
  seconds as milliseconds or minutes, bytes as KB or MB, FLOPs as MFLOPs or GFLOPs);
* derived from two numbers of the same paragraph: their difference, ratio or percentage cut (``a`` is
  ``x`` % below ``b``), or one binomial standard deviation at 50 % on a dev set of ``n`` rows;
* or a constant this file names, each with the reason it needs no record (the paper's claims, the issue's
  targets, the BERT reference numbers DESIGN §8 quotes).

When the records change (a rerun, a new campaign), a sentence that quotes the old numbers fails here:
rewrite it from the new tables or delete it. ``test_a_changed_digit_is_caught`` is the test of the test.
"""
import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS_README = ROOT / "results" / "README.md"
SST2 = ROOT / "results" / "sst2"
START, END = "<!-- results tables: written by experiments/tables.py -->", "<!-- end of results tables -->"

# Constants that are not measurements of this repository, each with its reason.
CONSTANTS = {
    21.30: "the paper's size claim", 52.08: "the paper's FLOPs claim",
    83.0: "issue target, SST-2", 17.5: "issue target, CoLA MCC", 82: "issue target, MRPC F1 (and twin SST-2)",
    72: "issue target, MRPC accuracy", 40: "issue target, STS-B Pearson", 60: "issue target, STS-B siamese",
    80: "issue target, binarized SST-2", 25: "issue target, size ratio", 50: "issue target, FLOPs cut and matmul share",
    20: "issue target, minutes of training", 100: "metric x 100", 1: "counting word", 2: "counting word",
}

# Where each section's numbers come from (a heading's first words -> the files besides the rendered tables).
SECTIONS = {
    "# Results": [],
    "## GLUE: the paper's claims, measured": ["experiments/runs.json", "docs/DESIGN.md", "data/README.md",
                                              "results/sst2/size_*.txt"],
    "## SST-2 from scratch on this 2-core machine": ["results/sst2/history_binarized.json",
                                                   "results/sst2/history_full_precision.json",
                                                   "results/experiments/sst2-beexformer-seed*.json"],
    "### Training speed": ["results/sst2/bench_train_step*.json", "benchmarks/bench_train_step.py"],
    "### Early exit on SST-2 dev": ["results/sst2/sweep_binarized/sweep.json", "results/sst2/evaluate_*.json",
                                  "beexnp/evaluate.py"],
    "## One-bit deployment": ["results/sst2/size_*.txt", "results/sst2/bench_packed.json"],
}
SCALES = (1, 100, 1000, 1 / 60, 1 / 1000, 1e-6, 1e-9)      # as is, %, ms, min, KB, MB/MFLOPs, GFLOP(/s)
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?(?:e-?\d+)?)(?![\w])")
ANY_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?![\d.])|\d+(?:\.\d+)?(?:e-?\d+)?")   # inside words too (lr0.0003)


def numbers_in(text, pattern=NUMBER):
    """(value, decimals shown) of every number in ``text`` (thousands commas allowed)."""
    out = []
    for m in pattern.finditer(text):
        s = m.group(0).replace(",", "")
        decimals = len(s.split(".")[1]) if "." in s and "e" not in s else 0
        out.append((s, float(s), decimals))
    return out


def prose(text):
    """The text with what is not prose removed: inline code, DESIGN §-references, image lines, the rendered block."""
    head, rest = text.split(START, 1)
    rendered, tail = rest.split(END, 1)
    text = head + tail
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"§\s?\d+(\.\d+)*", " ", text)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return text, rendered


def sections(text):
    """{heading: [paragraph, ...]} where a table row and a list item are paragraphs of their own."""
    out, heading, para = {}, None, []

    def flush():
        if para and heading:
            out.setdefault(heading, []).append(" ".join(para))
        para.clear()

    for line in text.splitlines():
        key = next((h for h in SECTIONS if line.startswith(h)), None)
        if key:
            flush()
            heading = key
            continue
        if line.startswith("#") or not line.strip() or line.startswith("|") or re.match(r"\s*(-|\d+\.) ", line):
            flush()
            if line.startswith("#") or not line.strip():
                continue
        para.append(line.strip())
        if line.startswith("|"):
            flush()
    flush()
    return out


def source_values(patterns, rendered):
    values = [v for _, v, _ in numbers_in(rendered, ANY_NUMBER)]
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            values += [v for _, v, _ in numbers_in(path.read_text(), ANY_NUMBER)]
    return sorted(set(values))


def shown(x, decimals, value):
    """Whether ``value`` written at ``decimals`` places is ``x`` (``x`` in e-notation: to its two digits)."""
    if 0 < x < 1e-2:
        return math.isclose(value, x, rel_tol=0.05)
    return math.isclose(round(value, decimals), x, abs_tol=1e-9)


def derived(x, decimals, paragraph_values):
    for a in paragraph_values:
        if a > 0 and a == int(a) and 50 <= a <= 5000 and shown(x, decimals, 50 / math.sqrt(a)):
            return True                               # one binomial standard deviation at 50 % on n = a rows
        for b in paragraph_values:
            if a == b or b == 0:
                continue
            for value in (a - b, a / b, 100 * (1 - a / b)):
                if value > 0 and shown(x, decimals, value):
                    return True
    return False


def unexplained(text):
    """[(section, number, paragraph)] for every number of ``text``'s prose that nothing explains."""
    body, rendered = prose(text)
    bad = []
    for heading, paragraphs in sections(body).items():
        values = source_values(SECTIONS[heading], rendered)
        scaled = [v * s for v in values for s in SCALES]
        for paragraph in paragraphs:
            found = numbers_in(paragraph)
            local = [v for _, v, _ in found]
            for s, x, decimals in found:
                if x in CONSTANTS or any(shown(x, decimals, v) for v in scaled) or derived(x, decimals, [v for v in local if v != x]):
                    continue
                bad.append((heading, s, paragraph[:160]))
    return bad


def test_every_number_of_the_results_prose_has_a_source():
    bad = unexplained(RESULTS_README.read_text())
    assert not bad, "numbers in results/README.md's prose that no record holds:\n" + "\n".join(
        f"  {h}: {s!r} in: {p}" for h, s, p in bad)


def test_a_changed_digit_is_caught():
    text = RESULTS_README.read_text()
    sentence = "the blocks shrink 25.8×"
    assert sentence in text
    assert unexplained(text.replace(sentence, "the blocks shrink 27.3×"))
    assert unexplained(text.replace("reached 83.22 ±", "reached 84.17 ±"))
