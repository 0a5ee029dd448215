"""The card of a saved model, checked in one place: every field typed, then cross-checked against the arrays.

A saved model is a checkpoint folder (``beexnp.checkpoint``: ``checkpoint.json``
and ``model.npz``, ``trainer.npz``) or a packed file (``beexnp.packed``: one
``.npz`` whose ``__meta__`` entry holds the card).  Whichever it is, it is read
once per command and checked here before any of it is used:

    config sections   ``model_config`` and ``train_config``: the fields of ``ModelConfig`` and
                      ``TrainConfig`` (``config.py``), each of its declared type and choices and in
                      its range, no unknown key; the schema is derived from the dataclasses, so a
                      field added there is checked here with no change.  A field a card lacks takes
                      its default (cards written before that field existed); a card that carries its
                      own checksum (``card_sha256``, every card written now) must still match it, so
                      a field dropped by hand is detected and named.
    the rest          ``task`` a GLUE task, ``tokenizer`` a saved tokenizer (words, or BPE pieces and
                      their merges), ``calibration`` the best checkpoint's shift of the logits (§9.3),
                      ``files`` the checksums,
                      ``state``, ``rng``, ``optimizer`` (a training run's), ``data`` (the checksums
                      of the data files the run read), ``metrics``, ``history``, ``command`` (train or
                      pretrain), ``pretrain`` (the masking settings), ``init`` (train --init's source):
                      each of its type.
    cross-checks      the vocabulary's size = ``vocab_size`` = the embedding's rows (a BPE merge makes a
                      piece of the vocabulary); the task's label count = ``num_classes`` (and its
                      regression flag), the calibration's shift one per class, its exit one of the
                      blocks'; ``train_config``'s task and
                      ``max_len`` = the card's; every array named, shaped and typed as the config's
                      model needs (``model.npz`` or the packed arrays, and ``trainer.npz``'s arrays as the
                      run's command trains them); every weight finite.

A violation is one line, ``<what is wrong> (<file>): <what to do>``, naming the
field (``CheckpointError``).
"""
import dataclasses
import hashlib
import json
import math
import re

import numpy as np

from beexnp import outputs
from beexnp.config import ModelConfig, TrainConfig, as_trained, value_problems
from beexnp.glue.tasks import get_task
from beexnp.glue.tokenizer import BPE_FORMAT, SPECIALS, STATE_FORMAT, TOKEN_PATTERN, BPETokenizer, Tokenizer
from beexnp.mlm import masking_problem
from beexnp.outputs import UserError

SELF_SUM = "card_sha256"          # the card's own checksum, over every other entry
CALIBRATION = "calibration"       # the best checkpoint's shift of the logits (``beexnp.calibration.CARD_KEY``)
DAMAGED = "the file is damaged or was edited: use another checkpoint, or save or export the model again"
HEX64 = re.compile(r"[0-9a-f]{64}")
COMMANDS = ("train", "pretrain")  # the commands whose runs write checkpoints (the card's ``command``)


class CheckpointError(UserError):
    """A saved model that cannot be used: one line naming the file and what is wrong with it."""


def unusable(what, where, fix=DAMAGED, kind=CheckpointError):
    """``beexnp.outputs.problem`` for a saved model that cannot be used, its arguments in that order: a
    ``CheckpointError`` (the fix: by default, ``DAMAGED``)."""
    return outputs.problem(what, where, fix, kind)


def canonical(d):
    """The bytes a card's checksum is taken over: its JSON with sorted keys, compact."""
    return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()


def with_self_sum(card):
    """``card`` with ``card_sha256``, the sha256 of every other entry (``canonical``), taken as the card will be
    read back (through JSON: tuples become lists, int keys strings), so that reading it gives the same sum."""
    body = json.loads(json.dumps({k: v for k, v in card.items() if k != SELF_SUM}))
    return dict(body, **{SELF_SUM: hashlib.sha256(canonical(body)).hexdigest()})


def type_name(value):
    return "null" if value is None else type(value).__name__


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    """A JSON number that is finite (an integer too large for a float is not: it overflows)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


# ---- the config sections, derived from the dataclasses ---------------------------------------
def config_section(cls, values, name, path, defaulted):
    """``cls`` built from the card's section ``name``; the fields it lacks that have a default go into
    ``defaulted`` (named if the card's own checksum then fails).  Every problem is one line naming the field."""
    if not isinstance(values, dict):
        raise unusable(f"{name} must be a JSON object, got {type_name(values)}", path)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(map(str, set(values) - set(fields)))
    if unknown:
        raise unusable(f"{name}.{unknown[0]} is not a {cls.__name__} field", path)
    for f in fields.values():
        if f.name not in values:
            if f.default is dataclasses.MISSING:
                raise unusable(f"{name}.{f.name} is missing", path)
            defaulted.append(f"{name}.{f.name}")
    for _, what, _ in value_problems(cls, values):
        raise unusable(f"{name}.{what}", path)
    try:
        config = cls(**(as_trained(values) if cls is TrainConfig else values))
        if cls is ModelConfig:
            config.validate()
    except (ValueError, TypeError) as err:
        raise unusable(f"{name}.{getattr(err, 'what', err)}", path) from None
    return config


# ---- the other fields ---------------------------------------------------------------------------
def tokenizer_of(state, path):
    """The ``Tokenizer`` (or ``BPETokenizer``, DESIGN §2.6) a card's ``tokenizer`` entry describes."""
    if not isinstance(state, dict):
        raise unusable(f"tokenizer must be a JSON object, got {type_name(state)}", path)
    if state.get("format") not in (STATE_FORMAT, BPE_FORMAT):
        raise unusable(f"tokenizer.format is {state.get('format')!r}, this beexnp reads {STATE_FORMAT!r} or "
                       f"{BPE_FORMAT!r}", path)
    if state.get("pattern") != TOKEN_PATTERN.pattern:
        raise unusable(f"tokenizer.pattern is {state.get('pattern')!r}, this beexnp reads "
                       f"{TOKEN_PATTERN.pattern!r}", path)
    unknown = sorted(map(str, set(state) - {"format", "pattern", "vocab"} - ({"merges"} if state["format"] == BPE_FORMAT
                                                                                 else set())))
    if unknown:
        raise unusable(f"tokenizer.{unknown[0]} is not a field of a {state['format']} tokenizer", path)
    vocab = state.get("vocab")
    if not isinstance(vocab, list):
        raise unusable(f"tokenizer.vocab must be a list of tokens, got {type_name(vocab)}", path)
    bad = next((i for i, t in enumerate(vocab) if not isinstance(t, str) or not t), None)
    if bad is not None:
        raise unusable(f"tokenizer.vocab[{bad}] must be a non-empty string, got {vocab[bad]!r}", path)
    if tuple(vocab[:len(SPECIALS)]) != SPECIALS:
        raise unusable(f"tokenizer.vocab must start with {list(SPECIALS)}, got {vocab[:len(SPECIALS)]}", path)
    if len(set(vocab)) != len(vocab):
        twice = next(t for i, t in enumerate(vocab) if t in vocab[:i])
        raise unusable(f"tokenizer.vocab holds {twice!r} twice", path)
    if state["format"] == STATE_FORMAT:
        return Tokenizer(vocab)
    merges, known = state.get("merges"), set(vocab)
    if not isinstance(merges, list):
        raise unusable(f"tokenizer.merges must be a list of pairs of pieces, got {type_name(merges)}", path)
    for i, m in enumerate(merges):
        if not (isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) and x for x in m)):
            raise unusable(f"tokenizer.merges[{i}] must be a pair of non-empty strings, got {m!r}", path)
        if m[0] + m[1] not in known:
            raise unusable(f"tokenizer.merges[{i}] makes {m[0] + m[1]!r}, a piece not in tokenizer.vocab", path)
    return BPETokenizer(vocab, merges)


def check_calibration(card, config, path, packed):
    """A card's ``calibration`` (DESIGN §9.3, ``beexnp.calibration``): a shift of every class's logit, the best
    exit it was chosen at and the scores before and after; ``folded`` (true: the shift is in the exit biases) in
    a packed file, which folds it at export, and never in a checkpoint."""
    stored = card[CALIBRATION]
    if not isinstance(stored, dict):
        raise unusable(f"{CALIBRATION} must be a JSON object, got {type_name(stored)}", path)
    if config.regression:
        raise unusable(f"{CALIBRATION} is for classifiers, but model_config.regression is true", path)
    allowed = {"shift", "exit", "score_before", "score_after"} | ({"folded"} if packed else set())
    unknown = sorted(map(str, set(stored) - allowed))
    if unknown:
        raise unusable(f"{CALIBRATION}.{unknown[0]} is not a field of the calibration"
                       + ("" if packed else " (a checkpoint's exit biases never hold the shift)"), path)
    shift = stored.get("shift")
    if not (isinstance(shift, list) and len(shift) == config.num_classes and all(map(is_number, shift))):
        raise unusable(f"{CALIBRATION}.shift must be a list of model_config.num_classes = {config.num_classes} "
                       f"finite numbers, got {shift!r}", path)
    if not (is_int(stored.get("exit")) and 1 <= stored["exit"] <= config.blocks):
        raise unusable(f"{CALIBRATION}.exit must be an exit in 1..{config.blocks}, got "
                       f"{stored.get('exit', 'nothing')!r}", path)
    for key in ("score_before", "score_after"):
        if not is_number(stored.get(key)):
            raise unusable(f"{CALIBRATION}.{key} must be a finite number, got {stored.get(key, 'nothing')!r}", path)
    if packed and stored.get("folded") is not True:
        raise unusable(f"{CALIBRATION}.folded must be true in a packed file (export folds the shift into its "
                       f"exit biases), got {stored.get('folded', 'nothing')!r}", path)


def task_of(name, path, field="task"):
    if not isinstance(name, str):
        raise unusable(f"{field} must be a task name, got {type_name(name)}", path)
    try:
        return get_task(name)
    except ValueError as err:
        raise unusable(f"{field}: {err}", path) from None


def check_state(state, path):
    """A training run's ``state``: counters, the best score, the epoch's Generator state."""
    if not isinstance(state, dict):
        raise unusable(f"state must be a JSON object, got {type_name(state)}", path)
    counts = ("step", "epoch", "batch_in_epoch", "epochs_without_gain")
    for key in counts:
        if not is_int(state.get(key)) or state[key] < 0:
            raise unusable(f"state.{key} must be an integer >= 0, got {state.get(key, 'nothing')!r}", path)
    kinds = dict(best_score=lambda v: v is None or is_number(v),
                 best_epoch=lambda v: v is None or (is_int(v) and v >= 1),
                 finished=lambda v: isinstance(v, bool), seconds=lambda v: is_number(v) and v >= 0,
                 selection_score=lambda v: isinstance(v, str),
                 epoch_rng_state=lambda v: v is None or isinstance(v, dict), running=lambda v: isinstance(v, dict))
    for key, ok in kinds.items():
        if key in state and not ok(state[key]):
            raise unusable(f"state.{key} has the wrong type or value: {state[key]!r}", path)
    if state.get("epoch_rng_state") is not None:
        check_rng(state["epoch_rng_state"], path, "state.epoch_rng_state")
    running = state.get("running")
    if running is not None:                        # the epoch's sums so far (``train.RunningStats.state``)
        sums = ("loss", "n_loss", "correct", "seen", "n_inputs")
        if not all(is_number(running.get(k)) for k in sums) or not isinstance(running.get("exit_weights"), list) \
                or not all(is_number(w) for w in running["exit_weights"]):
            raise unusable(f"state.running must hold the numbers {', '.join(sums)} and a list exit_weights", path)


def check_rng(value, path, field):
    """A NumPy bit generator's state, as ``Generator.bit_generator.state`` accepts it."""
    try:
        np.random.default_rng(0).bit_generator.state = value
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
        raise unusable(f"{field} is not a NumPy generator state", path) from None


def check_training(card, path):
    """The entries only a training checkpoint has (``Trainer.meta``, ``Trainer.save``), when present."""
    if "state" in card:
        check_state(card["state"], path)
    if "rng" in card:
        rng = card["rng"]
        if not isinstance(rng, dict) or set(rng) != {"model", "data"}:
            raise unusable("rng must be a JSON object with 'model' and 'data'", path)
        for key in ("model", "data"):
            check_rng(rng[key], path, f"rng.{key}")
    if "optimizer" in card:
        opt = card["optimizer"]
        if not isinstance(opt, dict) or not is_int(opt.get("step")) or opt["step"] < 0 \
                or not is_number(opt.get("lr")):
            raise unusable(f"optimizer must be {{'step': an integer >= 0, 'lr': a number}}, got {opt!r}", path)
    if "history" in card and not (isinstance(card["history"], list)
                                  and all(isinstance(r, dict) for r in card["history"])):
        raise unusable("history must be a list of JSON objects (one per epoch)", path)
    if "history" in card and "state" in card and len(card["history"]) != card["state"]["epoch"]:
        raise unusable(f"history holds {len(card['history'])} epochs, state.epoch is {card['state']['epoch']}", path)
    if "metrics" in card and not (card["metrics"] is None or isinstance(card["metrics"], dict)):
        raise unusable(f"metrics must be a JSON object or null, got {type_name(card['metrics'])}", path)
    check_run_kind(card, path)
    if "data" in card:
        data = card["data"]
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) and HEX64.fullmatch(v)
                                                 for k, v in data.items()):
            raise unusable("data must map each data file the run read to its sha256 (64 hex digits)", path)


def check_masking(value, path, field):
    """A pretrain run's masking settings (``beexnp.mlm``): {"levels": one of LEVELS, "rate": in (0, 1)}."""
    if not isinstance(value, dict) or set(value) != {"levels", "rate"}:
        raise unusable(f"{field} must be a JSON object with 'levels' and 'rate', got {value!r}", path)
    what = masking_problem(value["levels"], value["rate"])
    if what:
        raise unusable(f"{field}.{what}", path)


def check_run_kind(card, path):
    """``command`` (the command whose run it is), ``pretrain`` (its masking settings, a pretrain run's),
    ``init`` (train --init: the checkpoint the encoder came from, or null)."""
    command = card.get("command", "train")
    if command not in COMMANDS:
        raise unusable(f"command must be one of {', '.join(COMMANDS)}, got {command!r}", path)
    if command == "pretrain" or "pretrain" in card:
        check_masking(card.get("pretrain"), path, "pretrain")
    init = card.get("init")
    if init is None:
        return
    if not isinstance(init, dict) or set(init) != {"checkpoint", "command", "step", "pretrain"}:
        raise unusable("init must be null or a JSON object with 'checkpoint', 'command', 'step' and 'pretrain'", path)
    if not isinstance(init["checkpoint"], str) or init["command"] not in COMMANDS \
            or not (init["step"] is None or (is_int(init["step"]) and init["step"] >= 0)):
        raise unusable(f"init must name a checkpoint, its command ({', '.join(COMMANDS)}) and step, got {init!r}", path)
    if init["pretrain"] is not None:
        check_masking(init["pretrain"], path, "init.pretrain")


@dataclasses.dataclass
class Card:
    """What a checked card holds: the model's config and, where saved, the task, tokenizer and run settings."""

    raw: dict                                   # the card as read (JSON)
    config: ModelConfig
    task: object = None                         # a ``Task``
    tokenizer: Tokenizer = None
    train_config: TrainConfig = None


def check_card(card, path, training_fields=True):
    """The ``Card`` of the JSON object ``card`` read from ``path`` (every field, then the cross-checks).

    ``training_fields``: also type the entries of a training checkpoint (state, rng, optimizer...); without
    them the card is a packed file's, whose calibration may be marked folded."""
    if not isinstance(card, dict):
        raise unusable(f"the card must be a JSON object, got {type_name(card)}", path)
    defaulted = []
    if "model_config" not in card:
        raise unusable("model_config is missing", path)
    config = config_section(ModelConfig, card["model_config"], "model_config", path, defaulted)
    out = Card(card, config)
    if "task" in card:
        out.task = task_of(card["task"], path)
        if config.num_classes != out.task.num_labels or config.regression != out.task.regression:
            raise unusable(f"model_config.num_classes is {config.num_classes} (regression {config.regression}), "
                           f"but task {out.task.name} has {out.task.num_labels} label(s) "
                           f"(regression {out.task.regression})", path)
    if "tokenizer" in card:
        out.tokenizer = tokenizer_of(card["tokenizer"], path)
        if len(out.tokenizer) != config.vocab_size:
            raise unusable(f"tokenizer.vocab holds {len(out.tokenizer)} tokens, model_config.vocab_size is "
                           f"{config.vocab_size}", path)
    if "train_config" in card:
        train = card["train_config"]
        out.train_config = config_section(TrainConfig, train, "train_config", path, defaulted)
        if out.task is not None and get_task(out.train_config.task) != out.task:
            raise unusable(f"train_config.task is {out.train_config.task!r}, the card's task {out.task.name!r}", path)
        if out.train_config.max_len != config.max_len:
            raise unusable(f"train_config.max_len is {out.train_config.max_len}, model_config.max_len "
                           f"{config.max_len}", path)
    if CALIBRATION in card:
        check_calibration(card, config, path, packed=not training_fields)
    if training_fields:
        check_training(card, path)
    if SELF_SUM in card and with_self_sum(card)[SELF_SUM] != card[SELF_SUM]:
        dropped = f" ({', '.join(defaulted)} missing)" if defaulted else ""
        raise unusable(f"the card does not match its own checksum {SELF_SUM}{dropped}", path)
    return out


# ---- the arrays -----------------------------------------------------------------------------------
def check_arrays(arrays, expected, path, what="array"):
    """Every array of ``expected`` ({name: (shape, dtype kind)}, kind 'f' floating or 'u1' uint8) present in
    ``arrays``, none more, each of its shape and kind and (floating) finite."""
    missing = sorted(set(expected) - set(arrays))
    if missing:
        more = f" (and {len(missing) - 1} more)" if missing[1:] else ""
        raise unusable(f"{what} {missing[0]} is missing{more}", path)
    extra = sorted(set(arrays) - set(expected))
    if extra:
        raise unusable(f"{what} {extra[0]} is not one this model has", path)
    for name, (shape, kind) in expected.items():
        a = arrays[name]
        if tuple(a.shape) != tuple(shape):
            raise unusable(f"{what} {name} has shape {tuple(a.shape)}, the config gives {tuple(shape)}", path)
        if kind == "u1" and a.dtype != np.uint8:
            raise unusable(f"{what} {name} must be uint8 bits, got {a.dtype}", path)
        if kind == "f":
            if not np.issubdtype(a.dtype, np.floating):
                raise unusable(f"{what} {name} must hold floating-point numbers, got {a.dtype}", path)
            if not np.all(np.isfinite(a)):
                raise unusable(f"{what} {name} holds {int(np.sum(~np.isfinite(a)))} NaN or infinite values", path)


def check_finite(arrays, path, what="array"):
    """Every array of ``arrays`` floating-point and finite (the optimizer's moments)."""
    check_arrays(arrays, {name: (a.shape, "f") for name, a in arrays.items()}, path, what)
