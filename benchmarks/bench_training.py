"""logloss against each framework's own loss in a training step and in inference, same run, same data.

    PYTHONPATH=src python benchmarks/bench_training.py [--frameworks torch jax tensorflow]
                                                       [--sizes 4096 1000000] [--repeats 7]

Rows: framework x dtype (float32, float64) x n x mode. "train" is forward + backward of the mean
loss with respect to the logits (torch: ``loss.backward()``; JAX: ``jax.jit(jax.value_and_grad)``;
TensorFlow: ``tf.function`` around a ``GradientTape``; "etrain" and "einfer" the same eagerly);
"infer" is the loss alone (torch under ``torch.no_grad()``). The natives: ``torch.nn.BCEWithLogitsLoss`` / ``BCELoss``,
``optax.sigmoid_binary_cross_entropy``, ``tf.nn.sigmoid_cross_entropy_with_logits``. Each time is
the median of ``--repeats`` samples; a sample loops the call until it has run >= 20 ms. Labels are
hard 0/1, logits ~ N(0, 3). The two sides' samples are interleaved, so that load from other
processes hits both. Two threads in every framework (``BENCH_THREADS`` to change).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings

THREADS = int(os.environ.get("BENCH_THREADS", "2"))
os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={THREADS}")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(THREADS))
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import logloss  # noqa: E402


def _sample(call, block) -> float:
    """Seconds per call: the call looped until the sample has run >= 20 ms."""
    block(call())  # warm (compiles, caches)
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            result = call()
        block(result)
        elapsed = time.perf_counter() - start
        if elapsed >= 0.02:
            return elapsed / loops
        loops *= 2


def _medians(native, ours, block, repeats) -> tuple[float, float]:
    """Median seconds per call of each, their samples interleaved: a burst of load from other
    processes then hits both sides instead of one."""
    for call in (native, ours):
        _sample(call, block)
    samples = [(_sample(native, block), _sample(ours, block)) for _ in range(repeats)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.5).astype(np.float64)
    z = rng.normal(0, 3, n)
    return y, z, 1 / (1 + np.exp(-z))


# ---------------------------------------------------------------------------------------------


def torch_cases(dtype_name, n):
    import torch

    torch.set_num_threads(THREADS)
    import logloss.torch as lt

    dtype = getattr(torch, dtype_name)
    y, z, p = (torch.tensor(a, dtype=dtype) for a in _data(n))
    logits = z.clone().requires_grad_(True)
    probs = p.clone().requires_grad_(True)

    def train(criterion, x):
        def call():
            x.grad = None
            loss = criterion(x, y)
            loss.backward()
            return x.grad

        return call

    def infer(criterion, x):
        def call():
            with torch.no_grad():
                return criterion(x, y)

        return call

    pairs = [
        ("BCEWithLogitsLoss", torch.nn.BCEWithLogitsLoss(), lt.BCEWithLogitsLoss(), logits),
        ("BCELoss", torch.nn.BCELoss(), lt.BCELoss(), probs),
    ]
    for name, native, ours, x in pairs:
        for mode, make in (("train", train), ("infer", infer)):
            yield name, mode, make(native, x), make(ours, x), lambda r: r


def jax_cases(dtype_name, n):
    import jax
    import jax.numpy as jnp
    import optax

    dtype = getattr(jnp, dtype_name)
    y, z, _ = (jnp.asarray(a, dtype=dtype) for a in _data(n))

    def native(z_, y_):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(z_, y_))

    def ours(z_, y_):
        return logloss.binary_cross_entropy(y_, z_, from_logits=True)

    block = jax.block_until_ready
    for mode in ("train", "infer"):
        wrap = (lambda f: jax.jit(jax.value_and_grad(f))) if mode == "train" else jax.jit
        fn, fo = wrap(native), wrap(ours)
        yield "optax sigmoid_bce", mode, (lambda f=fn: f(z, y)), (lambda f=fo: f(z, y)), block


def tensorflow_cases(dtype_name, n):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    dtype = getattr(tf, dtype_name)
    y, z, _ = (tf.constant(a, dtype=dtype) for a in _data(n))

    def native(z_, y_):
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y_, logits=z_))

    def ours(z_, y_):
        return logloss.binary_cross_entropy(y_, z_, from_logits=True)

    def step(f):
        def call(z_, y_):
            with tf.GradientTape() as tape:
                tape.watch(z_)
                loss = f(z_, y_)
            return loss, tape.gradient(loss, z_)

        return call

    def block(result):
        return [r.numpy() for r in tf.nest.flatten(result)]

    # "train"/"infer" in a tf.function; "etrain"/"einfer" eagerly, as in a plain Python loop
    wraps = {"train": lambda f: tf.function(step(f)), "infer": tf.function, "etrain": step, "einfer": lambda f: f}
    for mode, wrap in wraps.items():
        fn, fo = wrap(native), wrap(ours)
        yield "tf.nn.sigmoid_ce_with_logits", mode, (lambda f=fn: f(z, y)), (lambda f=fo: f(z, y)), block


CASES = {"torch": torch_cases, "jax": jax_cases, "tensorflow": tensorflow_cases}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--sizes", nargs="+", type=int, default=[4096, 1_000_000])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    if "jax" in args.frameworks:
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 rows; float32 arrays stay float32
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {THREADS} threads; "
          f"python {sys.version.split()[0]}; median of {args.repeats}")
    versions = []
    for module in ("torch", "jax", "optax", "tensorflow"):
        if module in sys.modules or module in args.frameworks or (module == "optax" and "jax" in args.frameworks):
            try:
                versions.append(f"{module} {__import__(module).__version__}")
            except ImportError:
                pass
    print("# " + ", ".join(versions))
    print(f"{'framework':<11}{'native loss':<30}{'dtype':<9}{'n':>9} {'mode':<6}{'native ms':>11}{'logloss ms':>12}{'ratio':>8}")
    for framework in args.frameworks:
        for dtype in args.dtypes:
            for n in args.sizes:
                for name, mode, native, ours, block in CASES[framework](dtype, n):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        t_native, t_ours = _medians(native, ours, block, args.repeats)
                    print(f"{framework:<11}{name:<30}{dtype:<9}{n:>9} {mode:<6}{t_native * 1e3:>11.3f}"
                          f"{t_ours * 1e3:>12.3f}{t_ours / t_native:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
