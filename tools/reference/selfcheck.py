"""Self-checks of tools/reference/trm_reference.py (float64).

1. torch.autograd.gradcheck of one ACT training step (forward, stablemax + halt loss) with
   H_cycles = 1, w.r.t. every nn.Parameter, the puzzle-embedding local rows and the incoming
   carry (z_H, z_L), for the attention+RoPE, attention+learned-positions and mlp_t variants.
   Some rows are marked halted so the reset path is exercised.
2. With H_cycles > 1 the no-grad cycles make the model's gradient a truncated one by design,
   so gradcheck cannot apply to the whole step. Instead: the model's gradients must equal the
   gradients of (last cycle + heads + loss) started from the state the no-grad cycles reach.
3. fast-mode gradcheck on the fixture config (hidden 64) for the att and mlp_t variants.
4. Small unit checks: SignSGD duplicate summing, AdamATan2 first step, lr schedule.

Usage: /usr/bin/python3 tools/reference/selfcheck.py [--quick]
"""
import argparse
import os
import sys
import time

import torch
from torch.nn.utils.stateless import functional_call

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trm_reference import (TRMConfig, Carry, InnerCarry, build_model, rms_norm, compute_lr,  # noqa: E402
                           AdamATan2, SparseSignSGD, SparsePuzzleEmbedding)


def make_batch(cfg, B, gen):
    inputs = torch.randint(1, cfg.vocab_size, (B, cfg.seq_len), generator=gen, dtype=torch.int32)
    labels = torch.randint(1, cfg.vocab_size, (B, cfg.seq_len), generator=gen, dtype=torch.int32)
    labels[0, :2] = -100
    labels[-1, :] = -100 if B > 2 else labels[-1, :]
    ids = torch.randint(0, cfg.num_puzzle_identifiers, (B,), generator=gen, dtype=torch.int32)
    return {"inputs": inputs, "labels": labels, "puzzle_identifiers": ids}


def randomize(model, gen):
    inner = model.model.inner
    with torch.no_grad():
        inner.q_head.weight.copy_(torch.randn(inner.q_head.weight.shape, generator=gen, dtype=torch.float64) * 0.1)
        inner.q_head.bias.copy_(torch.randn(2, generator=gen, dtype=torch.float64) * 0.5)
        if hasattr(inner, "puzzle_emb"):
            inner.puzzle_emb.weights.copy_(torch.randn(inner.puzzle_emb.weights.shape, generator=gen,
                                                       dtype=torch.float64) * 0.5)


def step_fn(model, cfg, batch, halted, steps):
    """Returns f(*param_tensors, puzzle_local, z_H, z_L) -> loss/B for one ACT training step."""
    names = [n for n, _ in model.named_parameters()]
    buffers = dict(model.named_buffers())

    def f(*args):
        params = dict(zip(names, args[:len(names)]))
        pl, zH, zL = args[len(names):]
        carry = Carry(InnerCarry(zH, zL), steps.clone(), halted.clone(), {k: v.clone() for k, v in batch.items()})
        _, loss, _, _, _ = functional_call(model, {**params, **buffers}, (carry, batch),
                                           {"puzzle_override": pl})
        return loss / batch["inputs"].shape[0]
    return names, f


def initial_state(cfg, B, gen):
    S, D = cfg.full_len, cfg.hidden_size
    zH = rms_norm(torch.randn(B, S, D, generator=gen, dtype=torch.float64), 1e-5)
    zL = rms_norm(torch.randn(B, S, D, generator=gen, dtype=torch.float64), 1e-5)
    return zH, zL


def gradcheck_step(cfg, B=3, fast=False, seed=0, label=""):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    model = build_model(cfg, torch.float64)
    randomize(model, gen)
    model.train()
    batch = make_batch(cfg, B, gen)
    halted = torch.zeros(B, dtype=torch.bool)
    halted[1] = True
    steps = torch.ones(B, dtype=torch.int32)
    names, f = step_fn(model, cfg, batch, halted, steps)
    params = [p.detach().clone().requires_grad_(True) for p in model.parameters()]
    pl = model.model.inner.puzzle_emb.weights[batch["puzzle_identifiers"].long()].detach().clone().requires_grad_(True)
    zH, zL = initial_state(cfg, B, gen)
    zH.requires_grad_(True)
    zL.requires_grad_(True)
    n_el = sum(t.numel() for t in params) + pl.numel() + zH.numel() + zL.numel()
    t0 = time.time()
    ok = torch.autograd.gradcheck(f, (*params, pl, zH, zL), eps=1e-6, atol=1e-7, rtol=1e-5,
                                  fast_mode=fast, check_undefined_grad=False)
    print(f"gradcheck[{label}] fast={fast} elements={n_el}: {ok}  ({time.time() - t0:.1f}s)", flush=True)
    return ok


def truncation_check(cfg, B=3, seed=0, label=""):
    """H_cycles>1: model grads == grads of the last cycle started from the no-grad state."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    model = build_model(cfg, torch.float64)
    randomize(model, gen)
    model.train()
    batch = make_batch(cfg, B, gen)
    inner = model.model.inner
    carry = model.initial_carry(batch)  # all halted -> reset to H_init/L_init
    _, loss, _, _, _ = model(carry, batch)
    loss.backward()
    g_model = {n: p.grad.clone() for n, p in model.named_parameters()}
    g_pl = inner.puzzle_emb.local_weights.grad.clone()
    model.zero_grad(set_to_none=True)
    # manual: run the no-grad part, then one cycle with grad, heads, loss
    pl = inner.puzzle_emb.weights[batch["puzzle_identifiers"].long()].clone().requires_grad_(True)
    x = inner.input_embeddings(batch["inputs"], batch["puzzle_identifiers"], pl)
    zH = inner.H_init.view(1, 1, -1).expand(B, cfg.full_len, -1)
    zL = inner.L_init.view(1, 1, -1).expand(B, cfg.full_len, -1)
    cs = inner.cos_sin()
    with torch.no_grad():
        for _ in range(cfg.H_cycles - 1):
            zH, zL = inner.latent_cycle(zH, zL, x.detach(), cs)
    zH, zL = inner.latent_cycle(zH.clone(), zL.clone(), x, cs)
    logits, q_halt, _ = inner.heads(zH)
    from trm_reference import stablemax_cross_entropy
    import torch.nn.functional as F
    labels = batch["labels"]
    mask = labels != -100
    cnt = mask.sum(-1)
    seq_correct = (mask & (logits.argmax(-1) == labels)).sum(-1) == cnt
    loss2 = (stablemax_cross_entropy(logits, labels) / cnt.clamp_min(1).unsqueeze(-1)).sum() + \
        0.5 * F.binary_cross_entropy_with_logits(q_halt, seq_correct.double(), reduction="sum")
    loss2.backward()
    assert torch.allclose(loss.detach(), loss2.detach(), rtol=0, atol=1e-12), (loss, loss2)
    worst = 0.0
    for n, p in model.named_parameters():
        d = (p.grad - g_model[n]).abs().max().item()
        worst = max(worst, d)
    worst = max(worst, (pl.grad - g_pl).abs().max().item())
    ok = worst < 1e-12
    print(f"truncation[{label}] H_cycles={cfg.H_cycles}: max |dgrad| = {worst:.3e}: {ok}", flush=True)
    return ok


def unit_checks():
    ok = True
    # SignSGD: duplicates summed before sign; only rows in batch decayed
    emb = SparsePuzzleEmbedding(4, 3)
    with torch.no_grad():
        emb.weights.copy_(torch.arange(12, dtype=torch.float32).view(4, 3) + 1)
    emb.train()
    out = emb(torch.tensor([1, 2, 1], dtype=torch.int32), torch.float32)
    g = torch.tensor([[1.0, -1.0, 0.5], [2.0, 0.0, -3.0], [-2.0, -1.0, -1.0]])
    (out * g).sum().backward()
    SparseSignSGD(emb, weight_decay=0.5).step(0.1)
    exp = torch.arange(12, dtype=torch.float32).view(4, 3) + 1
    exp[1] = exp[1] * (1 - 0.05) - 0.1 * torch.sign(g[0] + g[2])
    exp[2] = exp[2] * (1 - 0.05) - 0.1 * torch.sign(g[1])
    ok &= torch.allclose(emb.weights, exp)
    # AdamATan2 first step: p*(1-lr wd) - lr*atan2(0.1 g, sqrt(0.05 g^2)/sqrt(0.05)) / 0.1
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.0]))
    p.grad = torch.tensor([0.3, -0.2, 0.0])
    AdamATan2([p], betas=(0.9, 0.95), weight_decay=0.1).step(1e-3)
    g0 = torch.tensor([0.3, -0.2, 0.0])
    e = torch.tensor([1.0, -2.0, 0.0]) * (1 - 1e-4) - 1e-3 / 0.1 * torch.atan2(0.1 * g0, (0.05 * g0 * g0).sqrt() / 0.05 ** 0.5)
    ok &= torch.allclose(p.detach(), e, atol=1e-7)
    # lr schedule: step starts at 1, = base at step == warmup, constant after (min_ratio 1)
    ok &= compute_lr(1e-3, 1, 2) == 5e-4 and compute_lr(1e-3, 2, 2) == 1e-3 and compute_lr(1e-3, 7, 2) == 1e-3
    print(f"unit checks: {ok}", flush=True)
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the slow full-mode gradchecks")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    micro = dict(hidden_size=16, num_heads=2, expansion=4, L_layers=2, H_cycles=1, L_cycles=2,
                 seq_len=6, vocab_size=5, puzzle_emb_ndim=16, puzzle_emb_len=2,
                 num_puzzle_identifiers=3, rms_norm_eps=1e-5, rope_theta=10000.0,
                 halt_max_steps=3, halt_exploration_prob=0.0)
    fixture = dict(hidden_size=64, num_heads=4, expansion=4, L_layers=2, H_cycles=2, L_cycles=2,
                   seq_len=16, vocab_size=6, puzzle_emb_ndim=64, puzzle_emb_len=4,
                   num_puzzle_identifiers=5, rms_norm_eps=1e-5, rope_theta=10000.0,
                   halt_max_steps=3, halt_exploration_prob=0.0)
    results = [unit_checks()]
    variants = [("att-rope", dict(pos_encodings="rope", mlp_t=False)),
                ("att-learned", dict(pos_encodings="learned", mlp_t=False)),
                ("mlp_t", dict(pos_encodings="none", mlp_t=True))]
    for label, v in variants:
        if not args.quick:
            results.append(gradcheck_step(TRMConfig(**{**micro, **v}), label="micro " + label))
        results.append(gradcheck_step(TRMConfig(**{**fixture, **v, "H_cycles": 1}), fast=True,
                                      label="fixture-size T=1 " + label))
        results.append(truncation_check(TRMConfig(**{**fixture, **v}), label=label))
    print("ALL OK" if all(results) else "FAILED")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
