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
import argparse
import copy
import dataclasses
import json
import time
import typing
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from beexnp.checkpoint import atomic_write, load_arrays, load_model, read_card, save_checkpoint
from beexnp.exit_loss import WEIGHTINGS, ModelWithLoss, MultiExitLoss
from beexnp.glue import (TASKS, Tokenizer, compute_metrics, encode_examples, get_task, iterate_batches, load_split,
                         main_metric, subset)
from beexnp.glue.batching import batch_order
from beexnp.model import BEExformer, ModelConfig
from beexnp.module import choice_problems, dataclass_from_dict, evaluating, option
from beexnp.optim import SGD, Adam, AdamW, clip_grad_norm
from beexnp.schedules import DECAYS, LRSchedule

OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


@dataclass
class TrainConfig:
    """How to train; JSON-serializable, stored in every checkpoint."""

    task: str = option("sst2", "GLUE task: " + ", ".join(TASKS) + " (case, '-' and '_' ignored)")
    epochs: int = option(3, "passes over the training split")
    max_steps: int | None = option(None, "stop after this many steps in all (default: no limit)")
    batch_size: int = option(64, "inputs per step")
    max_len: int = option(64, "tokens per input, [CLS] included; longer inputs are truncated")
    optimizer: str = option("adamw", "optimizer", tuple(OPTIMIZERS))
    lr: float = option(1e-3, "peak learning rate")
    weight_decay: float = option(0.01, "weight decay (decoupled for adamw, L2 for sgd; unused by adam)")
    schedule: str = option("linear", "learning-rate decay after the warm-up", DECAYS)
    warmup: float = option(0.05, "fraction of all steps spent warming up")
    clip_norm: float = option(1.0, "clip the global gradient norm to this")
    exit_weighting: str = option("soft_routing", "how the exits' losses are weighted (DESIGN §6)", WEIGHTINGS)
    delta: float = option(0.1, "soft routing: the exit rule's threshold")
    tau: float = option(0.05, "soft routing: its temperature")
    beta: float = option(0.2, "soft routing: the share of uniform weight")
    min_freq: int = option(2, "vocabulary: tokens seen at least this often in the training split")
    max_vocab: int = option(20000, "vocabulary: at most this many tokens, specials included")
    train_subset: int | None = option(None, "first n training rows only (default: all)")
    dev_subset: int | None = option(None, "first n rows of each dev split only (default: all)")
    bucket: bool = option(True, "batch inputs of similar length together (less padding)")
    patience: int = option(2, "early stopping: epochs without a better dev score")
    save_every: int = option(500, "steps between 'last' checkpoints")
    seed: int = option(0, "one seed for initialization, dropout and data order")

    def __post_init__(self):
        problems = choice_problems(self)
        try:
            get_task(self.task)
        except ValueError as err:
            problems.append(str(err))
        positive = ["epochs", "batch_size", "lr", "clip_norm", "tau", "min_freq", "patience", "save_every"]
        problems += [f"{name} must be > 0, got {getattr(self, name)}" for name in positive if getattr(self, name) <= 0]
        problems += [f"{name} must be None or > 0, got {getattr(self, name)}"
                     for name in ("max_steps", "train_subset", "dev_subset")
                     if getattr(self, name) is not None and getattr(self, name) <= 0]
        if self.max_len < 2:
            problems.append(f"max_len must be >= 2 ([CLS] and one token), got {self.max_len}")
        if self.max_vocab < 5:
            problems.append(f"max_vocab must be >= 5 (4 special tokens), got {self.max_vocab}")
        if self.weight_decay < 0 or not 0 <= self.warmup < 1 or not 0 <= self.beta <= 1:
            problems.append(f"need weight_decay >= 0, 0 <= warmup < 1, 0 <= beta <= 1; got "
                            f"{self.weight_decay}, {self.warmup}, {self.beta}")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, d):
        return dataclass_from_dict(cls, d, "training config")


# ModelConfig fields the Trainer sets from the task, the tokenizer and the training config.
DATA_DERIVED = ("vocab_size", "num_classes", "regression", "max_len")


class TrainingDiverged(RuntimeError):
    pass


def load_task_data(task, cfg, glue_dir=None, tokenizer=None):
    """(tokenizer, encoded train, {dev split: encoded}) for a task and a TrainConfig."""
    train = load_split(task, "train", glue_dir)
    if cfg.train_subset:
        train = subset(train, cfg.train_subset)
    if tokenizer is None:
        tokenizer = Tokenizer.fit(train.text_a, train.text_b, min_freq=cfg.min_freq, max_size=cfg.max_vocab)
    devs = {}
    for split in task.dev_splits:
        dev = load_split(task, split, glue_dir)
        if cfg.dev_subset:
            dev = subset(dev, cfg.dev_subset)
        devs[split] = encode_examples(tokenizer, dev, cfg.max_len)
    return tokenizer, encode_examples(tokenizer, train, cfg.max_len), devs


def exit_outputs(model, encoded, batch_size=256):
    """Every exit's outputs on a whole split, in eval mode: (N, n, C) float32."""
    chunks = []
    with evaluating(model):
        for batch in iterate_batches(encoded, batch_size):
            chunks.append(np.stack(model.forward(batch.ids, batch.mask)))   # (N, b, C)
    return np.concatenate(chunks, axis=1)


def predictions(outputs, regression):
    """Class ids (argmax) or the regression value, per exit: (N, n)."""
    return outputs[..., 0] if regression else outputs.argmax(axis=-1)


def evaluate_exits(model, encoded, task, batch_size=256):
    """The task's metrics at every exit: a list of N dicts."""
    preds = predictions(exit_outputs(model, encoded, batch_size), task.regression)
    return [compute_metrics(task, p, encoded.labels) for p in preds]


class Trainer:
    """Owns a run: data, model, objective, optimizer, schedule, Generators, checkpoints."""

    def __init__(self, train_config, model_overrides=None, out_dir="runs/run", glue_dir=None, progress=True,
                 tokenizer=None):
        self.cfg = train_config
        self.task = get_task(train_config.task)
        self.out = Path(out_dir)
        self.glue_dir = glue_dir
        self.progress = progress
        self.tokenizer, self.train_data, self.devs = load_task_data(self.task, train_config, glue_dir, tokenizer)
        model_config = dict(model_overrides or {})
        model_config.update(vocab_size=len(self.tokenizer), num_classes=self.task.num_labels,
                            regression=self.task.regression, max_len=max(train_config.max_len, 1))
        self.model_config = ModelConfig.from_dict(model_config)
        init_seq, data_seq = np.random.SeedSequence(train_config.seed).spawn(2)
        self.model_rng = np.random.default_rng(init_seq)          # initialization, then dropout
        self.data_rng = np.random.default_rng(data_seq)           # batch order
        self.model = BEExformer(self.model_config, self.model_rng)
        self.objective = ModelWithLoss(self.model, MultiExitLoss(
            self.model_config.blocks, train_config.exit_weighting, regression=self.task.regression,
            delta=train_config.delta, tau=train_config.tau, beta=train_config.beta))
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
                    running.add(loss, self.objective.logits[-1], labels, self.task.regression)
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

    def end_epoch(self, running, elapsed):
        st = self.state
        metric = main_metric(self.task)
        dev_metrics = {split: evaluate_exits(self.model, enc, self.task) for split, enc in self.devs.items()}
        first = dev_metrics[self.task.dev_splits[0]]
        score = max(m[metric] for m in first)
        best_exit = int(np.argmax([m[metric] for m in first])) + 1
        record = dict(epoch=st["epoch"] + 1, step=st["step"], train_loss=running.mean_loss(),
                      train_accuracy=running.accuracy(), dev=dev_metrics, best_exit=best_exit, score=score,
                      exit_weights=self.objective.loss.w.mean(axis=1).tolist(), seconds=elapsed)
        self.history.append(record)
        st["epoch"] += 1
        st["batch_in_epoch"] = 0
        if st["best_score"] is None or score > st["best_score"]:
            st.update(best_score=score, best_epoch=st["epoch"], epochs_without_gain=0)
            self.save("best", metrics=dev_metrics)
        else:
            st["epochs_without_gain"] += 1
        self.save("last", metrics=dev_metrics)
        text = json.dumps(self.history, indent=1).encode()
        atomic_write(self.out / "history.json", lambda f: f.write(text))
        per_exit = " ".join(f"{m[metric]:.3f}" for m in first)
        print(f"epoch {st['epoch']}: dev {metric} per exit [{per_exit}] best exit {best_exit} "
              f"({score:.4f}); {elapsed:.0f}s", flush=True)


class RunningStats:
    """Mean loss and (classification) accuracy of the last exit over an epoch so far."""

    def __init__(self):
        self.loss = self.n_loss = self.correct = self.seen = 0

    def add(self, loss, last_logits, labels, regression):
        self.loss += loss
        self.n_loss += 1
        if not regression:
            self.correct += int(np.sum(last_logits.argmax(axis=-1) == labels))
            self.seen += len(labels)

    def mean_loss(self):
        return self.loss / max(self.n_loss, 1)

    def accuracy(self):
        return self.correct / self.seen if self.seen else None

    def summary(self):
        acc = self.accuracy()
        return f"loss {self.mean_loss():.4f}" + ("" if acc is None else f" acc {acc:.3f}")


# ---- command line --------------------------------------------------------------
DERIVED = DATA_DERIVED + ("binarize",)          # no flags: set from the data, or by --full-precision


def add_config_options(parser, cls, skip=()):
    """A flag per field of the config dataclass ``cls`` (``--field-name``), its help, choices and default
    taken from the field; the flags default to None so that only what is typed overrides --config."""
    hints = typing.get_type_hints(cls)
    names = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = next(t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None))
        choices = f.metadata.get("choices")
        if kind is bool:
            extra = dict(action=argparse.BooleanOptionalAction)
        else:
            extra = dict(type=kind, choices=choices, metavar=None if choices else kind.__name__.upper())
        default = "" if f.default is None else f" (default: {f.default})"
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                            help=f.metadata["help"] + default, **extra)
        names.append(f.name)
    return names


def register(subparsers):
    p = subparsers.add_parser(
        "train", help="train a BEExformer on a GLUE task",
        description="Train a BEExformer (or its full-precision twin) on a GLUE task. Settings come from the "
                    "defaults, then --config (JSON {\"model\": {...}, \"train\": {...}}, the same keys as the "
                    "flags below with '_' for '-'), then the flags. Writes OUT/best, OUT/last (checkpoints) and "
                    "OUT/history.json.")
    p.add_argument("--config", help="JSON file with 'model' and/or 'train' sections")
    p.add_argument("--out", default=None, help="output folder (default: runs/<task>)")
    p.add_argument("--glue-dir", help="GLUE folder (default: $GLUE_DIR, then data/glue)")
    p.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue the run saved in this checkpoint folder (training flags override its settings)")
    p.add_argument("--full-precision", action="store_true", help="train the full-precision twin (binarize off)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    model_flags = add_config_options(p.add_argument_group("model (ModelConfig)"), ModelConfig, skip=DERIVED)
    train_flags = add_config_options(p.add_argument_group("training (TrainConfig)"), TrainConfig)
    p.set_defaults(func=run_train, model_flags=model_flags, train_flags=train_flags)


def given(args, names):
    """The options among ``names`` typed on the command line."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def run_train(args):
    if args.resume:
        trainer = Trainer.resume(args.resume, out_dir=args.out, glue_dir=args.glue_dir,
                                 progress=not args.no_progress, **given(args, args.train_flags))
    else:
        config = json.loads(Path(args.config).read_text()) if args.config else {}
        unknown = sorted(set(config) - {"model", "train"})
        if unknown:
            raise SystemExit(f"{args.config}: unknown sections {unknown}; expected 'model' and 'train'")
        model = dict(config.get("model", {}), **given(args, args.model_flags))
        if args.full_precision:
            model["binarize"] = False
        cfg = TrainConfig.from_dict(dict(config.get("train", {}), **given(args, args.train_flags)))
        out = args.out or f"runs/{get_task(cfg.task).name}"
        trainer = Trainer(cfg, model, out, args.glue_dir, progress=not args.no_progress)
    print(f"{trainer.task.name}: {len(trainer.train_data)} training rows, vocabulary {len(trainer.tokenizer)}, "
          f"{trainer.model.num_parameters():,} parameters, {trainer.total_steps} steps; writing to {trainer.out}")
    start = time.perf_counter()
    trainer.fit()
    print(f"done in {time.perf_counter() - start:.0f}s; best checkpoint: {trainer.out / 'best'}")
    return 0
