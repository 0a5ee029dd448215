"""Every setting in one place: the model's architecture and how it is trained.

Each field is declared once, with ``option(default, help, choices)``: that one
line documents the setting, builds its command-line flag (``beexnp.cli``) and
checks its value.  Both configs are plain dataclasses, JSON-serializable, and
stored in every checkpoint.

    ModelConfig     what fixes the architecture (width, heads, blocks, binarization)
    TrainConfig     the task, the optimizer and its schedule, the exit loss, the data

The choices and defaults a field offers come from the module that implements them
(the estimators from ``sign``, the SLFN's variants from ``slfn``, the exit weightings
and soft routing's (delta, tau, beta) from ``exit_loss``); a config holds the values.
"""
import dataclasses
import json
import math
import typing
from dataclasses import asdict, dataclass
from pathlib import Path

from beexnp.criteria import FractionalEntropy, RelativeChange
from beexnp.exit_loss import WEIGHTINGS, SoftRouting
from beexnp.glue.tasks import TASKS, get_task
from beexnp.glue.tokenizer import KINDS as TOKENIZERS
from beexnp.optim import OPTIMIZERS
from beexnp.outputs import UserError
from beexnp.schedules import DECAYS
from beexnp.sign import ESTIMATORS
from beexnp.slfn import SLFN_VARIANTS

SLFN_GATES = tuple(SLFN_VARIANTS)                 # DESIGN §4.4: which of the SLFN's gates are present
PAIR_ENCODINGS = ("joint", "siamese")             # DESIGN §5.6: how a sentence pair reaches the exits
SELECT_ON = ("dev", "heldout")                    # DESIGN §9.1: the split every choice is made on
HELDOUT_UNITS = ("groups", "rows")                # DESIGN §9.1: what the held-out slice holds out whole
LEGACY_TRAIN = {"heldout_unit": "rows"}           # what a card written before a field existed was trained with
DISTILL_FROM = ("last", "matching")               # DESIGN §6.9: which teacher exit each student exit learns from


def as_trained(train_config):
    """A card's ``train_config`` (a dict) with the fields it lacks because it was written before they existed set
    as that run had them (``LEGACY_TRAIN``); the others keep their defaults."""
    return dict(LEGACY_TRAIN, **train_config)


def option(default, help, choices=None):
    """A config field with its help text and, if given, its allowed values: one place that documents
    the setting, builds its command-line flag and checks its value."""
    return dataclasses.field(default=default, metadata=dict(help=help, choices=choices))


class ConfigProblem(UserError):
    """A setting's bad value, naming its ``section`` ("model" or "train") and ``field``; the place defaults to
    ``section.field`` and ``build_settings`` names where the value came from (a --config file or a flag)."""

    def __init__(self, section, field, what, fix, where=None):
        self.fields = (field,) if isinstance(field, str) else tuple(field)    # a problem of several: the first leads
        self.section, self.field = section, self.fields[0]
        super().__init__(what, where or f"{section}.{self.field}", fix)


def example(f):
    """', e.g. <the default>' for the dataclass field ``f`` (nothing when its default is None)."""
    return "" if f.default in (None, dataclasses.MISSING) else f", e.g. {f.default!r}"


def field_problems(config):
    """(field, what is wrong, what to do) per field of the dataclass instance ``config`` whose value has the
    wrong type or is not among its ``choices`` (an int is accepted for a float field; a bool is never a number)."""
    return value_problems(type(config), {f.name: getattr(config, f.name) for f in dataclasses.fields(config)})


def value_problems(cls, values):
    """``field_problems`` for some fields only: ``values`` maps field names of the dataclass ``cls`` to
    values (a section of a JSON config, say); names that are not fields are left to the caller."""
    hints = typing.get_type_hints(cls)
    problems = []
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        value = values[f.name]
        allowed = [t for t in typing.get_args(hints[f.name]) or (hints[f.name],)]
        kinds = tuple({float: (int, float)}.get(t, (t,)) for t in allowed)
        kinds = tuple(k for group in kinds for k in group)
        numeric_bool = isinstance(value, bool) and bool not in allowed
        choices = ", ".join(map(repr, f.metadata.get("choices") or ()))
        if numeric_bool or not isinstance(value, kinds):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
            fix = f"use one of {choices}" if choices else f"give a JSON {' or '.join(JSON_NAMES[t] for t in allowed)}"
            problems.append((f.name, f"{f.name} must be {names}, got {value!r}", fix + ("" if choices else example(f))))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append((f.name, f"{f.name} must be a finite number, got {value!r}",
                             "give a finite number" + example(f)))
        elif choices and value not in f.metadata["choices"]:
            problems.append((f.name, f"{f.name} must be one of {choices}, got {value!r}", f"use one of {choices}"))
    return problems


JSON_NAMES = {int: "integer (no quotes, no decimal point)", float: "number (no quotes)", bool: "true or false",
              str: "string (in quotes)", type(None): "null"}


def checked(config, section):
    """``config`` if its fields have the right types and choices (``field_problems``) and then the right ranges
    (its ``_range_problems``); otherwise a ``ConfigProblem`` naming the first field that has a problem."""
    for field, what, fix in field_problems(config) or config._range_problems():
        raise ConfigProblem(section, field, what, fix)
    return config


def at_least(config, names, low, strict=False):
    """(field, what, fix) for every field among ``names`` of ``config`` that is below ``low`` (or at it, ``strict``);
    a field whose value is None (no limit) passes."""
    sign = ">" if strict else ">="
    fields = {f.name: f for f in dataclasses.fields(config)}
    return [(name, f"{name} must be {sign} {low}, got {getattr(config, name)}",
             f"give {name} {sign} {low}" + (example(fields[name]) if fields[name].default is not None
                                            else ", or leave it out for no limit"))
            for name in names if getattr(config, name) is not None
            and (getattr(config, name) <= low if strict else getattr(config, name) < low)]


def within(config, name, low, high, closed_high=False, closed_low=True):
    """[(field, what, fix)] if the field ``name`` of ``config`` is outside the interval from ``low`` to ``high``."""
    value = getattr(config, name)
    ok = (low <= value if closed_low else low < value) and (value <= high if closed_high else value < high)
    span = f"{'[' if closed_low else '('}{low}, {high}{']' if closed_high else ')'}"
    default = next(f for f in dataclasses.fields(config) if f.name == name)
    return [] if ok else [(name, f"{name} must be in {span}, got {value}", f"give {name} in {span}" + example(default))]


def dataclass_from_dict(cls, d, what):
    """cls(**d), refusing keys that are not fields of the dataclass ``cls`` (named in the error)."""
    section = "model" if cls is ModelConfig else "train"
    if not isinstance(d, dict):
        raise UserError(f"{what} must be a JSON object, got {type(d).__name__}", section,
                        "give an object of its fields")
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigProblem(section, unknown[0], f"unknown {what} keys: {', '.join(unknown)}",
                            f"remove them; the keys are {', '.join(f.name for f in dataclasses.fields(cls))}")
    return cls(**d)


def head_choices(dim):
    """The head counts (up to 64) that divide width ``dim``: attention splits the width into equal heads."""
    return [h for h in range(1, min(dim, 64) + 1) if dim % h == 0]


@dataclass
class ModelConfig:
    """Everything that fixes the architecture; JSON-serializable."""

    vocab_size: int                    # set from the tokenizer
    num_classes: int = option(2, "number of classes C (1 with regression, set from the task)")
    regression: bool = option(False, "one real output and MSE (STS-B; set from the task)")
    token_dim: int = option(112, "token embedding width d_tok")
    position_dim: int = option(16, "sinusoidal position width d_pos, concatenated (ignored with 'add')")
    position_mode: str = option("concat", "join positions to tokens: 'concat' (the paper) or 'add'",
                                ("concat", "add"))
    heads: int = option(4, "attention heads (must divide the width d)")
    blocks: int = option(6, "blocks, hence exits")
    ffn: str = option("slfn", "the block's second sublayer: 'slfn' or 'ffn' (binarized feed-forward ablation)",
                      ("slfn", "ffn"))
    slfn_gates: str = option("all", "the SLFN's gates: 'all' three, the 'learn' gate only, or the two 'forget' "
                                    "gates only (DESIGN §4.4)", SLFN_GATES)
    segments: bool = option(False, "segment (token-type) embeddings added to the tokens: sentence a, sentence b "
                                   "(DESIGN §2.5)")
    pair_encoding: str = option("joint", "sentence pairs: 'joint' ([CLS] a [SEP] b in one sequence) or 'siamese' "
                                         "(each sentence through the shared blocks, exits read [u, v, |u-v|, u*v]; "
                                         "DESIGN §5.6)", PAIR_ENCODINGS)
    pair_cosine: bool = option(False, "siamese pairs: the exits also read cos(u, v), one more feature "
                                      "(DESIGN §5.6)")
    binarize: bool = option(True, "binarized block weights (False: the full-precision twin)")
    estimator: str = option("second_order", "gradient of sign: 'second_order' approximation or 'ste'",
                            tuple(ESTIMATORS))
    alpha_grad: bool = option(True, "gradient through alpha = mean|W| (off: Bi-Real Net, BiBERT, larq)")
    binarize_activations: bool = option(False, "W1A1: binarize the inputs of binarized layers too")
    binarize_embeddings: bool = option(False, "token embeddings as sign with a per-row alpha (DESIGN §2.3)")
    dropout: float = option(0.1, "dropout probability")
    max_len: int = option(128, "longest input, in tokens (set from the training config)")

    @property
    def dim(self):
        """Model width d."""
        return self.token_dim + (self.position_dim if self.position_mode == "concat" else 0)

    @property
    def exit_width(self):
        """Width of what an exit classifier reads: d, or 4d for [u, v, |u - v|, u * v] (+ 1 for cos(u, v);
        DESIGN §5.6)."""
        return 4 * self.dim + self.pair_cosine if self.pair_encoding == "siamese" else self.dim

    def validate(self):
        return checked(self, "model")

    def _range_problems(self):
        problems = []
        if self.regression and self.num_classes != 1:
            problems.append(("num_classes", f"regression needs num_classes=1, got {self.num_classes}",
                             "give num_classes 1 (it is set from the task)"))
        if not self.regression and self.num_classes < 2:
            problems.append(("num_classes", f"classification needs num_classes >= 2, got {self.num_classes}",
                             "give num_classes >= 2 (it is set from the task)"))
        sizes = at_least(self, ("token_dim", "heads", "blocks"), 1) + at_least(self, ("position_dim",), 0)
        problems += sizes
        if not sizes and self.dim % self.heads:
            divisors = head_choices(self.dim)
            problems.append((("heads", "token_dim", "position_dim", "position_mode"), f"width d={self.dim} is not divisible by heads={self.heads}",
                             f"use heads that divide {self.dim} (one of {', '.join(map(str, divisors))}), or change "
                             "token_dim / position_dim"))
        problems += [(name, what, fix + " (4 special tokens and a word)")
                     for name, what, fix in at_least(self, ("vocab_size",), 5)]
        problems += within(self, "dropout", 0, 1)
        if self.pair_cosine and self.pair_encoding != "siamese":
            problems.append((("pair_cosine", "pair_encoding"), "pair_cosine compares the two sentences' vectors, "
                             f"which only pair_encoding='siamese' has (got {self.pair_encoding!r})",
                             "use pair_encoding 'siamese', or leave pair_cosine off"))
        return problems

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return dataclass_from_dict(cls, d, "model config").validate()

    @classmethod
    def from_json(cls, path):
        with open(path) as f:
            return cls.from_dict(json.load(f))


# ModelConfig fields the Trainer sets from the task, the tokenizer and the training config.
DATA_DERIVED = ("vocab_size", "num_classes", "regression", "max_len")

# TrainConfig fields a resumed run may change: how long it goes on and how often it saves.  Every other
# setting (the model, the data, the optimizer, the schedule, the loss, the seed) is the checkpoint's.
RESUME_OVERRIDES = ("epochs", "max_steps", "patience", "save_every")


def resume_conflicts(stored_model, stored_train, model=None, train=None):
    """'name: checkpoint X, given Y' for every setting in ``model`` / ``train`` (dicts of the values
    asked for) that differs from the checkpoint's stored configs and is not in ``RESUME_OVERRIDES``."""
    def same(key, have, want):
        if key == "task":
            return get_task(have).name == get_task(want).name
        return have == want

    conflicts = []
    for given, stored, free in ((model or {}, stored_model, ()), (train or {}, stored_train, RESUME_OVERRIDES)):
        for key, value in given.items():
            have = stored.get(key)
            if key not in free and not same(key, have, value):
                conflicts.append(f"{key}: checkpoint {have!r}, given {value!r}")
    return conflicts


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
    exit_weighting: str = option("soft_routing", "how the exits' losses are weighted (DESIGN §6.6-§6.8)",
                                 WEIGHTINGS)
    delta: float = option(SoftRouting.delta, "soft routing: the exit rule's threshold, in [0, 1) (>= 0 for STS-B)")
    tau: float = option(SoftRouting.tau, "soft routing: its temperature")
    beta: float = option(SoftRouting.beta, "soft routing: the share of uniform weight")
    tokenizer: str = option("word", "the tokens: 'word' (words and punctuation, DESIGN §2.1) or 'bpe' (subword "
                                    "pieces learned from the training split, DESIGN §2.6; size: max_vocab)",
                            TOKENIZERS)
    min_freq: int = option(2, "vocabulary: tokens (bpe: characters and merged pairs) seen at least this often in "
                              "the training split")
    max_vocab: int = option(20000, "vocabulary: at most this many tokens, specials included")
    train_subset: int | None = option(None, "first n training rows only (default: all)")
    dev_subset: int | None = option(None, "first n rows of each dev split only (default: all)")
    bucket: bool = option(True, "batch inputs of similar length together (less padding)")
    patience: int = option(2, "early stopping: epochs without a better score on the selection split")
    select_on: str = option("dev", "the split every choice is made on (best epoch, early stopping; DESIGN §9.1): "
                                   "'dev', or 'heldout', a fixed seeded slice of the training split", SELECT_ON)
    heldout_fraction: float = option(0.1, "select_on heldout: the fraction of the training rows held out")
    heldout_seed: int = option(0, "select_on heldout: the seed of the held-out draw (not the run's seed)")
    heldout_unit: str = option("groups", "select_on heldout: hold out whole 'groups' of near-duplicate rows, or "
                                         "single 'rows' (the rule before issue 25; DESIGN §9.1)", HELDOUT_UNITS)
    calibrate: bool = option(False, "classification: after each better epoch, choose a per-class shift of every "
                                    "exit's logits on the selection split (DESIGN §9.3), stored in 'best'")
    teacher: str | None = option(None, "distil from this checkpoint (the full-precision twin; DESIGN §6.9); "
                                       "its tokenizer is used")
    distill_weight: float = option(0.5, "with a teacher: lambda, the soft-target loss's share of each exit's loss")
    distill_temperature: float = option(2.0, "with a teacher: the softmax temperature T of the soft targets")
    distill_from: str = option("last", "with a teacher: every exit learns from the teacher's 'last' exit, or "
                                       "from its 'matching' exit (same number of blocks)", DISTILL_FROM)
    save_every: int = option(500, "steps between 'last' checkpoints")
    seed: int = option(0, "one seed for initialization, dropout and data order")

    def __post_init__(self):
        checked(self, "train")

    def _range_problems(self):
        problems = []
        try:
            task = get_task(self.task)
        except UserError as err:
            problems.append(("task", err.what, err.fix))
        else:                                          # soft routing's delta is the exit rule's threshold
            try:
                (RelativeChange if task.regression else FractionalEntropy)(self.delta)
            except UserError as err:
                problems.append(("delta", err.what, err.fix))
        problems += at_least(self, ("epochs", "batch_size", "lr", "clip_norm", "tau", "min_freq", "patience",
                                    "save_every", "distill_temperature", "max_steps", "train_subset", "dev_subset"),
                             0, strict=True)
        problems += [(name, what, fix + " ([CLS], [SEP] and a token)") for name, what, fix in at_least(self, ("max_len",), 3)]
        problems += [(name, what, fix + " (4 special tokens and a word)")
                     for name, what, fix in at_least(self, ("max_vocab",), 5)]
        problems += at_least(self, ("weight_decay",), 0)
        problems += within(self, "warmup", 0, 1) + within(self, "beta", 0, 1, closed_high=True)
        problems += within(self, "heldout_fraction", 0, 1, closed_low=False)
        problems += within(self, "distill_weight", 0, 1, closed_high=True)
        return problems

    @property
    def soft_routing(self):
        """This run's ``SoftRouting`` value."""
        return SoftRouting(self.delta, self.tau, self.beta)

    @classmethod
    def from_dict(cls, d):
        return dataclass_from_dict(cls, d, "training config")


# ---- a run's settings, from a file and flags: built and checked here, once ---------------------------------
STAND_IN_VOCAB = 5                     # the 4 special tokens and one word: the ModelConfig before the data is read


def model_config_for(train_config, model_overrides=None, vocab_size=STAND_IN_VOCAB):
    """The ``ModelConfig`` of a run: the overrides, and the fields set from the task and the data
    (``DATA_DERIVED``; the vocabulary's size defaults to a stand-in, to check the settings before the data is read)."""
    task = get_task(train_config.task)
    config = ModelConfig.from_dict(dict(model_overrides or {}, num_classes=task.num_labels, regression=task.regression,
                                        max_len=max(train_config.max_len, 1), vocab_size=vocab_size))
    if config.pair_encoding == "siamese" and not task.pair:
        raise ConfigProblem("model", "pair_encoding", f"pair_encoding='siamese' needs a sentence-pair task; "
                            f"{task.name} has one sentence", "use pair_encoding 'joint', or a sentence-pair task")
    return config


@dataclass
class Settings:
    """A run's settings, checked: ``train`` (TrainConfig) and ``model`` (ModelConfig; its vocabulary size a
    stand-in until the tokenizer is known, or a resumed run's own)."""

    train: "TrainConfig"
    model: ModelConfig


def file_sections(path):
    """{"model": {...}, "train": {...}} of a --config file; a problem in it is one line naming the file and the field."""
    where = f"--config {path}"
    try:
        config = json.loads(Path(path).read_bytes())
    except json.JSONDecodeError as err:
        raise UserError(f"not valid JSON: {err.msg} at line {err.lineno} column {err.colno}", where,
                        "correct the file there (it must be one JSON object)") from None
    except RecursionError:
        raise UserError("not valid JSON: nested too deeply", where,
                        'write one object {"model": {...}, "train": {...}} of plain values') from None
    except UnicodeDecodeError as err:
        raise UserError(f"not UTF-8 text ({err.reason} at byte {err.start})", where, "save the file as UTF-8") from None
    except OSError as err:
        raise UserError(f"cannot read the file ({err.strerror or err})", where,
                        "give the path of a readable JSON file") from None
    if not isinstance(config, dict):
        raise UserError(f"expected a JSON object with 'model' and/or 'train' sections, got {type(config).__name__}",
                        where, 'write {"model": {...}, "train": {...}}')
    unknown = sorted(map(str, set(config) - {"model", "train"}))
    if unknown:
        raise UserError(f"unknown sections {unknown}", f"{where}: {unknown[0]}",
                        "use only the sections 'model' and 'train'")
    for section, cls, derived in (("model", ModelConfig, DATA_DERIVED), ("train", TrainConfig, ())):
        values = config.get(section, {})
        if not isinstance(values, dict):
            raise UserError(f"'{section}' must be a JSON object, got {type(values).__name__}", f"{where}: {section}",
                            f'write "{section}": {{"field": value, ...}}')
        every = [f.name for f in dataclasses.fields(cls)]
        fields = [name for name in every if name not in derived]
        problems = [(key, f"unknown {section} keys: {', '.join(map(str, sorted(set(values) - set(every))))}",
                     f"remove it; the {section} keys are {', '.join(fields)}") for key in values if key not in every]
        problems = problems[:1] + [(k, f"{k} is set from the data", "remove it") for k in derived if k in values]
        problems += value_problems(cls, values)
        for field, what, fix in problems:
            raise ConfigProblem(section, field, what, fix, where=f"{where}: {section}.{field}")
    return {"model": config.get("model", {}), "train": config.get("train", {})}


def flag_of(field, value):
    """How the command line gives ``field`` = ``value``: ``--field-name value`` (a bool: ``--field`` / ``--no-field``)."""
    flag = "--" + field.replace("_", "-")
    if field == "binarize" and value is False:
        return "--full-precision"
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    return f"{flag} {value}"


def build_settings(file=None, model=None, train=None, resume=None):
    """The one place a run's settings are built and checked: the defaults, then the --config ``file``'s sections,
    then ``model`` and ``train`` (the flags typed: {field: value}).  A problem names where its value came from:
    the flag (``--epochs 0``), or the file and the field (``--config c.json: train.epochs``).

    ``resume``: the opened training checkpoint (``beexnp.checkpoint.open_checkpoint``) a run continues; every
    setting given must then equal the checkpoint's, but ``RESUME_OVERRIDES``, and the rest are the checkpoint's."""
    sections = file_sections(file) if file else {"model": {}, "train": {}}
    flags = {"model": dict(model or {}), "train": dict(train or {})}
    model = dict(sections["model"], **flags["model"])
    train = dict(sections["train"], **flags["train"])
    try:
        return settings_of(model, train, resume)
    except ConfigProblem as err:
        flagged = [f for f in err.fields if f in flags[err.section]]
        filed = [f for f in err.fields if f in sections[err.section]]
        if flagged:
            where = flag_of(flagged[0], flags[err.section][flagged[0]])
        elif filed:
            where = f"--config {file}: {err.section}.{filed[0]}"
        elif resume is not None:
            where = f"--resume {resume.path}: {err.section}.{err.field}"
        else:
            raise
        raise ConfigProblem(err.section, err.fields, err.what, err.fix, where) from None


def settings_of(model, train, resume):
    """``build_settings`` for the merged settings ``model`` and ``train`` ({field: value})."""
    if resume is None:
        cfg = TrainConfig.from_dict(train)
        return Settings(cfg, model_config_for(cfg, model))
    stored_model, stored_train = resume.card.config, resume.card.train_config
    conflicts = resume_conflicts(stored_model.to_dict(), asdict(stored_train), model, train)
    if conflicts:
        raise UserError(f"settings differ from the checkpoint's: {'; '.join(conflicts)}", f"--resume {resume.path}",
                        f"leave those settings out (a resumed run may change only {', '.join(RESUME_OVERRIDES)}), "
                        "or start a new run with another --out")
    cfg = TrainConfig.from_dict(dict(asdict(stored_train), **train))
    return Settings(cfg, stored_model)
