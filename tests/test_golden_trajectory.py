"""The golden trajectory: 10 training steps through the real Trainer, against the recorded numbers.

The run (a tiny fixed SST-2 in tests/data/golden_glue, a tiny model, a fixed seed) and the
comparison (1e-6 relative) live in tools/golden_trajectory.py; this test imports them, so there
is one source of truth.  It records each step's loss and mean exit weights and a checksum of
every parameter after the last step, in tests/data/golden_trajectory.json.

When this test fails after a change that is *meant* to move training (a new equation, another
initialization, a different data order), regenerate the file and commit its diff with the
change -- the diff is part of the change and should be read in review:

    python tools/golden_trajectory.py --write

When the change was not meant to move training, the failure is the point: find out why.
"""
import importlib.util
import json
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "tools" / "golden_trajectory.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("golden_trajectory", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ten_training_steps_follow_the_golden_trajectory():
    tool = load_tool()
    golden = json.loads(tool.GOLDEN.read_text())
    problems = tool.compare(tool.trajectory(), golden)
    assert not problems, ("the training trajectory moved (if intended: python tools/golden_trajectory.py "
                          "--write, and commit the diff):\n  " + "\n  ".join(problems[:20]))


def test_the_comparison_notices_a_small_change():
    """compare is not vacuous: one loss moved by 1e-5 relative, or one parameter sum by 1e-5 of its scale."""
    tool = load_tool()
    golden = json.loads(tool.GOLDEN.read_text())
    assert tool.compare(golden, golden) == []
    moved = json.loads(json.dumps(golden))
    moved["steps"][4]["loss"] *= 1 + 1e-5
    assert len(tool.compare(moved, golden)) == 1
    moved = json.loads(json.dumps(golden))
    stats = moved["parameters"]["blocks.1.ffn.gates.weight"]
    stats["sum"] += 1e-5 * stats["abs"]
    assert len(tool.compare(moved, golden)) == 1
    assert len(golden["steps"]) == 10 and len(golden["steps"][0]["exit_weights"]) == golden["model"]["blocks"]
