"""GLUE data for BEExformer: the nine tasks read, tokenized, batched and scored.

    from beexnp.glue import get_task, load_split, Tokenizer, encode_examples, iterate_batches
    train = load_split("sst2", "train")               # Examples: text_a, text_b, labels
    tok = Tokenizer.fit(train.text_a, train.text_b, min_freq=2)
    enc = encode_examples(tok, train, max_len=64)     # EncodedSplit (ragged ids + labels)
    for batch in iterate_batches(enc, 32, rng=np.random.default_rng(0), shuffle=True, bucket=True):
        batch.ids, batch.mask, batch.labels, batch.index
    compute_metrics("sst2", predictions, labels)      # {"accuracy": ...}

Modules, one idea each: ``tasks`` (registry), ``location`` (where the files
are), ``reader`` (TSV parsing), ``download`` (fetching, on first use too; MRPC assembly),
``tokenizer``, ``batching``, ``metrics`` and ``summary`` (what the
``data`` and ``download`` commands).
"""
from beexnp.glue.batching import Batch, EncodedSplit, encode_examples, iterate_batches, subset
from beexnp.glue.location import find_glue_dir
from beexnp.glue.metrics import (accuracy, compute_metrics, f1, main_metric, matthews_corrcoef,
                                 pearson, selection_name, selection_score, spearman)
from beexnp.glue.reader import EmptyTextWarning, Examples, GlueFormatError, load_split, read_split
from beexnp.glue.tasks import TASKS, Task, get_task
from beexnp.glue.tokenizer import Tokenizer

__all__ = [
    "TASKS", "Task", "get_task", "find_glue_dir",
    "Examples", "load_split", "read_split", "GlueFormatError", "EmptyTextWarning",
    "Tokenizer", "EncodedSplit", "Batch", "encode_examples", "iterate_batches", "subset",
    "compute_metrics", "main_metric", "selection_score", "selection_name", "accuracy", "f1", "matthews_corrcoef",
    "pearson", "spearman",
]
