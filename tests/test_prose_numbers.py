"""Every number in the hand-written prose of results/README.md is one the records hold.

The tables of results/README.md are rendered by ``experiments/tables.py`` (``tests/test_readme.py`` checks
they are fresh). The prose around them is written by hand, so this test reads it paragraph by paragraph
(a table row, a list item and a paragraph each count as one) and requires every number in it to be

* a number of that section's sources (the rendered tables, the ``results/sst2/`` files the section cites,
  what a command the section quotes computes from the records: ``COMPUTED``), where a paragraph that names
  tasks (CoLA, MRPC, ...) draws from the table rows of those tasks only (``task_rows``): a CoLA sentence
  cannot borrow an MRPC figure,
  at the precision the prose shows it, directly or in a unit the prose uses (a fraction as a percentage,
  seconds as milliseconds or minutes, bytes as KB or MB, FLOPs as MFLOPs or GFLOPs);
* derived from two numbers of the same paragraph: their difference, ratio or percentage cut (``a`` is
  ``x`` % below ``b``), or one binomial standard deviation at 50 % on a dev set of ``n`` rows;
* or a constant this file names, each with the reason it needs no record (the paper's claims, the issue's
  targets, the BERT reference numbers DESIGN §8 quotes).

When the records change (a rerun, a new campaign), a sentence that quotes the old numbers fails here:
rewrite it from the new tables or delete it. ``test_a_changed_digit_is_caught`` is the test of the test.
"""
import importlib
import inspect
import json
import math
import os
import re
import sys
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
    68.4: "issue 25 target, MRPC accuracy", 81.2: "issue 25 target, MRPC F1", 52.7: "issue 25 target, RTE",
    70: "issue 25 target, STS-B siamese",
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


def campaign_estimate():
    """What ``python experiments/run.py --estimate 2 16`` prints from the records: the campaign's hours at --jobs 2
    and 16 and how many runs have a record (results/README.md quotes it; ``tests/test_readme.py`` word for word)."""
    import contextlib
    import io
    run = script("experiments", "run")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        run.main(["--results", str(ROOT / "results" / "experiments"), "--estimate", "2", "16"])
    return printed.getvalue()


COMPUTED = {"## GLUE: the paper's claims, measured": campaign_estimate}   # a section's numbers computed, not stored
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


def tasks_named(text):
    """The canonical names of the GLUE tasks ``text`` names by their folder names (CoLA, SST-2, ...)."""
    from beexnp.glue.tasks import TASKS
    return {t.name for t in TASKS.values() if re.search(rf"(?<![\w-]){re.escape(t.dir)}(?![\w-])", text)}


def task_rows(rendered, tasks):
    """The rendered tables with the rows of other tasks than ``tasks`` left out (a row's task is its first
    cell); everything else (headings, rows of no task) is kept.  No task named: every row."""
    if not tasks:
        return rendered
    from beexnp.glue.tasks import TASKS
    def kept(line):
        first = line.split("|")[1].strip() if line.startswith("|") else ""
        return first not in TASKS or first in tasks
    return "\n".join(line for line in rendered.splitlines() if kept(line))


def source_values(patterns):
    """Every number of the files ``patterns`` (globs under the repository) match."""
    return [v for pattern in patterns for path in sorted(ROOT.glob(pattern))
            for _, v, _ in numbers_in(path.read_text(), ANY_NUMBER)]


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
        files = source_values(SECTIONS[heading])
        computed = COMPUTED[heading]() if heading in COMPUTED else ""
        for paragraph in paragraphs:
            tables = task_rows(rendered, tasks_named(paragraph)) + computed
            values = set(files + [v for _, v, _ in numbers_in(tables, ANY_NUMBER)])
            scaled = [v * s for v in values for s in SCALES]
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
    depth = "blocks give 81.04 ±"                   # SST-2's depth sentence, given MRPC's F1: in the tables, not SST-2's
    rendered = prose(text)[1]
    assert depth in text and "77.01" in task_rows(rendered, {"mrpc"}) and "77.01" not in task_rows(rendered, {"sst2"})
    assert unexplained(text.replace(depth, "blocks give 77.01 ±"))


# ---- docs/, benchmarks/, data/: each number of a sentence against the constant or file it describes -------
def script(folder, name):
    """The module ``name`` of the repository's ``folder`` (benchmarks/, tools/, tests/ are not packages)."""
    if str(ROOT / folder) not in sys.path:
        sys.path.insert(0, str(ROOT / folder))
    return importlib.import_module(name)


def _words(n):
    return {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}[n]


def _config():
    from beexnp.config import TrainConfig
    return TrainConfig()


def _model_defaults():
    """ModelConfig's defaults: the grid's models have them."""
    from beexnp.config import ModelConfig
    return ModelConfig(vocab_size=1)


def _default_width():
    """The default model width d = token + position."""
    return _model_defaults().token_dim + _model_defaults().position_dim


def _depth_cola_blocks():
    """(depth_cola's first variant's blocks, the default the grid's models have, its second variant's blocks)."""
    fewer, more = _variant_settings("depth_cola", "model", "blocks")
    return fewer, _model_defaults().blocks, more


def _bench_defaults():
    return script("benchmarks", "bench_train_step").parse_args([])


def _model_shapes():
    import numpy as np
    from beexnp.config import ModelConfig
    from beexnp.model import BEExformer
    config = ModelConfig(vocab_size=20, token_dim=6, position_dim=2, heads=2, blocks=1)
    block = BEExformer(config, np.random.default_rng(0)).blocks[0]
    d = config.token_dim + config.position_dim
    return block.attn.qkv.weight.data.shape, block.ffn.gates.weight.data.shape, d


def _gradcheck_shape_sets():
    return len(script("tests", "test_gradcheck_layers").SHAPES)


def _golden(name):
    golden_trajectory = script("tools", "golden_trajectory")
    return getattr(golden_trajectory, name) if name == "RTOL" else golden_trajectory.TRAIN[name]


def _equation_rtol():
    return script("tests", "test_equations").RTOL


def _glue_tasks():
    from beexnp.glue.tasks import TASKS
    return TASKS


def _unchecked_archives():
    from beexnp.glue.download import ARCHIVES
    return sorted(_glue_tasks()[name].dir for name, remote in ARCHIVES.items() if remote.sha256 is None)


def _mrpc_dev_rows():
    OFFICIAL_ROWS = script("tests", "test_glue_reader").OFFICIAL_ROWS
    return dict(((t, s), n) for t, s, n in OFFICIAL_ROWS)[("mrpc", "dev")]


def _sst2_chosen_best_epochs():
    """The best held-out epoch of each seed at SST-2's chosen grid point (the one seeds 1 and 2 ran at), if all
    equal, and the epoch budget of the grid (experiments/runs.json's per-task epochs)."""
    records = [json.loads(path.read_text()) for path in sorted((ROOT / "results" / "experiments").glob(
        "sst2-beexformer-lr*-seed*.json"))]
    points = {r["point"] for r in records if r["seed"] == 1}
    epochs = {r["selection"]["best_epoch"] for r in records if r["point"] in points}
    budget = {r["train_config"]["epochs"] for r in records if r["point"] in points}
    return (epochs.pop() if len(epochs) == 1 and len(points) == 1 else None,
            budget.pop() if len(budget) == 1 else None)


def _campaign_group(name):
    """The group ``name`` of experiments/runs.json."""
    return next(g for g in json.loads((ROOT / "experiments" / "runs.json").read_text()) if g["group"] == name)


def _pretrain_epochs():
    """(the pretrain group's epochs, its SST-2 epochs, the pretrain_long group's epochs)."""
    pretrain = _campaign_group("pretrain")
    return (pretrain["pretrain"]["epochs"], pretrain["task_pretrain"]["sst2"]["epochs"],
            _campaign_group("pretrain_long")["pretrain"]["epochs"])


def _width_group():
    """(width, token width, position width) of the width group's model."""
    from beexnp.config import ModelConfig
    token = _campaign_group("width")["variants"]["width256"]["model"]["token_dim"]
    position = ModelConfig(vocab_size=1).position_dim
    return token + position, token, position


def _grid(group):
    """[its lrs..., its dropouts...]: the grid of campaign group ``group``."""
    grid = _campaign_group(group)["grid"]
    return [*grid["train.lr"], *grid["model.dropout"]]


def _variant_settings(group, section, name):
    """[the value of ``name`` in each variant's ``section`` ("model" or "train") of campaign group ``group``]."""
    return [variant[section][name] for variant in _campaign_group(group)["variants"].values()]


def _session_groups():
    """The numbers of results/README.md's sentence that lists the groups pairs_bpe_grid_lower ... long_grid."""
    (width,) = _variant_settings("pairs_bpe_width", "model", "token_dim")
    return (_grid("pairs_bpe_grid_lower") + [width + _model_defaults().position_dim,
                                             _max_len("pairs_bpe_pretrain_len128")]
            + _variant_settings("depth_cola", "model", "blocks") + _variant_settings("bpe_vocab", "train", "max_vocab")
            + [_config().max_vocab, _campaign_group("long_grid")["train"]["epochs"]] + _grid("long_grid"))


def _targets():
    """{task: (dev-picked row's dev numbers, its shortfall, held-out's pick's dev numbers, its shortfall, held-out's
    pick's row name)} from the rendered targets table of results/README.md (``test_readme`` keeps it a fresh render
    of the records); "met" is a shortfall of 0."""
    rendered = prose(RESULTS_README.read_text())[1]
    table = rendered.split("### Issue 25's targets", 1)[1].split("###", 1)[0]
    out = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 9 and cells[0] in ("sst2", "cola", "mrpc", "stsb", "rte"):
            values = [[float(v) for v in re.findall(r"\d+\.\d+", cells[i])] for i in (4, 7)]
            short = [0.0 if cells[i] == "met" else float(cells[i]) for i in (5, 8)]
            out[cells[0]] = (values[0], short[0], values[1], short[1], cells[6])
    return out


SIAMESE = "BEExformer, siamese pairs"
SIAMESE_PRETRAINED = "BEExformer, siamese pairs, self-pretrained (at the siamese point)"
BPE = "BEExformer, BPE subword tokens (at the BEExformer's point)"
BPE_PRETRAINED = "BEExformer, BPE subword tokens, self-pretrained (at the BEExformer's point)"


LONG = "BEExformer, up to 10 epochs (SST-2; the grid allows 4)"
SIAMESE_BPE = "BEExformer, siamese pairs, BPE subword tokens (at the siamese point)"
SIAMESE_COS = "BEExformer, siamese pairs + their cosine (at the siamese point)"
SIAMESE_BPE_COS = "BEExformer, siamese pairs + their cosine, BPE subword tokens (at the siamese point)"
LEN128 = "BEExformer, siamese pairs, BPE subword tokens, inputs up to 128 tokens, not 64 (at the siamese point)"
LEN128_GRID = ("BEExformer, siamese pairs, BPE subword tokens, inputs up to 128 tokens, not 64, over a grid of their "
               "own (MRPC)")
WIDTH_SST2 = "BEExformer, width 256 on SST-2 (token 240 + position 16, at the BEExformer's point)"
COS_LEN128 = ("BEExformer, siamese pairs + their cosine, BPE subword tokens, inputs up to 128 tokens, not 64 (at the "
              "siamese point)")
PRETRAINED_LEN128 = ("BEExformer, siamese pairs, BPE subword tokens, inputs up to 128 tokens, self-pretrained (at the "
                     "siamese point)")
LONGER = (LEN128, LEN128_GRID, COS_LEN128, PRETRAINED_LEN128)   # the rows with inputs up to 128 tokens
BPE_GRID = "BEExformer, siamese pairs, BPE subword tokens, over a grid of their own (STS-B, RTE)"
GRID_LOWER = "BEExformer, siamese pairs, BPE subword tokens, over a grid of lower lr and dropout (STS-B)"
BPE_WIDTH = "BEExformer, siamese pairs, BPE subword tokens, width 256 (STS-B, at its own grid's point)"
DEPTH2 = "BEExformer, 2 blocks (CoLA, at the BEExformer's point; it has 6)"
DEPTH4 = "BEExformer, 4 blocks (CoLA, at the BEExformer's point; it has 6)"
LONG_GRID = "BEExformer, up to 10 epochs, over a grid of its own (SST-2)"
VOCAB1000 = "BEExformer, BPE subword tokens, vocabulary of 1,000 (CoLA, at the BEExformer's point)"
VOCAB2000 = "BEExformer, BPE subword tokens, vocabulary of 2,000 (CoLA, at the BEExformer's point)"
PAIR_FEATURES = (SIAMESE_BPE, SIAMESE_COS, SIAMESE_BPE_COS, LEN128, BPE_GRID, COS_LEN128, LEN128_GRID, PRETRAINED_LEN128,
                 GRID_LOWER, BPE_WIDTH)


def spaced(pattern):
    """``pattern`` with every space matching any run of white space (the prose is wrapped anywhere)."""
    return pattern.replace(" ", r"\s+")


def _honest_rows(task):
    """{model: its cells} for task's rows of results/README.md's held-out table, "Every choice on the held-out
    slice"."""
    rendered = prose(RESULTS_README.read_text())[1]
    table = rendered.split("### Every choice on the held-out slice", 1)[1].split("###", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]
    return {cells[1]: cells for cells in rows if len(cells) > 4 and cells[0] == task}


def _honest_row(task, model):
    """The cells of row (task, model) of the held-out table."""
    cells = _honest_rows(task).get(model)
    assert cells, f"no row ({task}, {model}) in the held-out table"
    return cells


def _best_heldout(task, leave_out=()):
    """The row of task with the highest mean held-out score in the held-out table (of those not in ``leave_out``)."""
    scores = {model: re.findall(r"\d+\.\d+", cells[3]) for model, cells in _honest_rows(task).items()
              if model not in leave_out}
    return max((float(v[0]), model) for model, v in scores.items() if v)[1]


def _beyond_spread(task, row, other):
    """Row's dev mean is above other's by more than both spreads: 'beyond the seeds' spread'."""
    a, b = _honest(task, row)[2:4], _honest(task, other)[2:4]
    return a[0] - b[0] > max(a[1], b[1])


def _within_spread(task, row, other):
    """Neither row's dev mean is beyond the other's by more than both spreads: 'within the seeds' spread'."""
    return not _beyond_spread(task, row, other) and not _beyond_spread(task, other, row)


def _point(task, model):
    """[lr, dropout] of row (task, model)'s chosen grid point, read off the held-out table's point cell."""
    return [float(v) for v in re.fullmatch(r"lr([\d.]+)_dropout([\d.]+)", _honest_row(task, model)[2]).groups()]


def _max_len(group):
    """The max_len the one variant of campaign group ``group`` trains with."""
    (variant,) = _campaign_group(group)["variants"].values()
    return variant["train"]["max_len"]


def _len128():
    """(the pairs_bpe_len128 group's max_len, the max_len every other row trains with)."""
    from beexnp.config import TrainConfig
    return _max_len("pairs_bpe_len128"), TrainConfig().max_len


def _dev_selected_sst2():
    """[mean, spread] of SST-2's BEExformer at full depth in the earlier, dev-selected main table."""
    rendered = prose(RESULTS_README.read_text())[1]
    table = rendered.split("### Earlier runs, every choice made on dev (optimistic): main table", 1)[1].split("###")[0]
    row = next(line for line in table.splitlines() if line.startswith("| sst2 |"))
    return [float(v) for v in re.findall(r"\d+\.\d+", row.split("|")[5])[:2]]


def _records(name):
    """Seed 0, 1 and 2's records ``results/experiments/<name>-seed<s>.json``."""
    return [json.loads((ROOT / "results" / "experiments" / f"{name}-seed{s}.json").read_text()) for s in range(3)]


def _dev_f1s(name):
    """Seed 0, 1, 2's dev F1 at full depth (× 100) in the records of run ``name``."""
    return [100 * r["dev_full_depth"]["f1"] for r in _records(name)]


def _best_epochs(name):
    """Seed 0, 1, 2's best held-out epoch in the records of run ``name``."""
    return [r["selection"]["best_epoch"] for r in _records(name)]


def _vocab_size(name):
    """The one vocabulary size of the records of run ``name`` (None when the seeds' differ)."""
    sizes = {r["model_config"]["vocab_size"] for r in _records(name)}
    return sizes.pop() if len(sizes) == 1 else None


def _honest(task, model):
    """Row (task, model)'s numbers: (held-out mean, its spread, dev mean, its spread, then the dev cell's further
    numbers, e.g. MRPC's accuracy)."""
    cells = _honest_row(task, model)
    return [float(v) for i in (3, 4) for v in re.findall(r"\d+\.\d+", re.sub(r"\(\d+ seeds?\)", "", cells[i]))]


def _seeds(task, model):
    """How many seeds row (task, model) reports on its dev cell."""
    return int(re.search(r"\((\d+) seeds?\)", _honest_row(task, model)[4]).group(1))


def _seed_counts(*models):
    """[the one seed count all of models' rows of the held-out table report], or None when they differ."""
    counts = {_seeds(task, model) for task in ("sst2", "cola", "mrpc", "stsb", "rte", "wnli") for model in models
              if model in _honest_rows(task)}
    return list(counts) if len(counts) == 1 else None


def _long_group():
    """(the long group's epochs, its patience, the grid's SST-2 epochs)."""
    train = _campaign_group("long")["train"]
    return train["epochs"], train["patience"], _campaign_group("grid")["task_train"]["sst2"]["epochs"]


def _flops_units():
    """(times the forward's MACs a training step does, FLOPs per MAC, the qkv and SLFN coefficients of L·d²), or
    None in place of the coefficients when another row is not the README's equation."""
    from beexnp.config import ModelConfig
    from beexnp.flops import flops_table, train_step_flops
    L, d, B, C = 10, 16, 2, 2
    config = ModelConfig(vocab_size=100, token_dim=12, position_dim=4, heads=2, blocks=1, num_classes=C)
    rows = {row["layer"]: row["real_macs"] + row["binary_macs"] for row in flops_table(config, L)}
    forward = rows["block + exit"]
    step = train_step_flops(config, B, L)
    others = (rows["attn.scores"] == rows["attn.context"] == L * L * d and rows["attn.out"] == L * d * d
              and rows["exit.pool"] + rows["exit.linear"] == L * d + d * C)
    return ((step.real_macs + step.binary_macs) / (B * forward), step.float_ops / (step.real_macs + step.binary_macs),
            rows["attn.qkv"] / (L * d * d) if others else None, rows["ffn.gates"] / (L * d * d) if others else None)


# (file, pattern whose groups are the stated numbers, what they must equal)
DOC_CLAIMS = [
    ("docs/package.md", r"Soft routing\*\* uses delta = ([\d.]+), tau = ([\d.]+), beta = ([\d.]+)",
     lambda: (_config().delta, _config().tau, _config().beta)),
    ("docs/package.md", r"\(min frequency (\d+), at most ([\d,]+) entries\)",
     lambda: (_config().min_freq, _config().max_vocab)),
    ("docs/package.md", r"holds out a fixed, seeded (\d+)% of", lambda: (round(100 * _config().heldout_fraction),)),
    ("docs/package.md", r"\(H_\{i-1\} < ([\de.-]+)\)", lambda: (__import__("beexnp.entropy").entropy.CERTAIN,)),
    ("docs/package.md", r"the (\w+) GLUE tasks", lambda: (len(_glue_tasks()),)),
    ("docs/package.md", r"are one\s+`BinaryLinear\(d, (\d)d\)`",
     lambda: (max(_model_shapes()[0]) // _model_shapes()[2],)),
    ("docs/package.md", r"four matrices one `BinaryLinear\(d, (\d)d\)`",
     lambda: (max(_model_shapes()[1]) // _model_shapes()[2],)),
    ("docs/gradient-checks.md", r"over (\w+) shape sets", lambda: (_gradcheck_shape_sets(),)),
    ("docs/gradient-checks.md", r"in float64, to ([\de.-]+)\.", lambda: (_equation_rtol(),)),
    ("docs/gradient-checks.md", r"\*\*A golden trajectory\*\*: (\d+) steps", lambda: (_golden("max_steps"),)),
    ("docs/gradient-checks.md", r"`tests/data/golden_trajectory.json` to ([\de.-]+)\.", lambda: (_golden("RTOL"),)),
    ("benchmarks/README.md", r"the stated config, (\d+) warm-up \+ (\d+) timed steps",
     lambda: (_bench_defaults().warmup, _bench_defaults().repeats)),
    ("benchmarks/README.md", r"width d = (\d+) \(token (\d+) \+ position (\d+),\s+concatenated\), (\d+) heads, "
                             r"(\d+) blocks with SLFN, (\d+) tokens, batch (\d+), vocabulary\s+([\d ]+), (\d+) classes, "
                             r"dropout ([\d.]+)",
     lambda: (lambda a: (a.token_dim + a.position_dim, a.token_dim, a.position_dim, a.heads, a.blocks, a.tokens,
                         a.batch, a.vocab, a.classes, a.dropout))(_bench_defaults())),
    ("benchmarks/README.md", r"\(`--matmul-size`, (\d+) by default\)", lambda: (_bench_defaults().matmul_size,)),
    ("benchmarks/README.md", r"qkv projection of all (\d+) blocks", lambda: (_bench_defaults().blocks,)),
    ("benchmarks/README.md", r"a binary MAC = 1/(\d+) FLOP",
     lambda: (round(1 / __import__("beexnp.flops").flops.BINARY_MAC_FLOPS),)),
    ("data/README.md", r"\(Wang et al\., 2019\): (\w+) English", lambda: (len(_glue_tasks()),)),
    ("data/README.md", r"sentence-pair tasks, (\w+) of them classification and (\w+) regression",
     lambda: (sum(not t.regression for t in _glue_tasks().values()), sum(t.regression for t in _glue_tasks().values()))),
    ("data/README.md", r"(\d+) id pairs\s+go to dev", lambda: (_mrpc_dev_rows(),)),
    ("benchmarks/README.md", r"\.float_ops`: (\d) × the forward's multiply-accumulates .*?(\d) floating-point "
                             r"operations per MAC", lambda: _flops_units()[:2]),
    ("benchmarks/README.md", r"\(qkv (\d)·L·d², scores and P V L²·d each, out L·d², SLFN\s+(\d)·L·d², "
                             r"exit L·d \+ d·C\)", lambda: _flops_units()[2:]),
    ("docs/DESIGN.md", r"n_v = sqrt\(v \. v \+ eps\)\s+eps = ([\de.-]+) keeps it finite",
     lambda: (__import__("beexnp.pairs").pairs.PairExitHead.eps,)),
    ("docs/DESIGN.md", r"vocabulary\), (\d+) epochs \((\d+) on SST-2, the largest training split; (\d+) on\s+"
                       r"CoLA in group `pretrain_long`\)", _pretrain_epochs),
    ("results/README.md", r"`width` \(width (\d+), token (\d+) \+ position (\d+),", _width_group),
    ("results/experiments/TABLES.md", r"BEExformer, width (\d+) \(token (\d+) \+ position (\d+);", _width_group),
    ("results/README.md", r"`long` \(SST-2 at the grid's chosen\s+point, up to (\d+) epochs with patience (\d+)\)",
     lambda: _long_group()[:2]),
    ("results/experiments/TABLES.md", r"BEExformer, up to (\d+) epochs \(SST-2; the grid allows (\d+)\)",
     lambda: _long_group()[::2]),
    ("results/README.md", spaced(r"RTE is met on dev by the siamese encoding with BPE tokens and the cosine "
                                 r"\(([\d.]+) ± ([\d.]+) against 52\.7; the grid's model ([\d.]+) ± ([\d.]+)\)"),
     lambda: _honest("rte", SIAMESE_BPE_COS)[2:4] + _honest("rte", "BEExformer")[2:4]
     if _targets()["rte"][1] == 0 and _targets()["rte"][0] == _honest("rte", SIAMESE_BPE_COS)[2:3] else None),
    ("results/README.md", spaced(r"CoLA is short by ([\d.]+) \(([\d.]+) ± ([\d.]+) against 17\.5\) and SST-2 by ([\d.]+) "
                                 r"\(([\d.]+) ±"),
     lambda: [_targets()["cola"][1], *_honest("cola", "BEExformer")[2:4], _targets()["sst2"][1], _targets()["sst2"][0][0]]
     if _targets()["cola"][0] == _honest("cola", "BEExformer")[2:3] else None),
    ("results/README.md", r"A grid point is chosen on seed (\d)'s", lambda: [script("experiments", "selection").SELECTION_SEED]),
    ("results/README.md", r"the earlier dev-selected runs reached ([\d.]+) ± ([\d.]+)\)", lambda: _dev_selected_sst2()),
    ("results/README.md", spaced(r"well above the GPT-1 paper's Transformer without pre-training \(([\d.]+)\)"),
     lambda: [script("experiments", "tables").PUBLISHED[0][2]["stsb"]]),
    ("results/README.md", r"On SST-2 the chosen point \(lr ([\de.-]+)\) had its best held-out epoch",
     lambda: _point("sst2", "BEExformer")[:1]),
    ("results/README.md", spaced(r"SST-2 ([\d.]+) \(short by ([\d.]+), the longer budget over its own grid\), CoLA ([\d.]+) \(short by "
                                 r"([\d.]+), BPE self-pretrained\), MRPC ([\d.]+) / ([\d.]+) \(F1 short by ([\d.]+), siamese with "
                                 r"BPE and (\d+) tokens\), STS-B ([\d.]+) \(short by ([\d.]+), siamese with BPE at width "
                                 r"256\) and RTE ([\d.]+) \(met, siamese with BPE, the cosine and (\d+) tokens\)\."),
     lambda: [x for task in ("sst2", "cola", "mrpc", "stsb", "rte")
              for x in ([*_targets()[task][2][::-1], _targets()[task][3], _len128()[0]] if task == "mrpc" else
                        [_targets()[task][2][0], _len128()[0]] if task == "rte" else
                        [_targets()[task][2][0], _targets()[task][3]])]
     if [_targets()[t][4] for t in ("sst2", "cola", "mrpc", "stsb", "rte")] == [LONG_GRID, BPE_PRETRAINED, LEN128, BPE_WIDTH,
                                                                              COS_LEN128]
     and _targets()["mrpc"][2][0] >= 68.4 and _targets()["rte"][3] == 0 else None),
    ("results/README.md", spaced(r"and also by the siamese encoding with BPE tokens \(F1 ([\d.]+), accuracy ([\d.]+); above\), "
                                 r"a row held-out ranks below the same with inputs up to (\d+) tokens\."),
     lambda: [_honest("mrpc", SIAMESE_BPE)[2], _honest("mrpc", SIAMESE_BPE)[4], _len128()[0]]
     if _honest("mrpc", SIAMESE_BPE)[2] >= 81.2 and _honest("mrpc", SIAMESE_BPE)[4] >= 68.4
     and _best_heldout("mrpc") == LEN128 and _best_heldout("mrpc", leave_out=LONGER) == SIAMESE_BPE else None),
    ("results/README.md", spaced(r"STS-B's best row on dev is that same row, short by ([\d.]+) \(Pearson ([\d.]+) ± ([\d.]+) "
                                 r"against 70\)"),
     lambda: [_targets()["stsb"][1]] + _honest("stsb", BPE_WIDTH)[2:4]
     if _targets()["stsb"][0] == _honest("stsb", BPE_WIDTH)[2:3] and _targets()["stsb"][4] == BPE_WIDTH else None),
    ("results/README.md", spaced(r"on MRPC BPE tokens self-pretrained have the best held-out score of the rows before the "
                                 r"pair features \(([\d.]+) ± ([\d.]+); below\) and dev F1 ([\d.]+) ± ([\d.]+), accuracy "
                                 r"([\d.]+) ± ([\d.]+), against ([\d.]+) ± ([\d.]+) / ([\d.]+) ± ([\d.]+) for BPE alone"),
     lambda: _honest("mrpc", BPE_PRETRAINED) + _honest("mrpc", BPE)[2:]
     if _best_heldout("mrpc", leave_out=PAIR_FEATURES) == BPE_PRETRAINED else None),
    ("results/README.md", spaced(r"BPE tokens lift STS-B to Pearson ([\d.]+) ± ([\d.]+) \(held-out ([\d.]+) ± ([\d.]+)\) "
                                 r"against ([\d.]+) ± ([\d.]+) with words, beyond the seeds' spread, and MRPC to F1 ([\d.]+) ± "
                                 r"([\d.]+) with accuracy ([\d.]+) ± ([\d.]+) \(held-out ([\d.]+) ± ([\d.]+), the best of the "
                                 r"rows before longer inputs, below\) against ([\d.]+) ± ([\d.]+) / ([\d.]+) ± ([\d.]+); on RTE they score ([\d.]+) ± "
                                 r"([\d.]+) against ([\d.]+) ± ([\d.]+)\."),
     lambda: _honest("stsb", SIAMESE_BPE)[2:4] + _honest("stsb", SIAMESE_BPE)[:2] + _honest("stsb", SIAMESE)[2:4]
     + _honest("mrpc", SIAMESE_BPE)[2:] + _honest("mrpc", SIAMESE_BPE)[:2] + _honest("mrpc", SIAMESE)[2:]
     + _honest("rte", SIAMESE_BPE)[2:4] + _honest("rte", SIAMESE)[2:4]
     if _best_heldout("mrpc", leave_out=LONGER) == SIAMESE_BPE and _beyond_spread("stsb", SIAMESE_BPE, SIAMESE)
     else None),
    ("results/README.md", spaced(r"The cosine alone adds less or nothing: STS-B ([\d.]+) ± ([\d.]+), MRPC F1 ([\d.]+) ± "
                                 r"([\d.]+) with accuracy ([\d.]+) ± ([\d.]+), RTE ([\d.]+) ± ([\d.]+)\. Both together score "
                                 r"STS-B ([\d.]+) ± ([\d.]+) \(held-out ([\d.]+) ± ([\d.]+), the best held-out score of the "
                                 r"rows before a grid of their own, below\), MRPC F1 ([\d.]+) ± ([\d.]+) with accuracy ([\d.]+) ± "
                                 r"([\d.]+), and RTE ([\d.]+) ± ([\d.]+), over RTE's target on dev; held-out ranks that row "
                                 r"below the siamese encoding alone \(([\d.]+) ± ([\d.]+) against ([\d.]+) ± ([\d.]+)\)"),
     lambda: _honest("stsb", SIAMESE_COS)[2:4] + _honest("mrpc", SIAMESE_COS)[2:] + _honest("rte", SIAMESE_COS)[2:4]
     + _honest("stsb", SIAMESE_BPE_COS)[2:4] + _honest("stsb", SIAMESE_BPE_COS)[:2] + _honest("mrpc", SIAMESE_BPE_COS)[2:]
     + _honest("rte", SIAMESE_BPE_COS)[2:4] + _honest("rte", SIAMESE_BPE_COS)[:2] + _honest("rte", SIAMESE)[:2]
     if _best_heldout("stsb", leave_out=(BPE_GRID, GRID_LOWER, BPE_WIDTH)) == SIAMESE_BPE_COS
     and _best_heldout("rte", leave_out=(LEN128, BPE_GRID, COS_LEN128)) == SIAMESE
     and _honest("rte", SIAMESE_BPE_COS)[2] >= 52.7 and _honest("stsb", SIAMESE_COS)[2] < _honest("stsb", SIAMESE_BPE)[2]
     and all(_honest(t, SIAMESE_COS)[2] < _honest(t, SIAMESE_BPE)[2] for t in ("mrpc", "stsb")) else None),
    ("results/README.md", spaced(r"`pairs_bpe`, `pairs_cos` and `pairs_bpe_cos`: the siamese encoding at its own chosen point "
                                 r"with BPE tokens, with the pair cosine of DESIGN §5.6, and with both; (\w+) seeds each\)"),
     lambda: _seed_counts(SIAMESE_BPE, SIAMESE_COS, SIAMESE_BPE_COS)),
    ("results/README.md", r"On CoLA the same combination\s+scores dev ([\d.]+) ± ([\d.]+) \(held-out ([\d.]+) ± ([\d.]+)\), "
                          r"above BPE alone \(([\d.]+) ± ([\d.]+)\) and below\s+word tokens \(([\d.]+) ± ([\d.]+)\)",
     lambda: _honest("cola", BPE_PRETRAINED)[2:] + _honest("cola", BPE_PRETRAINED)[:2] + _honest("cola", BPE)[2:]
     + _honest("cola", "BEExformer")[2:]),
    ("results/README.md", spaced(r"\(groups `pairs_bpe_grid`, `pairs_bpe_len128` and `pairs_bpe_cos_len128`, (\w+) "
                                 r"seeds each\)"),
     lambda: _seed_counts(BPE_GRID, LEN128, COS_LEN128)),
    ("results/README.md", spaced(r"held-out chooses for the siamese encoding with BPE tokens lr ([\d.]+) with dropout ([\d.]+) on "
                                 r"STS-B: Pearson ([\d.]+) ± ([\d.]+) \(held-out ([\d.]+) ± ([\d.]+), the best of STS-B's rows at "
                                 r"width 128\) against ([\d.]+) ± ([\d.]+) at the siamese point, within the seeds' spread\."),
     lambda: _point("stsb", BPE_GRID) + _honest("stsb", BPE_GRID)[2:4] + _honest("stsb", BPE_GRID)[:2]
     + _honest("stsb", SIAMESE_BPE)[2:4]
     if _best_heldout("stsb", leave_out=(BPE_WIDTH,)) == BPE_GRID and _within_spread("stsb", BPE_GRID, SIAMESE_BPE)
     else None),
    ("results/README.md", spaced(r"On RTE it chooses the siamese point itself \(lr ([\d.]+), dropout ([\d.]+)\), and its runs "
                                 r"repeat those of `pairs_bpe` to the last digit \(([\d.]+) ± ([\d.]+)\)"),
     lambda: _point("rte", BPE_GRID) + _honest("rte", BPE_GRID)[2:4]
     if _point("rte", BPE_GRID) == _point("rte", SIAMESE_BPE)
     and _honest_row("rte", BPE_GRID)[2:] == _honest_row("rte", SIAMESE_BPE)[2:] else None),
    ("results/README.md", spaced(r"so inputs of (\d+) tokens cut more of a pair; up to (\d+) tokens, MRPC scores held-out "
                                 r"([\d.]+) ± ([\d.]+), the best of MRPC's rows, and dev F1 ([\d.]+) ± ([\d.]+) with accuracy "
                                 r"([\d.]+) ± ([\d.]+), within the spread of the (\d+)-token row \(([\d.]+) ± ([\d.]+)\); RTE "
                                 r"scores held-out ([\d.]+) ± ([\d.]+) and dev ([\d.]+) ± ([\d.]+) against ([\d.]+) ± "
                                 r"([\d.]+) with (\d+) tokens, within the spread\."),
     lambda: [_len128()[1], _len128()[0]] + _honest("mrpc", LEN128) + [_len128()[1]] + _honest("mrpc", SIAMESE_BPE)[2:4]
     + _honest("rte", LEN128)[:4] + _honest("rte", SIAMESE_BPE)[2:4] + [_len128()[1]]
     if _best_heldout("mrpc") == LEN128
     and all(_within_spread(t, LEN128, SIAMESE_BPE) for t in ("mrpc", "rte")) else None),
    ("results/README.md", spaced(r"With the pair cosine as well, RTE scores held-out ([\d.]+) ± ([\d.]+), the best of RTE's "
                                 r"rows, and dev ([\d.]+) ± ([\d.]+), over its target of 52\.7 and beyond the spread of the "
                                 r"grid's model \(([\d.]+) ± ([\d.]+)\): the first RTE row that held-out picks and that meets "
                                 r"the target\. On MRPC the same scores held-out ([\d.]+) ± ([\d.]+) and dev F1 ([\d.]+) ± "
                                 r"([\d.]+) with accuracy ([\d.]+) ± ([\d.]+)\."),
     lambda: _honest("rte", COS_LEN128)[:4] + _honest("rte", "BEExformer")[2:4] + _honest("mrpc", COS_LEN128)
     if _best_heldout("rte") == COS_LEN128 and _honest("rte", COS_LEN128)[2] >= 52.7
     and _beyond_spread("rte", COS_LEN128, "BEExformer") else None),
    ("results/README.md", spaced(r"and, with inputs up to (\d+) tokens, by the row held-out picks \(([\d.]+) ± ([\d.]+)\)\."),
     lambda: [_len128()[0]] + _honest("rte", COS_LEN128)[2:4]
     if _targets()["rte"][4] == COS_LEN128 and _targets()["rte"][3] == 0 else None),
    ("results/README.md", spaced(r"`pairs_bpe_len128_grid` \(MRPC with BPE tokens and (\d+) tokens over lr \{([\de.-]+), "
                                 r"([\de.-]+)\} × dropout \{([\d.]+), ([\d.]+)\}\) and `width_sst2` \(SST-2 at width (\d+), "
                                 r"at the grid's chosen point\)"),
     lambda: [_max_len("pairs_bpe_len128_grid"), *_campaign_group("pairs_bpe_len128_grid")["grid"]["train.lr"],
              *_campaign_group("pairs_bpe_len128_grid")["grid"]["model.dropout"], _width_group()[0]]
     if _campaign_group("width_sst2")["variants"] == _campaign_group("width")["variants"] else None),
    ("results/README.md", spaced(r"MRPC's own grid with (\d+) tokens chooses its siamese point too \(lr ([\d.]+), dropout "
                                 r"([\d.]+)\); run in a later session, on a new machine and a fresh install, its seed (\d) "
                                 r"repeats the dev F1 of `pairs_bpe_len128`'s to the last digit and seeds 1 and 2 do not, for dev "
                                 r"F1 ([\d.]+) ± ([\d.]+) \(held-out ([\d.]+) ± ([\d.]+)\) against ([\d.]+) ± ([\d.]+) "
                                 r"\(([\d.]+) ± ([\d.]+)\)"),
     lambda: [_len128()[0], *_point("mrpc", LEN128_GRID), 0]
     + _honest("mrpc", LEN128_GRID)[2:4] + _honest("mrpc", LEN128_GRID)[:2] + _honest("mrpc", LEN128)[2:4]
     + _honest("mrpc", LEN128)[:2]
     if _point("mrpc", LEN128_GRID) == _point("mrpc", LEN128)
     and [a == b for a, b in zip(_dev_f1s("mrpc-siamese_bpe_len128"),
                                 _dev_f1s("mrpc-siamese_bpe_len128_grid-lr0.0003_dropout0.3"))] == [True, False, False]
     else None),
    ("results/README.md", spaced(r"On SST-2 \(group `width_sst2`, at the grid's point\) width (\d+) scores ([\d.]+) ± ([\d.]+) "
                                 r"\(held-out ([\d.]+) ± ([\d.]+)\) against ([\d.]+) ± ([\d.]+) \(([\d.]+) ± ([\d.]+)\), within "
                                 r"the seeds' spread; held-out ranks it below the longer budget \(([\d.]+) ± ([\d.]+), below\)"),
     lambda: [_width_group()[0]] + _honest("sst2", WIDTH_SST2)[2:4] + _honest("sst2", WIDTH_SST2)[:2]
     + _honest("sst2", "BEExformer")[2:4] + _honest("sst2", "BEExformer")[:2] + _honest("sst2", LONG)[:2]
     if _within_spread("sst2", WIDTH_SST2, "BEExformer") and _honest("sst2", WIDTH_SST2)[0] < _honest("sst2", LONG)[0]
     else None),
    ("results/README.md", spaced(r"and SST-2 by ([\d.]+) \(([\d.]+) ± ([\d.]+) against 83\.0, width (\d+); the grid's model "
                                 r"([\d.]+) ± ([\d.]+); up to (\d+) epochs ([\d.]+) ± ([\d.]+);"),
     lambda: [_targets()["sst2"][1]] + _honest("sst2", WIDTH_SST2)[2:4] + [_width_group()[0]]
     + _honest("sst2", "BEExformer")[2:4] + [_long_group()[0]] + _honest("sst2", LONG)[2:4]
     if _targets()["sst2"][0] == _honest("sst2", WIDTH_SST2)[2:3] else None),
    ("results/README.md", r"and `bpe_pretrain`, BPE tokens self-pretrained, (\w+) seeds each\)",
     lambda: _seed_counts(SIAMESE_PRETRAINED, BPE_PRETRAINED)),
    ("results/README.md", r"On RTE it scores dev ([\d.]+) ± ([\d.]+) \(held-out ([\d.]+) ± ([\d.]+)\), below\s+"
                          r"the grid's model \(([\d.]+) ± ([\d.]+)\)",
     lambda: _honest("rte", BPE_PRETRAINED)[2:] + _honest("rte", BPE_PRETRAINED)[:2] + _honest("rte", "BEExformer")[2:]
     if _honest("rte", BPE_PRETRAINED)[2] < _honest("rte", "BEExformer")[2] else None),
    ("results/README.md", r"The siamese encoding self-pretrained scores on MRPC held-out\s+([\d.]+) ± ([\d.]+) and dev F1 "
                          r"([\d.]+) ± ([\d.]+), accuracy ([\d.]+) ± ([\d.]+), against ([\d.]+) ± ([\d.]+) / ([\d.]+) ±\s+"
                          r"([\d.]+) for the siamese encoding alone \(a narrower spread, not a clear gain\), on STS-B "
                          r"Pearson\s+([\d.]+) ± ([\d.]+) against ([\d.]+) ± ([\d.]+), and on RTE ([\d.]+) ± ([\d.]+) "
                          r"against ([\d.]+) ± ([\d.]+)",
     lambda: _honest("mrpc", SIAMESE_PRETRAINED) + _honest("mrpc", SIAMESE)[2:]
     + [x for task in ("stsb", "rte") for row in (SIAMESE_PRETRAINED, SIAMESE) for x in _honest(task, row)[2:4]]),
    ("results/README.md", spaced(r"`pairs_bpe_grid` \(the siamese encoding with BPE tokens over a grid of its own, lr "
                                 r"\{([\de.-]+), ([\de.-]+)\} × dropout \{([\d.]+), ([\d.]+)\}, on STS-B and RTE\) and "
                                 r"`pairs_bpe_len128` and `pairs_bpe_cos_len128` \(the same at the siamese point, without and "
                                 r"with the pair cosine, with inputs up to (\d+) tokens instead of (\d+), on MRPC and RTE\)"),
     lambda: [*_campaign_group("pairs_bpe_grid")["grid"]["train.lr"], *_campaign_group("pairs_bpe_grid")["grid"][
         "model.dropout"], *_len128()]
     if _max_len("pairs_bpe_cos_len128") == _len128()[0] else None),
    ("results/README.md", spaced(r"`pairs_bpe_grid_lower` \(STS-B's siamese encoding with BPE tokens over lr \{([\de.-]+), "
                                 r"([\de.-]+)\} × dropout \{([\d.]+), ([\d.]+)\}\), `pairs_bpe_width` \(the same at width "
                                 r"(\d+), at the point `pairs_bpe_grid` chose\), `pairs_bpe_pretrain_len128` \(MRPC's siamese "
                                 r"encoding with BPE tokens and (\d+) tokens, self-pretrained\), `depth_cola` \(CoLA with (\d+) "
                                 r"and (\d+) blocks\), `bpe_vocab` \(CoLA with BPE vocabularies of ([\d,]+) and ([\d,]+) "
                                 r"entries instead of up to ([\d,]+)\) and `long_grid` \(SST-2 up to (\d+) epochs over lr "
                                 r"\{([\de.-]+), ([\de.-]+)\} × dropout \{([\d.]+), ([\d.]+)\}\)"),
     lambda: _session_groups() if _campaign_group("pairs_bpe_width")["from_best"]["group"] == "pairs_bpe_grid"
     and all(g["train"].get("tokenizer") == "bpe" for g in _campaign_group("bpe_vocab")["variants"].values()) else None),
    ("results/README.md", spaced(r"lower lr and dropout than `pairs_bpe_grid`'s choose that grid's point again \(lr ([\d.]+), "
                                 r"dropout ([\d.]+)\); run again in a later session, the same point scores dev "
                                 r"([\d.]+) ± ([\d.]+) \(held-out ([\d.]+) ± ([\d.]+)\) against ([\d.]+) ± ([\d.]+) \(([\d.]+) ± "
                                 r"([\d.]+)\), and seed (\d)'s best held-out epoch is (\d+) against (\d+)"),
     lambda: _point("stsb", GRID_LOWER) + _honest("stsb", GRID_LOWER)[2:4] + _honest("stsb", GRID_LOWER)[:2]
     + _honest("stsb", BPE_GRID)[2:4] + _honest("stsb", BPE_GRID)[:2]
     + [0, _best_epochs("stsb-siamese_bpe_grid_lower-lr0.002_dropout0.05")[0],
        _best_epochs("stsb-siamese_bpe_grid-lr0.002_dropout0.05")[0]]
     if _point("stsb", GRID_LOWER) == _point("stsb", BPE_GRID) == [0.002, 0.05]
     and all(max(low) <= min(high) for low, high in zip(*[[grid[k] for k in ("train.lr", "model.dropout")] for grid in (
         _campaign_group(g)["grid"] for g in ("pairs_bpe_grid_lower", "pairs_bpe_grid"))])) else None),
    ("results/README.md", spaced(r"At width (\d+), at that point, STS-B scores dev ([\d.]+) ± ([\d.]+) \(held-out ([\d.]+) ± "
                                 r"([\d.]+), the best of STS-B's rows, so the honest pick\) against ([\d.]+) ± ([\d.]+) "
                                 r"\(([\d.]+) ± ([\d.]+)\) at width (\d+), beyond the seeds' spread, and ([\d.]+) ± ([\d.]+) with "
                                 r"early exit\."),
     lambda: [_session_groups()[4]] + _honest("stsb", BPE_WIDTH)[2:4] + _honest("stsb", BPE_WIDTH)[:2]
     + _honest("stsb", BPE_GRID)[2:4] + _honest("stsb", BPE_GRID)[:2] + [_default_width()]
     + [float(v) for v in re.findall(r"\d+\.\d+", _honest_row("stsb", BPE_WIDTH)[5])[:2]]
     if _best_heldout("stsb") == BPE_WIDTH and _beyond_spread("stsb", BPE_WIDTH, BPE_GRID)
     and _point("stsb", BPE_WIDTH) == _point("stsb", BPE_GRID) else None),
    ("results/README.md", spaced(r"self-pretraining the siamese encoding with BPE tokens and (\d+) tokens scores dev F1 ([\d.]+) ± "
                                 r"([\d.]+) with accuracy ([\d.]+) ± ([\d.]+), over both of MRPC's targets, but its held-out "
                                 r"score, ([\d.]+) ± ([\d.]+), ranks it just below the same without pretraining \(([\d.]+) ± "
                                 r"([\d.]+)\)"),
     lambda: [_max_len("pairs_bpe_pretrain_len128")] + _honest("mrpc", PRETRAINED_LEN128)[2:]
     + _honest("mrpc", PRETRAINED_LEN128)[:2] + _honest("mrpc", LEN128)[:2]
     if _honest("mrpc", PRETRAINED_LEN128)[2] >= 81.2 and _honest("mrpc", PRETRAINED_LEN128)[4] >= 68.4
     and _best_heldout("mrpc") == LEN128 and _best_heldout("mrpc", leave_out=(LEN128,)) == PRETRAINED_LEN128 else None),
    ("results/README.md", spaced(r"On CoLA fewer blocks do not help: (\d+) blocks score dev ([\d.]+) ± ([\d.]+) \(held-out "
                                 r"([\d.]+) ± ([\d.]+)\), within the spread of (\d+) blocks' ([\d.]+) ± ([\d.]+) \(([\d.]+) ± "
                                 r"([\d.]+)\), and (\d+) blocks ([\d.]+) ± ([\d.]+) \(([\d.]+) ± ([\d.]+)\), below it\."),
     lambda: [x for blocks, row in zip(_depth_cola_blocks(), (DEPTH2, "BEExformer", DEPTH4))
              for x in [blocks] + _honest("cola", row)[2:4] + _honest("cola", row)[:2]]
     if _within_spread("cola", DEPTH2, "BEExformer")
     and _beyond_spread("cola", "BEExformer", DEPTH4) else None),
    ("results/README.md", spaced(r"Nor do smaller BPE vocabularies recover the word tokens' score: ([\d,]+) entries score "
                                 r"([\d.]+) ± ([\d.]+) and ([\d,]+) entries ([\d.]+) ± ([\d.]+), against ([\d.]+) ± ([\d.]+) "
                                 r"with BPE's usual limit of ([\d,]+), which CoLA's vocabulary does not reach\."),
     lambda: [x for size, row in zip(_variant_settings("bpe_vocab", "train", "max_vocab"), (VOCAB1000, VOCAB2000))
              for x in [size] + _honest("cola", row)[2:4]] + _honest("cola", BPE)[2:4]
     + [_config().max_vocab]
     if _vocab_size("cola-bpe") < _config().max_vocab and all(_honest("cola", row)[2] < _honest("cola", "BEExformer")[2] for row in (VOCAB1000, VOCAB2000, BPE))
     else None),
    ("results/README.md", spaced(r"On SST-2 the longer budget over a grid of its own chooses the grid's point again \(lr "
                                 r"([\d.]+), dropout ([\d.]+)\): dev ([\d.]+) ± ([\d.]+) \(held-out ([\d.]+) ± ([\d.]+), the best "
                                 r"of SST-2's rows, so the honest pick\) against ([\d.]+) ± ([\d.]+) \(([\d.]+) ± ([\d.]+)\) for "
                                 r"`long` at the same point, within the seeds' spread; its seed (\d)'s best held-out epoch is (\d+) "
                                 r"against (\d+)"),
     lambda: _point("sst2", LONG_GRID) + _honest("sst2", LONG_GRID)[2:4] + _honest("sst2", LONG_GRID)[:2]
     + _honest("sst2", LONG)[2:4] + _honest("sst2", LONG)[:2]
     + [0, _best_epochs("sst2-epochs10_grid-lr0.0003_dropout0.3")[0], _best_epochs("sst2-epochs10")[0]]
     if _point("sst2", LONG_GRID) == _point("sst2", LONG) == [0.0003, 0.3] and _best_heldout("sst2") == LONG_GRID
     and _within_spread("sst2", LONG_GRID, LONG)
     and _campaign_group("long_grid")["train"] == _campaign_group("long")["train"] else None),
    ("results/README.md", r"had its best held-out epoch\s+at the last allowed one \((\d+)\) on all three seeds",
     lambda: (_sst2_chosen_best_epochs()[0] if len(set(_sst2_chosen_best_epochs())) == 1 else None,)),
]


def stated(text, pattern):
    m = re.search(pattern, text)
    assert m, f"the sentence /{pattern}/ is gone: update DOC_CLAIMS with the text that replaced it"
    values = []
    for group in m.groups():
        group = group.replace(",", "").replace(" ", "")
        values.append(_words(group) if group.isalpha() else float(group))
    return values, m


@pytest.mark.parametrize("path, pattern, source", DOC_CLAIMS, ids=[f"{p}:{i}" for i, (p, _, _) in enumerate(DOC_CLAIMS)])
def test_doc_numbers_match_their_source(path, pattern, source):
    values, _ = stated((ROOT / path).read_text(), pattern)
    assert values == [float(v) for v in source()], f"{path}: /{pattern}/ states {values}, the source says {source()}"


def test_a_changed_doc_number_is_caught():
    """The test of the test: one digit changed in each claim's sentence makes it differ from its source."""
    for path, pattern, source in DOC_CLAIMS:
        text = (ROOT / path).read_text()
        _, m = stated(text, pattern)
        start, end = m.span(1)
        number = m.group(1)
        changed = ("two" if number == "nine" else "nine") if number.isalpha() else \
            number[:-1] + ("7" if number[-1] != "7" else "3")
        values, _ = stated(text[:start] + changed + text[end:], pattern)
        assert values != [float(v) for v in source()], (path, pattern)


def test_gradient_checks_doc_is_a_fresh_render():
    render_gradcheck_doc = script("tools", "render_gradcheck_doc")
    text = render_gradcheck_doc.DOC.read_text()
    assert render_gradcheck_doc.render(text) == text, "run: python tools/render_gradcheck_doc.py"
    changed = text.replace("| Block (slfn) | 11 |", "| Block (slfn) | 12 |")
    assert changed != text and render_gradcheck_doc.render(changed) != changed      # the test of the test


@pytest.mark.parametrize("damage", ["no markers", "start twice", "end before start", "not utf-8", "missing"])
def test_gradient_checks_doc_tool_writes_nothing_on_help_check_or_a_damaged_doc(tmp_path, monkeypatch, capsys, damage):
    """--help and --check leave the doc as it is; a damaged or missing doc is one line of error, not a traceback,
    and is left as it is."""
    tool = script("tools", "render_gradcheck_doc")
    fresh = tool.render(tool.DOC.read_text())
    doc = tmp_path / "docs" / "gradient-checks.md"
    doc.parent.mkdir()
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setattr(tool, "DOC", doc)
    stale = fresh.replace("| Block (slfn) | 11 |", "| Block (slfn) | 12 |")
    doc.write_text(stale)
    with pytest.raises(SystemExit) as exit_:
        tool.main(["--help"])
    assert exit_.value.code == 0 and doc.read_text() == stale
    assert tool.main(["--check"]) == 1 and doc.read_text() == stale
    assert tool.main([]) == 0 and doc.read_text() == fresh
    assert tool.main(["--check"]) == 0
    damaged = {"no markers": fresh.replace(tool.START, "").encode(),
               "start twice": (tool.START + fresh).encode(),
               "end before start": (tool.END + fresh.replace(tool.END, "")).encode(),
               "not utf-8": b"\xff\xfe" + fresh.encode(), "missing": None}[damage]
    doc.unlink()
    if damaged is not None:
        doc.write_bytes(damaged)
    with pytest.raises(SystemExit) as exit_:
        tool.main([])
    message = str(exit_.value.code)
    assert message.startswith("error: cannot render docs/gradient-checks.md: ") and "\n" not in message
    assert (doc.read_bytes() if doc.exists() else None) == damaged


def test_gradient_checks_doc_tool_reports_a_failed_write_in_one_line(tmp_path, monkeypatch):
    """The doc is written through ``beexnp.outputs.write_text``: a folder it cannot write is one line of error and
    the doc is left as it was."""
    tool = script("tools", "render_gradcheck_doc")
    doc = tmp_path / "docs" / "gradient-checks.md"
    doc.parent.mkdir()
    stale = tool.DOC.read_text().replace("| Block (slfn) | 11 |", "| Block (slfn) | 12 |")
    doc.write_text(stale)
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setattr(tool, "DOC", doc)

    def disk_full(path, text):
        raise tool.UserError("could not write: No space left on device", path, "free some space")

    monkeypatch.setattr(tool, "write_text", disk_full)
    with pytest.raises(SystemExit) as exit_:
        tool.main([])
    assert str(exit_.value.code).startswith("error: could not write: No space left on device (")
    assert doc.read_text() == stale


def test_gradcheck_command_defaults_are_the_rendered_shapes():
    from beexnp.cli import build_parser
    from beexnp.layer_checks import layer_cases
    args = build_parser().parse_args(["gradcheck"])
    signature = inspect.signature(layer_cases).parameters
    for name in ("batch", "tokens", "dim", "heads"):
        assert getattr(args, name) == signature[name].default, name


def test_sha256_sentence_names_the_archives_without_one():
    text = (ROOT / "data" / "README.md").read_text()
    m = re.search(r"where the official one is known \(all but ([\w-]+), ([\w-]+) and ([\w-]+)\)", text)
    assert m and sorted(m.groups()) == _unchecked_archives()


# Test-split rows (tests/test_glue_reader.py's OFFICIAL_ROWS has train and dev), checked against the files wherever
# GLUE_DIR holds them (test_data_card_row_counts_are_the_files), so the card is checked without GLUE too.
OFFICIAL_TEST_ROWS = {("cola", "test"): 1_063, ("sst2", "test"): 1_821, ("mrpc", "test"): 1_725, ("stsb", "test"): 1_379,
                      ("qqp", "test"): 390_965, ("mnli", "test_matched"): 9_796, ("mnli", "test_mismatched"): 9_847,
                      ("qnli", "test"): 5_463, ("rte", "test"): 3_000, ("wnli", "test"): 146}


def data_table(text):
    """{(task dir, column): rows} from data/README.md's task table."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    table = {}
    for line in lines[1:]:
        cells = dict(zip(header, [c.strip() for c in line.strip("|").split("|")]))
        for column in ("train", "dev", "test"):
            table[(cells["Task"], column)] = [int(n.replace(",", "")) for n in re.findall(r"[\d,]+\d", cells[column])]
    return table


def official_rows(task, column):
    """The rows of ``task``'s ``column`` splits: the files where GLUE has them, else the official counts
    (tests/test_glue_reader.py's OFFICIAL_ROWS, OFFICIAL_TEST_ROWS), checked against the files wherever found."""
    from beexnp.glue.reader import decode_lines
    OFFICIAL_ROWS = script("tests", "test_glue_reader").OFFICIAL_ROWS
    known = {**{(t, s): n for t, s, n in OFFICIAL_ROWS}, **OFFICIAL_TEST_ROWS}
    glue = os.environ.get("GLUE_DIR")
    out = []
    for split in (s for s in task.splits if s.startswith(column)):
        path = Path(glue or "/nonexistent") / task.dir / task.splits[split]
        if path.is_file():
            headerless = task.name == "cola" and split != "test"
            out.append(len(decode_lines(path)) - (0 if headerless else 1))
        else:
            out.append(known[(task.name, split)])
    return out


def data_card_mismatches(text):
    tasks = {t.dir: t for t in _glue_tasks().values()}
    return [(name, column, rows, official_rows(tasks[name], column))
            for (name, column), rows in data_table(text).items() if rows != official_rows(tasks[name], column)]


def test_data_card_row_counts_are_the_files():
    text = (ROOT / "data" / "README.md").read_text()
    assert len(data_table(text)) == 3 * len(_glue_tasks())
    assert not data_card_mismatches(text)
    assert data_card_mismatches(text.replace("| 67,349 |", "| 67,348 |"))          # the test of the test
    for (name, split), rows in OFFICIAL_TEST_ROWS.items():                          # the list, where files are
        task = _glue_tasks()[name]
        assert official_rows(task, split) == [rows], f"{name} {split}: OFFICIAL_TEST_ROWS differs from the file"



def test_data_card_format_facts_are_the_files():
    """STS-B's score range and CoLA's column count, read from the files where GLUE_DIR holds them."""
    from beexnp.glue.reader import decode_lines, load_split
    text = (ROOT / "data" / "README.md").read_text()
    low, high = map(int, re.search(r"similarity score (\d)–(\d)", text).groups())
    columns = _words(re.search(r"Their (\w+) columns are source, label", text).group(1))
    glue = Path(os.environ.get("GLUE_DIR") or "/nonexistent")
    if (glue / "STS-B" / "train.tsv").is_file():
        labels = load_split("stsb", "train", glue).labels
        assert (labels.min(), labels.max()) == (low, high)
    if (glue / "CoLA" / "train.tsv").is_file():
        assert {len(line.split("\t")) for line in decode_lines(glue / "CoLA" / "train.tsv")} == {columns}
