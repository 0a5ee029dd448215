"""README.md is written for the learner first, and what it says is true as written:

* it is at most 250 lines;
* its results summary, results/README.md's tables and TABLES.md are what ``experiments/tables.py`` renders from
  the committed records now (nothing typed by hand, nothing stale);
* the notebook table lists every notebook, with the run time its metadata records;
* the number of tests it says skip without ``GLUE_DIR`` is the number that do;
* every relative link in the repository's Markdown files resolves to a file (and a ``#anchor`` to a heading).
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))

import tables  # noqa: E402  (experiments/tables.py)
from test_readme_commands import READMES  # noqa: E402  (the READMEs whose commands are run)

README = ROOT / "README.md"
RESULTS_README = ROOT / "results" / "README.md"
RECORDS = ROOT / "results" / "experiments"
MAX_LINES = 250
MARKDOWN = [ROOT / name for name in READMES] + [ROOT / "docs" / "DESIGN.md"]     # every Markdown file a reader opens
MAJORITY = "MAJORITYCELL"                  # stands for a majority-class cell where GLUE is not found


def test_readme_is_at_most_250_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_LINES, f"README.md has {lines} lines; move detail to docs/ or results/README.md"


# ---- every number of a rendered block comes from the records ---------------------------------------------
def glue_found():
    """Whether GLUE holds every classification task that has records (the majority-class column reads it)."""
    records = tables.load_records(RECORDS)
    from beexnp.glue import get_task
    tasks = {r["task"] for r in records if not get_task(r["task"]).regression}
    return all(tables.majority_baseline(t) is not None for t in tasks)


def assert_rendered(committed, render, monkeypatch):
    """``committed`` is what ``render()`` gives now.  Where GLUE is not found the majority-class cells (the one
    column read from GLUE, not from the records) may hold anything; every other character is compared."""
    if glue_found():
        assert committed == render(), "stale: run python experiments/tables.py --readme README.md " \
                                      "--results-readme results/README.md (with GLUE_DIR set)"
        return
    monkeypatch.setattr(tables, "majority_cell", lambda task: MAJORITY)
    pattern = re.escape(render()).replace(MAJORITY, r"[^|\n]*")
    assert re.fullmatch(pattern, committed, re.S), "stale: run python experiments/tables.py --readme README.md " \
                                                    "--results-readme results/README.md"


def block(path, start, end):
    found = tables.between_markers(path.read_text(), start, end)
    assert found is not None, f"{path.name} lost its markers {start} ... {end}"
    return found


def figure_paths():
    """{figure name: path} of the committed figures (what draw_figures wrote)."""
    return {p.stem: p for p in RECORDS.glob("*.png")}


def test_the_readme_summary_is_rendered_from_the_records(monkeypatch):
    committed = block(README, tables.SUMMARY_START, tables.SUMMARY_END)
    assert_rendered(committed, lambda: tables.summary(RECORDS), monkeypatch)
    assert "The paper's three claims" in committed and committed.count("\n| ") >= 3


def test_the_results_readme_tables_are_rendered_from_the_records(monkeypatch):
    committed = block(RESULTS_README, tables.START, tables.END)
    links = tables.relative_links(figure_paths(), RESULTS_README)
    assert_rendered(committed, lambda: tables.build(RECORDS, links), monkeypatch)
    assert all(f"]({link})" in committed for link in links.values())


def test_tables_md_is_rendered_from_the_records(monkeypatch):
    links = {name: path.name for name, path in figure_paths().items()}
    assert_rendered((RECORDS / "TABLES.md").read_text(), lambda: tables.build(RECORDS, links), monkeypatch)


def test_a_changed_number_is_caught(monkeypatch):
    """The check can fail: one digit changed in the summary, or a majority cell's column moved."""
    fresh = tables.summary(RECORDS)
    digit = re.search(r"\d\.\d\d", fresh)
    changed = fresh[:digit.start()] + str((int(fresh[digit.start()]) + 1) % 10) + fresh[digit.start() + 1:]
    with pytest.raises(AssertionError):
        assert_rendered(changed, lambda: tables.summary(RECORDS), monkeypatch)


# ---- the learning path ----------------------------------------------------------------------------------
def notebook_rows():
    """{notebook name: (fast-mode cell, full-mode cell)} of every row of README's learning-path table."""
    rows = re.findall(r"^\| `(\d\d_\w+)` \|.*\| ([^|]*) \| ([^|]*) \|$", README.read_text(), re.M)
    return {name: (fast, full) for name, fast, full in rows}


def time_cell(seconds):
    """A run-time cell as tools/render_notebooks.py writes notebooks/README.md's: "41 s", or "–" for none."""
    return "–" if seconds is None else f"{seconds} s"


def test_the_learning_path_lists_every_notebook_with_its_recorded_run_times():
    """The same table shape as notebooks/README.md's (its last two cells the fast and full times), so that the
    renderer's rewrite of those cells serves both."""
    rows = notebook_rows()
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert list(rows) == [p.stem for p in notebooks]
    for path in notebooks:
        meta = json.loads(path.read_text())["metadata"].get("beexnp", {})
        recorded = (time_cell(meta.get("fast_seconds")), time_cell(meta.get("seconds")))
        assert rows[path.stem] == recorded, f"{path.stem}: README says {rows[path.stem]}, its metadata {recorded}"


# ---- what skips without GLUE_DIR ------------------------------------------------------------------------
def test_the_tests_said_to_skip_without_glue_dir_do():
    """README: "The N tests marked `glue` ... without it they all skip": run them without GLUE_DIR."""
    said = re.search(r"The (\d+) tests marked\s+`glue`", README.read_text())
    assert said, "README no longer says how many tests skip without GLUE_DIR"
    env = {k: v for k, v in os.environ.items() if k != "GLUE_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "glue and not slow", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    summary = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(rf"=*\s*{said.group(1)} skipped, \d+ deselected in .*", summary), summary


# ---- links ----------------------------------------------------------------------------------------------
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading):
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    return {slug(h) for h in re.findall(r"^#+\s+(.*)$", FENCE.sub("", path.read_text()), re.M)}


def broken_links(path):
    """Each relative link of the Markdown file ``path`` that names no file (or no heading of it)."""
    broken = []
    for target in LINK.findall(FENCE.sub("", path.read_text())):
        if re.match(r"[a-z]+:", target):                      # https:, mailto:
            continue
        name, _, anchor = target.partition("#")
        dest = (path.parent / name).resolve() if name else path
        if not dest.is_file():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(path):
    assert path.is_file()
    broken = broken_links(path)
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "there.md").write_text("# A heading\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md) [ok](there.md#a-heading) ![fig](missing.png) [bad](there.md#nowhere)\n"
                    "[web](https://example.org) [self](#here)\n## Here\n```\n[in code](ignored.md)\n```\n")
    assert broken_links(page) == ["missing.png: no such file", "there.md#nowhere: no heading #nowhere in there.md"]


def test_the_default_configs_training_times_are_the_records():
    """results/README.md's training times of ``train --task sst2`` (moved from README's quick start)."""
    said = re.search(r"took ([\d.]+), ([\d.]+) and ([\d.]+) minutes for\s+its three seeds", RESULTS_README.read_text())
    assert said, "results/README.md no longer states the default config's training times"
    records = [json.loads((RECORDS / f"sst2-beexformer-seed{s}.json").read_text()) for s in range(3)]
    assert list(said.groups()) == [f"{r['train_seconds'] / 60:.1f}" for r in records]


def test_the_campaigns_duration_is_the_estimate_of_its_records(capsys):
    """results/README.md's hours at --jobs 2 and 16 are what ``experiments/run.py --estimate 2 16`` prints."""
    import run  # noqa: E402  (experiments/run.py)
    said = re.search(r"about ([\d.]+) hours with `--jobs 2`, and about ([\d.]+) hours with `--jobs 16` on a 16-core "
                     r"machine, for\s+the (\d+) of its (\d+) declared runs that have a record",
                     RESULTS_README.read_text())
    assert said, "results/README.md no longer states the campaign's duration at --jobs 2 and 16"
    capsys.readouterr()
    assert run.main(["--results", str(RECORDS), "--estimate", "2", "16"]) == 0
    printed = re.findall(r"--jobs (\d+): about ([\d.]+) hours for the (\d+) runs of (\d+) with a record",
                         capsys.readouterr().out)
    assert [p[0] for p in printed] == ["2", "16"]
    assert list(said.groups()) == [printed[0][1], printed[1][1], printed[0][2], printed[0][3]]


def cited_tests(text):
    """The test names (`test_...`) a text cites in backquotes."""
    return set(re.findall(r"`(test_[a-z0-9_]+)`", text))


def defined_tests():
    """Every test function name defined under tests/."""
    names = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        names |= set(re.findall(r"^\s*def (test_[a-z0-9_]+)\(", path.read_text(), re.M))
    return names


def test_every_test_the_readme_cites_exists():
    cited = cited_tests((ROOT / "README.md").read_text())
    assert len(cited) >= 10, "README's robustness section cites the tests that prove it"
    assert cited <= defined_tests(), sorted(cited - defined_tests())


def test_a_cited_test_that_does_not_exist_is_found():
    assert cited_tests("proved by `test_nothing_of_the_sort`") - defined_tests() == {"test_nothing_of_the_sort"}
