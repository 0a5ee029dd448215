"""Read one split of a GLUE task from its official TSV file.

The official files are tab-separated *without* quoting: MRPC, QNLI, RTE, STS-B
and WNLI hold stray ``"`` characters inside fields, which a default CSV parser
would treat as quotes and silently merge rows.  So a line is split on ``\\t``
and nothing else.  Lines end with ``\\n`` (a ``\\r`` before it is dropped);
``str.splitlines`` is not used because it also breaks on characters such as
``\\x1c`` or ``\\u2028`` that may sit inside a sentence.  The file is decoded as
UTF-8 with an optional BOM (MRPC train/dev start with one).

Every problem -- bytes that are not UTF-8, a row with the wrong number of
fields, a label that is not one of the task's labels -- raises
``GlueFormatError`` whose message starts with ``file:line:``.

Rows whose text (``text_a``, or ``text_b`` of a pair) is empty or blank are
*reported*: an ``EmptyTextWarning`` names their lines, ``Examples.empty_lines``
lists them, and ``on_empty`` chooses what happens to them -- ``"keep"`` (the
default: the official row counts include every row), ``"drop"`` or
``"error"``.  (The official files present here have no such row.)
"""
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beexnp.glue.location import find_glue_dir
from beexnp.glue.tasks import get_task
from beexnp.outputs import Missing, UserError, problem


def refetch(path):
    """What to do about a damaged GLUE file: fetch its task again (the task named by the file's folder)."""
    try:
        name = get_task(Path(path).parent.name).name
    except UserError:
        return "the file is damaged or not GLUE's: fetch its task again (python -m beexnp download --force)"
    return f"the file is damaged or not GLUE's: fetch it again (python -m beexnp download --tasks {name} --force)"


class GlueFormatError(UserError):
    """A GLUE file does not have the expected format: ``<message> (path:line): <fix>`` (line numbers count
    from 1, the header included)."""

    def __init__(self, path, line, message, fix=None):
        self.path, self.line = path, line
        super().__init__(message, f"{path}:{line}" if line is not None else f"{path}", fix or refetch(path))


class EmptyTextWarning(UserWarning):
    """Some rows of a GLUE file have an empty text."""


@dataclass
class Examples:
    """The rows of one split, as parallel columns.

    ``text_a``: list of str.  ``text_b``: list of str, or None for a
    single-sentence task.  ``labels``: int64 label ids (``task.labels[i]`` is
    the name of id ``i``), float32 scores for STS-B, or None for a test split.
    ``lines``: int64, the 1-based line of each row in ``path``.
    ``empty_lines``: lines of the rows found with an empty text.
    """

    task: str
    split: str
    text_a: list
    text_b: list | None
    labels: np.ndarray | None
    lines: np.ndarray
    empty_lines: tuple = ()
    path: Path | None = None

    def __len__(self):
        return len(self.text_a)

    def take(self, indices):
        """A new ``Examples`` holding the rows ``indices`` (in that order)."""
        indices = np.asarray(indices, dtype=np.int64)
        lines = self.lines[indices]

        def pick(column):
            return None if column is None else [column[i] for i in indices]

        return Examples(
            task=self.task, split=self.split, text_a=pick(self.text_a), text_b=pick(self.text_b),
            labels=None if self.labels is None else self.labels[indices], lines=lines,
            empty_lines=tuple(int(n) for n in lines[np.isin(lines, self.empty_lines)]),
            path=self.path)


def decode_lines(path):
    """The lines of ``path`` (UTF-8, optional BOM), without line endings.
    A final newline does not make an extra empty line."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise GlueFormatError(path, line, f"not valid UTF-8 ({err.reason}, byte {data[err.start]:#04x})") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _label_parser(task, path):
    """A function (field, line) -> label value for ``task``; it raises
    GlueFormatError on a bad label."""
    if task.regression:
        low, high = task.score_range

        def parse(field, line):
            try:
                score = float(field)
            except ValueError:
                score = math.nan
            if not (low <= score <= high):   # also catches nan
                raise GlueFormatError(path, line, f"bad {task.name} score {field!r}: "
                                                  f"expected a number in [{low}, {high}]")
            return score
        return parse

    ids = {name: i for i, name in enumerate(task.labels)}

    def parse(field, line):
        if field not in ids:
            raise GlueFormatError(path, line, f"bad {task.name} label {field!r}: "
                                              f"expected one of {', '.join(task.labels)}")
        return ids[field]
    return parse


def read_split(path, task, split, on_empty="keep"):
    """Parse the file ``path`` as split ``split`` of ``task`` -> ``Examples``.

    ``on_empty``: ``"keep"``, ``"drop"`` or ``"error"`` for rows with an empty
    text (see the module docstring); keep and drop also warn."""
    if on_empty not in ("keep", "drop", "error"):
        raise ValueError(f"on_empty must be 'keep', 'drop' or 'error', not {on_empty!r}")
    task = get_task(task)
    layout = task.layout(split)
    path = Path(path)
    rows = decode_lines(path)
    first = 1
    if layout.header:
        if not rows:
            raise GlueFormatError(path, None, "empty file: expected a header line")
        n_columns, first = len(rows[0].split("\t")), 2
        rows = rows[1:]
    else:
        n_columns = layout.n_columns
    used = [c for c in (layout.text_a, layout.text_b, layout.label) if c is not None]
    if max(used) >= n_columns:
        raise GlueFormatError(path, 1, f"the header has {n_columns} columns, but {task.name} {split} "
                                       f"reads column {max(used)} (0-based): is this the right file?")

    parse_label = _label_parser(task, path) if layout.label is not None else None
    text_a, text_b, labels, lines, empty = [], [], [], [], []
    for line, row in enumerate(rows, start=first):
        fields = row.split("\t")
        if len(fields) != n_columns:
            raise GlueFormatError(path, line, f"expected {n_columns} tab-separated fields "
                                              f"({task.name} {split}), found {len(fields)}")
        a = fields[layout.text_a]
        b = fields[layout.text_b] if layout.text_b is not None else None
        label = parse_label(fields[layout.label], line) if parse_label is not None else None
        if not a.strip() or (b is not None and not b.strip()):
            if on_empty == "error":
                raise GlueFormatError(path, line, "empty text")
            empty.append(line)
            if on_empty == "drop":
                continue
        text_a.append(a)
        text_b.append(b)
        labels.append(label)
        lines.append(line)

    if empty:
        shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
        action = "kept" if on_empty == "keep" else "dropped"
        warnings.warn(f"{path}: {len(empty)} row(s) with an empty text {action} (lines {shown})",
                      EmptyTextWarning, stacklevel=2)
    label_dtype = np.float32 if task.regression else np.int64
    return Examples(
        task=task.name, split=split, text_a=text_a,
        text_b=text_b if layout.text_b is not None else None,
        labels=np.array(labels, dtype=label_dtype) if parse_label is not None else None,
        lines=np.array(lines, dtype=np.int64), empty_lines=tuple(empty), path=path)


def nonempty(examples):
    """``examples``, or a GlueFormatError naming the file if the split has no row (a header-only file)."""
    if not len(examples):
        name = "training" if examples.split == "train" else examples.split
        raise GlueFormatError(examples.path, None, f"the {name} split is empty (no rows after the header)",
                              "give a GLUE folder (--glue-dir) whose split has rows, or fetch the task again")
    return examples


def load_split(task, split, glue_dir=None, on_empty="keep"):
    """Read split ``split`` of ``task`` from the GLUE directory (see
    ``find_glue_dir``) -> ``Examples``.  A missing split file raises
    FileNotFoundError naming it."""
    task = get_task(task)
    task.layout(split)   # a bad split name fails before the file system is searched
    path = find_glue_dir(glue_dir, task) / task.dir / task.splits[split]
    if not path.is_file():
        held = ', '.join(sorted(p.name for p in path.parent.iterdir())) or 'nothing'
        raise problem(f"no {split} file for GLUE task {task.name!r} (the folder holds: {held})", path,
                      f"fetch the task again: python -m beexnp download --tasks {task.name} --force", Missing)
    return read_split(path, task, split, on_empty=on_empty)
