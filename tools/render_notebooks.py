"""Render the notebooks with the outputs of a full (not fast) run: what the repository shows.

    python tools/render_notebooks.py              every notebook, rewritten in place
    python tools/render_notebooks.py 05 06        only these
    python tools/render_notebooks.py --fast       run them in fast mode and record only the times
    python tools/render_notebooks.py --readme     only rewrite notebooks/README.md's numbers

Full mode needs SST-2 (``GLUE_DIR``, or ``python -m beexnp download --tasks
sst2``): notebook 5 trains on it and notebook 6's second part reads it, and
the committed notebooks must show everything, so the renderer refuses to run
without it.  Each notebook runs in a fresh kernel from ``notebooks/`` with one
BLAS thread, seeded string hashing and no progress bars
(``tools/notebook_kernel.py``; the notebooks seed their own random numbers);
the exercises run as committed (stubs: their graders print TODO).  Before a
file is written its outputs are checked (every cell ran, no error, no widget,
a figure, no machine path, under 2 MB), and the run time goes into its
metadata (``beexnp.seconds``; ``--fast`` records ``beexnp.fast_seconds`` and
leaves the outputs alone).

Then notebooks/README.md (and the top README's learning path, whose rows have
the same shape) is rewritten from those numbers: the run-time columns of its table (from each notebook's metadata) and the paragraph on the trained
models (from ``notebooks/models/*.json`` and the files).  ``tests/test_notebooks.py``
checks the committed files the same way, and that README says what this
script would write; it never rewrites them.
"""
import argparse
import json
import re
import sys
import time

from notebook_kernel import MAX_BYTES, NOTEBOOK_DIR, ROOT, execute, output_problems

README = NOTEBOOK_DIR / "README.md"
MODELS = NOTEBOOK_DIR / "models"
ROW = re.compile(r"^\| `(\d\d_\w+)` \|.*\|\s*([^|]*?)\s*\|\s*([^|]*?)\s*\|$")   # a table row: ... | fast | full |
BEGIN, END = "<!-- models: written by tools/render_notebooks.py from models/*.json -->", "<!-- end of models -->"


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Run the notebooks and write them back with their outputs "
                                                 "(full mode), or time them in fast mode.")
    parser.add_argument("notebooks", nargs="*", metavar="NN", help="the notebooks' numbers (default: all)")
    parser.add_argument("--fast", action="store_true", help="run in fast mode and record only the times")
    parser.add_argument("--readme", action="store_true", help="only rewrite the numbers of notebooks/README.md and README.md's learning path")
    return parser.parse_args(argv)


def seconds(value):
    return "–" if value is None else f"{value} s"


def metadata():
    """{notebook stem: its "beexnp" metadata}."""
    import nbformat
    return {path.stem: nbformat.read(path, as_version=4).metadata.get("beexnp", {})
            for path in sorted(NOTEBOOK_DIR.glob("*.ipynb"))}


def models_paragraph():
    """The README's paragraph on the committed models, from their records and files."""
    sys.path.insert(0, str(ROOT))
    from beexnp.packed import load_unpacked
    small, twin = (json.loads((MODELS / f"{name}.json").read_text()) for name in ("sst2_small", "sst2_small_twin"))
    model = load_unpacked(MODELS / "sst2_small.npz")[0]                     # the float model it describes
    cfg, train = small["model_config"], small["train_config"]

    def accuracies(record):
        return ", ".join(f"{100 * a:.1f}" for a in record["dev_accuracy_per_exit"])
    size = {name: (MODELS / f"{name}.npz").stat().st_size for name in ("sst2_small", "sst2_small_twin")}
    return (f"Notebooks 3, 4, 6 and 7 look inside a trained BEExformer without training one: `models/sst2_small.npz`\n"
            f"is a small binarized model ({cfg['blocks']} blocks, width {cfg['token_dim']} + {cfg['position_dim']}, "
            f"{cfg['heads']} heads, SLFN, {'binarized' if cfg['binarize_embeddings'] else 'real'} embeddings; "
            f"{model.num_parameters():,}\nparameters) trained on SST-2 for {train['epochs']} epochs with the "
            f"project's own `train` command, then exported in the\npacked one-bit format with float16 real numbers "
            f"(`export --float16`): {size['sst2_small']:,} bytes, tokenizer included.\n"
            f"Its dev accuracy is {accuracies(small)}% at exits 1 to {cfg['blocks']}. `models/sst2_small_twin.npz` "
            f"is its\nfull-precision twin (the same command with `--full-precision`: {size['sst2_small_twin']:,} "
            f"bytes; {accuracies(twin)}%),\nwhich notebook 3 compares attention maps with. Training took "
            f"{small['training_seconds']:.0f} and {twin['training_seconds']:.0f} seconds on {small['machine']}.")


def readme_text(text, meta=None):
    """``text`` (notebooks/README.md) with its numbers as the notebooks' metadata and the models' records say."""
    meta = metadata() if meta is None else meta
    lines = []
    for line in text.split("\n"):
        row = ROW.match(line)
        if row and row.group(1) in meta:
            m = meta[row.group(1)]
            head = line[:row.start(2)].rstrip()
            line = f"{head} {seconds(m.get('fast_seconds'))} | {seconds(m.get('seconds'))} |"
        lines.append(line)
    text = "\n".join(lines)
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        text = before + BEGIN + "\n" + models_paragraph() + "\n" + END + rest.split(END, 1)[1]
    return text


def write_readme():
    """notebooks/README.md and the top README's learning path (its rows have the same shape), rewritten."""
    for path in (README, ROOT / "README.md"):
        text = path.read_text()
        new = readme_text(text)
        if new != text:
            path.write_text(new)
            print(f"{path.relative_to(ROOT)}: numbers rewritten")


def main(argv):
    import nbformat
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))                      # this checkout's beexnp, as the kernels get it
    from beexnp.glue import find_glue_dir
    fast, chosen = args.fast, args.notebooks
    if args.readme:
        write_readme()
        return
    paths = [p for p in sorted(NOTEBOOK_DIR.glob("*.ipynb")) if not chosen or p.name[:2] in chosen]
    if not fast:
        try:
            find_glue_dir(task="sst2")
        except FileNotFoundError as error:
            raise SystemExit(f"full mode needs SST-2 (notebooks 5 and 6):\n{error}")
    for path in paths:
        committed = nbformat.read(path, as_version=4)
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        execute(nb, fast=fast, timeout=1800)
        took = round(time.perf_counter() - start)
        problems = output_problems(nb)
        record = dict(committed.metadata.get("beexnp", {}))
        if fast:
            record["fast_seconds"] = took
        else:
            record.update(rendered="full mode", seconds=took)
        nb.metadata["beexnp"] = committed.metadata["beexnp"] = record
        size = len(nbformat.writes(nb).encode())
        if size >= MAX_BYTES:
            problems.append(f"{size:,} bytes (limit {MAX_BYTES:,})")
        print(f"{path.name}: {took} s in {'fast' if fast else 'full'} mode, {size:,} bytes"
              + ("".join(f"\n  problem: {p}" for p in problems)), flush=True)
        if problems:
            raise SystemExit(f"{path.name} not written: fix the problems above")
        nbformat.write(committed if fast else nb, path)       # fast mode: only the time, in the metadata
    write_readme()


if __name__ == "__main__":
    main(sys.argv[1:])
