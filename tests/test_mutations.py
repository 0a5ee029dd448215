"""The mutation check (tools/mutation_check.py): every deliberate one-line mutation of the package
must make the fast core of the suite fail.  Slow (a copy of the repository and a pytest run per
mutation, about two minutes), so the CI command leaves it out; run it with

    python -m pytest -m slow tests/test_mutations.py        or        python tools/mutation_check.py

What CI does check, in a second: that every mutation still applies to the code as it is (a
refactor that moves a mutated line must move the mutation with it).
"""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "mutation_check.py"
sys.path.insert(0, str(ROOT / "tools"))
from mutation_check import MUTATIONS, apply  # noqa: E402


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_every_mutation_still_applies_to_the_code(mutation, tmp_path):
    """Each edit's text occurs exactly once in its file, and the edit changes the file."""
    copy = tmp_path / mutation.file
    copy.parent.mkdir(parents=True)
    original = (ROOT / mutation.file).read_text()
    copy.write_text(original)
    apply(mutation, tmp_path)                     # SystemExit if a text is missing or repeated
    assert copy.read_text() != original


@pytest.mark.slow
def test_every_mutation_is_caught():
    done = subprocess.run([sys.executable, str(TOOL)], capture_output=True, text=True, timeout=3600)
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-5000:]
