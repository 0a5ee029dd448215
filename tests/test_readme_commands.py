"""Every command the READMEs show runs as written, in the repository root: each one's ``--help``
succeeds and lists every flag the README gives it (a misspelt command, script or flag fails).

A command is a line of a fenced code block, or an inline code span, that starts with ``python``,
``python3``, ``jupyter``, ``source`` or ``.venv/bin/...`` (after any ``VAR=value``), with brackets
of optional parts and ``# comments`` dropped.  The quick start activates ``.venv`` (``source
.venv/bin/activate``), so a bare ``python`` or ``jupyter`` is this environment's; ``.venv/bin/X``
is the repository's ``.venv`` when there is one (CI), else this environment's.  The setup line
(``python3 -m venv`` and ``pip install``) is not run here: CI runs it verbatim (``.ci/run``).
"""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from beexnp.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
READMES = ["README.md", "data/README.md", "notebooks/README.md", "benchmarks/README.md", "results/README.md",
           "docs/package.md", "docs/gradient-checks.md"]
ACTIVATE = "source .venv/bin/activate"
SUBCOMMANDS = {"beexnp", "jupyter"}         # programs whose first word is a command (``beexnp train``)
NOT_RUN = {"venv", "pip"}                   # the setup line's parts
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")
ASSIGNMENT = r"[A-Z_][A-Z0-9_]*=\S*"                   # VAR=value before a command
COMMAND = re.compile(rf"\s*(?:{ASSIGNMENT}\s+)*(?:(?:python3?|jupyter|source)\s|\.venv/bin/)")


def split_command(text):
    """The words of one shell command: comments dropped, ``VAR=value`` prefixes dropped, the
    brackets of optional parts removed ("[--json]" -> "--json")."""
    words = [word.strip("[]") for word in shlex.split(text, comments=True)]
    while words and re.fullmatch(ASSIGNMENT, words[0]):
        words = words[1:]
    return [word for word in words if word]


def shown_commands(text):
    """Every command in the Markdown ``text``, as a list of words, in order."""
    lines = [line for block in FENCE.findall(text) for line in block.splitlines()[1:-1]]
    spans = SPAN.findall(FENCE.sub("", text))
    commands = []
    for line in lines + spans:
        commands += [split_command(part) for part in line.split("&&") if COMMAND.match(part)]
    return commands


def executable(word):
    """The program a README word names, here: .venv's when it exists, else this environment's."""
    name = Path(word).name
    if word.startswith(".venv/bin/") and (ROOT / word).exists():
        return str(ROOT / word)
    if name.startswith("python"):
        return sys.executable
    found = Path(sys.executable).parent / name
    assert found.exists(), f"{word}: not installed in this environment ({found}); is it in requirements.txt?"
    return str(found)


def help_command(words):
    """(what to run, the README's flags to find in its output), or None for a line not run here."""
    program, rest = [executable(words[0])], words[1:]
    if Path(words[0]).name.startswith("python"):
        if rest[:1] == ["-m"]:
            program, rest = program + rest[:2], rest[2:]
        elif rest:
            program, rest = program + rest[:1], rest[1:]          # a script
    if Path(program[-1]).name in NOT_RUN:
        return None
    if Path(program[-1]).name in SUBCOMMANDS and rest and not rest[0].startswith("-") and rest[0] != "...":
        program, rest = program + rest[:1], rest[1:]
    return program + ["--help"], [word for word in rest if word.startswith("-")]


def all_commands():
    return [(name, words) for name in READMES for words in shown_commands((ROOT / name).read_text())]


def test_the_readmes_show_commands():
    commands = [" ".join(words) for _, words in all_commands()]
    for expected in ("python -m beexnp train --task sst2", "jupyter lab notebooks/",
                     "python -m beexnp data --task T --json", ACTIVATE):
        assert expected in commands, expected
    assert len(commands) > 30


def test_bare_commands_need_the_activation_line():
    """A bare ``python`` or ``jupyter`` is the environment's only once it is activated: if any README
    shows one, README's quick start activates ``.venv`` before its own first bare command."""
    bare = [" ".join(words) for _, words in all_commands() if words[0] in ("python", "jupyter")]
    quick_start = FENCE.findall((ROOT / "README.md").read_text())[0]
    lines = [" ".join(split_command(line)) for line in quick_start.splitlines()[1:-1]]
    if bare:
        assert ACTIVATE in lines, f"`{bare[0]}` needs the quick start to run `{ACTIVATE}`"
        first_bare = next((i for i, line in enumerate(lines) if line.split()[0] in ("python", "jupyter")),
                          len(lines))
        assert lines.index(ACTIVATE) < first_bare, f"`{ACTIVATE}` comes after {lines[first_bare]!r}"
    if (ROOT / ".venv").exists():
        assert (ROOT / ".venv" / "bin" / "activate").is_file()


HELP_SECONDS = 60


def problems(commands):
    """What is wrong with the (README, words) ``commands``: one line per failing command, [] if none.
    Each distinct ``--help`` runs once, in the repository root."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    found, wanted = [], {}                          # help command -> [(README, command, flags)]
    for name, words in commands:
        if words[0] == "source":
            if words[1:] != [".venv/bin/activate"]:
                found.append(f"{name}: `{' '.join(words)}`: the only environment is .venv")
        elif (run := help_command(words)) is not None:
            wanted.setdefault(tuple(run[0]), []).append((name, " ".join(words), run[1]))
    for command, uses in wanted.items():
        try:                                        # a --help does no work: seconds, not minutes
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=HELP_SECONDS)
        except subprocess.TimeoutExpired:
            found += [f"{name}: `{shown}`: its --help ran over {HELP_SECONDS} s (does it parse --help?)"
                      for name, shown, _ in uses]
            continue
        for name, shown, flags in uses:
            if done.returncode != 0:
                found.append(f"{name}: `{shown}`: its --help failed: {done.stderr.strip()[-300:]}")
                continue
            unknown = [f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", done.stdout)]
            if unknown:
                found.append(f"{name}: `{shown}`: {', '.join(unknown)} not in its --help")
    return found


def test_every_readme_command_runs_as_written():
    failures = problems(all_commands())
    assert not failures, "\n".join(failures)


def test_a_wrong_command_fails():
    """The check can fail: a misspelt flag, a misspelt command, a missing script, another environment."""
    wrong = ["python -m beexnp data --task T --jsn", ".venv/bin/python -m beexnp evaluat CKPT",
             "python experiments/runs.py --fast", "source venv/bin/activate"]
    found = problems([("README.md", split_command(line)) for line in wrong])
    assert len(found) == 4, found
    assert "--jsn not in its --help" in found[1]
    assert "invalid choice: 'evaluat'" in found[2] and "experiments/runs.py" in found[3]
    assert "the only environment is .venv" in found[0]


def test_the_packages_hints_name_real_commands_and_flags():
    """Every ``python -m beexnp <command> --flag`` the package prints names a command and flags
    the parser has."""
    parsers = build_parser()._subparsers._group_actions[0].choices
    hints = []
    for path in (ROOT / "beexnp").rglob("*.py"):
        for match in re.finditer(r"python -m beexnp (\w+)([^\"'\n`]*)", path.read_text()):
            hints.append((path.relative_to(ROOT), match.group(1), re.findall(r"--[\w-]+", match.group(2))))
    assert hints
    for path, command, flags in hints:
        assert command in parsers, f"{path}: python -m beexnp {command}: no such command"
        known = {option for action in parsers[command]._actions for option in action.option_strings}
        assert set(flags) <= known, f"{path}: python -m beexnp {command}: unknown {sorted(set(flags) - known)}"


@pytest.mark.parametrize("line, words", [
    ("`python -m beexnp data --task T [--json]`", ["python", "-m", "beexnp", "data", "--task", "T", "--json"]),
    ("```bash\nBEEXNP_FAST=1 jupyter lab notebooks/   # fast\n```", ["jupyter", "lab", "notebooks/"]),
    ("```\npython3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt -e .\n```",
     None),
])
def test_commands_are_extracted_as_a_shell_reads_them(line, words):
    commands = shown_commands(line)
    if words is None:
        assert [help_command(c) for c in commands] == [None, None]
    else:
        assert commands == [words]
