#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`etrm infer` against the PyTorch parity fixture: the fixture's batch goes in, the logits and
halting logits of every supervision step must match the fixture's eval.* tensors (1e-4 relative
to each tensor's RMS; 3e-4 from step 3 on, as in tests/unit/parity_torch_test.cpp).
usage: infer_parity.py ETRM_BINARY FIXTURE.safetensors WORK_DIR"""
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "BF16": None, "F16": np.float16}


def load(path):
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
    return out, header.get("__metadata__", {})


def save(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": {np.dtype(np.int32): "I32", np.dtype(np.float32): "F32"}[arr.dtype],
                        "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    etrm, fixture, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    work.mkdir(parents=True, exist_ok=True)
    t, md = load(fixture)
    cfg = json.loads(md["config"])
    save(work / "in.safetensors", {"inputs": t["batch.inputs"].astype(np.int32),
                                   "puzzle_identifiers": t["batch.puzzle_identifiers"].astype(np.int32)})
    out = work / "out.safetensors"
    r = subprocess.run([etrm, "infer", "--checkpoint", fixture, "--input", str(work / "in.safetensors"),
                        "--output", str(out), "--threads", "2"], capture_output=True, text=True)
    print(r.stdout, r.stderr)
    if r.returncode != 0:
        sys.exit("infer failed")
    o, _ = load(out)
    N, B = cfg["halt_max_steps"], t["batch.inputs"].shape[0]
    assert o["logits"].shape == (N, B, cfg["seq_len"], cfg["vocab_size"]), o["logits"].shape
    worst = 0.0
    for k in range(1, N + 1):
        tol = 1e-4 if k <= 2 else 3e-4
        for name, got in (("logits", o["logits"][k - 1]), ("q_halt", o["q_halt"][k - 1]),
                          ("q_continue", o["q_continue"][k - 1])):
            want = t[f"eval.{name}.{k}"].astype(np.float64).reshape(got.shape)
            rms = max(1e-12, float(np.sqrt(np.mean(want ** 2))))
            err = float(np.max(np.abs(got - want))) / rms
            worst = max(worst, err)
            print(f"step {k} {name}: max error / rms = {err:.2e} (tolerance {tol:.0e})")
            if not err <= tol:
                sys.exit(f"FAIL: {name} step {k}")
    print(f"OK, worst {worst:.2e}")


main()
