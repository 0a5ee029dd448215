"""The task registry: names, aliases, label order, metrics, layouts."""
import pytest

from beexnp.glue import TASKS, get_task
from beexnp.glue.tasks import Task


def test_the_nine_tasks_are_registered():
    assert sorted(TASKS) == sorted(["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"])
    assert {t.dir for t in TASKS.values()} == {"CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"}


@pytest.mark.parametrize("name, expected", [
    ("sst2", "sst2"), ("SST-2", "sst2"), ("sst-2", "sst2"), ("Sst_2", "sst2"), ("sst", "sst2"),
    ("STS-B", "stsb"), ("sts-b", "stsb"), ("sts", "stsb"), ("CoLA", "cola"), ("MNLI", "mnli"),
    ("qnli", "qnli"), ("RTE", "rte"), ("wnli", "wnli"), ("QQP", "qqp"), ("mrpc", "mrpc"),
])
def test_get_task_accepts_names_and_aliases(name, expected):
    assert get_task(name).name == expected


def test_get_task_returns_a_task_unchanged():
    task = TASKS["rte"]
    assert get_task(task) is task


def test_unknown_task_lists_the_valid_names():
    with pytest.raises(ValueError) as err:
        get_task("sst3")
    message = str(err.value)
    assert "'sst3'" in message
    for name in TASKS:
        assert name in message


def test_label_names_in_official_order():
    assert get_task("rte").labels == ("entailment", "not_entailment")
    assert get_task("qnli").labels == ("entailment", "not_entailment")
    assert get_task("mnli").labels == ("contradiction", "entailment", "neutral")
    for name in ("cola", "sst2", "mrpc", "qqp", "wnli"):
        assert get_task(name).labels == ("0", "1"), name
    stsb = get_task("stsb")
    assert stsb.regression and stsb.labels == () and stsb.num_labels == 1 and stsb.score_range == (0.0, 5.0)
    assert get_task("mnli").num_labels == 3


@pytest.mark.parametrize("name, metrics, main", [
    ("cola", ("mcc",), "mcc"), ("sst2", ("accuracy",), "accuracy"),
    ("mrpc", ("f1", "accuracy"), "f1"), ("qqp", ("f1", "accuracy"), "f1"),
    ("stsb", ("pearson", "spearman"), "pearson"), ("mnli", ("accuracy",), "accuracy"),
    ("qnli", ("accuracy",), "accuracy"), ("rte", ("accuracy",), "accuracy"), ("wnli", ("accuracy",), "accuracy"),
])
def test_metrics_per_task(name, metrics, main):
    task = get_task(name)
    assert task.metrics == metrics
    assert task.main_metric == main


def test_pair_and_single_sentence_tasks():
    assert {n for n, t in TASKS.items() if not t.pair} == {"cola", "sst2"}


def test_splits_and_dev_splits():
    mnli = get_task("mnli")
    assert mnli.dev_splits == ("dev_matched", "dev_mismatched")
    assert set(mnli.splits) == {"train", "dev_matched", "dev_mismatched", "test_matched", "test_mismatched"}
    assert mnli.splits["dev_mismatched"] == "dev_mismatched.tsv"
    for name, task in TASKS.items():
        if name != "mnli":
            assert task.splits == {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
            assert task.dev_splits == ("dev",)


def test_layouts_match_the_official_files():
    cola = get_task("cola")
    assert (cola.layouts["train"].header, cola.layouts["train"].n_columns) == (False, 4)
    assert (cola.layouts["train"].text_a, cola.layouts["train"].label) == (3, 1)
    assert cola.layouts["test"].header and cola.layouts["test"].text_a == 1
    assert get_task("mnli").layouts["dev_matched"].label == 15
    assert get_task("mnli").layouts["train"].label == 11
    assert (get_task("stsb").layouts["dev"].text_a, get_task("stsb").layouts["dev"].label) == (7, 9)
    for task in TASKS.values():            # test files never carry labels, other files always do
        for split, layout in task.layouts.items():
            assert (layout.label is None) == split.startswith("test"), (task.name, split)
            assert (layout.text_b is None) == (not task.pair), (task.name, split)


def test_unknown_split_lists_the_valid_ones():
    with pytest.raises(ValueError, match="dev_matched, dev_mismatched"):
        get_task("mnli").layout("dev")


def test_task_is_immutable():
    with pytest.raises(AttributeError):
        TASKS["rte"].main_metric = "f1"
    assert isinstance(TASKS["rte"], Task)
