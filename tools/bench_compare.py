#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Times the same full TRM training steps in etrm (CPU backend) and in the PyTorch reference in
one run and prints samples/s and the ratio, each side at its best thread setting.

  tools/bench_compare.py [--build build/release] [--cases sudoku_mlp:16,small_att:8] [--steps 3]
                         [--gemm eigen,onednn] [--threads 1,2]

etrm: build/release/benchmarks/etrm_bench, benchmarks train_step/<preset>/<batch> (fp32) and
train_step_bf16/<preset>/<batch> (bf16 GEMMs, fp32 master weights), with ETRM_BENCH_THREADS in
--threads (default 1,2), once per CPU GEMM provider of --gemm (ETRM_BENCH_GEMM; a build without
oneDNN has only eigen). PyTorch (Debian python3-torch, /usr/bin/python3):
tools/reference/bench_torch.py with torch threads x OpenBLAS threads, each in --threads, fp32 and
bf16 autocast, both with the EMA update (as etrm's step does). Each ratio compares the same
precision. The CPU model and its vector ISA (from lscpu) head the table.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def etrm_rate(build, preset, batch, threads, dtype, gemm):
    env = dict(os.environ, ETRM_BENCH_THREADS=str(threads), ETRM_BENCH_GEMM=gemm)
    family = "train_step" if dtype == "fp32" else "train_step_bf16"
    out = subprocess.run([str(build / "benchmarks" / "etrm_bench"), f"--benchmark_filter=^{family}/{preset}/{batch}/",
                          "--benchmark_format=json"], env=env, check=True, capture_output=True, text=True).stdout
    runs = json.loads(out)["benchmarks"]
    return max(r["items_per_second"] for r in runs)


def torch_rate(preset, batch, threads, blas, dtype, steps):
    cmd = ["/usr/bin/python3", str(ROOT / "tools" / "reference" / "bench_torch.py"), "--preset", preset, "--batch",
           str(batch), "--steps", str(steps), "--threads", str(threads), "--blas-threads", str(blas), "--dtype", dtype,
           "--ema", "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return json.loads(out)["samples_per_second"]


def cpu_description():
    info = subprocess.run(["lscpu"], check=True, capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs, {' '.join(isa)}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build" / "release"))
    ap.add_argument("--cases", default="sudoku_mlp:16,small_att:8")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--gemm", default="eigen,onednn", help="etrm's CPU GEMM providers to time")
    ap.add_argument("--threads", default="1,2", help="thread settings tried on each side (and for OpenBLAS)")
    args = ap.parse_args()
    build = pathlib.Path(args.build)
    threads = [int(t) for t in args.threads.split(",")]
    print(f"CPU: {cpu_description()}")
    print(f"{'case':<16} {'dtype':<5} {'gemm':<6} {'etrm':>8} {'torch':>8} {'ratio':>6}   best settings (samples/s)")
    for case in args.cases.split(","):
        preset, batch = case.split(":")
        for dtype in ("fp32", "bf16"):
            tr = {(t, b): torch_rate(preset, batch, t, b, dtype, args.steps) for t in threads for b in threads}
            tk = max(tr, key=tr.get)
            for gemm in args.gemm.split(","):
                e = {t: etrm_rate(build, preset, batch, t, dtype, gemm) for t in threads}
                et = max(e, key=e.get)
                print(f"{preset + '/' + batch:<16} {dtype:<5} {gemm:<6} {e[et]:>8.2f} {tr[tk]:>8.2f} "
                      f"{e[et] / tr[tk]:>6.2f}   etrm threads={et}; torch threads={tk[0]} blas={tk[1]}")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
