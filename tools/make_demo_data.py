"""Regenerate src/logloss/data/demo.csv, the sample file that `logloss demo` scores.

The same 400 labels (two segments) predicted by a good model and a bad, overconfident one.
Run from the repository root: python tools/make_demo_data.py
"""

import csv
from pathlib import Path

import numpy as np

rng = np.random.default_rng(20240605)
n = 400
segment = np.where(rng.random(n) < 0.5, "mobile", "desktop")
true_p = np.where(segment == "mobile", 0.15, 0.35) * rng.uniform(0.2, 2.0, n)
label = (rng.random(n) < true_p).astype(int)
good = np.clip(true_p * rng.uniform(0.85, 1.15, n), 0.001, 0.999)
bad = np.clip(np.where(rng.random(n) < 0.5, true_p * 2.5, true_p / 3), 0.0005, 0.9995)

out = Path(__file__).resolve().parents[1] / "src" / "logloss" / "data" / "demo.csv"
with out.open("w", newline="") as handle:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["model", "segment", "label", "pred"])
    for model, pred in (("good", good), ("bad", bad)):
        for s, y, p in zip(segment, label, pred):
            writer.writerow([model, s, y, f"{p:.4f}"])
print(f"wrote {out}")
