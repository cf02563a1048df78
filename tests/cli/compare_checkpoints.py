#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Compares the F32 tensors two checkpoints share: every tensor whose name starts with one of
PREFIXES must satisfy max|a - b| <= TOL * RMS(b) (b: the second file). Prints the worst tensor.

    compare_checkpoints.py A.safetensors B.safetensors TOL PREFIX [PREFIX ...]
"""
import json
import struct
import sys

import numpy as np


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype="<f4").astype(np.float64)
    return out


def main():
    a, b, tol, prefixes = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
    names = sorted(n for n in b if any(n.startswith(p) for p in prefixes))
    if not names:
        sys.exit(f"no tensor of {prefixes} in {sys.argv[2]}")
    worst, worst_name, bad = 0.0, "", []
    for n in names:
        if n not in a or a[n].shape != b[n].shape:
            sys.exit(f"{n}: missing or of another shape in {sys.argv[1]}")
        rms = float(np.sqrt(np.mean(b[n] ** 2)))
        diff = float(np.max(np.abs(a[n] - b[n]))) if b[n].size else 0.0
        rel = diff / rms if rms > 0 else (0.0 if diff == 0 else float("inf"))
        if rel > worst:
            worst, worst_name = rel, n
        if rel > tol:
            bad.append(f"{n}: max|diff| {diff:.3g} = {rel:.3g} x RMS")
    print(f"{len(names)} tensors; worst max|diff|/RMS {worst:.3g} ({worst_name})")
    if bad:
        sys.exit("differ beyond " + str(tol) + ":\n" + "\n".join(bad))


if __name__ == "__main__":
    main()
