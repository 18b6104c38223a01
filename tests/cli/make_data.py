#!/usr/bin/env python3
"""Writes train.csv and test.csv: 4 features in [0, 10], 3 well-separated classes, label last.
Run by hand (python3 make_data.py); the tests only read the committed files. Standard library only."""
import random

CENTERS = [(2.0, 2.0, 8.0, 8.0), (8.0, 2.0, 2.0, 8.0), (5.0, 8.0, 5.0, 2.0)]


def rows(n, rng):
    out = []
    for i in range(n):
        label = i % 3
        x = [min(10.0, max(0.0, rng.gauss(c, 0.8))) for c in CENTERS[label]]
        out.append(",".join(f"{v:.2f}" for v in x) + f",{label}\n")
    rng.shuffle(out)
    return out


rng = random.Random(7)
for name, n in (("train.csv", 240), ("test.csv", 60)):
    with open(name, "w") as f:
        f.writelines(rows(n, rng))
