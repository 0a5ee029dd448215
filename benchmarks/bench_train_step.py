r"""How fast is one BEExformer training step, against what this machine's BLAS can do?

One step is exactly ``Trainer.train_step`` (beexnp/train.py):

    loss = objective.forward(ids, mask, labels)      # ModelWithLoss: every exit + soft-routing loss
    objective.backward()
    clip_grad_norm(params, 1.0)
    optimizer.lr = schedule(step);  optimizer.step();  optimizer.zero_grad()     # AdamW

Reported (benchmarks/README.md explains each number):

* the median step time over ``--repeats`` steps after ``--warmup`` steps;
* the step's work from ``beexnp.flops.train_step_flops`` (3 x the forward's
  multiply-accumulates, 2 float ops each) divided by that time: GFLOP/s;
* float32 ``np.matmul`` on an n x n square (2n^3 FLOP, median of a few) and on
  the model's own largest product shape: the ceilings to compare with;
* the share of the square-matmul throughput the step reaches;
* a per-layer breakdown: every module's forward and backward wrapped with a
  timer (on the benchmark's own objects; the package is not modified),
  exclusive times (a module's time minus its children's), grouped by module
  path with the block index removed ("blocks.attn.qkv" = all 6 blocks' qkv);
* dtype leaks: every parameter, gradient, optimizer state, module output,
  input gradient and array a module keeps for its backward must be float32.

    python benchmarks/bench_train_step.py                    # the stated config
    python benchmarks/bench_train_step.py --repeats 3 --warmup 1 --json out.json
"""
import argparse
import json
import os
import platform
import re
import sys
import time
from collections import defaultdict

import blas_threads  # noqa: E402  (benchmarks/blas_threads.py, beside this script)

if __name__ == "__main__":
    blas_threads.apply(sys.argv[1:])

import numpy as np  # noqa: E402  (after the thread count is set)

from beexnp.config import ModelConfig
from beexnp.exit_loss import ModelWithLoss, MultiExitLoss
from beexnp.flops import block_layers, train_step_flops
from beexnp.model import BEExformer
from beexnp.optim import AdamW, clip_grad_norm
from beexnp.schedules import LRSchedule

DTYPE = np.float32


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: x)" except for flags and None defaults (their help says what happens)."""

    def _get_help_string(self, action):
        return action.help if action.default is None or action.default is False else super()._get_help_string(action)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_Help)
    g = p.add_argument_group("model (the stated config: width 112 + 16 = 128, 4 heads, 6 blocks)")
    g.add_argument("--token-dim", type=int, default=112, help="token embedding width d_tok")
    g.add_argument("--position-dim", type=int, default=16, help="position code width d_pos (concatenated)")
    g.add_argument("--heads", type=int, default=4, help="attention heads")
    g.add_argument("--blocks", type=int, default=6, help="blocks (= exits)")
    g.add_argument("--vocab", type=int, default=20000, help="vocabulary size")
    g.add_argument("--classes", type=int, default=2, help="classes C")
    g.add_argument("--ffn", choices=("slfn", "ffn"), default="slfn", help="SLFN or the feed-forward ablation")
    g.add_argument("--full-precision", action="store_true", help="the full-precision twin (binarize off)")
    g.add_argument("--w1a1", action="store_true", help="binarized activations too")
    g.add_argument("--dropout", type=float, default=0.1, help="dropout probability")
    g = p.add_argument_group("batch and training step")
    g.add_argument("--batch", type=int, default=32, help="batch size B")
    g.add_argument("--tokens", type=int, default=64, help="padded length T")
    g.add_argument("--min-length", type=int, default=None,
                   help="real lengths are drawn uniformly in [min-length, tokens] (default tokens//2); "
                        "the padded positions cost the same, FLOPs count the padded T")
    g.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (linear schedule)")
    g.add_argument("--weight-decay", type=float, default=0.01, help="AdamW decoupled weight decay")
    g.add_argument("--clip-norm", type=float, default=1.0, help="global gradient-norm clip")
    g = p.add_argument_group("measurement")
    g.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    g.add_argument("--repeats", type=int, default=20, help="timed steps (median reported)")
    g.add_argument("--breakdown-repeats", type=int, default=None,
                   help="instrumented steps for the per-layer breakdown (default: min(repeats, 5))")
    g.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n float32 matmul reference")
    g.add_argument("--matmul-repeats", type=int, default=5, help="timed square matmuls (median)")
    g.add_argument("--threads", type=int, default=None,
                   help="BLAS threads (sets OPENBLAS/OMP/MKL_NUM_THREADS before NumPy loads; "
                        "default: the environment's, OpenBLAS uses every core)")
    g.add_argument("--seed", type=int, default=0, help="seed of initialization, dropout and batches")
    g.add_argument("--json", metavar="OUT", help="also write every figure to this JSON file")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.matmul_repeats < 1:
        p.error("need --repeats >= 1, --warmup >= 0, --matmul-repeats >= 1")
    if args.breakdown_repeats is None:
        args.breakdown_repeats = min(args.repeats, 5)
    if args.breakdown_repeats < 1:
        p.error(f"--breakdown-repeats must be >= 1 (the breakdown averages over them), got {args.breakdown_repeats}")
    if args.min_length is None:
        args.min_length = max(1, args.tokens // 2)
    if not 1 <= args.min_length <= args.tokens:
        p.error(f"--min-length must be in [1, --tokens={args.tokens}]")
    return args


# ---- the objects of a training run, as Trainer builds them --------------------------------

def build(args):
    config = ModelConfig(vocab_size=args.vocab, num_classes=args.classes, token_dim=args.token_dim,
                         position_dim=args.position_dim, heads=args.heads, blocks=args.blocks, ffn=args.ffn,
                         binarize=not args.full_precision, binarize_activations=args.w1a1,
                         dropout=args.dropout, max_len=args.tokens).validate()
    rng = np.random.default_rng(args.seed)
    model = BEExformer(config, rng, dtype=DTYPE)
    objective = ModelWithLoss(model, MultiExitLoss(config.blocks, "soft_routing"))
    params = list(model.parameters())
    optimizer = AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    total = args.warmup + args.repeats + args.breakdown_repeats
    schedule = LRSchedule(args.lr, total, warmup_steps=int(0.05 * total), decay="linear")
    return config, objective, params, optimizer, schedule


def make_batches(args, config, count):
    """``count`` padded batches: ids (B, T) with [CLS]=2 first, mask (B, T), labels (B,)."""
    rng = np.random.default_rng(args.seed + 1)
    batches = []
    for _ in range(count):
        lengths = rng.integers(args.min_length, args.tokens + 1, size=args.batch)
        mask = (np.arange(args.tokens) < lengths[:, None]).astype(DTYPE)                # (B, T)
        ids = rng.integers(4, config.vocab_size, size=(args.batch, args.tokens)) * mask.astype(np.int64)
        ids[:, 0] = 2
        batches.append((ids, mask, rng.integers(0, config.num_classes, size=args.batch)))
    return batches


class Step:
    """Trainer.train_step without the Trainer: the same calls in the same order.

    ``phase`` (optional) is called with a name and a zero-argument function; the
    instrumented run passes a timer there to time the optimizer's phases."""

    def __init__(self, objective, params, optimizer, schedule, clip_norm):
        self.objective, self.params, self.optimizer = objective, params, optimizer
        self.schedule, self.clip_norm, self.t = schedule, clip_norm, 0

    def __call__(self, batch, phase=lambda name, fn: fn(), after_backward=None):
        ids, mask, labels = batch
        loss = self.objective.forward(ids, mask, labels)
        if not np.isfinite(loss):
            raise FloatingPointError(f"loss is {loss} at step {self.t}")
        self.objective.backward()
        if after_backward:
            after_backward()
        phase("clip_grad_norm", lambda: clip_grad_norm(self.params, self.clip_norm))
        self.optimizer.lr = self.schedule(self.t)
        phase("optimizer.step", self.optimizer.step)
        phase("optimizer.zero_grad", self.optimizer.zero_grad)
        self.t += 1
        return float(loss)


def time_steps(step, batches, warmup, repeats):
    """Wall time of each of ``repeats`` steps after ``warmup`` untimed ones."""
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        step(batches[i % len(batches)])
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


# ---- the ceilings: float32 np.matmul -------------------------------------------------------

def matmul_gflops(m, k, n, repeats, rng):
    """Median GFLOP/s of a float32 (m, k) @ (k, n) product: 2·m·k·n FLOP per product."""
    a = rng.standard_normal((m, k), dtype=DTYPE)
    b = rng.standard_normal((k, n), dtype=DTYPE)
    out = np.empty((m, n), DTYPE)
    np.matmul(a, b, out=out)                                                 # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2 * m * k * n / np.median(times) / 1e9


# ---- per-layer timing and dtype checks, by wrapping the modules' methods -----------------------

def named_modules(module, prefix=""):
    """(dotted path, module) for a module and all its descendants."""
    yield prefix, module
    for name, child in module.children():
        yield from named_modules(child, f"{prefix}.{name}" if prefix else name)


def float_arrays(value):
    """The floating-point arrays and NumPy scalars in a value (an array, a list of them, a scalar)."""
    if isinstance(value, (np.ndarray, np.floating)) and np.issubdtype(value.dtype, np.floating):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from float_arrays(v)


class LayerTimer:
    """Wraps ``forward`` and ``backward`` of every module (instance attributes,
    removed by ``remove()``) to accumulate exclusive times per group, and to
    record any floating-point value that is not float32 (outputs, returned
    gradients, and arrays the module stored during the call)."""

    def __init__(self, root):
        self.root, self.stack = root, []
        self.seconds = defaultdict(float)                 # (group, "forward"/"backward") -> exclusive s
        self.calls = defaultdict(int)
        self.leaks = {}                                   # description -> dtype and shape
        self.notes = {}                                   # float64 NumPy scalars kept (harmless if cast at use)
        self.wrapped = []
        for path, module in named_modules(root):
            group = re.sub(r"\.\d+", "", path).removeprefix("model.") or "(objective)"
            for method in ("forward", "backward"):
                setattr(module, method, self.timed(module, path, group, method, getattr(module, method)))
                self.wrapped.append((module, method))

    def timed(self, module, path, group, method, original):
        def run(*args, **kwargs):
            before = {k: id(v) for k, v in vars(module).items()}
            self.stack.append(0.0)                        # time spent in children
            t0 = time.perf_counter()
            out = original(*args, **kwargs)
            elapsed = time.perf_counter() - t0
            children = self.stack.pop()
            self.seconds[group, method] += elapsed - children
            self.calls[group, method] += 1
            t1 = time.perf_counter()
            self.check(f"{path or 'objective'}.{method}() returned", out)
            for name, value in vars(module).items():
                if before.get(name) != id(value) and name not in ("forward", "backward"):
                    self.check(f"{path or 'objective'}.{name} (kept by {method})", value, kept=True)
            if self.stack:                                # the parent's children time includes our checks
                self.stack[-1] += elapsed + time.perf_counter() - t1
            return out
        return run

    def check(self, what, value, kept=False):
        """A non-float32 array is a leak; a kept 0-d scalar only a note (NumPy 2 scalars are
        not 'weak': a float64 scalar times a float32 array IS float64, unless cast at use)."""
        for array in float_arrays(value):
            if array.dtype != DTYPE:
                (self.notes if kept and np.ndim(array) == 0 else self.leaks)[what] = \
                    f"{array.dtype}{list(np.shape(array))}"

    def remove(self):
        for module, method in self.wrapped:
            del module.__dict__[method]                   # back to the class's method


def check_state(params, optimizer, where, leaks):
    """Every parameter, gradient and optimizer state array must be float32."""
    for name, p in params:
        for kind, array in (("data", p.data), ("grad", p.grad)):
            if array.dtype != DTYPE:
                leaks[f"{name}.{kind} {where}"] = f"{array.dtype}{list(array.shape)}"
    for key, array in optimizer._arrays().items():
        if array.dtype != DTYPE:
            leaks[f"optimizer {key} {where}"] = f"{array.dtype}{list(array.shape)}"


def flops_by_group(config, batch, tokens):
    """Float ops of one training step per timing group (3 x forward MACs x 2)."""
    where = {"attn.scores": "blocks.attn", "attn.context": "blocks.attn",
             "exit.pool": "exits", "exit.cosine": "exits", "exit.linear": "exits.linear"}
    groups = defaultdict(int)
    for name, _, cost in block_layers(config):
        macs = int(cost(config, tokens).macs)
        groups[where.get(name, "blocks." + name)] += 2 * 3 * batch * config.blocks * macs
    return groups


def breakdown(step, batches, repeats, config, args):
    """Per-group exclusive forward / backward ms per step, the optimizer's phases, dtype leaks."""
    timer = LayerTimer(step.objective)
    phases = defaultdict(float)

    def phase(name, fn):
        t0 = time.perf_counter()
        out = fn()
        phases[name] += time.perf_counter() - t0
        return out

    leaks = {}
    totals = []
    try:
        for i in range(repeats):
            t0 = time.perf_counter()
            step(batches[i % len(batches)], phase,
                 after_backward=lambda: check_state(step.params, step.optimizer, "after backward", leaks))
            totals.append(time.perf_counter() - t0)
            check_state(step.params, step.optimizer, "after the update", leaks)
    finally:
        timer.remove()
    leaks.update(timer.leaks)
    notes = timer.notes

    flops = flops_by_group(config, args.batch, args.tokens)
    step_ms = 1e3 * sum(totals) / repeats
    rows = []
    for group in sorted({g for g, _ in timer.seconds}):
        fwd = 1e3 * timer.seconds[group, "forward"] / repeats
        bwd = 1e3 * timer.seconds[group, "backward"] / repeats
        rows.append(dict(layer=group, calls=timer.calls[group, "forward"] // repeats, forward_ms=fwd,
                         backward_ms=bwd, total_ms=fwd + bwd, share=(fwd + bwd) / step_ms,
                         gflops=flops[group] / ((fwd + bwd) / 1e3) / 1e9 if group in flops else None))
    for name, seconds in phases.items():
        ms = 1e3 * seconds / repeats
        rows.append(dict(layer=name, calls=1, forward_ms=None, backward_ms=None, total_ms=ms,
                         share=ms / step_ms, gflops=None))
    accounted = sum(r["total_ms"] for r in rows)
    rows.append(dict(layer="(rest: schedule, Python glue)", calls=1, forward_ms=None, backward_ms=None,
                     total_ms=step_ms - accounted, share=(step_ms - accounted) / step_ms, gflops=None))
    rows.sort(key=lambda r: -r["total_ms"])
    return rows, step_ms, leaks, notes


# ---- output ------------------------------------------------------------------------------

def aligned(header, lines):
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*map(str, line)) for line in [header, *lines])


def ms(x):
    return "" if x is None else f"{x:.2f}"


def main(argv=None):
    args = parse_args(argv)
    config, objective, params, optimizer, schedule = build(args)
    step = Step(objective, params, optimizer, schedule, args.clip_norm)
    batches = make_batches(args, config, min(8, args.warmup + args.repeats))
    work = train_step_flops(config, args.batch, args.tokens)
    d = config.dim

    print(f"BEExformer training step: d={d} ({config.token_dim}+{config.position_dim}), heads={config.heads}, "
          f"blocks={config.blocks}, ffn={config.ffn}, binarize={config.binarize}, W1A1={config.binarize_activations}, "
          f"vocab={config.vocab_size}, C={config.num_classes}, B={args.batch}, T={args.tokens}, float32")
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset (all cores)")
    print(f"parameters: {objective.model.num_parameters():,};  NumPy {np.__version__}, {os.cpu_count()} CPUs, "
          f"OPENBLAS_NUM_THREADS={threads}, load average {os.getloadavg()[0]:.2f}")
    if args.threads and os.environ.get("OPENBLAS_NUM_THREADS") != str(args.threads):
        print("warning: --threads only takes effect when this file is run as a script (NumPy was already loaded)")

    times = time_steps(step, batches, args.warmup, args.repeats)
    median = float(np.median(times))
    gflops = work.float_ops / median / 1e9

    rng = np.random.default_rng(args.seed + 2)
    n = args.matmul_size
    square = matmul_gflops(n, n, n, args.matmul_repeats, rng)
    widest = 4 * d if config.ffn == "slfn" else 2 * d
    shaped = matmul_gflops(args.batch * args.tokens, d, widest, max(args.matmul_repeats, 20), rng)

    rows, instrumented_ms, leaks, notes = breakdown(step, batches, args.breakdown_repeats, config, args)

    summary = [
        ("median step time", f"{1e3 * median:.1f} ms", f"min {1e3 * min(times):.1f}, max {1e3 * max(times):.1f} "
                                                          f"over {len(times)} steps"),
        ("step work", f"{work.float_ops / 1e9:.2f} GFLOP", f"3 x forward, {work.macs / 1e9:.2f} G MACs x 2 "
                                                            f"({work.binary_macs / work.macs:.0%} with binary weights)"),
        ("step throughput", f"{gflops:.1f} GFLOP/s", "step work / median time"),
        (f"np.matmul {n}x{n} float32", f"{square:.1f} GFLOP/s", f"2n^3 / median of {args.matmul_repeats}"),
        ("share of matmul peak", f"{gflops / square:.1%}", "step throughput / square matmul"),
        (f"np.matmul ({args.batch * args.tokens}x{d})@({d}x{widest})", f"{shaped:.1f} GFLOP/s",
         "the model's largest product shape"),
    ]
    print()
    print(aligned(("figure", "value", "how"), summary))
    print()
    print(f"per-layer breakdown (exclusive times, mean of {args.breakdown_repeats} instrumented steps of "
          f"{instrumented_ms:.1f} ms; GFLOP/s = the layer's counted work / its time)")
    print(aligned(("layer", "calls", "fwd ms", "bwd ms", "total ms", "share", "GFLOP/s"),
                  [(r["layer"], r["calls"], ms(r["forward_ms"]), ms(r["backward_ms"]), ms(r["total_ms"]),
                    f"{r['share']:.1%}", "" if r["gflops"] is None else f"{r['gflops']:.1f}") for r in rows]))
    print()
    if leaks:
        print(f"dtype leaks ({len(leaks)}): not float32")
        for what, dtype in sorted(leaks.items()):
            print(f"  {what}: {dtype}")
    else:
        print("dtype leaks: none (every parameter, gradient, optimizer state and activation is float32)")
    if notes:
        print(f"float64 scalars kept by modules ({len(notes)}; fine if cast before use):")
        for what, dtype in sorted(notes.items()):
            print(f"  {what}: {dtype}")

    if args.json:
        report = dict(config=config.to_dict(), args=vars(args), step_seconds=times, median_seconds=median,
                      step_work=work.as_dict(), step_gflops=gflops, matmul_square_gflops=square,
                      matmul_model_shape_gflops=shaped, share_of_matmul_peak=gflops / square,
                      breakdown=rows, instrumented_step_ms=instrumented_ms, dtype_leaks=leaks, float64_scalars=notes,
                      machine=dict(cpus=os.cpu_count(), load_average=os.getloadavg(), numpy=np.__version__,
                                   blas_threads={v: os.environ.get(v) for v in blas_threads.BLAS_THREAD_VARS},
                                   python=platform.python_version(), platform=platform.platform()))
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
