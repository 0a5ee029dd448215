"""The benchmark scripts run (on tiny shapes) and write their JSON: they must not rot."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("script, args", [
    ("bench_train_step.py", ["--token-dim", "12", "--position-dim", "4", "--blocks", "2", "--vocab", "50",
                             "--batch", "2", "--tokens", "8", "--repeats", "2", "--warmup", "1",
                             "--breakdown-repeats", "1", "--matmul-size", "64", "--matmul-repeats", "1"]),
    ("bench_packed.py", ["--batch", "2", "--tokens", "8", "--dim", "16", "--repeats", "2", "--warmup", "1"]),
])
def test_benchmark_runs_and_writes_json(script, args, tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(BENCH / script), "--threads", "1", *args, "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr          # bench_train_step also fails on dtype leaks
    assert json.loads(out.read_text())
