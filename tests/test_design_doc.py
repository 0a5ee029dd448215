"""docs/DESIGN.md is the project's own design document, and the repository stands on its own.

(a) Every "DESIGN §N" or "DESIGN §N.M" cited in a tracked file (code, tests,
    notebooks, CLI help, README, results) names a heading of docs/DESIGN.md, and
    every "§N[.M]" that DESIGN.md itself refers to exists too.
(b) No tracked file points outside the repository (the folder above it, or a
    machine path); the one exception is the default GLUE_DIR line of .ci/run.
(c) The sections keep the subjects the code's citations rely on, and every
    section says whether its math is the paper's or this project's choice.

A failure names the file and line of each problem.
"""
import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs" / "DESIGN.md"

HEADING = re.compile(r"^(#{2,6})\s+§(\d+(?:\.\d+)?)\s+(.*)$", re.M)   # "## §6 Early exit", "### §6.8 Soft-routing"
NUMBER = r"\d+(?:\.\d+)?"
# "DESIGN §7", "DESIGN §1, §7", "DESIGN §1-5", "DESIGN §6.6-§6.8" (line breaks allowed after DESIGN)
CITATION = re.compile(rf"DESIGN(?:\.md)?\s+(§{NUMBER}(?:\s*(?:,|and)\s*§{NUMBER}|\s*(?:-|–|to)\s*§?{NUMBER})*)")
PART = re.compile(rf"(,|-|–|and|to)?\s*§?({NUMBER})")
INTERNAL = re.compile(rf"§({NUMBER})")

# Built from pieces so that this file does not match itself.
OUTSIDE = [re.compile(re.escape(".." + "/shared")),
           re.compile("shared" + r"\s+folder", re.I),
           re.compile(re.escape("/" + "work/")),
           re.compile(re.escape("shared" + "/glue")),
           re.compile(re.escape("shared" + "/DESIGN"))]
ALLOWED = {(".ci/run", "GLUE_DIR=")}   # (file, text on the line): CI's default GLUE directory on its machine

# The subject every top-level section must keep: ~45 citations in the code rely on it.
SUBJECTS = {"1": "binarization", "2": "token", "3": "attention", "4": "slfn", "5": "exit",
            "6": "early exit", "7": "size", "8": "glue"}
LABELS = ("**Paper", "**This project's choice")


def tracked_files():
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot list the tracked files")
    return [ROOT / name for name in out.decode().split("\0") if name]


def text_lines(path):
    """[(where, line)] of a tracked text file; a notebook's cells are read from its JSON.

    Binary files (figures) give nothing."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
        return []
    rel = path.relative_to(ROOT).as_posix()
    if path.suffix == ".ipynb":
        cells = json.loads(text)["cells"]
        return [(f"{rel} cell {i} line {j}", line)
                for i, cell in enumerate(cells)
                for j, line in enumerate("".join(cell["source"]).splitlines(), 1)]
    return [(f"{rel}:{j}", line) for j, line in enumerate(text.splitlines(), 1)]


def cited_sections(group):
    """The section numbers a citation names; an integer range "§1-5" names each of 1..5."""
    found = []
    for joiner, number in PART.findall(group):
        if joiner in ("-", "–", "to") and found and "." not in found[-1] and "." not in number:
            found += [str(n) for n in range(int(found[-1]) + 1, int(number) + 1)]
        else:
            found.append(number)
    return found


def citations(lines):
    """[(where, section)] for every DESIGN citation; a citation may wrap onto the next line."""
    out = []
    for k, (where, line) in enumerate(lines):
        joined = line + (" " + lines[k + 1][1].strip() if k + 1 < len(lines) else "")
        for m in CITATION.finditer(joined):
            if m.start() < len(line):                       # starts on this line (not found twice)
                out += [(where, s) for s in cited_sections(m.group(1))]
    return out


def headings():
    return {m.group(2): m for m in HEADING.finditer(DESIGN.read_text(encoding="utf-8"))}


def test_design_doc_is_in_the_repository():
    assert DESIGN.is_file(), "docs/DESIGN.md is missing: the code's 'DESIGN §N' citations point to it"
    numbers = [m.group(2) for m in HEADING.finditer(DESIGN.read_text(encoding="utf-8"))]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    assert not duplicates, f"docs/DESIGN.md has more than one heading for §{', §'.join(duplicates)}"


def test_every_design_citation_names_a_heading():
    known = headings()
    lines_by_file = [text_lines(path) for path in tracked_files()]
    found = [c for lines in lines_by_file for c in citations(lines)]
    assert len(found) >= 30, f"only {len(found)} DESIGN citations found: is the citation pattern still right?"
    missing = [f"{where}: DESIGN §{section}" for where, section in found if section not in known]
    assert not missing, ("citations of sections that docs/DESIGN.md does not have (its headings: §"
                         + ", §".join(known) + "):\n  " + "\n  ".join(missing))


def test_design_doc_refers_only_to_its_own_sections():
    known = headings()
    lines = text_lines(DESIGN)
    missing = [f"{where}: §{n}" for where, line in lines if not HEADING.match(line)
               for n in INTERNAL.findall(line) if n not in known]
    assert not missing, "docs/DESIGN.md refers to sections it does not have:\n  " + "\n  ".join(missing)


def test_no_tracked_file_points_outside_the_repository():
    problems = []
    for path in tracked_files():
        for where, line in text_lines(path):
            rel = where.split(":")[0].split(" cell ")[0]
            if any(rel == f and text in line for f, text in ALLOWED):
                continue
            problems += [f"{where}: {pattern.search(line).group(0)!r} in {line.strip()[:120]!r}"
                         for pattern in OUTSIDE if pattern.search(line)]
    assert not problems, ("tracked files point outside the repository (write docs/DESIGN.md, "
                          "'the GLUE directory used' or $GLUE_DIR instead):\n  " + "\n  ".join(problems))


def test_top_level_sections_keep_their_subjects():
    known = headings()
    wrong = [f"§{n}: expected a heading about {subject!r}, got {known[n].group(3)!r}" if n in known
             else f"§{n}: no heading (expected one about {subject!r})"
             for n, subject in SUBJECTS.items()
             if n not in known or subject not in known[n].group(3).lower()]
    assert not wrong, "docs/DESIGN.md's top-level sections moved:\n  " + "\n  ".join(wrong)


def test_every_section_says_whose_math_it_is():
    """Each section says Paper or This project's choice; exceptions: §0 (notation)
    and a top-level section whose subsections carry the labels."""
    text = DESIGN.read_text(encoding="utf-8")
    marks = list(HEADING.finditer(text))
    unlabelled = []
    for k, m in enumerate(marks):
        number = m.group(2)
        body = text[m.end():marks[k + 1].start() if k + 1 < len(marks) else len(text)]
        has_subsections = any(other.group(2).startswith(number + ".") for other in marks)
        if number == "0" or has_subsections:
            continue
        if not any(label in body for label in LABELS):
            unlabelled.append(f"docs/DESIGN.md §{number} {m.group(3)}")
    assert not unlabelled, ("sections that do not say 'Paper' or 'This project's choice':\n  "
                            + "\n  ".join(unlabelled))


@pytest.mark.parametrize("group, expected", [
    ("§7", ["7"]), ("§1, §7", ["1", "7"]), ("§1-5", ["1", "2", "3", "4", "5"]),
    ("§6.6-§6.8", ["6.6", "6.8"]), ("§2.3", ["2.3"])])
def test_citation_forms_are_parsed(group, expected):
    assert cited_sections(group) == expected
    assert [s for _, s in citations([("f:1", f"see DESIGN {group}.")])] == expected


def test_a_citation_may_wrap_onto_the_next_line():
    lines = [("f:1", "attention stays real, DESIGN"), ("f:2", "  §1; the exit heads are real")]
    assert citations(lines) == [("f:1", "1")]
