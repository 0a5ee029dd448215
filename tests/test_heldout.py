"""Honest selection (DESIGN §9.1): the held-out rows, their stored file, the trainer and the sweep choosing
on them, dev scored at the end; and checkpoints from before these options still load and resume."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beexnp.checkpoint import load_model, read_card
from beexnp.cli import main
from beexnp.config import ModelConfig, TrainConfig
from beexnp.evaluate import evaluate_checkpoint
from beexnp.glue import Tokenizer, load_split
from beexnp.glue.heldout import (HeldoutMismatch, ensure_heldout_file, grouped_heldout, held_and_dropped, heldout_rows,
                                 load_heldout, near_duplicate_groups, phrase_heldout, split_heldout, unit_name)
from beexnp.sweep import choose, run_sweep
from beexnp.train import Trainer
from conftest import TINY_MODEL, rewrite_card

ROOT = Path(__file__).resolve().parent.parent


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 5000), fraction=st.floats(0.01, 0.99), seed=st.integers(0, 2**31))
def test_heldout_rows_are_a_fixed_fraction_of_distinct_rows(n, fraction, seed):
    rows = heldout_rows("sst2", n, fraction, seed)
    assert rows.dtype == np.int64 and np.all(np.diff(rows) > 0) and 0 <= rows[0] and rows[-1] < n
    assert len(rows) == min(max(round(fraction * n), 1), n - 1)
    np.testing.assert_array_equal(rows, heldout_rows("SST-2", n, fraction, seed))     # (task, seed, n) only


def test_heldout_rows_depend_on_task_and_seed():
    a = heldout_rows("cola", 1000)
    assert len(a) == 100
    assert not np.array_equal(a, heldout_rows("cola", 1000, seed=1))
    assert not np.array_equal(a, heldout_rows("mrpc", 1000))
    with pytest.raises(ValueError, match="at least 2 training rows"):
        heldout_rows("cola", 1)


PHRASES = ["a good film", "good film", "a good", "film", "a bad movie", "bad movie", "movie", "bad",
           "the plot is thin", "the plot", "plot is thin", "thin", "good"]          # SST-2: sentences and their phrases


def test_phrase_heldout_holds_out_whole_sentences_and_their_phrases():
    held, dropped = phrase_heldout(PHRASES, "sst2", fraction=0.5, seed=0)
    sentences = {"a good film", "a bad movie", "the plot is thin"}              # no row holds them
    assert len(held) == 2 and {PHRASES[i] for i in held} <= sentences         # round(0.5 * 3) sentences
    for h in held:                                                              # every phrase of a held sentence
        spans = {" ".join(PHRASES[h].split()[i:j]) for i in range(4) for j in range(i + 1, 5)}
        assert {i for i, t in enumerate(PHRASES) if t in spans and i != h} <= set(dropped)
    kept = set(range(len(PHRASES))) - set(held) - set(dropped)
    assert kept and all(f" {PHRASES[k]} " not in f" {PHRASES[h]} " for k in kept for h in held)   # none leaks
    np.testing.assert_array_equal(held, phrase_heldout(PHRASES, "sst2", 0.5, 0)[0])            # fixed
    spaced = [t + " " for t in PHRASES]                                         # SST-2's rows end with a space
    np.testing.assert_array_equal(phrase_heldout(spaced, "sst2", 0.5, 0)[0], held)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.lists(st.sampled_from("abc"), min_size=1, max_size=5).map(" ".join), min_size=2,
                     max_size=12))
def test_phrase_heldout_draws_from_the_rows_no_other_row_contains(rows):
    """DESIGN §9.1 by brute force: a sentence is a row that is no contiguous word span of another row (duplicates
    included); the held rows are sentences, and every row inside a held sentence leaves training."""
    def inside(short, long):                                    # a proper contiguous word span
        s, w = short.split(), long.split()
        return len(s) < len(w) and any(w[i:i + len(s)] == s for i in range(len(w) - len(s) + 1))
    sentences = [i for i, r in enumerate(rows) if not any(inside(r, o) for o in rows)]
    if len(sentences) < 2:
        with pytest.raises(ValueError, match="at least 2 rows that no other row contains"):
            phrase_heldout(rows, "sst2")
        return
    held, dropped = phrase_heldout(rows, "sst2", fraction=0.5, seed=0)
    assert len(held) == min(max(round(0.5 * len(sentences)), 1), len(sentences) - 1)
    np.testing.assert_array_equal(held, np.array(sentences)[heldout_rows("sst2", len(sentences), 0.5, 0)])
    assert set(dropped) == {i for i, r in enumerate(rows) if i not in held
                            and any(r == rows[h] or inside(r, rows[h]) for h in held)}


def test_split_heldout_partitions_the_rows(glue_dir):
    train = load_split("sst2", "train", glue_dir)
    kept, held = split_heldout(train, 0.1, 0)
    assert (len(kept), len(held)) == (232, 24) and held.split == "heldout"      # 10% of its 244 sentences (§9.1)
    assert sorted(set(kept.lines) | set(held.lines)) == sorted(train.lines) and not set(kept.lines) & set(held.lines)
    assert list(held.lines) == list(load_heldout("sst2", glue_dir, 0.1, 0).lines)


def test_the_heldout_file_is_written_once_then_checked(glue_dir, tmp_path):
    folder = tmp_path / "heldout"
    path = ensure_heldout_file(folder, "sst2", glue_dir)
    record = json.loads(path.read_text())
    assert path.name == "sst2.json" and record["n_rows"] == 256 and len(record["rows"]) == 24
    assert record["train_file"] == "SST-2/train.tsv" and len(record["train_sha256"]) == 64
    assert ensure_heldout_file(folder, "sst2", glue_dir) == path                 # the same: fine
    with pytest.raises(HeldoutMismatch, match="another held-out seed"):
        ensure_heldout_file(folder, "sst2", glue_dir, seed=1)
    with pytest.raises(HeldoutMismatch, match="another number of training rows"):
        ensure_heldout_file(folder, "sst2", glue_dir, train_subset=100)
    path.write_text(json.dumps(dict(record, rows=record["rows"][::-1])))
    with pytest.raises(HeldoutMismatch, match="draws other rows"):
        ensure_heldout_file(folder, "sst2", glue_dir)
    path.write_text(json.dumps(record))
    train_file = glue_dir / "SST-2" / "train.tsv"
    train_file.write_text(train_file.read_text().replace("good", "nice"))
    with pytest.raises(HeldoutMismatch, match="training file changed"):
        ensure_heldout_file(folder, "sst2", glue_dir)


def heldout_trainer(glue_dir, out, **train):
    cfg = TrainConfig(**{**dict(task="sst2", epochs=2, batch_size=16, min_freq=1, lr=3e-3, select_on="heldout"),
                         **train})
    return Trainer(cfg, TINY_MODEL, out, glue_dir=glue_dir, progress=False)


def test_trainer_selects_on_the_heldout_rows_and_never_reads_dev(glue_dir, tmp_path):
    trainer = heldout_trainer(glue_dir, tmp_path / "run")
    kept, held = split_heldout(load_split("sst2", "train", glue_dir))
    assert len(trainer.train_data) == len(kept) and list(trainer.selection) == ["heldout"]
    assert len(trainer.selection["heldout"]) == len(held) == 24
    assert trainer.tokenizer.vocab == Tokenizer.fit(kept.text_a, min_freq=1).vocab     # no held-out word counted
    evaluated = []
    evaluate = trainer.evaluate
    trainer.evaluate = lambda encoded: evaluated.append(encoded.split) or evaluate(encoded)
    history = trainer.fit()
    assert evaluated == ["heldout", "heldout"]                                # dev is not scored while training
    assert all("heldout" in r and "dev" not in r for r in history)
    card = read_card(tmp_path / "run" / "best")
    assert list(card["metrics"]) == ["heldout"] and card["train_config"]["select_on"] == "heldout"
    assert card["state"]["best_score"] == max(r["score"] for r in history)


def test_sweep_chooses_delta_on_heldout_and_reports_dev(glue_dir, tmp_path):
    trainer = heldout_trainer(glue_dir, tmp_path / "run", epochs=1)
    trainer.fit()
    best = tmp_path / "run" / "best"
    result, _, _ = run_sweep(best, tmp_path / "sweep", glue_dir=glue_dir)
    assert result["selected_on"] == "heldout" and result["split"] == "dev"
    picked = choose(result["selection_rows"])
    assert result["chosen_on_selection"] == picked
    assert (result["chosen"]["criterion"], result["chosen"]["threshold"]) == ("fractional", picked["threshold"])
    assert result["chosen"] in result["rows"]                                 # the dev row at that threshold
    assert result["matched"]["budget"] == picked["mean_flops"]
    for m in result["matched"]["criteria"]:
        if m["selection"] is not None:
            assert m["selection"]["mean_flops"] <= 1.02 * picked["mean_flops"]
            assert m["report"] in result["rows"] and m["report"]["threshold"] == m["threshold"]
    on_dev, _, _ = run_sweep(best, tmp_path / "dev_sweep", glue_dir=glue_dir, select_on="dev")
    assert on_dev["selected_on"] == "dev" and on_dev["chosen"] == choose(on_dev["rows"])
    report = evaluate_checkpoint(best, split="heldout", glue_dir=glue_dir, timing=False)
    assert report["split"] == "heldout" and report["examples"] == 24


def test_a_dev_selected_checkpoint_has_no_heldout_split(glue_dir, tmp_path):
    Trainer(TrainConfig(task="sst2", max_steps=2, batch_size=16, min_freq=1), TINY_MODEL, tmp_path / "run",
            glue_dir=glue_dir, progress=False).fit()
    with pytest.raises(ValueError, match="selected on dev and trained on every training row"):
        evaluate_checkpoint(tmp_path / "run" / "last", split="heldout", glue_dir=glue_dir, timing=False)


def test_train_command_scores_dev_once_at_the_end(glue_dir, tmp_path, capsys):
    assert main(["train", "--task", "sst2", "--glue-dir", str(glue_dir), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--batch-size", "32", "--min-freq", "1", "--token-dim", "12", "--position-dim", "4",
                 "--heads", "2", "--blocks", "2", "--select-on", "heldout", "--heldout-fraction", "0.2",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1: heldout accuracy per exit" in out
    assert "dev accuracy per exit of the best checkpoint (chosen on the held-out rows)" in out
    assert len(Trainer.resume(tmp_path / "run" / "last", glue_dir=glue_dir, progress=False).selection["heldout"]) == 49


NEW_MODEL_FIELDS = ("slfn_gates", "segments", "pair_encoding")
NEW_TRAIN_FIELDS = ("select_on", "heldout_fraction", "heldout_seed", "teacher", "distill_weight",
                    "distill_temperature", "distill_from")


def test_checkpoints_from_before_the_new_options_load_and_resume(glue_dir, tmp_path):
    """A card without the new fields (as every checkpoint before them) gives today's model and run."""
    cfg = TrainConfig(task="sst2", epochs=1, max_steps=3, batch_size=16, min_freq=1, save_every=3)
    trainer = Trainer(cfg, TINY_MODEL, tmp_path / "run", glue_dir=glue_dir, progress=False)
    trainer.fit()
    last = tmp_path / "run" / "last"
    card_path = last / "checkpoint.json"
    card = json.loads(card_path.read_text())
    card["format_version"] = 1                                          # as cards were written then:
    for key in ("card_sha256", "data"):                                 # no checksum of their own or of the data
        del card[key]
    for key in NEW_MODEL_FIELDS:
        del card["model_config"][key]
    for key in NEW_TRAIN_FIELDS:
        del card["train_config"][key]
    card_path.write_text(json.dumps(card))
    model, _ = load_model(last)
    assert model.config == trainer.model_config
    assert ModelConfig.from_dict(card["model_config"]) == trainer.model_config
    for name, p in trainer.model.parameters():
        np.testing.assert_array_equal(dict(model.parameters())[name].data, p.data)
    del card["state"]["selection_score"]                               # SST-2 chose on accuracy then too
    card_path.write_text(json.dumps(card))
    resumed = Trainer.resume(last, glue_dir=glue_dir, progress=False, max_steps=5)
    assert resumed.cfg.select_on == "dev" and resumed.cfg.teacher is None
    assert len(resumed.train_data) == 256 and resumed.objective.teacher is None
    resumed.fit()
    assert resumed.state["step"] == 5


def test_a_run_whose_best_epoch_was_chosen_on_another_score_does_not_resume(glue_dir, tmp_path):
    """A checkpoint that compared epochs on another score (an MRPC run on F1, before DESIGN §9.2) would compare
    its old best with the new score: refused, with the reason."""
    cfg = TrainConfig(task="sst2", epochs=1, max_steps=3, batch_size=16, min_freq=1, save_every=3)
    Trainer(cfg, TINY_MODEL, tmp_path / "run", glue_dir=glue_dir, progress=False).fit()
    card = rewrite_card(tmp_path / "run" / "last",
                        lambda card: card["state"].update(selection_score="f1", best_score=0.9, best_epoch=1))
    assert card["state"]["selection_score"] == "f1"
    with pytest.raises(ValueError, match="chose its best epoch on f1, and sst2 now chooses on accuracy"):
        Trainer.resume(tmp_path / "run" / "last", glue_dir=glue_dir, progress=False, max_steps=5)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(st.lists(st.sampled_from("abcd"), min_size=1, max_size=4).map(" ".join),
                               st.lists(st.sampled_from("abcd"), min_size=1, max_size=4).map(" ".join)),
                     min_size=2, max_size=14), fraction=st.floats(0.05, 0.9), seed=st.integers(0, 99))
def test_grouped_heldout_leaves_no_sentence_nor_a_word_away_in_training(rows, fraction, seed):
    """DESIGN §9.1 by brute force: two rows are linked when a sentence of one equals a sentence of the other or
    is one word substitution, insertion or deletion from it; no held-out row is linked to a training row."""
    def near(s, t):
        s, t = s.split(), t.split()
        if len(s) == len(t):                                    # a substitution, or two neighbours swapped
            return sum(a != b for a, b in zip(s, t)) <= 1 or any(s[:i] + s[i + 1:] == t[:i] + t[i + 1:]
                                                                   for i in range(len(s)))
        short, long = sorted((s, t), key=len)
        return len(long) - len(short) == 1 and any(long[:i] + long[i + 1:] == short for i in range(len(long)))
    texts = [list(r) for r in rows]
    groups = near_duplicate_groups(texts)
    if len(set(groups.tolist())) < 2:
        with pytest.raises(ValueError, match="at least 2 groups"):
            grouped_heldout(groups, "mrpc", fraction, seed)
        return
    held = grouped_heldout(groups, "mrpc", fraction, seed)
    train = sorted(set(range(len(rows))) - set(held.tolist()))
    assert 0 < len(held) and train and np.all(np.diff(held) > 0)
    assert not any(near(a, b) for h in held for t in train for a in texts[h] for b in texts[t])
    assert set(groups[held].tolist()).isdisjoint(groups[train].tolist())             # whole groups
    np.testing.assert_array_equal(held, grouped_heldout(groups, "MRPC", fraction, seed))   # (task, seed) fix it
    k = max(round(fraction * len(rows)), 1)
    assert len(held) >= k or len(set(groups[train].tolist())) == 1                    # enough, or one group left


def test_the_groups_link_minimal_pairs_and_shared_sentences():
    texts = [["One more pseudo generalization and I'm giving up."], ["One more pseudo generalization or I'm giving up."],
             ["The more we study verbs, the crazier they get."], ["Day by day the facts are getting murkier."],
             ["Day by day the facts are getting murkier and murkier."]]
    groups = near_duplicate_groups(texts)
    assert groups.tolist() == [0, 0, 2, 3, 4]                        # two words added: not a word away
    pairs = [["a b c", "x y"], ["d e f", "a b c"], ["g h", "i j"], ["x y z", "k l"]]
    assert near_duplicate_groups(pairs).tolist() == [0, 0, 2, 0]     # shared "a b c"; "x y" -> "x y z"


@pytest.mark.glue
@pytest.mark.skipif(not (Path(os.environ.get("GLUE_DIR", "-")) / "CoLA").is_dir(), reason="needs GLUE_DIR with CoLA")
def test_rows_unit_reproduces_the_slice_before_issue_25():
    train = load_split("cola", "train", os.environ["GLUE_DIR"])
    stored = json.loads((ROOT / "experiments" / "heldout" / "cola-rows.json").read_text())
    held, _ = held_and_dropped(train, unit="rows")
    assert held.tolist() == stored["rows"] and stored.get("unit", "rows") == "rows"
    grouped = json.loads((ROOT / "experiments" / "heldout" / "cola.json").read_text())
    assert grouped["unit"] == "near-duplicate groups" and grouped["rows"] == held_and_dropped(train)[0].tolist()
    assert unit_name("sst2", "rows") == unit_name("sst2") == "sentences"
    with pytest.raises(ValueError, match="held-out unit"):
        unit_name("cola", "blocks")


@pytest.mark.glue
@pytest.mark.skipif(not (Path(os.environ.get("GLUE_DIR", "-")) / "CoLA").is_dir(), reason="needs GLUE_DIR")
def test_design_quotes_the_measured_leaks():
    """DESIGN §9.1's leak table and CoLA's twins are what experiments/heldout_leaks.py measures."""
    sys.path.insert(0, str(ROOT / "experiments"))
    import heldout_leaks
    design = (ROOT / "docs" / "DESIGN.md").read_text()
    leaks = heldout_leaks.measure(os.environ["GLUE_DIR"], ("cola", "mrpc", "stsb", "rte", "wnli"))
    for task, r in leaks.items():
        assert r["groups"]["same"] == r["groups"]["near"] == 0                    # by construction
        name = {"cola": "CoLA", "mrpc": "MRPC", "stsb": "STS-B", "rte": "RTE", "wnli": "WNLI"}[task]
        row = f"{name:<8} {100 * r['rows']['same']:.1f} % / {100 * r['rows']['near']:.1f} %"
        assert row in design, row
    t = leaks["cola"]["twins"]
    for text in (f"{100 * t['adjacent']:.1f} % of\nadjacent rows", f"{100 * t['with_twin']:.1f} % of its rows",
                 f"{100 * t['twin_adjacent']:.0f} % of those", f"{100 * t['twin_within_50']:.0f} % within",
                 f"still leave {100 * t['other_block']:.1f} %", f"{t['groups']:,} groups, the largest {t['largest']}"):
        assert text in design, text
