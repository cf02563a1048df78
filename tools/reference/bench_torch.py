"""Time one full TRM training step of the PyTorch reference (CPU).

A step = ACT step forward (T-1 no-grad cycles + 1 grad cycle, heads), stablemax + halt loss,
backward, AdamATan2 step on the parameters and SignSGD on the puzzle rows (EMA only with --ema).
This is what pretrain.py's train_batch does per optimizer step.

  /usr/bin/python3 tools/reference/bench_torch.py --preset sudoku_mlp --batch 16 --steps 5 \
      --threads 1 [--blas-threads 1] [--dtype fp32|bf16] [--json] [--check-params]

--threads sets torch.set_num_threads (intra-op / OpenMP). Debian's torch calls the system
OpenBLAS (pthread build) for matmuls, whose thread count is OPENBLAS_NUM_THREADS
(--blas-threads sets it before torch is imported).
"""
import argparse
import json
import os
import sys
import time

PRESETS = {
    # name: (TRMConfig overrides, expected parameter count or None)
    "sudoku_mlp": (dict(hidden_size=512, num_heads=8, expansion=4, L_layers=2, H_cycles=3, L_cycles=6,
                        seq_len=81, vocab_size=11, puzzle_emb_ndim=512, puzzle_emb_len=16,
                        num_puzzle_identifiers=1, pos_encodings="none", mlp_t=True), 5_028_866),
    "sudoku_att": (dict(hidden_size=512, num_heads=8, expansion=4, L_layers=2, H_cycles=3, L_cycles=6,
                        seq_len=81, vocab_size=11, puzzle_emb_ndim=512, puzzle_emb_len=16,
                        num_puzzle_identifiers=1, pos_encodings="rope", mlp_t=False), 6_828_034),
    "maze": (dict(hidden_size=512, num_heads=8, expansion=4, L_layers=2, H_cycles=3, L_cycles=4,
                  seq_len=900, vocab_size=6, puzzle_emb_ndim=512, puzzle_emb_len=16,
                  num_puzzle_identifiers=1, pos_encodings="rope", mlp_t=False), 6_822_914),
    # ARC has ~1M puzzle ids; the table is not a parameter and SignSGD touches only batch rows,
    # so a 1024-row table is used here.
    "arc": (dict(hidden_size=512, num_heads=8, expansion=4, L_layers=2, H_cycles=3, L_cycles=4,
                 seq_len=900, vocab_size=12, puzzle_emb_ndim=512, puzzle_emb_len=16,
                 num_puzzle_identifiers=1024, pos_encodings="rope", mlp_t=False), 6_829_058),
    "small_att": (dict(hidden_size=128, num_heads=4, expansion=4, L_layers=2, H_cycles=3, L_cycles=4,
                       seq_len=100, vocab_size=12, puzzle_emb_ndim=128, puzzle_emb_len=16,
                       num_puzzle_identifiers=16, pos_encodings="rope", mlp_t=False), None),
}


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="sudoku_mlp")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--blas-threads", type=int, default=None, help="OPENBLAS_NUM_THREADS (set before import)")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--ema", action="store_true", help="also update the EMA each step")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--check-params", action="store_true",
                    help="assert the parameter count of every preset (no timing unless --preset given too)")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def main():
    args = parse()
    if args.blas_threads is not None:
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from trm_reference import TRMConfig, TrainHParams, Trainer, build_model, count_params

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    counts = {}
    for name, (over, expected) in PRESETS.items():
        m = build_model(TRMConfig(**over))
        counts[name] = count_params(m)
        if not args.json:
            print(f"params[{name}] = {counts[name]:,} (excluding the puzzle table)")
        if args.check_params and expected is not None:
            assert counts[name] == expected, (name, counts[name], expected)
        del m
    if args.check_params and not args.json:
        print("parameter counts OK")

    over, _ = PRESETS[args.preset]
    cfg = TRMConfig(**over)
    model = build_model(cfg, torch.float32)
    hp = TrainHParams(lr=1e-4, lr_warmup_steps=2000, weight_decay=0.1, global_batch_size=args.batch)
    trainer = Trainer(model, hp, use_ema=args.ema)
    gen = torch.Generator().manual_seed(args.seed)
    B = args.batch
    batch = {
        "inputs": torch.randint(1, cfg.vocab_size, (B, cfg.seq_len), generator=gen, dtype=torch.int32),
        "labels": torch.randint(1, cfg.vocab_size, (B, cfg.seq_len), generator=gen, dtype=torch.int32),
        "puzzle_identifiers": torch.randint(0, cfg.num_puzzle_identifiers, (B,), generator=gen,
                                            dtype=torch.int32),
    }
    bf16 = args.dtype == "bf16"
    for _ in range(args.warmup):
        trainer.train_batch(batch, autocast_bf16=bf16)
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        trainer.train_batch(batch, autocast_bf16=bf16)
        times.append(time.perf_counter() - t0)
    ms = 1000.0 * sum(times) / len(times)
    res = {
        "preset": args.preset, "batch": B, "dtype": args.dtype, "threads": args.threads,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "samples_per_second": B / (ms / 1000.0), "ms_per_step": ms,
        "ms_per_step_min": 1000.0 * min(times), "steps": args.steps, "params": counts[args.preset],
        "torch": torch.__version__,
    }
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{args.preset} B={B} {args.dtype} threads={args.threads} blas={res['blas_threads']}: "
              f"{ms:.1f} ms/step (min {res['ms_per_step_min']:.1f}), {res['samples_per_second']:.2f} samples/s")


if __name__ == "__main__":
    main()
