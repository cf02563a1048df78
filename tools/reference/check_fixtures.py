"""Replay the committed parity fixtures with the reference model and report the differences.

  /usr/bin/python3 tools/reference/check_fixtures.py [--dtype fp32|fp64] [files...]

fp32 replay should reproduce the fixture exactly (same code, single thread); fp64 replay gives
an idea of the fp32 rounding noise a C++ implementation will see (use it to size tolerances).
"""
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trm_reference import (TRMConfig, TrainHParams, Trainer, build_model, load_safetensors,  # noqa: E402
                           reduce_train_metrics)
from hrm_reference import HRMConfig, build_hrm_model  # noqa: E402


def replay(path, dtype):
    tensors, meta = load_safetensors(path)
    cfg_json = json.loads(meta["config"])
    hrm = cfg_json.get("H_layers", 0) > 0
    cfg = HRMConfig(**cfg_json) if hrm else TRMConfig(**cfg_json)
    hp = TrainHParams(**json.loads(meta["train"]))
    model = build_hrm_model(cfg, dtype) if hrm else build_model(cfg, dtype)
    sd = {k: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict({k: v.to(dtype) for k, v in sd.items()}, strict=True)
    batch = {k.split(".", 1)[1]: tensors[k] for k in ("batch.inputs", "batch.labels", "batch.puzzle_identifiers")}
    got = {}
    model.eval()
    with torch.no_grad():
        carry = model.initial_carry(batch)
        for k in range(1, cfg.halt_max_steps + 1):
            carry, out = model.model(carry, batch)
            got[f"eval.logits.{k}"] = out["logits"]
            got[f"eval.q_halt.{k}"] = out["q_halt_logits"]
            got[f"eval.q_continue.{k}"] = out["q_continue_logits"]
    tr = Trainer(model, hp, use_ema=hp.ema_rate > 0)
    t_iters = max(int(k.split(".")[1]) for k in tensors if k.startswith("train."))
    for t in range(1, t_iters + 1):
        r = tr.train_batch(batch, keep_grads=(t == 1))
        red = reduce_train_metrics(r["metrics"], hp.global_batch_size)
        got[f"train.{t}.loss"] = r["loss"] / hp.global_batch_size
        got[f"train.{t}.halted"] = r["carry"].halted.to(torch.int32)
        got[f"train.{t}.steps"] = r["carry"].steps
        got[f"train.{t}.metrics"] = torch.tensor([red["accuracy"], red["exact_accuracy"],
                                                  red["q_halt_accuracy"], red["steps"]], dtype=torch.float64)
        got[f"train.{t}.logits"] = r["outputs"]["logits"].detach()
        if t == 1:
            for n, g in r["grads"].items():
                got[f"grad.{n}"] = g
    for n, p in model.named_parameters():
        got[f"step3.{n}"] = p.detach()
    got["step3.model.inner.puzzle_emb.weights"] = model.model.inner.puzzle_emb.weights
    if tr.ema is not None:
        for n, s in tr.ema.shadow.items():
            got[f"ema3.{n}"] = s
    groups = {}
    for k, v in got.items():
        ref = tensors[k].to(torch.float64)
        v = v.detach().to(torch.float64)
        err = (v - ref).abs().max().item()
        rel = err / max(ref.abs().max().item(), 1e-30)
        g = k.split(".")[0] + ("." + k.split(".")[2] if k.startswith("train.") else "")
        e0, r0, name = groups.get(g, (0.0, 0.0, ""))
        if rel >= r0:
            groups[g] = (max(e0, err), rel, k)
        else:
            groups[g] = (max(e0, err), r0, name)
    print(f"{path} replay in {dtype}:")
    for g, (e, r, name) in sorted(groups.items()):
        print(f"  {g:16s} max abs {e:.3e}  worst rel-to-max {r:.3e} ({name})")
    return groups


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*")
    ap.add_argument("--dtype", choices=["fp32", "fp64"], default="fp64")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    files = args.files or [os.path.join(root, "tests", "fixtures", f"parity_{v}.safetensors") for v in ("att", "mlp", "rope2d", "hrm")]
    for f in files:
        replay(f, torch.float64 if args.dtype == "fp64" else torch.float32)


if __name__ == "__main__":
    main()
