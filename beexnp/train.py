"""Training a BEExformer on a GLUE task: the loop, evaluation at every exit, checkpoints.

One step:  logits = model(ids, mask);  L = MultiExitLoss(logits, y);
           backward;  clip the global gradient norm;  lr = schedule(step);  optimizer step.

Each epoch ends with the task's metrics at every exit on the selection split
(dev, or the held-out rows); the best checkpoint (the best exit's selection
score, DESIGN §9.2) is kept in ``OUT/best``, the latest state in ``OUT/last``
(also every ``save_every`` steps), and ``OUT/history.json`` records the curves
(the history is in every checkpoint's card too).  One seed makes a run bitwise
repeatable, and ``resume`` continues a run exactly as if it had never stopped:
the data order is redrawn from the saved state of its Generator at the start of
the epoch and the batches already done are skipped.

Nothing is lost on an interruption.  While ``fit`` runs, Ctrl-C (SIGINT), SIGTERM
(``kill``, a job scheduler, a container stop) and SIGHUP (a closing terminal) ask
the loop to stop at the end of the current step; it then writes ``OUT/last``
and says how to continue (during a dev evaluation, which changes nothing, it
stops at once, and ``last`` is written all the same).  Checkpoints are written
whole and swapped in (``beexnp.checkpoint``), so a kill or a full disk leaves
the previous one loadable, and ``fit`` holds ``OUT/.lock`` so that no second
run writes into the same folder.
"""
import copy
import dataclasses
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from beexnp.calibration import CARD_KEY, choose_shift
from beexnp.card import unusable
from beexnp.checkpoint import OPTIMIZER, Saved, has_checkpoint, open_checkpoint, output_lock, save_checkpoint
from beexnp.config import ModelConfig, build_settings, model_config_for
from beexnp.distill import Teacher, load_teacher
from beexnp.exit_loss import ModelWithLoss, MultiExitLoss
from beexnp.glue import (compute_metrics, encode_examples, get_task, load_split, selection_name,
                        selection_score, subset)
from beexnp.glue.batching import batch_order
from beexnp.glue.heldout import SPLIT, split_heldout, training_rows
from beexnp.glue.reader import nonempty
from beexnp.glue.tokenizer import SPECIALS, fit_tokenizer
from beexnp.inference import evaluate_exits, exit_outputs
from beexnp.model import BEExformer
from beexnp.optim import OPTIMIZERS, clip_grad_norm
from beexnp.runfolder import (RUN_FILES, StopRequest, check_data, checkpoint_note, data_checksums, older_history, prepare,
                              write_history)
from beexnp.schedules import LRSchedule
from beexnp import outputs

__all__ = ["RUN_FILES", "Trainer", "TrainingDiverged", "load_task_data", "model_config_for"]


class TrainingDiverged(outputs.UserError):
    """The loss stopped being a finite number: the settings diverge (a user error, in the one form)."""


def load_task_data(task, cfg, glue_dir=None, tokenizer=None):
    """(tokenizer, encoded train, {dev split: encoded}, {selection split: encoded}) for a task and a TrainConfig.

    The selection splits are what every choice is made on (DESIGN §9.1): the dev splits, or with
    ``select_on="heldout"`` the held-out rows, which then leave the training split and its vocabulary."""
    train = training_rows(task, glue_dir, cfg.train_subset)
    heldout = None
    if cfg.select_on == "heldout":
        train, heldout = split_heldout(train, cfg.heldout_fraction, cfg.heldout_seed, cfg.heldout_unit)
    if tokenizer is None:
        tokenizer = fit_tokenizer(cfg.tokenizer, train.text_a, train.text_b, cfg.min_freq, cfg.max_vocab)
        if len(tokenizer) <= len(SPECIALS):
            raise outputs.problem(f"no token occurs min_freq={cfg.min_freq} times in the training split "
                                  f"{train.path}, so the vocabulary would hold only the special tokens",
                                  f"--min-freq {cfg.min_freq}", "lower --min-freq (1 keeps every token)")
    devs = {}
    for split in task.dev_splits:
        dev = nonempty(load_split(task, split, glue_dir))
        if cfg.dev_subset:
            dev = subset(dev, cfg.dev_subset)
        devs[split] = encode_examples(tokenizer, dev, cfg.max_len)
    selection = devs if heldout is None else {SPLIT: encode_examples(tokenizer, heldout, cfg.max_len)}
    return tokenizer, encode_examples(tokenizer, train, cfg.max_len), devs, selection


class Trainer:
    """Owns a run: data, model, objective, optimizer, schedule, Generators, checkpoints."""

    def __init__(self, train_config, model_overrides=None, out_dir="runs/run", glue_dir=None, progress=True,
                 tokenizer=None, data=None):
        """``model_overrides``: a dict of ModelConfig settings, or the ModelConfig ``build_settings`` checked
        (its vocabulary size is then the tokenizer's).  ``data``: the checksums of the data files, if known
        (``resume`` has checked them against the card's); else they are computed here."""
        self.cfg = train_config
        self.task = get_task(train_config.task)
        self.out = Path(out_dir)
        self.glue_dir = glue_dir
        self.progress = progress
        checked = model_overrides if isinstance(model_overrides, ModelConfig) else \
            model_config_for(train_config, model_overrides)         # every setting checked before the data is read
        teacher = None
        if train_config.teacher:                                  # distillation: the teacher's token ids
            teacher, tokenizer = load_teacher(train_config, self.task, tokenizer)
        self.data = data or data_checksums(self.task, glue_dir)  # recorded in every checkpoint's card
        self.tokenizer, self.train_data, self.devs, self.selection = load_task_data(
            self.task, train_config, glue_dir, tokenizer)
        self.model_config = dataclasses.replace(checked, vocab_size=len(self.tokenizer))
        init_seq, data_seq = np.random.SeedSequence(train_config.seed).spawn(2)
        self.model_rng = np.random.default_rng(init_seq)          # initialization, then dropout
        self.data_rng = np.random.default_rng(data_seq)           # batch order
        self.model = BEExformer(self.model_config, self.model_rng)
        self.objective = self.make_objective(teacher)
        opt_class = OPTIMIZERS[train_config.optimizer]
        opt_kwargs = {} if train_config.optimizer == "adam" else {"weight_decay": train_config.weight_decay}
        self.params = self.trained_parameters()
        self.optimizer = opt_class(self.params, lr=train_config.lr, **opt_kwargs)
        self.steps_per_epoch = len(batch_order(self.train_data.lengths, train_config.batch_size))
        self.total_steps = train_config.epochs * self.steps_per_epoch      # max_steps only stops early
        self.schedule = LRSchedule(train_config.lr, max(self.total_steps, 1),
                                   warmup_steps=int(train_config.warmup * self.total_steps),
                                   decay=train_config.schedule)
        self.state = dict(step=0, epoch=0, batch_in_epoch=0, best_score=None, best_epoch=None,
                          selection_score=selection_name(self.task), epochs_without_gain=0, epoch_rng_state=None,
                          finished=False, seconds=0.0)
        self.history = []
        self.best_source = None          # a resumed run's 'best', copied in if it goes to another folder
        self.init_source = None          # train --init: the checkpoint the encoder came from (beexnp.pretrain)
        self.stop = StopRequest()
        self.busy = False                # inside a step: the state is half updated, not to be saved

    # ---- what a variant changes (beexnp.pretrain.Pretrainer: the masked-LM objective) ----------
    command = "train"                # the CLI command that runs and resumes this kind of run
    resume_hint = None               # what to run to go on after Ctrl-C (None: `python -m beexnp <command> --resume`)

    def make_objective(self, teacher):
        return ModelWithLoss(self.model, MultiExitLoss(
            self.model_config.blocks, self.cfg.exit_weighting, regression=self.task.regression,
            routing=self.cfg.soft_routing, distill_weight=self.cfg.distill_weight,
            temperature=self.cfg.distill_temperature),
            teacher and Teacher(teacher, self.model_config.blocks, self.cfg.distill_from))

    def trained_parameters(self):
        """The (name, Parameter) pairs the optimizer updates."""
        return list(self.model.parameters())

    def trainer_arrays(self, opt):
        """What trainer.npz holds: the optimizer's state arrays ``opt``."""
        return {f"{OPTIMIZER}{k}": v for k, v in opt.items()}

    def restore(self, saved):
        """The optimizer's state from a training checkpoint's card and trainer.npz (``saved``, checked)."""
        arrays = {k[len(OPTIMIZER):]: v for k, v in saved.trainer_arrays.items() if k.startswith(OPTIMIZER)}
        try:
            self.optimizer.load_state_dict(dict(saved.raw["optimizer"], arrays=arrays))
        except ValueError as err:
            raise unusable(str(err).replace(":\n  ", ": ").replace("\n  ", "; "), saved.path / "trainer.npz") from None

    @classmethod
    def check_kind(cls, saved):
        """Refuse (one line) to resume another command's run: a pretrain run with train, or back."""
        kind = saved.raw.get("command", "train")
        if kind != cls.command:
            raise unusable(f"the checkpoint is a '{kind}' run's, not a '{cls.command}' run's", f"--resume {saved.path}",
                          f"continue it with python -m beexnp {kind} --resume {saved.path}")
        return saved

    def running_stats(self, state=None):
        return RunningStats(state)

    # ---- checkpoints ----------------------------------------------------------
    def meta(self, metrics=None):
        return dict(task=self.task.name, train_config=asdict(self.cfg), tokenizer=self.tokenizer.state_dict(),
                    metrics=metrics, state=self.state, history=self.history, data=self.data, command=self.command,
                    init=self.init_source,
                    rng=dict(model=self.model_rng.bit_generator.state, data=self.data_rng.bit_generator.state))

    def save(self, name, metrics=None, **extra):
        """Write checkpoint ``OUT/name`` whole (``extra``: more card keys); if that fails, the previous one there is
        intact (and said so)."""
        opt = self.optimizer.state_dict()
        arrays = self.trainer_arrays(opt["arrays"])
        meta = dict(self.meta(metrics), **extra)
        meta["optimizer"] = {"step": opt["step"], "lr": opt["lr"]}
        try:
            return save_checkpoint(self.out / name, self.model, meta, trainer_arrays=arrays)
        except OSError as err:
            raise type(err)(err.errno, f"{self.out / name} not saved ({err.strerror or err}); "
                                       f"{self.checkpoint_note(name)}") from err

    def checkpoint_note(self, name="last"):
        """Which checkpoint ``name`` there is to go back to, in words."""
        return checkpoint_note(self.out, name)

    @classmethod
    def resume(cls, checkpoint, out_dir=None, glue_dir=None, progress=True, model_overrides=None, settings=None,
               **train_overrides):
        """A Trainer that continues the run saved in ``checkpoint`` (a training checkpoint's folder, or one
        opened by ``open_checkpoint(..., resume=True)``), its weights loaded straight into the Trainer's model.

        ``train_overrides`` may change only ``RESUME_OVERRIDES`` (epochs, max_steps, patience,
        save_every); any other setting, or a ``model_overrides`` entry, that differs from the
        checkpoint's is refused with the list of differences (``build_settings``, or its ``settings``)."""
        saved = checkpoint if isinstance(checkpoint, Saved) else open_checkpoint(checkpoint, resume=True)
        cls.check_kind(saved)
        settings = settings or build_settings(model=model_overrides, train=train_overrides, resume=saved)
        card, folder = saved.raw, saved.path
        source = folder.parent
        data = check_data(card.get("data"), saved.card.task, glue_dir, folder)   # the files the run read, unchanged
        self = cls(settings.train, settings.model, out_dir or source, glue_dir, progress,
                   tokenizer=saved.card.tokenizer, data=data)
        saved.model(config=self.model_config, model=self.model)
        self.restore(saved)
        self.init_source = card.get("init")
        self.model_rng.bit_generator.state = card["rng"]["model"]
        self.data_rng.bit_generator.state = card["rng"]["data"]
        self.state = dict(card["state"])
        if self.state["batch_in_epoch"] > self.steps_per_epoch:
            raise unusable(f"state.batch_in_epoch is {self.state['batch_in_epoch']}, an epoch of "
                           f"this data has {self.steps_per_epoch} batches", saved.card_path)
        scored_on = self.state.setdefault("selection_score", self.task.main_metric)   # older cards: the main metric
        if scored_on != selection_name(self.task) and self.state["best_score"] is not None:
            raise outputs.problem(f"the run chose its best epoch on {scored_on}, and {self.task.name} now chooses on "
                                  f"{selection_name(self.task)} (DESIGN §9.2): the two cannot be compared",
                                  f"--resume {folder}", "start the run again (--overwrite)")
        self.history = card["history"] if "history" in card else older_history(source, self.state["epoch"])
        if self.out.resolve() != source.resolve() and has_checkpoint(source / "best"):
            self.best_source = source / "best"
        return self

    # ---- the loop ------------------------------------------------------------
    def train_step(self, ids, mask, labels):
        loss = self.objective.forward(ids, mask, labels)
        if not np.isfinite(loss):
            raise outputs.problem(f"loss is {loss} at step {self.state['step']} (epoch {self.state['epoch'] + 1}, "
                                  f"batch {self.state['batch_in_epoch'] + 1}); {self.checkpoint_note('last')}",
                                  f"--lr {self.cfg.lr:g}", "start again with a lower --lr (or --clip-norm)",
                                  TrainingDiverged)
        self.objective.backward()
        clip_grad_norm(self.params, self.cfg.clip_norm)
        self.optimizer.lr = self.schedule(self.state["step"])
        self.optimizer.step()
        self.optimizer.zero_grad()
        return float(loss)

    def epoch_batches(self):
        """This epoch's batches (row indices), redrawn from the epoch's starting Generator state."""
        if self.state["batch_in_epoch"] == 0:
            self.state["epoch_rng_state"] = copy.deepcopy(self.data_rng.bit_generator.state)
        else:
            self.data_rng.bit_generator.state = self.state["epoch_rng_state"]
        return batch_order(self.train_data.lengths, self.cfg.batch_size, self.data_rng,
                           shuffle=True, bucket=self.cfg.bucket)

    def fit(self):
        """Train until the epochs, ``max_steps`` or patience run out; returns the history.

        Holds ``OUT/.lock`` throughout.  Ctrl-C stops at the end of the current step, writes
        ``OUT/last`` and names it (see ``StopRequest``); then KeyboardInterrupt is raised again."""
        with output_lock(self.out), self.stop:
            prepare(self.out, self.history, self.best_source)
            start = time.perf_counter() - self.state.get("seconds", 0.0)   # a resumed run keeps counting
            try:
                self.loop(start)
            except KeyboardInterrupt:
                self.save_on_interrupt(start)
                raise
        return self.history

    def loop(self, start):
        """The epochs and their steps; ``last`` every ``save_every`` steps, dev metrics after each epoch."""
        cfg, st = self.cfg, self.state
        while st["epoch"] < cfg.epochs and not self.done() and st["epochs_without_gain"] < cfg.patience:
            # patience is in the condition too: a run stopped between an epoch's save and the check below (a
            # reader gone at its report) resumes as finished, as the uninterrupted run stopped
            self.busy = True
            batches = self.epoch_batches()
            bar = tqdm(batches, initial=st["batch_in_epoch"], total=len(batches), disable=not self.progress,
                       desc=f"epoch {st['epoch'] + 1}/{cfg.epochs}", unit="batch", dynamic_ncols=True)
            running = self.running_stats(st.get("running") if st["batch_in_epoch"] else None)
            for index in batches[st["batch_in_epoch"]:]:
                self.busy = True
                ids, mask = self.train_data.padded(index)
                labels = self.train_data.labels[index]
                loss = self.train_step(ids, mask, labels)
                running.add(loss, self.objective, labels, self.task.regression)
                st["step"] += 1
                st["batch_in_epoch"] += 1
                st["running"] = running.state()                    # so a resumed epoch reports the same
                self.busy = False                                  # a state the run really reached
                bar.update(1)
                bar.set_postfix_str(running.summary())
                if st["step"] % cfg.save_every == 0 or self.done():
                    st["seconds"] = time.perf_counter() - start
                    self.save("last")
                if self.done():
                    break
                self.stop.check()
            self.busy = False
            bar.close()
            if st["batch_in_epoch"] == len(batches):
                st["seconds"] = time.perf_counter() - start
                self.end_epoch(running, st["seconds"])
                if st["epochs_without_gain"] >= cfg.patience:
                    print(f"early stopping: no better {cfg.select_on} {selection_name(self.task)} "
                          f"for {cfg.patience} epochs")
                    break
            self.stop.check()
        st.update(finished=True, seconds=time.perf_counter() - start)   # not interrupted: done
        self.save("last")

    def save_on_interrupt(self, start):
        """After KeyboardInterrupt: write 'last' unless the state is half updated, then say how to go on."""
        st, last = self.state, self.out / "last"
        where = None
        if not self.busy:
            st["seconds"] = time.perf_counter() - start
            try:
                self.save("last")
                where = f"saved {last} (step {st['step']})"
            except OSError as err:
                print(f"error: {err}", file=sys.stderr)
        if has_checkpoint(last):
            print(f"\ninterrupted at step {st['step']}: {where or self.checkpoint_note('last')}; "
                  f"continue with: {self.resume_hint or f'python -m beexnp {self.command} --resume {last}'}",
                  file=sys.stderr)
        else:
            print(f"\ninterrupted at step {st['step']}: no checkpoint was written", file=sys.stderr)

    def final_note(self):
        """Where the run's checkpoints are, in words: 'best' if an evaluation on the selection split ran, else why
        there is none."""
        st, best, last = self.state, self.out / "best", self.out / "last"
        if has_checkpoint(best):
            return (f"best checkpoint: {best} (epoch {st['best_epoch']}, {self.cfg.select_on} "
                    f"{selection_name(self.task)} {st['best_score']:.4f}); last: {last}")
        return (f"no {self.cfg.select_on} evaluation ran (stopped at step {st['step']}, before the end of epoch "
                f"{st['epoch'] + 1}), so there is no best checkpoint; the model is in {last}")

    def done(self):
        return bool(self.cfg.max_steps) and self.state["step"] >= self.cfg.max_steps

    def evaluate(self, encoded):
        """The task's metrics at every exit on an encoded labelled split: a list of N dicts."""
        return evaluate_exits(self.model, encoded, lambda p: compute_metrics(self.task, p, encoded.labels),
                              self.task.regression)

    def calibration(self):
        """{"calibration": the shift chosen on the selection split (DESIGN §9.3)} with ``calibrate``, else {}."""
        if not self.cfg.calibrate or self.task.regression:
            return {}
        encoded = next(iter(self.selection.values()))
        with self.stop.at_once():
            return {CARD_KEY: choose_shift(self.task, exit_outputs(self.model, encoded), encoded.labels)}

    def end_epoch(self, running, elapsed):
        st = self.state
        where = self.cfg.select_on                                 # the selection split (§9.1)
        with self.stop.at_once():                                  # reads the model, changes nothing
            scores = {split: self.evaluate(enc) for split, enc in self.selection.items()}
        per_exit = [selection_score(self.task, m) for m in next(iter(scores.values()))]
        score = max(per_exit)
        best_exit = int(np.argmax(per_exit)) + 1
        record = dict(epoch=st["epoch"] + 1, step=st["step"], train_loss=running.mean_loss(),
                      train_accuracy=running.accuracy(), **{where: scores}, best_exit=best_exit, score=score,
                      exit_weights=running.mean_exit_weights(), seconds=elapsed)
        self.history.append(record)
        st["epoch"] += 1
        st["batch_in_epoch"] = 0
        if st["best_score"] is None or score > st["best_score"]:
            st.update(best_score=score, best_epoch=st["epoch"], epochs_without_gain=0)
            self.save("best", metrics=scores, **self.calibration())
        else:
            st["epochs_without_gain"] += 1
        self.save("last", metrics=scores)
        write_history(self.out, self.history)
        print(f"epoch {st['epoch']}: {where} {selection_name(self.task)} per exit "
              f"[{' '.join(f'{x:.3f}' for x in per_exit)}] best exit {best_exit} "
              f"({score:.4f}); {elapsed:.0f}s", flush=True)


class RunningStats:
    """Over an epoch so far: mean loss, (classification) accuracy of the last exit, mean exit weights."""

    def __init__(self, state=None):
        self.loss = self.n_loss = self.correct = self.seen = self.n_inputs = 0
        self.exit_weights = 0.0                                  # sum over inputs of w_ib, per exit (N,)
        if state:
            self.__dict__.update(state, exit_weights=np.asarray(state["exit_weights"], np.float64))

    def state(self):
        """The sums so far as JSON-able numbers (exact: Python floats round-trip through JSON)."""
        return dict(loss=self.loss, n_loss=self.n_loss, correct=self.correct, seen=self.seen,
                    n_inputs=self.n_inputs, exit_weights=np.asarray(self.exit_weights).tolist())

    def add(self, loss, objective, labels, regression):
        """One step's loss, and the objective's logits and exit weights (N, B) of that step."""
        self.loss += loss
        self.n_loss += 1
        self.exit_weights = self.exit_weights + objective.loss.w.sum(axis=1, dtype=np.float64)
        self.n_inputs += len(labels)
        last_logits = objective.logits[-1]
        if not regression:
            self.correct += int(np.sum(last_logits.argmax(axis=-1) == labels))
            self.seen += len(labels)

    def mean_exit_weights(self):
        """Each exit's weight averaged over every input of the epoch so far (a list of N floats)."""
        seen = max(self.n_inputs, 1)
        return (np.asarray(self.exit_weights) / seen).tolist()

    def mean_loss(self):
        return self.loss / max(self.n_loss, 1)

    def accuracy(self):
        return self.correct / self.seen if self.seen else None

    def summary(self):
        acc = self.accuracy()
        return f"loss {self.mean_loss():.4f}" + ("" if acc is None else f" acc {acc:.3f}")
