"""The nine GLUE tasks: where their files are and how their columns are laid out.

Everything the rest of ``beexnp.glue`` needs to know about a task lives in one
``Task`` record, so that reading, scoring and downloading never hard-code a
task name.  The layouts are those of the official files (``<dir>/<split>.tsv``
as the GLUE zips unpack):

======  =================  ===========================================  ================
task    splits             columns used (0-based: text_a, text_b, label)  dev metrics
======  =================  ===========================================  ================
CoLA    train dev test     train/dev: no header, 4 columns (3, -, 1);   mcc
                           test: ``index sentence`` (1, -, -)
SST-2   train dev test     ``sentence label`` (0, -, 1); test (1, -, -)  accuracy
MRPC    train dev test     ``Quality #1 ID #2 ID #1 String #2 String``   f1, accuracy
                           (3, 4, 0); test: ``index ...`` (3, 4, -)
STS-B   train dev test     10 columns (7, 8, 9), score in [0, 5];        pearson, spearman
                           test 9 columns (7, 8, -)
QQP     train dev test     ``id qid1 qid2 question1 question2            f1, accuracy
                           is_duplicate`` (3, 4, 5); test (1, 2, -)
MNLI    train dev_matched  train 12 columns (8, 9, 11); dev 16 columns   accuracy
        dev_mismatched     (8, 9, 15); test 10 columns (8, 9, -)
        test_matched
        test_mismatched
QNLI    train dev test     ``index question sentence label`` (1, 2, 3)  accuracy
RTE     train dev test     ``index sentence1 sentence2 label`` (1, 2, 3) accuracy
WNLI    train dev test     same as RTE                                   accuracy
======  =================  ===========================================  ================

Label names are listed in the order the official evaluation (the GLUE
baselines and BERT's ``run_classifier``) numbers them, so label id ``i`` is
``task.labels[i]``: the text of the label column.  Where that text is a digit,
``task.label_names[i]`` says what it means (SST-2: negative, positive; the
names of the GLUE dataset cards).  STS-B is a regression task: its label is a
float score.

Main metric (the one reported first): CoLA ``mcc``, MRPC and QQP ``f1``,
STS-B ``pearson``, accuracy elsewhere.  Choices (the best epoch, a grid point,
delta) are made on ``selection_metrics``, averaged: the main metric, or for
MRPC and QQP the mean of F1 and accuracy, GLUE's score for them (DESIGN §9.2).
"""
from dataclasses import dataclass

from beexnp.outputs import UserError


@dataclass(frozen=True)
class Layout:
    """Column layout of one split file.

    ``text_a``, ``text_b`` and ``label`` are 0-based column indices; ``text_b``
    is None for single-sentence tasks and ``label`` is None for test files.
    With ``header`` the first line holds column names and fixes how many
    columns every row must have; without one, ``n_columns`` does.
    """

    text_a: int
    text_b: int | None = None
    label: int | None = None
    header: bool = True
    n_columns: int | None = None


@dataclass(frozen=True)
class Task:
    """One GLUE task.  ``splits`` maps a split name to its file name inside
    ``dir`` and ``layouts`` maps it to its ``Layout``."""

    name: str                      # canonical lowercase name, e.g. "sst2"
    dir: str                       # folder name in the GLUE directory, e.g. "SST-2"
    splits: dict                   # split -> file name
    layouts: dict                  # split -> Layout
    labels: tuple                  # label names in official order; () for regression
    metrics: tuple                 # metric keys returned by compute_metrics
    main_metric: str
    regression: bool = False
    score_range: tuple | None = None   # (low, high) of a regression label
    aliases: tuple = ()
    names: tuple = ()                  # what each label means, where ``labels`` are digits
    selection_metrics: tuple = ()      # what choices are made on (their mean); () means (main_metric,)
    phrases: bool = False              # the training split holds the phrases of its sentences (SST-2)

    def __post_init__(self):
        if not self.selection_metrics:                                 # frozen: set through object
            object.__setattr__(self, "selection_metrics", (self.main_metric,))

    @property
    def label_names(self):
        """Human names of the labels, by id (``labels`` where those are words already)."""
        return self.names or self.labels

    @property
    def pair(self):
        """True for sentence-pair tasks."""
        return self.layouts["train"].text_b is not None

    @property
    def num_labels(self):
        """Number of classes; 1 for the regression task (one output)."""
        return 1 if self.regression else len(self.labels)

    @property
    def dev_splits(self):
        """The splits the benchmark reports dev scores on."""
        return tuple(s for s in self.splits if s.startswith("dev"))

    def layout(self, split):
        """The ``Layout`` of ``split``; a ValueError lists the valid splits."""
        if split not in self.layouts:
            raise ValueError(f"task {self.name!r} has no split {split!r}; "
                           f"valid splits: {', '.join(self.layouts)}")
        return self.layouts[split]


def _standard_splits(train, test, dev=None):
    """The usual three splits ``train``/``dev``/``test`` stored as ``<split>.tsv``."""
    layouts = {"train": train, "dev": dev or train, "test": test}
    return {s: f"{s}.tsv" for s in layouts}, layouts


_BINARY = ("0", "1")
_ENTAIL = ("entailment", "not_entailment")
_RTE_LIKE = _standard_splits(train=Layout(1, 2, 3), test=Layout(1, 2))
_MNLI_LAYOUTS = {
    "train": Layout(8, 9, 11),
    "dev_matched": Layout(8, 9, 15),
    "dev_mismatched": Layout(8, 9, 15),
    "test_matched": Layout(8, 9),
    "test_mismatched": Layout(8, 9),
}

TASKS = {
    "cola": Task("cola", "CoLA", *_standard_splits(
                     train=Layout(3, None, 1, header=False, n_columns=4), test=Layout(1)),
                 labels=_BINARY, metrics=("mcc",), main_metric="mcc", names=("unacceptable", "acceptable")),
    "sst2": Task("sst2", "SST-2", *_standard_splits(train=Layout(0, None, 1), test=Layout(1)),
                 labels=_BINARY, metrics=("accuracy",), main_metric="accuracy", aliases=("sst",), phrases=True,
                 names=("negative", "positive")),
    "mrpc": Task("mrpc", "MRPC", *_standard_splits(train=Layout(3, 4, 0), test=Layout(3, 4)),
                 labels=_BINARY, metrics=("f1", "accuracy"), main_metric="f1",
                 selection_metrics=("f1", "accuracy"),
                 names=("not_equivalent", "equivalent")),
    "stsb": Task("stsb", "STS-B", *_standard_splits(train=Layout(7, 8, 9), test=Layout(7, 8)),
                 labels=(), metrics=("pearson", "spearman"), main_metric="pearson",
                 regression=True, score_range=(0.0, 5.0), aliases=("sts",)),
    "qqp": Task("qqp", "QQP", *_standard_splits(train=Layout(3, 4, 5), test=Layout(1, 2)),
                labels=_BINARY, metrics=("f1", "accuracy"), main_metric="f1",
                 selection_metrics=("f1", "accuracy"),
                names=("not_duplicate", "duplicate")),
    "mnli": Task("mnli", "MNLI", {s: f"{s}.tsv" for s in _MNLI_LAYOUTS}, _MNLI_LAYOUTS,
                 labels=("contradiction", "entailment", "neutral"),
                 metrics=("accuracy",), main_metric="accuracy"),
    "qnli": Task("qnli", "QNLI", *_RTE_LIKE, labels=_ENTAIL,
                 metrics=("accuracy",), main_metric="accuracy"),
    "rte": Task("rte", "RTE", *_RTE_LIKE, labels=_ENTAIL,
                metrics=("accuracy",), main_metric="accuracy"),
    "wnli": Task("wnli", "WNLI", *_RTE_LIKE, labels=_BINARY,
                 metrics=("accuracy",), main_metric="accuracy", names=("not_entailment", "entailment")),
}


def _key(name):
    """Normalise a task name: lowercase, no '-' or '_' ("SST-2" -> "sst2")."""
    return name.lower().replace("-", "").replace("_", "")


_LOOKUP = {}
for _task in TASKS.values():
    for _name in (_task.name, _task.dir, *_task.aliases):
        _LOOKUP[_key(_name)] = _task


def get_task(name, where=None):
    """The ``Task`` called ``name`` (case, '-' and '_' ignored: "SST-2",
    "sst_2", "sts-b", "STS"...).  A ``Task`` is returned unchanged.
    An unknown name raises a UserError naming ``where`` it came from (default ``--task NAME``) and the valid names."""
    if isinstance(name, Task):
        return name
    try:
        return _LOOKUP[_key(str(name))]
    except KeyError:
        raise UserError(f"unknown GLUE task {name!r}", where or f"--task {name}",
                        f"use one of {', '.join(TASKS)}") from None
