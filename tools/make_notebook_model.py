"""Train and export the SST-2 models the notebooks load (notebooks/models/), and write their records.

    python tools/make_notebook_model.py            (needs SST-2: GLUE_DIR, or python -m beexnp download --tasks sst2)

For each model, the project's own two commands, run one BLAS thread each:

    python -m beexnp train --task sst2 <CONFIG> [--full-precision] --out runs/notebook_model[_twin]
    python -m beexnp export --float16 runs/notebook_model[_twin]/best notebooks/models/sst2_small[_twin].npz

``sst2_small.npz`` is the binarized BEExformer (notebooks 3, 4, 6, 7);
``sst2_small_twin.npz`` its full-precision twin (notebook 3 compares their
attention maps).  Next to each, ``<name>.json`` records the configs, the seed,
the dev accuracy at every exit of every epoch, the exact commands, the
training time, the file's size and SHA-256, and the beexnp commit it was
trained from.  A few minutes in all on two CPU cores.
"""
import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "notebooks" / "models"
CONFIG = ["--task", "sst2", "--token-dim", "56", "--position-dim", "8", "--heads", "4", "--blocks", "4",
          "--binarize-embeddings", "--epochs", "3", "--lr", "2e-3", "--seed", "0"]
VARIANTS = {"sst2_small": [], "sst2_small_twin": ["--full-precision"]}


def run(args, env):
    """Run ``python -m beexnp ARGS`` from the repository root; returns its wall time in seconds."""
    print("$ python -m beexnp " + " ".join(args), flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "beexnp", *args], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - start


def git_commit():
    """HEAD's hash, with '+dirty' when tracked files differ from it."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.strip()
    return head.stdout.strip() + ("+dirty" if dirty else "")


def make(name, extra, env):
    """Train, export and record one model; returns its record."""
    out = f"runs/notebook_model{'_twin' if extra else ''}"
    target = MODELS / f"{name}.npz"
    train = ["train", *CONFIG, *extra, "--out", out, "--no-progress"]
    export = ["export", "--float16", f"{out}/best", target.relative_to(ROOT).as_posix()]
    seconds = run(train, env)
    run(export, env)
    card = json.loads((ROOT / out / "best" / "checkpoint.json").read_text())
    history = json.loads((ROOT / out / "history.json").read_text())
    best = max(history, key=lambda record: record["score"])
    return dict(
        file=target.name, bytes=target.stat().st_size, sha256=hashlib.sha256(target.read_bytes()).hexdigest(),
        task=card["task"], seed=card["train_config"]["seed"],
        model_config=card["model_config"], train_config=card["train_config"],
        dev_accuracy_per_exit=[m["accuracy"] for m in best["dev"]["dev"]], best_epoch=best["epoch"],
        best_exit=best["best_exit"],
        dev_accuracy_per_epoch=[[m["accuracy"] for m in record["dev"]["dev"]] for record in history],
        commands=["OPENBLAS_NUM_THREADS=1 python -m beexnp " + " ".join(train),
                  "python -m beexnp " + " ".join(export)],
        training_seconds=round(seconds, 1),
        machine=f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), one BLAS thread",
        beexnp_commit=git_commit(), python=platform.python_version(),
        numpy=subprocess.run([sys.executable, "-c", "import numpy; print(numpy.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip())


def main(argv=None):
    argparse.ArgumentParser(description="Train and export the SST-2 models the notebooks load (a few minutes; "
                                        "needs SST-2), and write their records into notebooks/models/.").parse_args(argv)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    MODELS.mkdir(parents=True, exist_ok=True)
    for name, extra in VARIANTS.items():
        record = make(name, extra, env)
        (MODELS / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
        print(f"{name}: dev accuracy per exit {record['dev_accuracy_per_exit']}, {record['bytes']:,} bytes, "
              f"trained in {record['training_seconds']:.0f} s")


if __name__ == "__main__":
    main()
