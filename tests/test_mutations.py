"""The mutation check (tools/mutation_check.py): every deliberate one-line mutation of the package
must make the fast core of the suite fail.  Slow (a copy of the repository and a pytest run per
mutation, about a minute), so the CI command leaves it out; run it with

    python -m pytest -m slow tests/test_mutations.py        or        python tools/mutation_check.py
"""
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parent.parent / "tools" / "mutation_check.py"


@pytest.mark.slow
def test_every_mutation_is_caught():
    done = subprocess.run([sys.executable, str(TOOL)], capture_output=True, text=True, timeout=3600)
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-5000:]
