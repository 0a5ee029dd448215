"""The package's layout: who may import whom (see tools/import_graph.py, docs/package.md's module map)."""
import ast
import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from beexnp.config import TrainConfig
from beexnp.exit_loss import MultiExitLoss, SoftRouting, exit_weights, soft_routing_weights

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from import_graph import find_cycle, import_graph  # noqa: E402

GRAPH = import_graph(ROOT / "beexnp")

# What early-exit inference needs: none of these may reach the trainer, the command line or a progress bar.
INFERENCE = ["inference", "criteria", "model", "entropy", "flops", "evaluate", "sweep", "packed", "size"]


def reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_import_graph_has_no_cycle():
    assert find_cycle(GRAPH) is None, find_cycle(GRAPH)


def test_find_cycle_finds_one():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("module", INFERENCE)
def test_inference_never_reaches_the_trainer_or_the_cli(module):
    assert not reachable(GRAPH, module) & {"train", "cli", "glue.download"}


def test_the_inference_module_needs_neither_the_trainer_nor_the_data_package():
    deps = set(GRAPH["inference"]) | set(GRAPH["criteria"])
    assert not {d for d in deps if d == "train" or d.startswith("glue")}, deps


def test_only_the_cli_imports_argparse():
    users = []
    for path in sorted((ROOT / "beexnp").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) else []
            if "argparse" in names:
                users.append(path.relative_to(ROOT).as_posix())
    assert users == ["beexnp/cli.py"]


def test_importing_inference_loads_no_trainer_no_tqdm_no_argparse():
    """The real thing, not the graph: a fresh interpreter imports every inference module."""
    code = ("import sys; " + "; ".join(f"import beexnp.{m}" for m in INFERENCE)
            + "; print(sorted(m for m in sys.modules if m in ('beexnp.train', 'beexnp.cli', 'tqdm', 'argparse')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_soft_routing_has_one_default_everywhere():
    """(delta, tau, beta) are declared once, beside the weights' math; the training settings read them."""
    assert SoftRouting.__module__ == "beexnp.exit_loss"
    routing = SoftRouting()
    assert TrainConfig().soft_routing == routing
    assert MultiExitLoss(3).routing == routing
    for function in (soft_routing_weights, exit_weights):
        assert [p.default for p in inspect.signature(function).parameters.values()
                if p.name == "routing"] == [routing]
    defaults = {f.name: f.default for f in dataclasses.fields(SoftRouting)}
    assert {k: getattr(TrainConfig(), k) for k in defaults} == defaults
