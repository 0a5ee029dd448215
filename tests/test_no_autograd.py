"""No autograd framework anywhere in the package: every backward is written out.

Two checks: the source of every ``beexnp/**/*.py`` (parsed with ``ast``, so
comments and strings that merely mention a framework do not count, while
``importlib.import_module("torch")`` does), and a fresh interpreter that
imports every module of the package and then looks at ``sys.modules``.
"""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import beexnp

PACKAGE_DIR = Path(beexnp.__file__).parent
FORBIDDEN = {"torch", "jax", "jaxlib", "flax", "tensorflow", "keras", "autograd", "mxnet", "theano", "chainer"}
SOURCES = sorted(PACKAGE_DIR.rglob("*.py"))


def imported_names(source):
    """Top-level names of every module the source imports, statically or by name."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__"):
                found.add(node.args[0].value)
    return {name.split(".")[0] for name in found}


@pytest.mark.parametrize("source, expected", [
    ("import torch.nn as nn", {"torch"}),
    ("from jax import numpy as jnp", {"jax"}),
    ("import numpy, tensorflow", {"numpy", "tensorflow"}),
    ("import importlib\nm = importlib.import_module('mxnet')", {"importlib", "mxnet"}),
    ("def f():\n    from autograd import grad\n", {"autograd"}),
    ("from . import sign\n'''import torch'''  # import jax", set()),
])
def test_the_import_finder_sees_every_form(source, expected):
    assert imported_names(source) == expected


def test_sources_were_found():
    names = {p.name for p in SOURCES}
    assert {"module.py", "linear.py", "attention.py", "gradcheck.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_no_module_imports_an_autograd_framework(path):
    bad = imported_names(path.read_text(encoding="utf-8")) & FORBIDDEN
    assert not bad, f"{path} imports {sorted(bad)}"


IMPORT_EVERYTHING = """
import json, pkgutil, importlib, sys
import beexnp
names = [m.name for m in pkgutil.walk_packages(beexnp.__path__, "beexnp.") if m.name != "beexnp.__main__"]
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "modules": sorted(sys.modules)}))
"""


def test_importing_the_package_loads_no_autograd_framework():
    result = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True, text=True,
                            cwd=PACKAGE_DIR.parent, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "beexnp.block" in report["imported"]
    loaded = {name.split(".")[0] for name in report["modules"]}
    assert "numpy" in loaded
    assert not loaded & FORBIDDEN, f"loaded: {sorted(loaded & FORBIDDEN)}"
