"""Training a BEExformer on a GLUE task: the loop, evaluation at every exit, checkpoints.

One step:  logits = model(ids, mask);  L = MultiExitLoss(logits, y);
           backward;  clip the global gradient norm;  lr = schedule(step);  optimizer step.

Each epoch ends with the dev metric at every exit; the best checkpoint (best
exit's main metric) is kept in ``OUT/best``, the latest state in ``OUT/last``
(also every ``save_every`` steps), and ``OUT/history.json`` records the curves.
One seed makes a run bitwise repeatable, and ``resume`` continues a run exactly
as if it had never stopped: the data order is redrawn from the saved state of
its Generator at the start of the epoch and the batches already done are skipped.
"""
import copy
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from beexnp.checkpoint import atomic_write, load_arrays, load_model, read_card, save_checkpoint
from beexnp.config import DATA_DERIVED, ModelConfig, TrainConfig
from beexnp.distill import Teacher, load_teacher
from beexnp.exit_loss import ModelWithLoss, MultiExitLoss
from beexnp.glue import Tokenizer, compute_metrics, encode_examples, get_task, load_split, main_metric, subset
from beexnp.glue.batching import batch_order
from beexnp.glue.heldout import SPLIT, split_heldout, training_rows
from beexnp.inference import evaluate_exits
from beexnp.model import BEExformer
from beexnp.optim import OPTIMIZERS, clip_grad_norm
from beexnp.schedules import LRSchedule


class TrainingDiverged(RuntimeError):
    pass


def load_task_data(task, cfg, glue_dir=None, tokenizer=None):
    """(tokenizer, encoded train, {dev split: encoded}, {selection split: encoded}) for a task and a TrainConfig.

    The selection splits are what every choice is made on (DESIGN §9.1): the dev splits, or with
    ``select_on="heldout"`` the held-out rows, which then leave the training split and its vocabulary."""
    train = training_rows(task, glue_dir, cfg.train_subset)
    heldout = None
    if cfg.select_on == "heldout":
        train, heldout = split_heldout(train, cfg.heldout_fraction, cfg.heldout_seed)
    if tokenizer is None:
        tokenizer = Tokenizer.fit(train.text_a, train.text_b, min_freq=cfg.min_freq, max_size=cfg.max_vocab)
    devs = {}
    for split in task.dev_splits:
        dev = load_split(task, split, glue_dir)
        if cfg.dev_subset:
            dev = subset(dev, cfg.dev_subset)
        devs[split] = encode_examples(tokenizer, dev, cfg.max_len)
    selection = devs if heldout is None else {SPLIT: encode_examples(tokenizer, heldout, cfg.max_len)}
    return tokenizer, encode_examples(tokenizer, train, cfg.max_len), devs, selection


class Trainer:
    """Owns a run: data, model, objective, optimizer, schedule, Generators, checkpoints."""

    def __init__(self, train_config, model_overrides=None, out_dir="runs/run", glue_dir=None, progress=True,
                 tokenizer=None):
        self.cfg = train_config
        self.task = get_task(train_config.task)
        self.out = Path(out_dir)
        self.glue_dir = glue_dir
        self.progress = progress
        teacher = None
        if train_config.teacher:                                  # distillation: the teacher's token ids
            teacher, tokenizer = load_teacher(train_config, self.task, tokenizer)
        self.tokenizer, self.train_data, self.devs, self.selection = load_task_data(
            self.task, train_config, glue_dir, tokenizer)
        model_config = dict(model_overrides or {})
        model_config.update(vocab_size=len(self.tokenizer), num_classes=self.task.num_labels,
                            regression=self.task.regression, max_len=max(train_config.max_len, 1))
        self.model_config = ModelConfig.from_dict(model_config)
        if self.model_config.pair_encoding == "siamese" and not self.task.pair:
            raise ValueError(f"pair_encoding='siamese' needs a sentence-pair task; {self.task.name} has one sentence")
        init_seq, data_seq = np.random.SeedSequence(train_config.seed).spawn(2)
        self.model_rng = np.random.default_rng(init_seq)          # initialization, then dropout
        self.data_rng = np.random.default_rng(data_seq)           # batch order
        self.model = BEExformer(self.model_config, self.model_rng)
        self.objective = ModelWithLoss(self.model, MultiExitLoss(
            self.model_config.blocks, train_config.exit_weighting, regression=self.task.regression,
            routing=train_config.soft_routing, distill_weight=train_config.distill_weight,
            temperature=train_config.distill_temperature),
            teacher and Teacher(teacher, self.model_config.blocks, train_config.distill_from))
        opt_class = OPTIMIZERS[train_config.optimizer]
        opt_kwargs = {} if train_config.optimizer == "adam" else {"weight_decay": train_config.weight_decay}
        self.params = list(self.model.parameters())
        self.optimizer = opt_class(self.params, lr=train_config.lr, **opt_kwargs)
        steps_per_epoch = len(batch_order(self.train_data.lengths, train_config.batch_size))
        self.total_steps = train_config.epochs * steps_per_epoch      # max_steps only stops early
        self.schedule = LRSchedule(train_config.lr, max(self.total_steps, 1),
                                   warmup_steps=int(train_config.warmup * self.total_steps),
                                   decay=train_config.schedule)
        self.state = dict(step=0, epoch=0, batch_in_epoch=0, best_score=None, best_epoch=None,
                          epochs_without_gain=0, epoch_rng_state=None, finished=False, seconds=0.0)
        self.history = []

    # ---- checkpoints ----------------------------------------------------------
    def meta(self, metrics=None):
        return dict(task=self.task.name, train_config=asdict(self.cfg), tokenizer=self.tokenizer.state_dict(),
                    metrics=metrics, state=self.state,
                    rng=dict(model=self.model_rng.bit_generator.state, data=self.data_rng.bit_generator.state))

    def save(self, name, metrics=None):
        opt = self.optimizer.state_dict()
        arrays = {f"optimizer/{k}": v for k, v in opt["arrays"].items()}
        meta = self.meta(metrics)
        meta["optimizer"] = {"step": opt["step"], "lr": opt["lr"]}
        return save_checkpoint(self.out / name, self.model, meta, trainer_arrays=arrays)

    @classmethod
    def resume(cls, folder, out_dir=None, glue_dir=None, progress=True, **train_overrides):
        """A Trainer that continues the run saved in ``folder`` (a training checkpoint)."""
        card = read_card(folder)
        if "optimizer" not in card:
            raise ValueError(f"{folder} holds no trainer state (an exported or best-only checkpoint?)")
        cfg = TrainConfig.from_dict(dict(card["train_config"], **train_overrides))
        overrides = {k: v for k, v in card["model_config"].items()
                     if k not in DATA_DERIVED}
        self = cls(cfg, overrides, out_dir or Path(folder).parent, glue_dir, progress,
                   tokenizer=Tokenizer.from_state_dict(card["tokenizer"]))
        model, _ = load_model(folder, self.model_config)
        self.model.load_state_dict(model.state_dict())
        arrays = load_arrays(folder, "trainer.npz")
        self.optimizer.load_state_dict(dict(card["optimizer"], arrays={
            k[len("optimizer/"):]: v for k, v in arrays.items()}))
        self.model_rng.bit_generator.state = card["rng"]["model"]
        self.data_rng.bit_generator.state = card["rng"]["data"]
        self.state = card["state"]
        history = self.out / "history.json"
        self.history = json.loads(history.read_text()) if history.exists() else []
        return self

    # ---- the loop ------------------------------------------------------------
    def train_step(self, ids, mask, labels):
        loss = self.objective.forward(ids, mask, labels)
        if not np.isfinite(loss):
            raise TrainingDiverged(
                f"loss is {loss} at step {self.state['step']} (epoch {self.state['epoch'] + 1}, "
                f"batch {self.state['batch_in_epoch'] + 1}); last good checkpoint: {self.out / 'last'}")
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
        """Train until the epochs, ``max_steps`` or patience run out; returns the history."""
        cfg, st = self.cfg, self.state
        self.out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter() - st.get("seconds", 0.0)   # a resumed run keeps counting its time
        try:
            while st["epoch"] < cfg.epochs and not self.done():
                batches = self.epoch_batches()
                bar = tqdm(batches, initial=st["batch_in_epoch"], total=len(batches), disable=not self.progress,
                           desc=f"epoch {st['epoch'] + 1}/{cfg.epochs}", unit="batch", dynamic_ncols=True)
                running = RunningStats()
                for index in batches[st["batch_in_epoch"]:]:
                    ids, mask = self.train_data.padded(index)
                    labels = self.train_data.labels[index]
                    loss = self.train_step(ids, mask, labels)
                    running.add(loss, self.objective, labels, self.task.regression)
                    st["step"] += 1
                    st["batch_in_epoch"] += 1
                    bar.update(1)
                    bar.set_postfix_str(running.summary())
                    if st["step"] % cfg.save_every == 0 or self.done():
                        st["seconds"] = time.perf_counter() - start
                        self.save("last")
                    if self.done():
                        break
                bar.close()
                if st["batch_in_epoch"] == len(batches):
                    st["seconds"] = time.perf_counter() - start
                    self.end_epoch(running, st["seconds"])
                    if st["epochs_without_gain"] >= cfg.patience:
                        print(f"early stopping: no better dev {main_metric(self.task)} for {cfg.patience} epochs")
                        break
            st.update(finished=True, seconds=time.perf_counter() - start)   # not interrupted: done
            self.save("last")
        except KeyboardInterrupt:
            last = self.out / "last"
            where = f"the last good checkpoint is {last} (step {read_card(last)['state']['step']})" \
                if (last / "checkpoint.json").exists() else "no checkpoint was written yet"
            print(f"\ninterrupted at step {st['step']}: {where}; "
                  f"continue with: python -m beexnp train --resume {last}")
            raise
        return self.history

    def done(self):
        return bool(self.cfg.max_steps) and self.state["step"] >= self.cfg.max_steps

    def evaluate(self, encoded):
        """The task's metrics at every exit on an encoded labelled split: a list of N dicts."""
        return evaluate_exits(self.model, encoded, lambda p: compute_metrics(self.task, p, encoded.labels),
                              self.task.regression)

    def end_epoch(self, running, elapsed):
        st = self.state
        metric, where = main_metric(self.task), self.cfg.select_on                # the selection split (§9.1)
        scores = {split: self.evaluate(enc) for split, enc in self.selection.items()}
        first = next(iter(scores.values()))
        score = max(m[metric] for m in first)
        best_exit = int(np.argmax([m[metric] for m in first])) + 1
        record = dict(epoch=st["epoch"] + 1, step=st["step"], train_loss=running.mean_loss(),
                      train_accuracy=running.accuracy(), **{where: scores}, best_exit=best_exit, score=score,
                      exit_weights=running.mean_exit_weights(), seconds=elapsed)
        self.history.append(record)
        st["epoch"] += 1
        st["batch_in_epoch"] = 0
        if st["best_score"] is None or score > st["best_score"]:
            st.update(best_score=score, best_epoch=st["epoch"], epochs_without_gain=0)
            self.save("best", metrics=scores)
        else:
            st["epochs_without_gain"] += 1
        self.save("last", metrics=scores)
        text = json.dumps(self.history, indent=1).encode()
        atomic_write(self.out / "history.json", lambda f: f.write(text))
        per_exit = " ".join(f"{m[metric]:.3f}" for m in first)
        print(f"epoch {st['epoch']}: {where} {metric} per exit [{per_exit}] best exit {best_exit} "
              f"({score:.4f}); {elapsed:.0f}s", flush=True)


class RunningStats:
    """Over an epoch so far: mean loss, (classification) accuracy of the last exit, mean exit weights."""

    def __init__(self):
        self.loss = self.n_loss = self.correct = self.seen = self.n_inputs = 0
        self.exit_weights = 0.0                                  # sum over inputs of w_ib, per exit (N,)

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
