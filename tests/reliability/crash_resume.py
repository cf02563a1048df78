#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Crash safety of `etrm train` (issue #32), one case per ctest test:

kill   A reference run trains STEPS steps uninterrupted. Each trial trains the same run with a
       checkpoint every step and SIGKILLs it at a random moment (one trial at the moment a
       checkpoint's temporary file appears, i.e. during the write), checks that the checkpoint
       loads and lost at most one interval (its step >= the last logged step - 1), and resumes,
       killing the resumed process again until a run finishes. The final checkpoint's tensors
       (parameters, Adam moments, EMA, ACT carry) must equal the reference's bit for bit.
full   A file-size limit below the checkpoint's size (ulimit -f): `etrm resume` must fail with
       one line naming the checkpoint and the cause, exit 1, and leave the previous checkpoint
       byte for byte as it was, with no temporary file behind.
nan    A learning rate of 1e15 makes the weights overflow: training must stop with exit 3 and one
       line naming the step, and the checkpoint written before must hold finite values only.
skip   A checkpoint with one weight set to Inf, resumed with --max-skipped-steps 2: two steps are
       skipped (one stderr line each, `skipped_steps` in metrics.jsonl), the third in a row stops
       the run with exit 3, and the checkpoint is the one it started from, byte for byte.

usage: crash_resume.py CASE ETRM_BINARY WORK_DIR [--trials N] [--seed S]"""
import argparse
import json
import math
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

STEPS = 12
# A tiny few-shot ETRM: ~0.1 s per step on two cores.
TINY = ["--hidden-size", "32", "--heads", "2", "--expansion", "2", "--layers", "1", "--H-cycles", "1",
        "--L-cycles", "1", "--halt-max-steps", "2", "--puzzle-emb-len", "4", "--grid-side", "8", "--max-demos", "2",
        "--encoder-layers", "1", "--latent-layers", "1", "--batch-size", "8", "--threads", "2", "--no-progress",
        "--warmup-steps", "2", "--seed", "7", "--eval-batches", "0", "--log-every", "1", "--checkpoint-every", "1"]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def read_checkpoint(path):
    """(tensor name -> raw bytes, metadata), validating the layout as etrm's reader does."""
    return read_checkpoint_bytes(Path(path).read_bytes(), str(path))


def read_checkpoint_bytes(raw, path="checkpoint"):
    if len(raw) < 8:
        raise ValueError(f"{path}: {len(raw)} bytes")
    n = struct.unpack("<Q", raw[:8])[0]
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header of {n} bytes is truncated")
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    tensors = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        if b > len(data):
            raise ValueError(f"{path}: tensor {name} ends at {b}, the data has {len(data)} bytes")
        tensors[name] = data[a:b]
    return tensors, header.get("__metadata__", {})


def checkpoint_step(path):
    _, meta = read_checkpoint(path)
    return json.loads(meta["train_state"])["step"]


def last_logged_step(out):
    steps = [0]
    metrics = out / "metrics.jsonl"
    if metrics.exists():
        for line in metrics.read_text().splitlines():
            try:
                steps.append(json.loads(line)["step"])
            except (ValueError, KeyError):
                pass  # a line cut by the kill
    return max(steps)


def start(etrm, out, resume):
    cmd = [etrm, "resume", "--out", str(out), "--steps", str(STEPS), "--threads", "2", "--no-progress"] if resume else \
          [etrm, "train", "--task", "fewshot", "--model", "etrm", "--steps", str(STEPS), "--out", str(out), *TINY]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_during_write(proc, out, timeout=60):
    """SIGKILL as soon as a checkpoint temporary exists beside an earlier checkpoint; False if the
    run ended first."""
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < timeout:
        if (out / "checkpoint.safetensors").exists() and \
                any(p.name.startswith("checkpoint.safetensors.tmp.") for p in out.iterdir()):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
    return False


def case_kill(etrm, work, trials, rng):
    ref = work / "reference"
    r = subprocess.run([etrm, "train", "--task", "fewshot", "--model", "etrm", "--steps", str(STEPS), "--out", str(ref),
                        *TINY], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"reference run: exit {r.returncode}: {r.stderr}")
    ref_tensors, _ = read_checkpoint(ref / "checkpoint.safetensors")
    t0 = time.monotonic()
    subprocess.run([etrm, "train", "--task", "fewshot", "--model", "etrm", "--steps", str(STEPS), "--out",
                    str(work / "timing"), *TINY], capture_output=True, check=True)
    run_seconds = time.monotonic() - t0
    print(f"reference: {STEPS} steps in {run_seconds:.1f} s")

    kills_total = 0
    for trial in range(trials):
        out = work / f"trial{trial}"
        kills, resume = 0, False
        while True:
            proc = start(etrm, out, resume)
            if trial == 0 and kills == 0:
                killed = kill_during_write(proc, out)
            else:
                try:
                    proc.wait(timeout=rng.uniform(0.05, run_seconds))
                    killed = False
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    killed = True
            if not killed:
                if proc.returncode != 0:
                    fail(f"trial {trial}: exit {proc.returncode}: {proc.stderr.read()}")
                break
            kills += 1
            ckpt = out / "checkpoint.safetensors"
            if not ckpt.exists():  # killed before the first checkpoint: start over
                logged = last_logged_step(out)
                if logged > 1:
                    fail(f"trial {trial}: no checkpoint after {logged} logged steps")
                shutil.rmtree(out)
                resume = False
                continue
            try:
                step = checkpoint_step(ckpt)
            except (ValueError, KeyError) as e:
                fail(f"trial {trial}: the checkpoint does not load after SIGKILL: {e}")
            logged = last_logged_step(out)
            if step < logged - 1:
                fail(f"trial {trial}: checkpoint at step {step} but step {logged} was logged: more than one interval lost")
            print(f"trial {trial}: killed{' during a checkpoint write' if trial == 0 and kills == 1 else ''} "
                  f"(logged step {logged}, checkpoint step {step})")
            resume = True
        tensors, _ = read_checkpoint(out / "checkpoint.safetensors")
        if tensors.keys() != ref_tensors.keys():
            fail(f"trial {trial}: other tensors than the reference's")
        differ = [n for n in sorted(tensors) if tensors[n] != ref_tensors[n]]
        if differ:
            fail(f"trial {trial} ({kills} kills): {len(differ)} tensors differ from the uninterrupted run, e.g. {differ[:3]}")
        leftovers = [p.name for p in out.iterdir() if ".tmp." in p.name]
        if leftovers:
            fail(f"trial {trial}: temporaries of killed runs still there after the last run: {leftovers}")
        print(f"trial {trial}: {kills} kills, final tensors bit-identical ({len(tensors)} tensors)")
        kills_total += kills
    if kills_total < trials:
        fail(f"only {kills_total} kills in {trials} trials: the kill times missed the runs")


def two_step_run(etrm, work):
    """Trains the tiny run for 2 steps; returns its directory and checkpoint."""
    out = work / "run"
    r = subprocess.run([etrm, "train", "--task", "fewshot", "--model", "etrm", "--out", str(out), *TINY, "--steps", "2"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"first run: {r.stderr}")
    return out, out / "checkpoint.safetensors"


def case_full(etrm, work):
    out, ckpt = two_step_run(etrm, work)
    before = ckpt.read_bytes()
    limit = len(before) // 2  # the next checkpoint cannot fit; metrics lines and run.json can

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = subprocess.run([etrm, "resume", "--out", str(out), "--steps", "4", "--threads", "2", "--no-progress"],
                       capture_output=True, text=True, preexec_fn=limit_file_size)
    print(f"exit {r.returncode}: {r.stderr.strip()}")
    if r.returncode != 1:
        fail(f"exit {r.returncode} with a file-size limit, expected 1")
    lines = r.stderr.strip().splitlines()
    if len(lines) != 1 or "checkpoint.safetensors" not in lines[0] or "File too large" not in lines[0]:
        fail(f"expected one line naming the checkpoint and 'File too large', got: {r.stderr!r}")
    if ckpt.read_bytes() != before:
        fail("the previous checkpoint changed")
    if checkpoint_step(ckpt) != 2:
        fail("the previous checkpoint does not load at step 2")
    leftovers = [p.name for p in out.iterdir() if ".tmp." in p.name]
    if leftovers:
        fail(f"temporary files left: {leftovers}")


def case_nan(etrm, work):
    out = work / "run"
    r = subprocess.run([etrm, "train", "--task", "fewshot", "--model", "etrm", "--out", str(out), *TINY, "--steps", "20",
                        "--lr", "1e15", "--warmup-steps", "0"], capture_output=True, text=True)
    print(f"exit {r.returncode}: {r.stderr.strip()}")
    if r.returncode != 3:
        fail(f"exit {r.returncode}, expected 3")
    lines = r.stderr.strip().splitlines()
    if len(lines) != 1 or not lines[0].startswith("etrm: error: training diverged at step "):
        fail(f"expected one line 'training diverged at step N', got {r.stderr!r}")
    step = int(lines[0].split("step ")[1].split(":")[0])
    ckpt = out / "checkpoint.safetensors"
    if step > 1:
        tensors, meta = read_checkpoint(ckpt)
        if json.loads(meta["train_state"])["step"] != step - 1:
            fail(f"the checkpoint is not the one of step {step - 1}")
        raw = Path(ckpt).read_bytes()
        header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
        for name, e in header.items():
            if name != "__metadata__" and e["dtype"] == "F32":
                values = struct.unpack(f"<{len(tensors[name]) // 4}f", tensors[name])
                if not all(math.isfinite(v) for v in values):
                    fail(f"tensor {name} of the checkpoint holds a NaN or Inf")
        print(f"diverged at step {step}; the checkpoint of step {step - 1} holds finite values only")
    elif ckpt.exists():
        fail("a checkpoint was written although the first step diverged")


def case_skip(etrm, work):
    out, ckpt = two_step_run(etrm, work)
    raw = bytearray(ckpt.read_bytes())
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    # The first value of the output head's training weights (train.params.*; not the EMA copy).
    name = next(k for k in header if k.startswith("train.params.") and k.endswith("lm_head.weight"))
    at = 8 + n + header[name]["data_offsets"][0]
    raw[at:at + 4] = struct.pack("<f", math.inf)
    ckpt.write_bytes(bytes(raw))
    poisoned = ckpt.read_bytes()
    r = subprocess.run([etrm, "resume", "--out", str(out), "--steps", "6", "--threads", "2", "--no-progress",
                        "--max-skipped-steps", "2"], capture_output=True, text=True)
    print(f"{name} set to Inf; exit {r.returncode}: {r.stderr.strip()}")
    lines = r.stderr.strip().splitlines()
    if r.returncode != 3:
        fail(f"exit {r.returncode}, expected 3")
    if len(lines) != 3 or not all(l.startswith(f"etrm: step {s} skipped: ") for l, s in zip(lines, (3, 4))):
        fail(f"expected 'step 3 skipped', 'step 4 skipped' and the stop, got {r.stderr!r}")
    if not lines[2].startswith("etrm: error: training diverged at step 5: no update was made"):
        fail(f"the third step in a row did not stop the run: {lines[2]!r}")
    logged = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    if sum(l.get("skipped_steps", 0) for l in logged if l.get("type") == "train") != 2:
        fail("metrics.jsonl does not count the two skipped steps")
    # --checkpoint-every 1: the skipped steps 3 and 4 were checkpointed, step 5 was not; no weight,
    # Adam moment or EMA value moved.
    before, _ = read_checkpoint_bytes(poisoned)
    after, meta = read_checkpoint(ckpt)
    if json.loads(meta["train_state"])["step"] != 4:
        fail(f"the checkpoint is of step {json.loads(meta['train_state'])['step']}, expected 4")
    moved = [k for k in before if not k.startswith("train.carry.") and before[k] != after[k]]
    if moved:
        fail(f"skipped steps changed {len(moved)} tensors, e.g. {moved[:3]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["kill", "full", "nan", "skip"])
    ap.add_argument("etrm")
    ap.add_argument("work", type=Path)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    print(f"seed {seed} (rerun with --seed {seed})")
    shutil.rmtree(a.work, ignore_errors=True)
    a.work.mkdir(parents=True)
    if a.case == "kill":
        case_kill(a.etrm, a.work, a.trials, random.Random(seed))
    elif a.case == "full":
        case_full(a.etrm, a.work)
    elif a.case == "nan":
        case_nan(a.etrm, a.work)
    else:
        case_skip(a.etrm, a.work)
    print("ok")


if __name__ == "__main__":
    main()
