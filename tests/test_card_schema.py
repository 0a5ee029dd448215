"""Damaged checkpoints and packed files, generated: every command that reads one refuses it in one line.

One card schema (``beexnp.card``) types every field of a checkpoint's card and of a packed file's
metadata and cross-checks them against the arrays.  The property tests below draw a damage of
each kind -- a field dropped, retyped or resized (with or without its own checksum renewed, so
that the schema itself is tested, not only the checksum), a file truncated, a byte changed, a
NaN weight, a vocabulary that does not fit the embedding, a task with another label count --
and run every command that reads a saved model on it: the answer is status 1, exactly one
``error:`` line naming the file, no traceback, and no file changed.  A damage that leaves the
content as it was (a byte of a zip header no reader looks at, a space turned into a tab in the
JSON) may be read: then the output is the undamaged file's, word for word.
"""
import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beexnp.card import SELF_SUM, with_self_sum
from beexnp.checkpoint import npz_bytes, open_checkpoint, read_card
from beexnp.cli import main
from beexnp.config import TrainConfig
from beexnp.packed import META_KEY, encode_meta, open_packed, read_packed
from beexnp.pretrain import Pretrainer
from beexnp.train import Trainer
from conftest import TINY_MODEL, sentiment_glue

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "notebooks" / "models"
TEXT = "a good film"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """GLUE data, a trained run (best, last), its packed export and a pretrain run (mlm/last) on the same data."""
    root = tmp_path_factory.mktemp("cards")
    glue = sentiment_glue(root, train=96, dev=24)
    cfg = TrainConfig(task="sst2", epochs=1, batch_size=16, min_freq=1)
    Trainer(cfg, TINY_MODEL, root / "run", glue_dir=glue, progress=False).fit()
    Pretrainer(cfg, TINY_MODEL, root / "mlm", glue_dir=glue, progress=False).fit()
    assert main(["export", str(root / "run" / "best"), str(root / "m.npz")]) == 0
    return root


def tree_hashes(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(root).rglob("*"))
            if p.is_file() and p.name != ".lock"}


def run_cli(argv, capsys):
    """(status, stdout, stderr) of ``main(argv)`` in this process."""
    capsys.readouterr()
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_refused(status, out, err, names=()):
    """Status 1, one ``error:`` line on stderr naming one of ``names``, no traceback."""
    assert status == 1, (status, out, err)
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in out + err
    if names:
        assert any(str(n) in err for n in names), err


# ---- damages ---------------------------------------------------------------------------------------
def json_paths(value, prefix=()):
    """Every (path, value) inside a JSON value: dict keys and list indices."""
    yield prefix, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from json_paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):               # the first few items of a long list are enough
            yield from json_paths(v, prefix + (i,))


CHECKED = ("format_version", "model_config", "files", "task", "tokenizer", "train_config", "metrics", "state",
           "history", "rng", "optimizer", "data", "command", "pretrain", "init", "calibration", SELF_SUM)
NESTED_CHECKED = ("model_config", "train_config", "state", "tokenizer", "optimizer", "rng", "files", "data",
                  "pretrain", "calibration")


def checked_paths(card):
    """The paths of the card the schema types: its known entries, every field of the sections it checks (a BPE
    tokenizer's merges and a calibration's shift item by item too)."""
    paths = [(k,) for k in card if k in CHECKED]
    for section in NESTED_CHECKED:
        if isinstance(card.get(section), dict):
            paths += [(section, k) for k in card[section]]
    paths += [("tokenizer", "vocab", 0), ("tokenizer", "vocab", 7)]
    paths += [("tokenizer", "merges", i) for i in (0, 3) if len(card.get("tokenizer", {}).get("merges", [])) > i]
    paths += [("tokenizer", "merges", 0, j) for j in (0, 1) if card.get("tokenizer", {}).get("merges")]
    paths += [("calibration", "shift", i) for i in (0, 1) if "calibration" in card]
    return paths


def get_at(d, path):
    for k in path:
        d = d[k]
    return d


def set_at(d, path, value):
    get_at(d, path[:-1])[path[-1]] = value


def delete_at(d, path):
    del get_at(d, path[:-1])[path[-1]]


def wrong_type(value):
    """A JSON value of a type no field of the schema accepts where ``value`` was."""
    if isinstance(value, dict):
        return [1, 2]
    if isinstance(value, list):
        return {"a": 1}
    return [value]


RESIZES = {                                  # (path, change): sizes that the arrays or the task contradict
    "vocab shorter": (("tokenizer", "vocab"), lambda v: v[:-1]),
    "vocab longer": (("tokenizer", "vocab"), lambda v: v + ["zzz-new-token"]),
    "vocab_size + 1": (("model_config", "vocab_size"), lambda v: v + 1),
    "vocab_size - 1": (("model_config", "vocab_size"), lambda v: v - 1),
    "token_dim + 2": (("model_config", "token_dim"), lambda v: v + 2),
    "blocks + 1": (("model_config", "blocks"), lambda v: v + 1),
    "blocks - 1": (("model_config", "blocks"), lambda v: v - 1),
    "num_classes + 1": (("model_config", "num_classes"), lambda v: v + 1),
    "max_len - 1": (("train_config", "max_len"), lambda v: v - 1),
    "history shorter": (("history",), lambda v: v[:-1]),
}


@st.composite
def card_damages(draw, card):
    """(description, damaged card or None to delete the card): a field dropped, retyped or resized, the card's
    own checksum renewed or not (a dropped field: never renewed, as a card written by beexnp has every field)."""
    card = json.loads(json.dumps(card))
    kind = draw(st.sampled_from(["drop", "retype", "null", "resize"]))
    renew = draw(st.booleans()) and kind != "drop"
    if kind == "resize":
        name = draw(st.sampled_from(sorted(RESIZES)))
        path, change = RESIZES[name]
        if path[0] not in card:
            return f"resize {name}: absent", None
        set_at(card, path, change(get_at(card, path)))
        what = f"resize {name}"
    else:
        path = draw(st.sampled_from(checked_paths(card)))
        if kind == "drop":
            delete_at(card, path)
        elif kind == "null":
            set_at(card, path, None)
        else:
            set_at(card, path, wrong_type(get_at(card, path)))
        what = f"{kind} {'.'.join(map(str, path))}"
    if renew and SELF_SUM in card:
        card = with_self_sum(card)
    return what + (" (checksum renewed)" if renew else ""), card


def npz_with(arrays):
    return npz_bytes(arrays)


def array_damages(draw, arrays, packed):
    """(description, arrays): a NaN in a weight, an array dropped, resized or retyped."""
    arrays = dict(arrays)
    floating = sorted(k for k, a in arrays.items() if np.issubdtype(a.dtype, np.floating) and a.size)
    kind = draw(st.sampled_from(["nan", "inf", "drop", "resize", "retype"]))
    name = draw(st.sampled_from(floating if kind in ("nan", "inf") else sorted(arrays)))
    a = arrays[name].copy()
    if kind in ("nan", "inf"):
        a.flat[draw(st.integers(0, a.size - 1))] = np.nan if kind == "nan" else -np.inf
        arrays[name] = a
    elif kind == "drop":
        del arrays[name]
    elif kind == "resize":
        arrays[name] = a[:-1] if a.shape[0] > 1 else np.concatenate([a, a])
    else:
        arrays[name] = a.astype(np.int32) if a.dtype != np.int32 else a.astype(np.float32)
    return f"{kind} {name}", arrays


def byte_damage(draw, data):
    """(description, bytes): truncated, or one byte changed."""
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(data) - 1))
        return f"truncated to {cut} of {len(data)} bytes", data[:cut]
    at = draw(st.integers(0, len(data) - 1))
    x = draw(st.integers(1, 255))
    return f"byte {at} xor {x}", data[:at] + bytes([data[at] ^ x]) + data[at + 1:]


def damage_checkpoint(draw, source, target):
    """Copy the checkpoint ``source`` to ``target`` and damage it; returns the damage's description."""
    shutil.copytree(source, target)
    card = json.loads((target / "checkpoint.json").read_text())
    kind = draw(st.sampled_from(["card", "card", "arrays", "bytes", "vocab", "labels"]))
    if kind == "card":
        what, damaged = draw(card_damages(card))
        if damaged is not None:
            (target / "checkpoint.json").write_text(json.dumps(damaged, indent=2))
        return what
    if kind == "bytes":
        name = draw(st.sampled_from(sorted(p.name for p in target.iterdir())))
        what, data = byte_damage(draw, (target / name).read_bytes())
        (target / name).write_bytes(data)
        return f"{name} {what}"
    if kind == "arrays":                             # the card's checksums renewed: only the arrays are wrong
        name = draw(st.sampled_from([n for n in ("model.npz", "trainer.npz") if (target / n).exists()]))
        with np.load(target / name) as f:
            arrays = {k: f[k] for k in f.files}
        what, arrays = array_damages(draw, arrays, packed=False)
        data = npz_with(arrays)
        (target / name).write_bytes(data)
        card["files"][name] = hashlib.sha256(data).hexdigest()
    elif kind == "vocab":                            # a vocabulary and vocab_size that agree, but not the embedding
        card["tokenizer"]["vocab"].append("zzz-new-token")
        card["model_config"]["vocab_size"] += 1
        what = "vocabulary and vocab_size one more than the embedding's rows"
    else:                                            # a task with three labels for a two-class model
        task = draw(st.sampled_from(["mnli", "stsb"]))
        card["task"] = card["train_config"]["task"] = task
        what = f"task {task} for a 2-class model"
    (target / "checkpoint.json").write_text(json.dumps(with_self_sum(card), indent=2))
    return what


def damage_packed(draw, source, target):
    """Copy the packed file ``source`` to ``target`` and damage it; returns the damage's description."""
    data = source.read_bytes()
    kind = draw(st.sampled_from(["meta", "meta", "arrays", "bytes"]))
    if kind == "bytes":
        what, data = byte_damage(draw, data)
        target.write_bytes(data)
        return what
    with np.load(io.BytesIO(data)) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays[META_KEY].tobytes())
    if kind == "meta":
        inner = dict(meta["card"], model_config=meta["model_config"])
        what, damaged = draw(card_damages(inner, ))
        if damaged is None:
            return "no damage drawn"
        meta = dict(meta, model_config=damaged.pop("model_config", None), card=damaged)
        if meta["model_config"] is None:
            del meta["model_config"]
        if "renewed" in what:
            meta = with_self_sum(meta)
        arrays[META_KEY] = encode_meta(meta)
    else:
        what, real = array_damages(draw, {k: v for k, v in arrays.items() if k != META_KEY}, packed=True)
        arrays = dict(real, **{META_KEY: arrays[META_KEY]})
    target.write_bytes(npz_with(arrays))
    return what


# ---- every command that reads a saved model ----------------------------------------------------------
def commands(world, saved, out):
    """argv of every command that reads the saved model ``saved``, writing (if at all) under ``out``."""
    glue = ["--glue-dir", world / "glue", "--no-download"]
    return {
        "evaluate": ["evaluate", saved, *glue, "--limit", "8", "--no-timing"],
        "predict": ["predict", saved, TEXT],
        "sweep": ["sweep", saved, *glue, "--limit", "8", "--out", out / "sweep"],
        "export": ["export", saved, out / "x.npz"],
        "size": ["size", saved, "--json"],
        "train --resume": ["train", "--resume", saved, *glue, "--out", out / "resumed", "--no-progress",
                           "--max-steps", "7"],
        "train --teacher": ["train", "--teacher", saved, *glue, "--out", out / "student", "--no-progress",
                            "--max-steps", "1", *TINY_RUN],
        "pretrain --resume": ["pretrain", "--resume", saved, *glue, "--out", out / "resumed", "--no-progress",
                              "--max-steps", "7"],
        "train --init": ["train", "--init", saved, *glue, "--out", out / "tuned", "--no-progress", "--max-steps", "1",
                         *TINY_RUN],
    }


TINY_RUN = ["--min-freq", "1", *sum(([f"--{k.replace('_', '-')}", str(v)] for k, v in TINY_MODEL.items()), [])]
CHECKPOINT_COMMANDS = ("evaluate", "predict", "sweep", "export", "size", "train --resume", "train --teacher",
                       "pretrain --resume", "train --init")
PACKED_COMMANDS = ("evaluate", "predict", "sweep", "size", "export", "train --resume", "train --teacher",
                   "pretrain --resume", "train --init")
NOT_FROM_PACKED = ("export", "train --resume", "train --teacher", "pretrain --resume", "train --init")
SOURCES = {"train --resume": ("run", "last"), "pretrain --resume": ("mlm", "last"), "train --init": ("mlm", "last")}


def reference(world, saved, name, capsys, tmp):
    """The undamaged file's output of command ``name`` (cached per file and command)."""
    key = (str(saved), name)
    if key not in REFERENCES:
        tmp.mkdir(parents=True, exist_ok=True)
        argv = commands(world, saved, tmp)[name]
        REFERENCES[key] = run_cli(argv, capsys)
    return REFERENCES[key]


REFERENCES = {}


def comparable(text, *folders):
    for folder in folders:
        text = text.replace(str(folder), "SAVED")
    return text


def check_command(world, name, damaged, original, what, capsys, tmp):
    before = tree_hashes(damaged.parent)
    (tmp / "out").mkdir()
    status, out, err = run_cli(commands(world, damaged, tmp / "out")[name], capsys)
    assert tree_hashes(damaged.parent) == before, what                     # the input is never changed
    if status == 0:                                    # read: only if the content is the undamaged one
        ref_status, ref_out, ref_err = reference(world, original, name, capsys, tmp.parent / f"ref-{hash(name)}")
        assert ref_status == 0 and "error" not in err, (what, err)
        if not name.startswith("train"):               # (a training run prints its seconds)
            assert comparable(out, damaged, tmp / "out") == comparable(ref_out, original, tmp.parent / f"ref-{hash(name)}"), what
        return "read, same answer"
    assert_refused(status, out, err, names=[damaged])
    return "refused"


PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                    derandomize=True)


@pytest.mark.parametrize("name", CHECKPOINT_COMMANDS)
@PROPERTY
@given(data=st.data())
def test_a_damaged_checkpoint_is_refused_in_one_line(world, tmp_path_factory, capsys, name, data):
    tmp = tmp_path_factory.mktemp("damaged")
    source = world.joinpath(*SOURCES.get(name, ("run", "best")))
    what = damage_checkpoint(data.draw, source, tmp / "ck" / source.name)
    data.draw(st.just(what), label="damage")
    check_command(world, name, tmp / "ck" / source.name, source, what, capsys, tmp)


@pytest.mark.parametrize("name", PACKED_COMMANDS)
@PROPERTY
@given(data=st.data())
def test_a_damaged_packed_file_is_refused_in_one_line(world, tmp_path_factory, capsys, name, data):
    tmp = tmp_path_factory.mktemp("damaged")
    (tmp / "pk").mkdir()
    what = damage_packed(data.draw, world / "m.npz", tmp / "pk" / "m.npz")
    data.draw(st.just(what), label="damage")
    if name in NOT_FROM_PACKED:                         # never read from a packed file: refused as such
        (tmp / "out").mkdir()
        status, out, err = run_cli(commands(world, tmp / "pk" / "m.npz", tmp / "out")[name], capsys)
        assert_refused(status, out, err, names=[tmp / "pk" / "m.npz"])
        return
    check_command(world, name, tmp / "pk" / "m.npz", world / "m.npz", what, capsys, tmp)


# ---- a BPE tokenizer and a calibration in the card (DESIGN §2.6, §9.3) ----------------------------------------
@pytest.fixture(scope="module")
def bpe_world(tmp_path_factory):
    """A run with BPE tokens and a calibrated best checkpoint, and its packed export (the shift folded)."""
    root = tmp_path_factory.mktemp("bpe-cards")
    glue = sentiment_glue(root, train=96, dev=24)
    cfg = TrainConfig(task="sst2", epochs=1, batch_size=16, min_freq=1, tokenizer="bpe", max_vocab=60, calibrate=True)
    Trainer(cfg, TINY_MODEL, root / "run", glue_dir=glue, progress=False).fit()
    assert main(["export", str(root / "run" / "best"), str(root / "m.npz")]) == 0
    return root


MORE_DAMAGES = {              # (path, change): values of the right type that the rest of the card contradicts
    "shift one longer": (("calibration", "shift"), lambda v: v + [0.5]),
    "shift one shorter": (("calibration", "shift"), lambda v: v[:-1]),
    "a NaN shift": (("calibration", "shift"), lambda v: [v[0], float("nan")]),
    "exit 0": (("calibration", "exit"), lambda v: 0),
    "exit past the blocks": (("calibration", "exit"), lambda v: TINY_MODEL["blocks"] + 1),
    "score a string": (("calibration", "score_after"), lambda v: str(v)),
    "an unknown calibration field": (("calibration",), lambda v: dict(v, bias=[0, 1])),
    "folded in a checkpoint": (("calibration",), lambda v: dict(v, folded=not v.get("folded", False))),
    "folded not a bool": (("calibration",), lambda v: dict(v, folded="yes")),
    "a merge of pieces not in the vocabulary": (("tokenizer", "merges"), lambda v: v + [["zq", "xj"]]),
    "a merge of three pieces": (("tokenizer", "merges"), lambda v: [v[0] + ["e"]] + v[1:]),
    "an empty piece": (("tokenizer", "merges"), lambda v: [["", v[0][0] + v[0][1]]] + v[1:]),
    "merges a string": (("tokenizer", "merges"), lambda v: "ab"),
    "a word tokenizer's format": (("tokenizer", "format"), lambda v: "beexnp.glue.Tokenizer/1"),
    "vocab one longer": (("tokenizer", "vocab"), lambda v: v + ["zzz"]),
}


@st.composite
def calibration_or_merges_damages(draw, card):
    """(description, damaged card or None): a field of the calibration or of the BPE tokenizer dropped, retyped,
    nulled (``card_damages`` on those paths only) or given a value the rest contradicts (``MORE_DAMAGES``)."""
    card = json.loads(json.dumps(card))
    paths = [p for p in checked_paths(card) if p[0] == "calibration" or p[:2] == ("tokenizer", "merges")]
    kind = draw(st.sampled_from(["drop", "retype", "null", "contradict", "contradict"]))
    renew = kind != "drop" and draw(st.booleans())
    if kind == "contradict":
        name = draw(st.sampled_from(sorted(MORE_DAMAGES)))
        path, change = MORE_DAMAGES[name]
        if name == "folded in a checkpoint" and get_at(card, path).get("folded"):
            name, change = "folded dropped", lambda v: {k: x for k, x in v.items() if k != "folded"}
        set_at(card, path, change(get_at(card, path)))
        renew, what = True, f"contradict: {name}"        # renewed: the schema, not the checksum, must refuse it
    else:
        path = draw(st.sampled_from(paths))
        {"drop": lambda: delete_at(card, path), "null": lambda: set_at(card, path, None),
         "retype": lambda: set_at(card, path, wrong_type(get_at(card, path)))}[kind]()
        what = f"{kind} {'.'.join(map(str, path))}"
    if renew and SELF_SUM in card:
        card = with_self_sum(card)
    return what + (" (checksum renewed)" if renew else ""), card


def write_damaged_card(draw, kind, source, target):
    """Copy the checkpoint folder or packed file ``source`` to ``target``, its card damaged; the description."""
    if kind == "checkpoint":
        shutil.copytree(source, target)
        what, damaged = draw(calibration_or_merges_damages(json.loads((target / "checkpoint.json").read_text())))
        (target / "checkpoint.json").write_text(json.dumps(damaged, indent=2))
        return what
    with np.load(source) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays[META_KEY].tobytes())
    what, card = draw(calibration_or_merges_damages(meta["card"]))
    meta = dict(meta, card=card)
    if "renewed" in what:
        meta = with_self_sum(meta)
    arrays[META_KEY] = encode_meta(meta)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(npz_with(arrays))
    return what


@pytest.mark.parametrize("kind, name", [("checkpoint", n) for n in ("predict", "evaluate", "sweep", "size", "export")]
                         + [("packed", n) for n in ("predict", "evaluate", "size")])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(data=st.data())
def test_a_damaged_calibration_or_bpe_merges_list_is_refused_in_one_line(bpe_world, tmp_path_factory, capsys, kind,
                                                                          name, data):
    tmp = tmp_path_factory.mktemp("damaged")
    source = bpe_world / "run" / "best" if kind == "checkpoint" else bpe_world / "m.npz"
    target = tmp / "ck" / ("best" if kind == "checkpoint" else "m.npz")
    what = write_damaged_card(data.draw, kind, source, target)
    data.draw(st.just(what), label="damage")
    before = tree_hashes(target.parent)
    (tmp / "out").mkdir()
    status, out, err = run_cli(commands(bpe_world, target, tmp / "out")[name], capsys)
    assert tree_hashes(target.parent) == before, what
    assert_refused(status, out, err, names=[target])                  # every damage drawn here changes the card


def test_the_bpe_and_calibrated_cards_are_read_and_the_shift_is_folded_once(bpe_world, capsys, tmp_path):
    from beexnp.calibration import CARD_KEY
    from beexnp.glue.tokenizer import BPETokenizer
    saved, packed = open_checkpoint(bpe_world / "run" / "best"), open_packed(bpe_world / "m.npz")
    assert isinstance(saved.card.tokenizer, BPETokenizer) and saved.card.tokenizer.merges
    assert packed.card.tokenizer.state_dict() == saved.card.tokenizer.state_dict()
    assert CARD_KEY in saved.raw and "folded" not in saved.raw[CARD_KEY] and packed.raw[CARD_KEY]["folded"] is True
    assert saved.card.train_config.tokenizer == "bpe" and saved.card.train_config.calibrate
    reports = []
    for source in (bpe_world / "run" / "best", bpe_world / "m.npz"):
        status, out, err = run_cli(["evaluate", source, "--glue-dir", bpe_world / "glue", "--no-timing", "--json",
                                    tmp_path / "r.json"], capsys)
        assert status == 0, err
        reports.append(json.loads((tmp_path / "r.json").read_text()))
    assert reports[0]["per_exit"] == reports[1]["per_exit"]            # the packed file's biases hold it, once


def test_a_card_written_before_heldout_unit_existed_reads_as_rows(world, tmp_path):
    """LEGACY_TRAIN: a train_config without ``heldout_unit`` was trained on single held-out rows."""
    folder = edited(world, tmp_path, lambda c: c["train_config"].pop("heldout_unit"))
    assert open_checkpoint(folder).card.train_config.heldout_unit == "rows"
    assert open_checkpoint(world / "run" / "best").card.train_config.heldout_unit == "groups"


# ---- the cross-checks, each named ------------------------------------------------------------------------
def edited(world, tmp_path, change, name="best", run="run"):
    """A copy of the run's checkpoint ``name`` whose card ``change`` edits, its own checksum renewed."""
    folder = tmp_path / name
    shutil.copytree(world / run / name, folder)
    card = json.loads((folder / "checkpoint.json").read_text())
    change(card)
    (folder / "checkpoint.json").write_text(json.dumps(with_self_sum(card)))
    return folder


def with_arrays(folder, change, name="model.npz"):
    with np.load(folder / name) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    data = npz_bytes(arrays)
    (folder / name).write_bytes(data)
    card = json.loads((folder / "checkpoint.json").read_text())
    card["files"][name] = hashlib.sha256(data).hexdigest()
    (folder / "checkpoint.json").write_text(json.dumps(with_self_sum(card)))
    return folder


def nan_weight(arrays):
    arrays["exits.0.linear.weight"][0, 0] = np.nan


def more_vocab(card):
    card["tokenizer"]["vocab"].append("zzz")
    card["model_config"]["vocab_size"] += 1


def task(name):
    def change(card):
        card["task"] = card["train_config"]["task"] = name
    return change


CASES = [        # (what, how to make it from the trained run, what the one line says)
    ("NaN weight", lambda w, t: with_arrays(edited(w, t, lambda c: None), nan_weight),
     "parameter exits.0.linear.weight holds 1 NaN or infinite values"),
    ("vocabulary longer than the embedding", lambda w, t: edited(w, t, more_vocab), "the embedding has"),
    ("a 3-label task for a 2-class model", lambda w, t: edited(w, t, task("mnli")),
     "model_config.num_classes is 2 (regression False), but task mnli has 3 label(s)"),
    ("regression task for a classifier", lambda w, t: edited(w, t, task("stsb")), "task stsb has 1 label(s)"),
    ("a list where a dict should be", lambda w, t: edited(w, t, lambda c: c.update(model_config=[1])),
     "model_config must be a JSON object, got list"),
    ("a string for an int", lambda w, t: edited(w, t, lambda c: c["model_config"].update(heads="2")),
     "model_config.heads must be int, got '2'"),
    ("an unknown config field", lambda w, t: edited(w, t, lambda c: c["model_config"].update(depth=3)),
     "model_config.depth is not a ModelConfig field"),
    ("a dropped field, checksum not renewed", lambda w, t: drop_raw(w, t, "model_config", "binarize_activations"),
     "does not match its own checksum card_sha256 (model_config.binarize_activations missing)"),
    ("a unicode vocabulary token that is not a string", lambda w, t: edited(
        w, t, lambda c: c["tokenizer"]["vocab"].__setitem__(5, 7)), "tokenizer.vocab[5] must be a non-empty string"),
    ("a token twice", lambda w, t: edited(w, t, lambda c: c["tokenizer"]["vocab"].__setitem__(5, c["tokenizer"]["vocab"][6])),
     "twice"),
    ("an unknown task", lambda w, t: edited(w, t, task("nosuch")), "unknown GLUE task 'nosuch'"),
    ("NaN best score", lambda w, t: edited(w, t, lambda c: c["state"].update(best_score=float("nan"))),
     "state.best_score has the wrong type or value"),
    ("negative step", lambda w, t: edited(w, t, lambda c: c["state"].update(step=-1)),
     "state.step must be an integer >= 0, got -1"),
    ("a bad generator state", lambda w, t: edited(w, t, lambda c: c["rng"]["model"].update(bit_generator="XYZ")),
     "rng.model is not a NumPy generator state"),
    ("history and epoch disagree", lambda w, t: edited(w, t, lambda c: c.update(history=[])),
     "history holds 0 epochs, state.epoch is 1"),
    ("format 2 without its checksum", lambda w, t: drop_raw(w, t, "card_sha256"), "card_sha256 is missing"),
    ("train and model max_len disagree", lambda w, t: edited(w, t, lambda c: c["train_config"].update(max_len=9)),
     "train_config.max_len is 9, model_config.max_len 64"),
    ("a data checksum that is not one", lambda w, t: edited(w, t, lambda c: c.update(data={"SST-2/train.tsv": "x"})),
     "data must map each data file"),
    ("an unknown command", lambda w, t: edited(w, t, lambda c: c.update(command="finetune")),
     "command must be one of train, pretrain, got 'finetune'"),
    ("a mask rate out of range", lambda w, t: edited(w, t, lambda c: c["pretrain"].update(rate=1.5), "last", "mlm"),
     "pretrain.rate must be a number in (0, 1), got 1.5"),
    ("a pretrain run without its masking", lambda w, t: edited(w, t, lambda c: c.pop("pretrain"), "last", "mlm"),
     "pretrain must be a JSON object with 'levels' and 'rate', got None"),
    ("an init that is not a source", lambda w, t: edited(w, t, lambda c: c.update(init="mlm/last")),
     "init must be null or a JSON object with 'checkpoint', 'command', 'step' and 'pretrain'"),
    ("an init whose step is negative", lambda w, t: edited(w, t, lambda c: c.update(
        init=dict(checkpoint="mlm/last", command="pretrain", step=-3, pretrain=None))), "init must name a checkpoint"),
    ("a pretrain run without its head", lambda w, t: with_arrays(edited(w, t, lambda c: None, "last", "mlm"),
                                                                lambda a: a.pop("mlm/linear.weight"), "trainer.npz"),
     "optimizer array mlm/linear.weight is missing"),
    ("a train run called a pretrain run", lambda w, t: edited(w, t, lambda c: c.update(
        command="pretrain", pretrain=dict(levels="last", rate=0.15))), "optimizer array mlm/linear.bias is missing"),
]


def drop_raw(world, tmp_path, *path):
    folder = tmp_path / "best"
    shutil.copytree(world / "run" / "best", folder)
    card = json.loads((folder / "checkpoint.json").read_text())
    delete_at(card, path)
    (folder / "checkpoint.json").write_text(json.dumps(card))
    return folder


@pytest.mark.parametrize("what, make, message", CASES, ids=[c[0] for c in CASES])
def test_each_cross_check_names_the_field_and_the_file(world, tmp_path, capsys, what, make, message):
    folder = make(world, tmp_path)
    for argv in (["predict", folder, TEXT], ["size", folder]):
        status, out, err = run_cli(argv, capsys)
        assert_refused(status, out, err, names=[folder])
        assert message in err, err


def test_a_packed_file_is_checked_as_a_checkpoint_is(world, tmp_path, capsys):
    with np.load(world / "m.npz") as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays[META_KEY].tobytes())
    cases = {
        "nan.npz": (dict(arrays, **{"exits.1.linear.bias": np.full_like(arrays["exits.1.linear.bias"], np.nan)}),
                    "exits.1.linear.bias holds"),
        "labels.npz": (dict(arrays, **{META_KEY: encode_meta(with_self_sum(dict(meta, card=dict(
            meta["card"], task="mnli", train_config=dict(meta["card"]["train_config"], task="mnli")))))}),
            "task mnli has 3 label(s)"),
        "bits.npz": (dict(arrays, **{"blocks.0.attn.qkv.weight.bits":
                                     arrays["blocks.0.attn.qkv.weight.bits"].astype(np.int16)}), "must be uint8 bits"),
        "nometa.npz": ({k: v for k, v in arrays.items() if k != META_KEY}, "no __meta__ entry"),
        "edited.npz": (dict(arrays, **{META_KEY: encode_meta(dict(meta, real_dtype="float16"))}),
                       "does not match its own checksum"),
    }
    for name, (content, message) in cases.items():
        np.savez(tmp_path / name, **content)
        for argv in (["predict", tmp_path / name, TEXT], ["evaluate", tmp_path / name, "--glue-dir", world / "glue"],
                     ["size", tmp_path / name]):
            status, out, err = run_cli(argv, capsys)
            assert_refused(status, out, err, names=[tmp_path / name])
            assert message in err, (name, err)


# ---- the CLI opens packed files (the shipped ones too) -----------------------------------------------------
@pytest.mark.parametrize("name", ["sst2_small", "sst2_small_twin"])
def test_predict_and_size_open_the_shipped_models(name, capsys):
    path = SHIPPED / f"{name}.npz"
    status, out, err = run_cli(["predict", path, "a warm, moving and beautifully acted film", "--json"], capsys)
    assert status == 0, err
    answer = json.loads(out)
    assert answer["label"] == "positive" and 1 <= answer["exit_block"] <= answer["blocks"] == 4
    status, out, err = run_cli(["size", path, "--json"], capsys)
    assert status == 0, err
    assert json.loads(out)["config"] == open_packed(path).config.to_dict()


def test_evaluate_gives_a_packed_file_the_checkpoints_numbers(world, capsys, tmp_path):
    """The packed model computes the float binary model's logits: evaluate reports the same metrics for both."""
    reports = []
    for source in (world / "run" / "best", world / "m.npz"):
        status, out, err = run_cli(["evaluate", source, "--glue-dir", world / "glue", "--no-timing",
                                    "--json", tmp_path / "r.json"], capsys)
        assert status == 0, err
        reports.append(json.loads((tmp_path / "r.json").read_text()))
    for key in ("per_exit", "early_exit", "exit_histogram", "flops"):
        assert reports[0][key] == reports[1][key], key


def test_packed_files_are_refused_where_a_checkpoint_is_needed(world, tmp_path, capsys):
    for argv, message in ((["export", world / "m.npz", tmp_path / "y.npz"], "already a packed file"),
                          (["train", "--resume", world / "m.npz"], "a packed file holds no trainer state"),
                          (["pretrain", "--resume", world / "m.npz"], "a packed file holds no trainer state"),
                          (["train", "--init", world / "m.npz", *TINY_RUN], "a packed file holds the binarized"),
                          (["predict", world / "run" / "best" / "model.npz", TEXT], "give its folder")):
        status, out, err = run_cli(argv, capsys)
        assert_refused(status, out, err)
        assert message in err, err


# ---- one read per command --------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["evaluate", "CK", "--limit", "4", "--no-timing"], ["predict", "CK", TEXT],
                                  ["size", "CK"], ["export", "CK", "OUT.npz"], ["sweep", "CK", "--limit", "4",
                                                                                "--out", "RESUMED"],
                                  ["train", "--resume", "LAST", "--max-steps", "7", "--out", "RESUMED"],
                                  ["train", "--teacher", "CK", "--max-steps", "1", "--out", "RESUMED",
                                   "--no-progress", *TINY_RUN],
                                  ["pretrain", "--resume", "MLM", "--max-steps", "7", "--out", "RESUMED"],
                                  ["train", "--init", "MLM", "--max-steps", "1", "--out", "RESUMED", "--no-progress",
                                   *TINY_RUN]])
def test_every_command_reads_the_card_once(world, tmp_path, capsys, monkeypatch, argv):
    from beexnp import checkpoint
    reads = []
    real = checkpoint._read_checkpoint
    monkeypatch.setattr(checkpoint, "_read_checkpoint", lambda folder: reads.append(folder) or real(folder))
    names = dict(CK=world / "run" / "best", LAST=world / "run" / "last", MLM=world / "mlm" / "last",
                 RESUMED=tmp_path / "resumed",
                 **{"OUT.npz": tmp_path / "o.npz"})
    argv = [names.get(a, a) for a in argv] + ["--glue-dir", world / "glue"] * (argv[0] in ("evaluate", "train", "sweep",
                                                                                        "pretrain"))
    status, out, err = run_cli(argv, capsys)
    assert status == 0, err
    assert len(reads) == 1, reads


# ---- resume on changed data ----------------------------------------------------------------------------
def copy_run(world, tmp_path, run="run"):
    shutil.copytree(world / run, tmp_path / run)
    shutil.copytree(world / "glue", tmp_path / "glue")
    return tmp_path / run / "last", tmp_path / "glue"


@pytest.mark.parametrize("command, run", [("train", "run"), ("pretrain", "mlm")])
@pytest.mark.parametrize("split", ["train", "dev"])
def test_resume_on_changed_data_is_refused_naming_the_file(world, tmp_path, capsys, split, command, run):
    last, glue = copy_run(world, tmp_path, run)
    assert read_card(last)["data"].keys() == {"SST-2/train.tsv", "SST-2/dev.tsv"}
    data = glue / "SST-2" / f"{split}.tsv"
    data.write_text(data.read_text() + "a film added later\t1\n")
    before = tree_hashes(tmp_path)
    status, out, err = run_cli([command, "--resume", last, "--glue-dir", glue, "--epochs", "2"], capsys)
    assert_refused(status, out, err, names=[data])
    assert f"SST-2/{split}.tsv changed since the run read it" in err
    assert tree_hashes(tmp_path) == before


def test_resume_on_the_same_data_in_another_folder_goes_on(world, tmp_path, capsys):
    last, glue = copy_run(world, tmp_path)
    moved = tmp_path / "elsewhere"
    glue.rename(moved)
    status, out, err = run_cli(["train", "--resume", last, "--glue-dir", moved, "--epochs", "2", "--max-steps", "7", "--out",
                                tmp_path / "b", "--no-progress"], capsys)
    assert status == 0 and err == "", err
    assert read_card(tmp_path / "b" / "last")["state"]["step"] == 7


def test_an_old_card_without_data_checksums_resumes_with_a_warning(world, tmp_path, capsys):
    last, glue = copy_run(world, tmp_path)
    card = json.loads((last / "checkpoint.json").read_text())
    del card["data"]
    (last / "checkpoint.json").write_text(json.dumps(with_self_sum(card)))
    status, out, err = run_cli(["train", "--resume", last, "--glue-dir", glue, "--max-steps", "7", "--out",
                                tmp_path / "b", "--no-progress"], capsys)
    assert status == 0, err
    assert err.count("\n") == 1 and err.startswith("warning: ") and "records no checksum of its data files" in err
    assert read_card(tmp_path / "b" / "last")["data"] == read_card(world / "run" / "last")["data"]   # recorded now


# ---- in a separate process: no traceback ------------------------------------------------------------------
SUBPROCESS = [
    ("list card", lambda w, t: edited(w, t, lambda c: c.update(model_config=[1]))),
    ("nan", lambda w, t: with_arrays(edited(w, t, lambda c: None), nan_weight)),
    ("truncated npz", lambda w, t: truncated(w / "m.npz", t / "cut.npz")),
    ("empty npz", lambda w, t: empty_npz(t / "empty.npz")),
]


def truncated(source, target):
    target.write_bytes(source.read_bytes()[:1000])
    return target


def empty_npz(target):
    np.savez(target)
    return target


@pytest.mark.parametrize("what, make", SUBPROCESS, ids=[s[0] for s in SUBPROCESS])
def test_no_traceback_in_a_real_process(world, tmp_path, what, make):
    target = make(world, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "beexnp", "predict", str(target), TEXT], capture_output=True,
                          text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and str(target) in proc.stderr


def test_a_saved_card_has_every_field_and_its_own_checksum(world):
    saved = open_checkpoint(world / "run" / "last", resume=True)
    card = saved.raw
    assert card["format_version"] == 2 and with_self_sum(card)[SELF_SUM] == card[SELF_SUM]
    assert set(card["model_config"]) == set(saved.config.to_dict())
    arrays, meta = read_packed(world / "m.npz")
    assert with_self_sum(meta)[SELF_SUM] == meta[SELF_SUM] and SELF_SUM not in meta["card"]


# ---- what beexnp writes, it reads ---------------------------------------------------------------------------
@st.composite
def saved_models(draw):
    """A tiny model of any architecture, a tokenizer of its vocabulary and a task of its label count."""
    from beexnp.config import ModelConfig
    task = draw(st.sampled_from(["sst2", "mnli", "stsb", "rte"]))
    from beexnp.glue.tasks import get_task
    t = get_task(task)
    token = draw(st.integers(1, 9))
    position = draw(st.integers(0, 7).filter(lambda p: (token + p) % 2 == 0))
    pairs = draw(st.sampled_from(["joint", "siamese", "siamese + cosine"])) if t.pair else "joint"
    config = ModelConfig(vocab_size=draw(st.integers(5, 12)), num_classes=t.num_labels, regression=t.regression,
                         token_dim=token, position_dim=position, heads=2, blocks=draw(st.integers(1, 3)),
                         ffn=draw(st.sampled_from(["slfn", "ffn"])), binarize=draw(st.booleans()),
                         binarize_embeddings=draw(st.booleans()), segments=draw(st.booleans()) and t.pair,
                         pair_encoding=pairs.split()[0], pair_cosine="cosine" in pairs, max_len=64)
    words = [f"w{i}é" for i in range(config.vocab_size - 4)]                 # unicode tokens too
    return task, config, words


@settings(max_examples=25, deadline=None)
@given(case=saved_models(), seed=st.integers(0, 2**16))
def test_every_checkpoint_beexnp_saves_opens_and_exports(tmp_path_factory, case, seed):
    from beexnp.checkpoint import save_checkpoint
    from beexnp.glue import Tokenizer
    from beexnp.model import BEExformer
    from beexnp.packed import save_packed
    task, config, words = case
    tmp = tmp_path_factory.mktemp("saved")
    model = BEExformer(config, np.random.default_rng(seed))
    tokenizer = Tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + words)
    meta = {"task": task, "tokenizer": tokenizer.state_dict(), "metrics": {"dev": [{"accuracy": 0.5}]},
            "notes": {1: "an int key", 10: "sorts", 2: "differently"}, "pair": (1, 2)}
    save_checkpoint(tmp / "ck", model, meta)
    saved = open_checkpoint(tmp / "ck")
    assert saved.config == config and saved.card.tokenizer.vocab == tokenizer.vocab
    save_packed(tmp / "m.npz", saved.model(), saved.raw)
    packed = open_packed(tmp / "m.npz")
    assert packed.config == config and packed.card.task.name == task


# ---- paths that are not what they seem ----------------------------------------------------------------------
def make_path(world, tmp_path, kind):
    """A path of ``kind`` for predict to open."""
    import os
    target = tmp_path / "thing.npz"
    if kind == "symlinked checkpoint":
        target = tmp_path / "link"
        target.symlink_to(world / "run" / "best")
    elif kind == "dangling symlink":
        target.symlink_to(tmp_path / "nowhere")
    elif kind == "folder named x.npz":
        target.mkdir()
    elif kind == "checkpoint in a folder named x.npz":
        shutil.copytree(world / "run" / "best", target)
    elif kind == "FIFO named x.npz":
        os.mkfifo(target)
    elif kind == "packed file without the notebooks' .json record":
        shutil.copy(SHIPPED / "sst2_small.npz", target)
    elif kind == "empty .npz":
        np.savez(target)
    elif kind == "text file named x.npz":
        target.write_text("hello\n")
    elif kind == "zero bytes":
        target.write_bytes(b"")
    elif kind == "a checkpoint's model.npz":
        target = world / "run" / "best" / "model.npz"
    return target


PATHS = [("symlinked checkpoint", 0, ""), ("dangling symlink", 1, "not a packed file: nothing there"),
         ("folder named x.npz", 1, "not a checkpoint: the folder has no checkpoint.json"),
         ("checkpoint in a folder named x.npz", 0, ""), ("FIFO named x.npz", 1, "not a checkpoint: a file, not a"),
         ("packed file without the notebooks' .json record", 0, ""), ("empty .npz", 1, "no __meta__ entry"),
         ("text file named x.npz", 1, "not a readable .npz archive (neither a zip archive nor an array)"),
         ("zero bytes", 1, "not a readable .npz archive"), ("a checkpoint's model.npz", 1, "give its folder")]


@pytest.mark.parametrize("kind, status, message", PATHS, ids=[p[0] for p in PATHS])
def test_paths_that_are_not_what_they_seem(world, tmp_path, capsys, kind, status, message):
    target = make_path(world, tmp_path, kind)
    got, out, err = run_cli(["predict", target, TEXT], capsys)
    if status:
        assert_refused(got, out, err, names=[target])
        assert message in err, err
    else:
        assert got == 0 and err == "" and out.startswith("label: "), err


@pytest.mark.parametrize("change, message", [
    (lambda c: c["state"].update(batch_in_epoch=99), "state.batch_in_epoch is 99, an epoch of this data has 6 batches"),
    (lambda c: c["state"].update(running={"loss": 1.0}), "state.running must hold the numbers"),
    (lambda c: c["optimizer"].update(step="6"), "optimizer must be {'step': an integer >= 0"),
], ids=["an epoch longer than the data (it would never end)", "the epoch's sums", "a string step"])
def test_a_resume_from_a_card_that_cannot_be_continued_is_refused(world, tmp_path, capsys, change, message):
    last = edited(world, tmp_path, change, name="last")
    before = tree_hashes(tmp_path)
    status, out, err = run_cli(["train", "--resume", last, "--glue-dir", world / "glue", "--epochs", "2",
                                "--no-progress"], capsys)
    assert_refused(status, out, err, names=[last])
    assert message in err, err
    assert tree_hashes(tmp_path) == before


def test_json_nested_too_deeply_is_one_line(world, tmp_path, capsys):
    folder = edited(world, tmp_path, lambda c: None)
    (folder / "checkpoint.json").write_text("[" * 100000 + "]" * 100000)
    status, out, err = run_cli(["predict", folder, TEXT], capsys)
    assert_refused(status, out, err, names=[folder])
    assert "not valid JSON: nested too deeply" in err
    config = tmp_path / "deep.json"
    config.write_text("[" * 100000 + "]" * 100000)
    status, out, err = run_cli(["train", "--config", config, "--out", tmp_path / "o"], capsys)
    assert_refused(status, out, err, names=[config])
