"""A/B of the grouped-sums kernel alone (what `score --by` runs): two builds' kernel modules
(DIR/src/logloss/_numpy/kernels) loaded side by side and called directly on the same rows
(int8 labels, float32 probabilities, int32 group codes; float32 weights with `weighted`),
alternated, one thread, for several group counts. The sums of the two must agree bit for bit:
each build's own field order is given by --layout-a / --layout-b ("pairs": hi, lo of each sum in
turn; "blocks": the four hi, then the four lo).
usage: bench_grouped_ab.py DIR_A DIR_B avx512|avx2|baseline plain|weighted ROUNDS
       [--layout-a pairs|blocks] [--layout-b pairs|blocks] [--groups 50,1200,20000,100000]"""
import argparse
import glob
import importlib.util
import time

import numpy as np


def load(directory, path):
    found = glob.glob(f"{directory}/src/logloss/_numpy/kernels/_kernels_{path}.*.so")[0]
    spec = importlib.util.spec_from_file_location(f"_kernels_{path}", found)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fields(table, groups, fields_per_group, layout):
    t = table.reshape(groups, fields_per_group)
    if layout == "pairs":
        return t[:, 0:8:2], t[:, 1:8:2], t[:, 8:]
    return t[:, 0:4], t[:, 4:8], t[:, 8:]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("path")
    parser.add_argument("mode", choices=["plain", "weighted"])
    parser.add_argument("rounds", type=int)
    parser.add_argument("--layout-a", default="pairs")
    parser.add_argument("--layout-b", default="blocks")
    parser.add_argument("--groups", default="50,1200,20000,100000")
    args = parser.parse_args()
    A, B = load(args.a, args.path), load(args.b, args.path)
    n = 1 << 20
    rng = np.random.default_rng(1)
    p = rng.beta(2, 5, n).astype(np.float32)
    y = (rng.random(n) < p).astype(np.int8)
    w = (rng.random(n) + 0.5).astype(np.float32) if args.mode == "weighted" else None
    codes_type, i8, f32 = 3, 1, 10  # the kernels' type codes: int32, int8, float32
    print(f"{args.mode}, {n:,} rows, one thread, {args.path}; ns a row, median of {args.rounds}")
    for groups in map(int, args.groups.split(",")):
        codes = rng.integers(0, groups, n).astype(np.int32)
        times = {"A": [], "B": []}
        outs = {}
        for _ in range(args.rounds):
            for name, K in (("A", A), ("B", B)):
                table = np.zeros(groups * K.GROUP_FIELDS)
                start = time.perf_counter()
                status = K.grouped(y, i8, p, f32, w, f32 if w is not None else 0, codes, codes_type,
                                   groups, table, 0, n, False)
                times[name].append(time.perf_counter() - start)
                assert status == K.OK, status
                outs[name] = fields(table, groups, K.GROUP_FIELDS,
                                    args.layout_a if name == "A" else args.layout_b)
        for u, v in zip(outs["A"], outs["B"]):
            assert np.array_equal(u, v), "the two builds' sums differ"
        a, b = (float(np.median(times[k])) / n * 1e9 for k in "AB")
        print(f"{groups:7d} groups   A {a:6.2f}   B {b:6.2f}   B/A {b / a:5.2f}")


if __name__ == "__main__":
    main()
