"""Self-pretraining: the masked-LM objective on the training split's own sentences, then ``train --init`` (DESIGN §11).

``Pretrainer`` is a ``Trainer`` with another objective: the same data (the task's training rows,
the held-out rows left out when ``select_on="heldout"``, the same vocabulary), the same loop,
schedule, optimizer, checkpoints, output lock, Ctrl-C handling and exact resume.  What differs:

* the loss is ``beexnp.mlm.MaskedLM`` (the labels are never read), and the optimizer updates the
  embeddings, the blocks and the MLM head, never the exit heads, which stay as initialized;
* each step's masking is drawn from its own Generator, seeded by (seed, MASK_STREAM, step), so a
  resumed run masks exactly as an uninterrupted one without saving any extra state;
* trainer.npz also holds the head (``mlm/<name>``), and the card's ``pretrain`` entry its settings;
* the end of an epoch reports the masked-token loss and accuracy on the selection split, with a
  fixed masking; it chooses nothing, and there is no ``best`` checkpoint: ``OUT/last`` is the result.

``load_encoder(trainer, folder)`` is ``train --init``: it copies every parameter but the exit
heads' from a checkpoint into a fresh Trainer's model, after checking that the vocabularies and
the shapes agree (one-line errors otherwise).
"""
import numpy as np

from beexnp.card import unusable
from beexnp.checkpoint import Saved
from beexnp.inference import batches
from beexnp.mlm import EXITS, HEAD, MASK_RATE, MaskedLM, MLMHead, mask_tokens, masking_problem
from beexnp.module import evaluating, mismatches
from beexnp.packed import open_saved
from beexnp.runfolder import write_history
from beexnp.train import RunningStats, Trainer

MASK_STREAM = 2          # SeedSequence([seed, MASK_STREAM, step]): apart from initialization and data order
EVAL_STEP = -1           # the "step" of the fixed masking the selection split is scored with (any value no step has)
INIT_HINT = "give a checkpoint folder, such as a pretrain run's OUT/last"


def check_settings(levels, rate, teacher=None):
    """One-line ValueError for masking settings out of range, and for a teacher (pretraining reads no labels)."""
    what = masking_problem(levels, rate)
    if what:
        raise ValueError(f"the masking setting {what} (--mask-rate {rate}, --mlm-blocks {levels}): --mask-rate "
                         "takes a share between 0 and 1, --mlm-blocks last or all")
    if teacher:
        raise ValueError(f"pretraining reads no labels, so it has no use for a teacher (--teacher {teacher}): "
                         "distil when fine-tuning")


class MaskedStats(RunningStats):
    """Over an epoch so far: the mean masked-LM loss, and the last block read's accuracy on the masked tokens
    (no exit weights: an empty list)."""

    def __init__(self, state=None):
        super().__init__(state)
        if not state:
            self.exit_weights = np.zeros(0)

    def add(self, loss, objective, labels, regression):
        self.loss += loss
        self.n_loss += 1
        self.correct += int(np.sum(objective.predictions()[-1] == objective.targets))
        self.seen += int(objective.targets.size)
        self.n_inputs += len(labels)


class Pretrainer(Trainer):
    """A Trainer whose objective is the masked-LM loss on the training split's text (module docstring)."""

    command = "pretrain"

    def __init__(self, train_config, model_overrides=None, out_dir="runs/run", glue_dir=None, progress=True,
                 tokenizer=None, data=None, levels="last", rate=MASK_RATE):
        check_settings(levels, rate, train_config.teacher)
        self.mlm_settings = dict(levels=levels, rate=rate)
        super().__init__(train_config, model_overrides, out_dir, glue_dir, progress, tokenizer, data)

    # ---- the hooks of Trainer ----------------------------------------------------------------
    def make_objective(self, teacher):
        self.head = MLMHead(self.model_config.dim, self.model_config.vocab_size, self.model_rng)
        return MaskedLM(self.model, self.head, **self.mlm_settings)

    def trained_parameters(self):
        encoder = [(name, p) for name, p in self.model.parameters() if not name.startswith(EXITS)]
        return encoder + [(f"{HEAD}.{name}", p) for name, p in self.head.parameters()]

    def trainer_arrays(self, opt):
        return dict(super().trainer_arrays(opt), **{f"{HEAD}/{k}": v for k, v in self.head.state_dict().items()})

    def restore(self, saved):
        """The optimizer's state, the head's weights and the masking settings the run was started with (``saved``,
        its trainer.npz checked against this layout by ``beexnp.checkpoint``)."""
        super().restore(saved)
        arrays = saved.trainer_arrays
        self.head.load_state_dict({k[len(HEAD) + 1:]: v for k, v in arrays.items() if k.startswith(HEAD + "/")})
        self.mlm_settings = dict(saved.raw["pretrain"])
        self.objective = MaskedLM(self.model, self.head, **self.mlm_settings)

    def running_stats(self, state=None):
        return MaskedStats(state)

    def meta(self, metrics=None):
        return dict(super().meta(metrics), pretrain=self.mlm_settings)

    def masking_rng(self, step):
        return np.random.default_rng([self.cfg.seed, MASK_STREAM, step + 1])    # step + 1 >= 0: EVAL_STEP is -1

    def train_step(self, ids, mask, labels):
        self.objective.rng = self.masking_rng(self.state["step"])
        return super().train_step(ids, mask, labels)

    # ---- the end of an epoch: masked-token loss and accuracy, nothing chosen ------------------
    def masked_metrics(self, encoded, batch_size=256):
        """{"loss", "accuracy"} of the masked tokens of an encoded split, in eval mode, the masking fixed."""
        rng = self.masking_rng(EVAL_STEP)
        total, correct, seen = 0.0, 0, 0
        with evaluating(self.model):
            for ids, mask in batches(encoded, batch_size):
                inputs, chosen = mask_tokens(ids, mask, self.model_config.vocab_size, rng, self.objective.rate)
                loss = self.objective.masked_loss(inputs, mask, chosen, ids)
                n = self.objective.targets.size
                total += float(loss) * n
                correct += int(np.sum(self.objective.predictions()[-1] == self.objective.targets))
                seen += n
        return dict(loss=total / max(seen, 1), accuracy=correct / max(seen, 1), tokens=seen)

    def end_epoch(self, running, elapsed):
        st = self.state
        where = self.cfg.select_on
        with self.stop.at_once():
            scores = {split: self.masked_metrics(enc, self.cfg.batch_size)       # the logits of a batch:
                      for split, enc in self.selection.items()}                  # what limits counts
        record = dict(epoch=st["epoch"] + 1, step=st["step"], train_loss=running.mean_loss(),
                      train_accuracy=running.accuracy(), **{where: scores}, seconds=elapsed)
        self.history.append(record)
        st["epoch"] += 1
        st["batch_in_epoch"] = 0
        self.save("last", metrics=scores)
        write_history(self.out, self.history)
        summary = "; ".join(f"{split} loss {m['loss']:.4f} accuracy {m['accuracy']:.3f}" for split, m in scores.items())
        print(f"epoch {st['epoch']}: masked tokens: train loss {running.mean_loss():.4f}; {summary}; {elapsed:.0f}s",
              flush=True)

    def final_note(self):
        last = self.out / "last"
        return (f"pretrained encoder: {last} (step {self.state['step']}); fine-tune it with: python -m beexnp train "
                f"--task {self.task.name} --init {last} (the same data and model settings)")


def open_init(path):
    """``train --init``'s checkpoint, opened and checked once (``open_saved``): a checkpoint folder with a vocabulary,
    not a packed file (it holds the binarized weights, not the float encoder to start from)."""
    saved = open_saved(path)
    if saved.kind == "packed":
        raise unusable("a packed file holds the binarized weights only, not the float encoder to "
                       "start from", f"--init {path}", INIT_HINT)
    return saved.require("tokenizer", hint=INIT_HINT)


def load_encoder(trainer, saved):
    """``train --init``: copy every parameter but the exit heads' from ``saved`` (a checkpoint folder, or one
    ``open_init`` opened) into ``trainer.model``.

    The checkpoint's vocabulary must be the trainer's (the same task, data settings and vocabulary
    settings), and its encoder's parameters must have the same names and shapes; else a one-line
    ValueError says what differs and what to do."""
    saved = saved if isinstance(saved, Saved) else open_init(saved)
    folder = saved.path
    stored, own = saved.card.tokenizer.state_dict(), trainer.tokenizer.state_dict()   # a BPE one: its merges too
    if stored != own:
        raise unusable(f"the checkpoint's vocabulary ({len(stored['vocab'])} tokens) differs from "
                       f"this run's ({len(own['vocab'])} tokens)", f"--init {folder}",
                      "pretrain on the same task with the same --select-on, --heldout-fraction, --heldout-seed, "
                      "--heldout-unit, --train-subset, --tokenizer, --min-freq and --max-vocab")
    source = saved.model().state_dict()
    target = {name: p for name, p in trainer.model.parameters() if not name.startswith(EXITS)}
    given = {name: a for name, a in source.items() if not name.startswith(EXITS)}
    problems = mismatches({name: p.shape for name, p in target.items()}, given, "parameters")
    if problems:
        first = problems[0] if len(problems[0]) <= 160 else problems[0][:157] + "..."
        raise unusable(f"the checkpoint's encoder does not fit this model ({first})", f"--init {folder}",
                      "give the model settings the checkpoint was pretrained with")
    for name, p in target.items():
        p.data[...] = given[name]
    for m in trainer.model.modules():
        m.clear_weight_cache()
    card = saved.raw
    trainer.init_source = dict(checkpoint=str(folder), command=card.get("command", "train"),
                               step=card.get("state", {}).get("step"), pretrain=card.get("pretrain"))
    return trainer
