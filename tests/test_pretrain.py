"""The pretrain command and train --init (DESIGN §11), on a tiny synthetic SST-2."""
import re
import signal

import numpy as np
import pytest

from beexnp.checkpoint import read_card
from beexnp.cli import main
from beexnp.config import TrainConfig
from beexnp.pretrain import EXITS, Pretrainer, load_encoder
from beexnp.train import Trainer
from conftest import TINY_MODEL

TINY_FLAGS = ["--token-dim", "12", "--position-dim", "4", "--heads", "2", "--blocks", "3", "--min-freq", "1",
              "--batch-size", "16", "--no-progress"]


def config(**train):
    return TrainConfig(**{**dict(task="sst2", epochs=3, batch_size=16, min_freq=1, lr=3e-3, warmup=0.1,
                                 save_every=5), **train})


def make_pretrainer(glue_dir, out, levels="all", **train):
    return Pretrainer(config(**train), TINY_MODEL, out, glue_dir=glue_dir, progress=False, levels=levels)


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("half", [7, 16])          # mid-epoch, and exactly at an epoch's end
def test_pretrain_resume_continues_exactly(glue_dir, tmp_path, half):
    """The model, the head, the optimizer and the history of a run stopped at ``half`` and resumed are those of
    the run that never stopped (the masking is drawn per step, DESIGN §11.1)."""
    whole, split = (make_pretrainer(glue_dir, tmp_path / name, max_steps=steps) for name, steps in
                (("whole", 2 * half), ("split", half)))
    for run in (whole, split):
        run.fit()
    second = Pretrainer.resume(tmp_path / "split" / "last", glue_dir=glue_dir, progress=False, max_steps=2 * half)
    assert second.state["step"] == half and second.objective.levels == "all"
    second.fit()
    assert_same(whole.model.state_dict(), second.model.state_dict())
    assert_same(whole.head.state_dict(), second.head.state_dict())
    assert_same(whole.optimizer.state_dict()["arrays"], second.optimizer.state_dict()["arrays"])
    untimed = [[{k: v for k, v in r.items() if k != "seconds"} for r in run.history] for run in (whole, second)]
    assert untimed[0] == untimed[1]


def test_pretraining_learns_and_leaves_the_exit_heads_alone(glue_dir, tmp_path):
    trainer = make_pretrainer(glue_dir, tmp_path / "run", epochs=4)
    start = trainer.model.state_dict()
    history = trainer.fit()
    end = trainer.model.state_dict()
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.1
    assert history[-1]["dev"]["dev"]["loss"] < history[0]["dev"]["dev"]["loss"]
    assert all(np.array_equal(start[k], end[k]) for k in start if k.startswith(EXITS))
    assert not np.array_equal(start["blocks.0.attn.qkv.weight"], end["blocks.0.attn.qkv.weight"])
    card = read_card(tmp_path / "run" / "last")
    assert card["command"] == "pretrain" and card["pretrain"] == dict(levels="all", rate=0.15)
    assert not (tmp_path / "run" / "best").exists()


def test_pretraining_reads_the_fine_tuning_rows_only(glue_dir, tmp_path):
    """select_on heldout: the held-out rows leave the pretraining text too, and the vocabulary is the fine-tune's."""
    cfg = config(select_on="heldout")
    pre = Pretrainer(cfg, TINY_MODEL, tmp_path / "a", glue_dir=glue_dir, progress=False)
    fine = Trainer(cfg, TINY_MODEL, tmp_path / "b", glue_dir=glue_dir, progress=False)
    assert len(pre.train_data) == len(fine.train_data) < 256
    assert np.array_equal(pre.train_data.lengths, fine.train_data.lengths)
    assert pre.tokenizer.vocab == fine.tokenizer.vocab


def test_init_loads_the_encoder_and_leaves_fresh_exit_heads(glue_dir, tmp_path):
    pre = make_pretrainer(glue_dir, tmp_path / "mlm", epochs=1)
    pre.fit()
    cfg = config(epochs=1)
    fresh = Trainer(cfg, TINY_MODEL, tmp_path / "a", glue_dir=glue_dir, progress=False)
    init = load_encoder(Trainer(cfg, TINY_MODEL, tmp_path / "b", glue_dir=glue_dir, progress=False),
                        tmp_path / "mlm" / "last")
    got, pretrained, own = init.model.state_dict(), pre.model.state_dict(), fresh.model.state_dict()
    for k in got:
        assert np.array_equal(got[k], own[k] if k.startswith(EXITS) else pretrained[k]), k
    assert init.init_source["command"] == "pretrain" and init.init_source["step"] == pre.state["step"]


def test_pretrain_then_train_init_from_the_command_line(glue_dir, tmp_path, capsys):
    mlm, ft = tmp_path / "mlm", tmp_path / "ft"
    assert main(["pretrain", "--task", "sst2", "--glue-dir", str(glue_dir), "--out", str(mlm), "--epochs", "1",
                 *TINY_FLAGS]) == 0
    assert "train --task sst2 --init" in capsys.readouterr().out
    assert main(["train", "--task", "sst2", "--glue-dir", str(glue_dir), "--out", str(ft), "--epochs", "1",
                 "--init", str(mlm / "last"), *TINY_FLAGS]) == 0
    card = read_card(ft / "best")
    assert card["init"]["checkpoint"] == str(mlm / "last") and card["init"]["pretrain"]["levels"] == "last"
    assert main(["train", "--resume", str(ft / "last"), "--epochs", "2", "--glue-dir", str(glue_dir),
                 "--no-progress"]) == 0
    assert read_card(ft / "last")["init"] == card["init"]            # a resumed run keeps where it started from


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture
def pretrained(glue_dir, tmp_path):
    out = tmp_path / "mlm"
    make_pretrainer(glue_dir, out, max_steps=3).fit()
    return out / "last"


@pytest.mark.parametrize("flags, message", [
    (["--train-subset", "20"], "vocabulary (.*) differs from this run's .*--init"),
    (["--token-dim", "16"], "encoder does not fit this model .*--init"),
    (["--blocks", "2"], "encoder does not fit this model .*unexpected parameters"),
])
def test_bad_init_is_one_line(glue_dir, tmp_path, pretrained, capsys, flags, message):
    capsys.readouterr()
    argv = ["train", "--task", "sst2", "--glue-dir", str(glue_dir), "--out", str(tmp_path / "ft"), "--epochs", "1",
            "--init", str(pretrained), *TINY_FLAGS, *flags]
    assert main(argv) == 1
    assert re.search(message, one_error_line(capsys))


def test_a_refused_init_with_overwrite_leaves_the_old_run(glue_dir, tmp_path, pretrained, capsys):
    """--overwrite deletes the old run only once every input is checked, --init's vocabulary included (it is known
    only after the data is read)."""
    out = tmp_path / "ft"
    Trainer(config(max_steps=2), TINY_MODEL, out, glue_dir=glue_dir, progress=False).fit()
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    capsys.readouterr()
    argv = ["train", "--task", "sst2", "--glue-dir", str(glue_dir), "--out", str(out), "--epochs", "1", "--overwrite",
            "--init", str(pretrained), *TINY_FLAGS, "--train-subset", "20"]
    assert main(argv) == 1
    assert "--init" in one_error_line(capsys)
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before


def test_init_that_is_no_checkpoint_or_with_resume_is_one_line(glue_dir, tmp_path, pretrained, capsys):
    capsys.readouterr()
    base = ["train", "--task", "sst2", "--glue-dir", str(glue_dir), "--out", str(tmp_path / "ft"), *TINY_FLAGS]
    assert main(base + ["--init", str(tmp_path / "nowhere")]) == 1
    assert f"({tmp_path / 'nowhere'}): " in one_error_line(capsys)
    assert not (tmp_path / "ft").exists(), "refused before anything was written"
    assert main(["train", "--resume", str(pretrained), "--init", str(pretrained)]) == 1
    assert "together" in one_error_line(capsys)


def test_each_command_resumes_only_its_own_runs(glue_dir, tmp_path, pretrained, capsys):
    capsys.readouterr()
    assert main(["train", "--resume", str(pretrained), "--glue-dir", str(glue_dir)]) == 1
    assert "python -m beexnp pretrain --resume" in one_error_line(capsys)
    Trainer(config(max_steps=2), TINY_MODEL, tmp_path / "t", glue_dir=glue_dir, progress=False).fit()
    assert main(["pretrain", "--resume", str(tmp_path / "t" / "last"), "--glue-dir", str(glue_dir)]) == 1
    assert "python -m beexnp train --resume" in one_error_line(capsys)
    assert main(["pretrain", "--resume", str(pretrained), "--mlm-blocks", "last", "--glue-dir", str(glue_dir)]) == 1
    assert "--mlm-blocks" in one_error_line(capsys)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_during_pretraining_saves_last_and_names_the_pretrain_command(glue_dir, tmp_path, capsys,
                                                                                     signum):
    """Ctrl-C's, SIGTERM's and SIGHUP's handler asks to stop (``StopRequest.handler``): the step ends, 'last' is
    written at it."""
    trainer = make_pretrainer(glue_dir, tmp_path / "run", max_steps=50)
    step = trainer.train_step
    trainer.train_step = lambda *a: (step(*a), trainer.stop.handler(signum, None) if trainer.state["step"] == 8
                                     else 0)[0]
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    err = capsys.readouterr().err
    assert "saved" in err and "python -m beexnp pretrain --resume" in err
    assert Pretrainer.resume(tmp_path / "run" / "last", glue_dir=glue_dir, progress=False).state["step"] == 9
