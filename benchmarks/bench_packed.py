r"""Packed one-bit matrix products against float32 ``np.matmul`` at BEExformer's shapes.

For each product (rows, n) x (n, out) of the model (rows = B*T tokens; with
d = 128: qkv (d, 3d), out (d, d), SLFN gates (d, 4d)):

* weight memory: float32 W_b (what the float model multiplies) against the
  packed bits (8 per byte), the uint64 words (64 per word) and the alphas;
* ``float32 matmul``:  x @ W_b, the float binary-mode model's product (BLAS);
* ``W1A1 packed``:     ``beexnp.xnor.w1a1_matmul``: pack the activations' signs
  into words, then  S = n - 2 popcount(x XOR w)  per word (``np.bitwise_count``),
  then S * alpha; also its two parts alone (``pack x`` and ``popcount core``);
* ``W1A32 unpack/call``: unpack the bits to alpha * (+-1) and multiply: the cost
  of keeping only bits in memory for a real-activation layer;
* with ``--whole-model``: one forward of a W1A1 BEExformer (all exits), the
  float binary-mode model against the packed one.

Each figure is the median of ``--repeats`` timed calls after ``--warmup``, the
variants called in turn (round after round) so that they share the machine's load.
The popcount result is checked against the exact integer sign(x) @ sign(W).

    python benchmarks/bench_packed.py                         # B*T = 32*64 = 2048 rows, d 128, out 384 128 512
    python benchmarks/bench_packed.py --threads 1 --whole-model --json packed.json
"""
import argparse
import json
import os
import platform
import sys
import time

import blas_threads  # noqa: E402  (benchmarks/blas_threads.py, beside this script)

if __name__ == "__main__":
    blas_threads.apply(sys.argv[1:])

import numpy as np  # noqa: E402  (after the thread count is set)

from beexnp.config import ModelConfig  # noqa: E402
from beexnp.model import BEExformer
from beexnp.packed import model_from_packed, pack_model, packed_meta  # noqa: E402
from beexnp.sign import sign  # noqa: E402
from beexnp.xnor import as_words, binary_weight, pack_signs, pack_words, popcount_matmul, w1a1_matmul  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--batch", type=int, default=32, help="batch size B")
    p.add_argument("--tokens", type=int, default=64, help="tokens T; the products have B*T rows")
    p.add_argument("--dim", type=int, default=128, help="input width n (the model width d)")
    p.add_argument("--outs", type=int, nargs="+", default=None,
                   help="output widths (default: 3d, d, 4d: qkv, attention out, SLFN gates)")
    p.add_argument("--repeats", type=int, default=21, help="timed calls per figure (median reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    p.add_argument("--threads", type=int, default=None, help="BLAS threads (sets OPENBLAS_NUM_THREADS etc.)")
    p.add_argument("--whole-model", action="store_true",
                   help="also time a whole W1A1 BEExformer forward (width --dim, 6 blocks): float vs packed")
    p.add_argument("--vocab", type=int, default=13389, help="vocabulary of the whole-model run (SST-2's)")
    p.add_argument("--model-repeats", type=int, default=5, help="timed forwards of the whole-model run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="OUT", help="also write every figure to this JSON file")
    return p.parse_args(argv)


def time_interleaved(runs, repeats, warmup):
    """{name: [seconds, ...]}: every ``run`` called once per round, round after round.

    Interleaving puts every variant under the same machine load (a shared
    machine's load drifts between seconds), so their ratios stay fair."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def bench_shape(rows, n, out, rng, repeats, warmup):
    """Memory and times of one (rows, n) x (n, out) product, every way."""
    x = rng.standard_normal((rows, n)).astype(np.float32)                      # activations
    W = rng.uniform(-1, 1, (n, out)).astype(np.float32)                          # latent weights
    alpha = np.abs(W).mean(axis=0)                                               # (out,)
    W_b = alpha * sign(W)                                                        # (n, out) float32, the float model's
    bits = pack_signs(W, axis=0)                                                 # (out, ceil(n/8)) uint8
    words = as_words(bits)                                                       # (out, ceil(n/64)) uint64
    x_words = pack_words(x)                                                      # (rows, ceil(n/64))

    exact = sign(x).astype(np.int64) @ sign(W).astype(np.int64)
    if not np.array_equal(popcount_matmul(x_words, words, n), exact):
        raise AssertionError(f"popcount product differs from sign(x) @ sign(W) at {(rows, n, out)}")

    times = time_interleaved(dict(
        float32_matmul=lambda: x @ W_b,
        w1a1_packed=lambda: w1a1_matmul(x, words, alpha, n),
        w1a1_pack_x=lambda: pack_words(x),
        w1a1_popcount_core=lambda: popcount_matmul(x_words, words, n),
        w1a32_unpack_per_call=lambda: x @ binary_weight(bits, alpha, n),
    ), repeats, warmup)
    t = {k: 1e3 * float(np.median(v)) for k, v in times.items()}                 # median ms
    t_min = {k: 1e3 * float(np.min(v)) for k, v in times.items()}                # least disturbed ms
    macs = rows * n * out
    return dict(
        shape=dict(rows=rows, n=n, out=out), macs=macs,
        memory_bytes=dict(float32_weight=W_b.nbytes, packed_bits=bits.nbytes, packed_words=words.nbytes,
                          alphas=alpha.nbytes),
        ms=t, min_ms=t_min,
        slowdown_vs_matmul={k: v / t["float32_matmul"] for k, v in t.items() if k != "float32_matmul"},
        slowdown_vs_matmul_min={k: v / t_min["float32_matmul"] for k, v in t_min.items() if k != "float32_matmul"},
        float32_gflops=2 * macs / t["float32_matmul"] / 1e6,
        w1a1_binary_gmacs=macs / t["w1a1_packed"] / 1e6,
    )


def bench_model(args, rng):
    """One W1A1 forward of the whole model (every exit): float binary mode vs packed (XNOR-popcount)."""
    config = ModelConfig(vocab_size=args.vocab, token_dim=args.dim - 16, position_dim=16,
                         binarize_activations=True)
    model = BEExformer(config, rng).eval()
    arrays = pack_model(model)
    packed = model_from_packed(arrays, packed_meta(model))
    ids = rng.integers(4, args.vocab, (args.batch, args.tokens))
    mask = np.ones(ids.shape, np.float32)
    times = time_interleaved(dict(float_binary_mode=lambda: model.forward(ids, mask),
                                  packed_w1a1=lambda: packed.forward(ids, mask)), args.model_repeats, 1)
    ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    return dict(config=config.to_dict(), batch=args.batch, tokens=args.tokens, ms=ms,
                slowdown=ms["packed_w1a1"] / ms["float_binary_mode"],
                weight_bytes=dict(float_model=sum(p.data.nbytes for _, p in model.parameters()),
                                  packed=sum(a.nbytes for a in arrays.values())))


def machine():
    return dict(cpus=os.cpu_count(), load_average=os.getloadavg(), numpy=np.__version__,
                python=platform.python_version(),
                blas_threads={v: os.environ.get(v) for v in blas_threads.BLAS_THREAD_VARS})


def format_results(results, args):
    m = results["machine"]
    lines = [f"packed one-bit products vs float32 np.matmul: median of {args.repeats} (after {args.warmup} warm-up); "
             f"{m['cpus']} CPUs, load {m['load_average'][0]:.2f}, threads "
             f"{m['blas_threads']['OPENBLAS_NUM_THREADS'] or 'default'}, NumPy {m['numpy']}", "",
             f"{'(rows, n) x (n, out)':<24}{'W fp32':>9}{'bits':>8}{'words':>8}{'alphas':>8}   "
             f"{'matmul':>8}{'W1A1':>8}{'=pack x':>8}{'+popcnt':>8}{'W1A32':>8}   {'W1A1 / matmul':>13}{'(min)':>8}"]
    for r in results["shapes"]:
        s, mem, t = r["shape"], r["memory_bytes"], r["ms"]
        lines.append(f"{'(%d, %d) x (%d, %d)' % (s['rows'], s['n'], s['n'], s['out']):<24}"
                     f"{mem['float32_weight']:>9,}{mem['packed_bits']:>8,}{mem['packed_words']:>8,}"
                     f"{mem['alphas']:>8,}   "
                     f"{t['float32_matmul']:>8.2f}{t['w1a1_packed']:>8.2f}{t['w1a1_pack_x']:>8.2f}"
                     f"{t['w1a1_popcount_core']:>8.2f}{t['w1a32_unpack_per_call']:>8.2f}   "
                     f"{r['slowdown_vs_matmul']['w1a1_packed']:>12.2f}x"
                     f"{r['slowdown_vs_matmul_min']['w1a1_packed']:>7.2f}x")
    lines += ["", "memory in bytes, times in ms (median; the variants interleaved, round after round).",
              "W1A1 = pack x + popcount core + scale by alpha; "
              "W1A32 = unpack the bits to alpha * (+-1) on every call, then matmul.",
              "W1A1 / matmul > 1: NumPy's XOR + popcount path is that many times slower than BLAS "
              "((min): the same from the least disturbed calls).",
              "throughput: float32 matmul " + ", ".join(f"{r['float32_gflops']:.1f}" for r in results["shapes"])
              + " GFLOP/s; W1A1 " + ", ".join(f"{r['w1a1_binary_gmacs']:.1f}" for r in results["shapes"])
              + " G binary MAC/s"]
    if "whole_model" in results:
        w = results["whole_model"]
        lines += ["", f"whole W1A1 model forward (d={w['config']['token_dim'] + 16}, {w['config']['blocks']} blocks, "
                  f"vocab {w['config']['vocab_size']}, B={w['batch']}, T={w['tokens']}, every exit): "
                  f"float binary mode {w['ms']['float_binary_mode']:.1f} ms, packed {w['ms']['packed_w1a1']:.1f} ms "
                  f"({w['slowdown']:.2f}x); weights {w['weight_bytes']['float_model']:,} B -> "
                  f"{w['weight_bytes']['packed']:,} B"]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    d = args.dim
    outs = args.outs or [3 * d, d, 4 * d]
    rows = args.batch * args.tokens
    results = dict(args=vars(args), machine=machine(),
                   shapes=[bench_shape(rows, d, out, rng, args.repeats, args.warmup) for out in outs])
    if args.whole_model:
        results["whole_model"] = bench_model(args, rng)
    print(format_results(results, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
