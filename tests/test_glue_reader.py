"""Reading the official TSV layouts, every error path, and finding the files.

The small files below copy the official headers and quirks: CoLA without a
header, MRPC's BOM, stray quotes, STS-B's ten columns, MNLI's 12/16/10 columns.
"""
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from beexnp.glue import EmptyTextWarning, GlueFormatError, find_glue_dir, get_task, load_split, read_split
from beexnp.glue import location

REAL_PROJECT_DIR = location.PROJECT_DIR         # before the ``project`` fixture replaces it

BOM = "\ufeff"
MNLI_HEAD = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
             "sentence1_parse\tsentence2_parse\tsentence1\tsentence2")


def mnli_row(index, a, b, *labels):
    return "\t".join([str(index), "31193", "31193n", "government", "( ( x ) )", "( ( y ) )",
                      "(ROOT x)", "(ROOT y)", a, b, *labels])


# (task, split, file content, text_a, text_b, labels)
LAYOUTS = [
    ("sst2", "train", "sentence\tlabel\nhide new secretions \t0\nit 's \" charming\t1\n",
     ["hide new secretions ", "it 's \" charming"], None, [0, 1]),
    ("sst2", "test", "index\tsentence\n0\tuneasy mishmash .\n", ["uneasy mishmash ."], None, None),
    ("cola", "train", "gj04\t1\t\tOur friends won't buy this.\ngj04\t0\t*\tThe more.\n",
     ["Our friends won't buy this.", "The more."], None, [1, 0]),
    ("cola", "dev", "gj04\t1\t\tNo final newline.", ["No final newline."], None, [1]),
    ("cola", "test", "index\tsentence\n0\tBill whistled.\n1\tThe car honked.\n",
     ["Bill whistled.", "The car honked."], None, None),
    ("mrpc", "train", BOM + "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                            "1\t702876\t702977\tAmrozi \" the witness \" .\tReferring \" to him .\n",
     ['Amrozi " the witness " .'], ['Referring " to him .'], [1]),
    ("mrpc", "test", "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t1\t2\tPCCW 's .\tCurrent .\n",
     ["PCCW 's ."], ["Current ."], None),
    ("stsb", "train", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                      "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane.\tAn air plane.\t5.000\n"
                      "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man.\tA flute.\t3.800\n",
     ["A plane.", "A man."], ["An air plane.", "A flute."], [5.0, 3.8]),
    ("stsb", "test", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\n"
                     "0\tmain-captions\tMSRvid\t2012test\t0024\tnone\tnone\tA girl.\tA girl brushing.\n",
     ["A girl."], ["A girl brushing."], None),
    ("qqp", "train", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                     "133273\t213221\t213222\tHow is the life?\tWhat is life?\t0\n",
     ["How is the life?"], ["What is life?"], [0]),
    ("qqp", "test", "id\tquestion1\tquestion2\n0\tWhy?\tHow?\n", ["Why?"], ["How?"], None),
    ("mnli", "train", MNLI_HEAD + "\tlabel1\tgold_label\n" + mnli_row(0, "Conceptually.", "Product.",
                                                                       "neutral", "neutral") + "\n",
     ["Conceptually."], ["Product."], [2]),
    ("mnli", "dev_matched", MNLI_HEAD + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n"
     + mnli_row(0, "The new rights.", "Everyone.", *["neutral"] * 4, "contradiction", "contradiction") + "\n"
     + mnli_row(1, "This site.", "The site.", *["entailment"] * 6) + "\n",
     ["The new rights.", "This site."], ["Everyone.", "The site."], [0, 1]),
    ("mnli", "test_mismatched", MNLI_HEAD + "\n" + mnli_row(0, "What.", "So.") + "\n", ["What."], ["So."], None),
    ("qnli", "dev", "index\tquestion\tsentence\tlabel\n0\tWhat came?\tAs of \"that\" day.\tentailment\n"
                    "1\tWhere?\tThe Ill.\tnot_entailment\n",
     ["What came?", "Where?"], ['As of "that" day.', "The Ill."], [0, 1]),
    ("rte", "train", "index\tsentence1\tsentence2\tlabel\n0\tNo WMD found.\tWMD found.\tnot_entailment\n",
     ["No WMD found."], ["WMD found."], [1]),
    ("rte", "test", "index\tsentence1\tsentence2\n0\tMangla.\tShukla.\n", ["Mangla."], ["Shukla."], None),
    ("wnli", "dev", "index\tsentence1\tsentence2\tlabel\n0\tThe drain.\tThe hair.\t0\n1\tJane.\tSusan.\t1\n",
     ["The drain.", "Jane."], ["The hair.", "Susan."], [0, 1]),
]


def write(tmp_path, content, name="file.tsv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize("task, split, content, text_a, text_b, labels", LAYOUTS,
                         ids=[f"{t}-{s}" for t, s, *_ in LAYOUTS])
def test_every_official_layout(tmp_path, task, split, content, text_a, text_b, labels):
    examples = read_split(write(tmp_path, content), task, split)
    assert examples.task == get_task(task).name and examples.split == split
    assert examples.text_a == text_a
    assert examples.text_b == text_b
    assert len(examples) == len(text_a)
    if labels is None:
        assert examples.labels is None
    else:
        dtype = np.float32 if get_task(task).regression else np.int64
        assert examples.labels.dtype == dtype
        np.testing.assert_allclose(examples.labels, labels, rtol=1e-6)
    first = 2 if get_task(task).layouts[split].header else 1
    np.testing.assert_array_equal(examples.lines, np.arange(first, first + len(text_a)))
    assert examples.empty_lines == ()


def test_a_stray_quote_does_not_join_lines(tmp_path):
    """A CSV parser would read '"it begins' as the start of a quoted field
    spanning the next line; tab-splitting keeps two rows."""
    examples = read_split(write(tmp_path, 'sentence\tlabel\n"it begins\t1\nnext one "\t0\n'), "sst2", "train")
    assert examples.text_a == ['"it begins', 'next one "']
    np.testing.assert_array_equal(examples.labels, [1, 0])


def test_unusual_line_breaks_inside_a_field_are_text(tmp_path):
    """str.splitlines would break on \\x1c and \\u2028; only \\n ends a row.
    A \\r before \\n (a file saved on Windows) is dropped."""
    examples = read_split(write(tmp_path, "sentence\tlabel\r\na\x1cb\u2028c\t1\r\n"), "sst2", "train")
    assert examples.text_a == ["a\x1cb\u2028c"]
    np.testing.assert_array_equal(examples.labels, [1])


def test_wrong_number_of_fields_names_file_and_line(tmp_path):
    path = write(tmp_path, "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta b\tentailment\n")
    with pytest.raises(GlueFormatError) as err:
        read_split(path, "rte", "train")
    assert str(err.value).startswith(f"{path}:3: expected 4 tab-separated fields")
    assert err.value.line == 3 and err.value.path == path


def test_headerless_file_checks_its_column_count(tmp_path):
    path = write(tmp_path, "gj04\t1\t\tFine.\ngj04\t1\tNo mark column.\n")
    with pytest.raises(GlueFormatError, match=r":2: expected 4 tab-separated fields \(cola train\), found 3"):
        read_split(path, "cola", "train")


def test_bad_label_names_file_line_and_valid_labels(tmp_path):
    path = write(tmp_path, "index\tquestion\tsentence\tlabel\n0\tq\ts\tentailment\n1\tq\ts\tcontradiction\n")
    with pytest.raises(GlueFormatError) as err:
        read_split(path, "qnli", "dev")
    message = str(err.value)
    assert message.startswith(f"{path}:3: bad qnli label 'contradiction'")
    assert "entailment, not_entailment" in message


def test_a_header_row_in_a_headerless_file_is_a_bad_label(tmp_path):
    path = write(tmp_path, "source\tlabel\tmark\tsentence\ngj04\t1\t\tFine.\n")
    with pytest.raises(GlueFormatError, match=r":1: bad cola label 'label'"):
        read_split(path, "cola", "train")


@pytest.mark.parametrize("score", ["abc", "5.5", "-0.1", "nan", ""])
def test_bad_regression_score(tmp_path, score):
    head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    path = write(tmp_path, head + f"0\tg\tf\ty\t0\tn\tn\tA.\tB.\t{score}\n")
    with pytest.raises(GlueFormatError, match=r":2: bad stsb score .*\[0\.0, 5\.0\]"):
        read_split(path, "stsb", "train")


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = write(tmp_path, b"sentence\tlabel\nfine\t1\ncaf\xe9\t0\n")
    with pytest.raises(GlueFormatError) as err:
        read_split(path, "sst2", "train")
    assert str(err.value).startswith(f"{path}:3: not valid UTF-8")
    assert "0xe9" in str(err.value)


def test_header_too_narrow_for_the_layout(tmp_path):
    """An SST-2 file given as RTE: its header has 2 columns, RTE reads column 3."""
    path = write(tmp_path, "sentence\tlabel\nok\t1\n")
    with pytest.raises(GlueFormatError, match=r":1: the header has 2 columns, but rte train reads column 3"):
        read_split(path, "rte", "train")


def test_empty_file(tmp_path):
    with pytest.raises(GlueFormatError, match="empty file"):
        read_split(write(tmp_path, ""), "sst2", "train")


def test_header_only_gives_no_rows(tmp_path):
    examples = read_split(write(tmp_path, "sentence\tlabel\n"), "sst2", "train")
    assert len(examples) == 0 and examples.labels.shape == (0,) and examples.labels.dtype == np.int64


EMPTY_TEXTS = "index\tsentence1\tsentence2\tlabel\n0\ta\tb\t0\n1\t \tb\t1\n2\ta\t\t0\n3\tc\td\t1\n"


def test_empty_texts_are_kept_and_reported(tmp_path):
    path = write(tmp_path, EMPTY_TEXTS)
    with pytest.warns(EmptyTextWarning, match=r"2 row\(s\) with an empty text kept \(lines 3, 4\)"):
        examples = read_split(path, "wnli", "train")
    assert len(examples) == 4
    assert examples.empty_lines == (3, 4)


def test_empty_texts_dropped(tmp_path):
    with pytest.warns(EmptyTextWarning, match="dropped"):
        examples = read_split(write(tmp_path, EMPTY_TEXTS), "wnli", "train", on_empty="drop")
    assert examples.text_a == ["a", "c"]
    np.testing.assert_array_equal(examples.labels, [0, 1])
    np.testing.assert_array_equal(examples.lines, [2, 5])
    assert examples.empty_lines == (3, 4)


def test_empty_texts_as_errors(tmp_path):
    with pytest.raises(GlueFormatError, match=r":3: empty text"):
        read_split(write(tmp_path, EMPTY_TEXTS), "wnli", "train", on_empty="error")
    with pytest.raises(ValueError, match="on_empty"):
        read_split(write(tmp_path, EMPTY_TEXTS), "wnli", "train", on_empty="ignore")


def test_no_warning_without_empty_texts(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_split(write(tmp_path, "sentence\tlabel\na\t1\n"), "sst2", "train")


def test_take_selects_rows_and_keeps_their_line_numbers(tmp_path):
    with pytest.warns(EmptyTextWarning):
        examples = read_split(write(tmp_path, EMPTY_TEXTS), "wnli", "train")
    part = examples.take([3, 1])
    assert part.text_a == ["c", " "] and part.text_b == ["d", "b"]
    np.testing.assert_array_equal(part.labels, [1, 1])
    np.testing.assert_array_equal(part.lines, [5, 3])
    assert part.empty_lines == (3,)


# ---- locating the files -------------------------------------------------------

def make_glue_dir(root, task_dir="SST-2", files=("train.tsv", "dev.tsv")):
    folder = root / task_dir
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text("sentence\tlabel\nfine\t1\nbad\t0\n", encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def project(tmp_path, monkeypatch):
    """A stand-in for the checkout holding ``beexnp``, so a real <repo>/data/glue never leaks into these tests."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    monkeypatch.setattr(location, "PROJECT_DIR", root)
    return root


def test_explicit_path_wins(tmp_path, monkeypatch):
    explicit = make_glue_dir(tmp_path / "explicit")
    monkeypatch.setenv("GLUE_DIR", str(make_glue_dir(tmp_path / "env")))
    assert find_glue_dir(explicit, "sst2") == explicit
    assert load_split("sst2", "dev", explicit).path == explicit / "SST-2" / "dev.tsv"


def test_glue_dir_then_data_glue(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_glue_dir(tmp_path / "data" / "glue", "CoLA")
    env = make_glue_dir(tmp_path / "env")
    monkeypatch.setenv("GLUE_DIR", str(env))
    assert find_glue_dir(task="sst2") == env                  # $GLUE_DIR holds SST-2
    assert find_glue_dir(task="cola") == Path("data", "glue")  # it lacks CoLA: data/glue/ has it
    monkeypatch.delenv("GLUE_DIR")
    assert find_glue_dir(task="cola") == Path("data", "glue")
    with pytest.raises(FileNotFoundError):
        find_glue_dir(task="sst2")


def test_project_data_glue_is_found_from_notebooks(project, monkeypatch):
    """``jupyter lab notebooks/`` runs with notebooks/ as working directory: the project's data/glue still counts."""
    monkeypatch.chdir(project / "notebooks")
    monkeypatch.delenv("GLUE_DIR", raising=False)
    make_glue_dir(project / "data" / "glue")
    assert find_glue_dir(task="sst2") == project / "data" / "glue"
    assert load_split("sst2", "dev").path == project / "data" / "glue" / "SST-2" / "dev.tsv"


def test_order_is_glue_dir_then_cwd_then_project(tmp_path, project, monkeypatch):
    monkeypatch.chdir(project / "notebooks")
    env = make_glue_dir(tmp_path / "env", "CoLA")
    local = make_glue_dir(project / "notebooks" / "data" / "glue", "MRPC")
    for task_dir in ("CoLA", "MRPC", "RTE"):                    # the project has all three
        make_glue_dir(project / "data" / "glue", task_dir)
    monkeypatch.setenv("GLUE_DIR", str(env))
    assert [d for _, d in location.candidate_dirs()] == [env, Path("data", "glue"), project / "data" / "glue"]
    assert find_glue_dir(task="cola") == env
    assert find_glue_dir(task="mrpc") == Path("data", "glue") and local.resolve() == Path("data", "glue").resolve()
    assert find_glue_dir(task="rte") == project / "data" / "glue"


def test_project_is_not_looked_at_twice_from_the_project_root(project, monkeypatch):
    monkeypatch.chdir(project)
    monkeypatch.delenv("GLUE_DIR", raising=False)
    assert [d for _, d in location.candidate_dirs()] == [Path("data", "glue")]
    with pytest.raises(FileNotFoundError) as err:
        find_glue_dir(task="sst2")
    assert str(err.value).count(os.path.join("data", "glue", "SST-2")) == 1


def test_not_found_names_every_place_and_the_download_command(tmp_path, project, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GLUE_DIR", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as err:
        find_glue_dir(task="rte")
    message = str(err.value)
    assert "\n" not in message
    looked = message.split("(looked at: ")[1].split("): fetch it with")[0].split("; ")
    assert looked == [f"{tmp_path / 'env' / 'RTE'} ($GLUE_DIR)",
                      f"{os.path.join('data', 'glue', 'RTE')} (the default, in the current directory {tmp_path})",
                      f"{project / 'data' / 'glue' / 'RTE'} (the default, in the project)"]
    # the command fetches it into a folder this same search reads: $GLUE_DIR, the first place looked at
    assert f"python -m beexnp download --tasks rte --dir {tmp_path / 'env'}" in message


def test_project_dir_is_the_checkout_holding_beexnp():
    import beexnp
    assert REAL_PROJECT_DIR == Path(beexnp.__file__).resolve().parent.parent


def test_explicit_path_is_the_only_place_looked_at(tmp_path, monkeypatch):
    monkeypatch.setenv("GLUE_DIR", str(make_glue_dir(tmp_path / "env")))
    with pytest.raises(FileNotFoundError) as err:
        find_glue_dir(tmp_path / "elsewhere", "sst2")
    assert str(tmp_path / "elsewhere" / "SST-2") in str(err.value)
    assert str(tmp_path / "env") not in str(err.value)


def test_missing_split_file_is_named(tmp_path):
    root = make_glue_dir(tmp_path, files=("dev.tsv",))
    with pytest.raises(FileNotFoundError) as err:
        load_split("sst2", "train", root)
    assert str(root / "SST-2" / "train.tsv") in str(err.value)
    assert "dev.tsv" in str(err.value)   # what the folder does hold


def test_bad_split_name(tmp_path):
    with pytest.raises(ValueError, match="valid splits: train, dev, test"):
        load_split("sst2", "validation", make_glue_dir(tmp_path))


# ---- the real files -----------------------------------------------------------

OFFICIAL_ROWS = [
    ("sst2", "train", 67_349), ("sst2", "dev", 872),
    ("cola", "train", 8_551), ("cola", "dev", 1_043),
    ("mrpc", "train", 3_668), ("mrpc", "dev", 408),
    ("stsb", "train", 5_749), ("stsb", "dev", 1_500),
    ("qnli", "train", 104_743), ("qnli", "dev", 5_463),
    ("rte", "train", 2_490), ("rte", "dev", 277),
    ("wnli", "train", 635), ("wnli", "dev", 71),
    ("qqp", "train", 363_846), ("qqp", "dev", 40_430),
    ("mnli", "train", 392_702), ("mnli", "dev_matched", 9_815), ("mnli", "dev_mismatched", 9_832),
]


@pytest.mark.glue
@pytest.mark.parametrize("task, split, rows", OFFICIAL_ROWS, ids=[f"{t}-{s}" for t, s, _ in OFFICIAL_ROWS])
def test_official_row_counts(task, split, rows):
    if not os.environ.get("GLUE_DIR"):
        pytest.skip("GLUE_DIR is not set")
    task = get_task(task)
    path = os.path.join(os.environ["GLUE_DIR"], task.dir, task.splits[split])
    if not os.path.isfile(path):
        pytest.skip(f"{path} is absent")
    examples = load_split(task, split, os.environ["GLUE_DIR"], on_empty="error")
    assert len(examples) == rows
    assert len(examples.labels) == rows
    if not task.regression:   # every class occurs
        assert set(np.unique(examples.labels)) == set(range(len(task.labels)))
