"""``python -m beexnp data``: split sizes, label counts and token lengths."""
import json

import pytest

from beexnp.cli import main
from beexnp.glue.summary import describe_task


@pytest.fixture
def glue(tmp_path):
    """An SST-2 folder with train and dev (no test) and an STS-B folder with dev only."""
    sst2 = tmp_path / "SST-2"
    sst2.mkdir()
    (sst2 / "train.tsv").write_text("sentence\tlabel\na good film\t1\na bad film\t0\ngood\t1\ngood good\t1\n")
    (sst2 / "dev.tsv").write_text("sentence\tlabel\na great film !\t1\n")
    stsb = tmp_path / "STS-B"
    stsb.mkdir()
    head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    (stsb / "dev.tsv").write_text(head + "0\tg\tf\ty\t0\tn\tn\tA b.\tC.\t1.0\n1\tg\tf\ty\t1\tn\tn\tA.\tB.\t4.0\n")
    return tmp_path


def test_describe_task(glue):
    summary = describe_task("sst2", glue)
    train, dev = summary["splits"]["train"], summary["splits"]["dev"]
    assert (train["rows"], dev["rows"]) == (4, 1)
    assert train["labels"] == {"0": 1, "1": 3}
    # lengths with [CLS]: 4, 4, 2, 3 -> p50 (higher) 4, max 4
    assert train["tokens"] == {"p50": 4, "p90": 4, "p95": 4, "p99": 4, "max": 4}
    assert dev["tokens"]["max"] == 5
    assert dev["unknown"] == pytest.approx(2 / 4)          # "great" and "!" are not in the train vocabulary
    assert train["unknown"] is None
    assert summary["vocab_size"] == 4 + 4                  # specials + a, good, film, bad
    assert list(summary["missing"]) == ["test"]


def test_describe_regression_task_without_train(glue):
    summary = describe_task("stsb", glue)
    dev = summary["splits"]["dev"]
    assert dev["labels"] == {"mean": 2.5, "std": 1.5, "min": 1.0, "max": 4.0}
    assert dev["tokens"]["max"] == 7                       # [CLS] a b . [SEP] c .
    assert dev["unknown"] is None and summary["vocab_size"] is None
    assert sorted(summary["missing"]) == ["test", "train"]


def test_data_command_json(glue, capsys):
    assert main(["data", "--task", "SST-2", "--glue-dir", str(glue), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["task"] == "sst2" and summary["splits"]["train"]["rows"] == 4


def test_data_command_text(glue, capsys):
    assert main(["data", "--task", "sst2", "--glue-dir", str(glue)]) == 0
    out = capsys.readouterr().out
    assert "0: 1 (25.0%)  1: 3 (75.0%)" in out
    assert "missing:" in out and "test.tsv" in out


def test_data_command_errors(glue, capsys):
    assert main(["data", "--task", "nope", "--glue-dir", str(glue)]) == 1
    assert "unknown GLUE task 'nope'" in capsys.readouterr().err
    assert main(["data", "--task", "rte", "--glue-dir", str(glue)]) == 1
    assert "python -m beexnp download --tasks rte" in capsys.readouterr().err
