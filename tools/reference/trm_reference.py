"""Independent PyTorch reference of the Tiny Recursive Model (TRM).

Written from a description of the computation (now docs/trm-computation.md), not copied from the
official repository.
It computes what the official SamsungSAILMontreal/TinyRecursiveModels code computes, except
that the forward dtype is a parameter (fp32 for parity, fp64 for gradcheck) instead of bf16.

Module and buffer names reproduce the official state_dict, e.g.
``model.inner.L_level.layers.0.self_attn.qkv_proj.weight`` when the top-level object is
:class:`ACTLossHead`.

Pieces:
  * model: :class:`TRMInner` (one supervision step), :class:`TRMACT` (carry + halting, and the
    Q-learning continue target when ``no_ACT_continue`` is False), :class:`ACTLossHead`
    (stablemax CE + halt BCE + continue BCE + metrics). HRM (hrm_reference.py) reuses all but
    the supervision step.
  * init: :func:`trunc_normal_init_` (JAX-style truncated normal)
  * training: :class:`AdamATan2`, :class:`SparseSignSGD`, :class:`EMA`, :func:`compute_lr`

Runs on torch 1.13 (Debian python3-torch); no other dependency.
"""
from __future__ import annotations

import dataclasses
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE_LABEL_ID = -100


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------
@dataclass
class TRMConfig:
    # Official field names (config/arch/trm.yaml + dataset metadata).
    hidden_size: int = 512
    num_heads: int = 8
    expansion: float = 4.0
    L_layers: int = 2
    H_cycles: int = 3
    L_cycles: int = 6
    seq_len: int = 81
    vocab_size: int = 11
    puzzle_emb_ndim: int = 512
    puzzle_emb_len: int = 16
    num_puzzle_identifiers: int = 1
    pos_encodings: str = "rope"  # rope | rope2d | learned | none
    mlp_t: bool = False
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    halt_max_steps: int = 16
    halt_exploration_prob: float = 0.1
    no_ACT_continue: bool = True

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def prefix_len(self) -> int:
        """P: number of prefix tokens (spec 1.2)."""
        if self.puzzle_emb_ndim <= 0:
            return 0
        if self.puzzle_emb_len == 0:
            return -(self.puzzle_emb_ndim // -self.hidden_size)  # ceil
        return self.puzzle_emb_len

    @property
    def full_len(self) -> int:
        """S = P + L."""
        return self.seq_len + self.prefix_len

    OFFICIAL_FIELDS = (
        "hidden_size", "num_heads", "expansion", "L_layers", "H_cycles", "L_cycles", "seq_len",
        "vocab_size", "puzzle_emb_ndim", "puzzle_emb_len", "num_puzzle_identifiers",
        "pos_encodings", "mlp_t", "rms_norm_eps", "rope_theta", "halt_max_steps",
        "halt_exploration_prob",
    )

    def to_json(self) -> str:
        d = {k: getattr(self, k) for k in self.OFFICIAL_FIELDS}
        return json.dumps(d, sort_keys=False, separators=(", ", ": "))


def find_multiple(a: int, b: int) -> int:
    return (-(a // -b)) * b


def swiglu_intermediate(hidden: int, expansion: float) -> int:
    # Python's round() (banker's rounding), as in the official code.
    return find_multiple(round(expansion * hidden * 2 / 3), 256)


# --------------------------------------------------------------------------------------------
# Init (spec 1.9)
# --------------------------------------------------------------------------------------------
def trunc_normal_init_(tensor: torch.Tensor, std: float = 1.0, lower: float = -2.0,
                       upper: float = 2.0) -> torch.Tensor:
    """JAX-style truncated normal whose empirical std equals ``std``."""
    with torch.no_grad():
        if std == 0:
            tensor.zero_()
            return tensor
        sqrt2 = math.sqrt(2)
        a = math.erf(lower / sqrt2)
        b = math.erf(upper / sqrt2)
        z = (b - a) / 2
        c = (2 * math.pi) ** -0.5
        pdf_u = c * math.exp(-0.5 * lower ** 2)
        pdf_l = c * math.exp(-0.5 * upper ** 2)
        comp_std = std / math.sqrt(1 - (upper * pdf_u - lower * pdf_l) / z - ((pdf_u - pdf_l) / z) ** 2)
        tensor.uniform_(a, b)
        tensor.erfinv_()
        tensor.mul_(sqrt2 * comp_std)
        tensor.clip_(lower * comp_std, upper * comp_std)
    return tensor


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------
def rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim, no weight. Computed in >= fp32, cast back."""
    in_dtype = x.dtype
    h = x.to(torch.float32) if in_dtype in (torch.bfloat16, torch.float16) else x
    var = h.square().mean(-1, keepdim=True)
    h = h * torch.rsqrt(var + eps)
    return h.to(in_dtype)


class CastedLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(
            trunc_normal_init_(torch.empty(out_features, in_features), std=1.0 / in_features ** 0.5))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) if not torch.is_autocast_cpu_enabled() else self.weight
        b = None
        if self.bias is not None:
            b = self.bias.to(x.dtype) if not torch.is_autocast_cpu_enabled() else self.bias
        return F.linear(x, w, b)


class CastedEmbedding(nn.Module):
    def __init__(self, num: int, dim: int, init_std: float):
        super().__init__()
        self.embedding_weight = nn.Parameter(trunc_normal_init_(torch.empty(num, dim), std=init_std))

    def forward(self, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return F.embedding(ids.to(torch.long), self.embedding_weight.to(dtype))


class SparsePuzzleEmbedding(nn.Module):
    """Puzzle-identifier table: a persistent buffer, trained by SignSGD (spec 1.2).

    In training mode the looked-up rows are copied (no grad) into a fresh leaf tensor
    ``local_weights`` [B, ndim] with requires_grad, whose ``.grad`` the sparse optimizer reads.
    """

    def __init__(self, num: int, dim: int, init_std: float = 0.0):
        super().__init__()
        self.register_buffer("weights", trunc_normal_init_(torch.empty(num, dim), std=init_std),
                             persistent=True)
        self.local_weights: Optional[torch.Tensor] = None
        self.local_ids: Optional[torch.Tensor] = None

    def forward(self, ids: torch.Tensor, dtype: torch.dtype,
                override: Optional[torch.Tensor] = None) -> torch.Tensor:
        if override is not None:  # used by gradcheck: caller supplies the local rows
            return override.to(dtype)
        if not self.training:
            return self.weights[ids.to(torch.long)].to(dtype)
        with torch.no_grad():
            lw = self.weights[ids.to(torch.long)].clone()
        lw.requires_grad_(True)
        self.local_weights = lw
        self.local_ids = ids.clone()
        return lw.to(dtype)


class RotaryEmbedding(nn.Module):
    def __init__(self, dim: int, max_positions: int, base: float):
        super().__init__()
        # Tables in fp32, exactly as official (inv_freq = 1/base^(arange(0,dim,2)/dim)).
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        t = torch.arange(max_positions, dtype=torch.float32)
        freqs = torch.outer(t, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos_cached", emb.cos(), persistent=False)
        self.register_buffer("sin_cached", emb.sin(), persistent=False)

    def forward(self) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.cos_cached, self.sin_cached


class GridRotaryEmbedding(nn.Module):
    """rope2d (not in the official code): the canvas of `side`² cells follows `prefix` unturned
    tokens; the first quarter of a head's dims (and its copy in the second half) turns by the
    cell's row, the second quarter by its column, both with frequencies base^(-j/(dim/4))."""

    def __init__(self, dim: int, prefix: int, side: int, base: float):
        super().__init__()
        quarter = dim // 4
        inv_freq = 1.0 / (base ** (torch.arange(quarter, dtype=torch.float64) / quarter))
        cell = torch.arange(side * side)
        rows, cols = (cell // side).double(), (cell % side).double()
        freqs = torch.cat((torch.outer(rows, inv_freq), torch.outer(cols, inv_freq)), dim=-1)
        freqs = torch.cat((torch.zeros(prefix, 2 * quarter, dtype=torch.float64), freqs), dim=0)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos_cached", emb.cos().float(), persistent=False)
        self.register_buffer("sin_cached", emb.sin().float(), persistent=False)

    def forward(self) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.cos_cached, self.sin_cached


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def apply_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    # q, k: [B, S, H, hd]; cos/sin: [S, hd] (fp32). Rotation in max(fp32, q.dtype).
    orig = q.dtype
    work = torch.float64 if orig == torch.float64 else torch.float32
    cos = cos.to(work).unsqueeze(-2)
    sin = sin.to(work).unsqueeze(-2)
    q = q.to(work)
    k = k.to(work)
    q2 = q * cos + rotate_half(q) * sin
    k2 = k * cos + rotate_half(k) * sin
    return q2.to(orig), k2.to(orig)


class Attention(nn.Module):
    def __init__(self, hidden_size: int, head_dim: int, num_heads: int):
        super().__init__()
        self.head_dim = head_dim
        self.num_heads = num_heads
        self.qkv_proj = CastedLinear(hidden_size, 3 * num_heads * head_dim, bias=False)
        self.o_proj = CastedLinear(num_heads * head_dim, hidden_size, bias=False)

    def forward(self, cos_sin, x: torch.Tensor) -> torch.Tensor:
        B, S, _ = x.shape
        H, hd = self.num_heads, self.head_dim
        qkv = self.qkv_proj(x).view(B, S, 3 * H, hd)
        q, k, v = qkv[:, :, :H], qkv[:, :, H:2 * H], qkv[:, :, 2 * H:]
        if cos_sin is not None:
            cos, sin = cos_sin
            q, k = apply_rope(q, k, cos[:S], sin[:S])
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, S, hd]
        # scaled_dot_product_attention(is_causal=False, no mask, no dropout, scale 1/sqrt(hd))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        probs = torch.softmax(scores.float() if scores.dtype in (torch.bfloat16, torch.float16)
                              else scores, dim=-1).to(v.dtype)
        o = torch.matmul(probs, v)  # [B, H, S, hd]
        o = o.transpose(1, 2).reshape(B, S, H * hd)
        return self.o_proj(o)


class SwiGLU(nn.Module):
    def __init__(self, hidden_size: int, expansion: float):
        super().__init__()
        inter = swiglu_intermediate(hidden_size, expansion)
        self.inter = inter
        self.gate_up_proj = CastedLinear(hidden_size, 2 * inter, bias=False)
        self.down_proj = CastedLinear(inter, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: TRMConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.mlp_t:
            self.mlp_t = SwiGLU(cfg.full_len, cfg.expansion)
        else:
            self.self_attn = Attention(cfg.hidden_size, cfg.head_dim, cfg.num_heads)
        self.mlp = SwiGLU(cfg.hidden_size, cfg.expansion)

    def forward(self, cos_sin, h: torch.Tensor) -> torch.Tensor:
        eps = self.cfg.rms_norm_eps
        if self.cfg.mlp_t:
            h = h.transpose(1, 2)  # [B, D, S]
            h = rms_norm(h + self.mlp_t(h), eps)  # norm over the sequence axis
            h = h.transpose(1, 2)
        else:
            h = rms_norm(h + self.self_attn(cos_sin, h), eps)
        h = rms_norm(h + self.mlp(h), eps)
        return h


class ReasoningModule(nn.Module):
    def __init__(self, cfg: TRMConfig, num_layers: Optional[int] = None):
        super().__init__()
        n = cfg.L_layers if num_layers is None else num_layers
        self.layers = nn.ModuleList([Block(cfg) for _ in range(n)])

    def forward(self, hidden: torch.Tensor, injection: torch.Tensor, cos_sin) -> torch.Tensor:
        h = hidden + injection
        for layer in self.layers:
            h = layer(cos_sin, h)
        return h


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------
@dataclass
class InnerCarry:
    z_H: torch.Tensor
    z_L: torch.Tensor


@dataclass
class Carry:
    inner: InnerCarry
    steps: torch.Tensor  # [B] int32
    halted: torch.Tensor  # [B] bool
    current_data: Dict[str, torch.Tensor]


class TRMInner(nn.Module):
    def __init__(self, cfg: TRMConfig, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.cfg = cfg
        self.forward_dtype = dtype
        D = cfg.hidden_size
        self.embed_scale = math.sqrt(D)
        embed_std = 1.0 / self.embed_scale
        self.embed_tokens = CastedEmbedding(cfg.vocab_size, D, init_std=embed_std)
        self.lm_head = CastedLinear(D, cfg.vocab_size, bias=False)
        self.q_head = CastedLinear(D, 2, bias=True)
        self.P = cfg.prefix_len
        if cfg.puzzle_emb_ndim > 0:
            self.puzzle_emb = SparsePuzzleEmbedding(cfg.num_puzzle_identifiers, cfg.puzzle_emb_ndim,
                                                    init_std=0.0)
        if cfg.pos_encodings == "rope":
            self.rotary_emb = RotaryEmbedding(cfg.head_dim, cfg.full_len, cfg.rope_theta)
        elif cfg.pos_encodings == "rope2d":
            side = math.isqrt(cfg.seq_len)
            if side * side != cfg.seq_len or cfg.head_dim % 4:
                raise ValueError("rope2d needs a square canvas and a head size divisible by 4")
            self.rotary_emb = GridRotaryEmbedding(cfg.head_dim, self.P, side, cfg.rope_theta)
        elif cfg.pos_encodings == "learned":
            self.embed_pos = CastedEmbedding(cfg.full_len, D, init_std=embed_std)
        elif cfg.pos_encodings != "none":
            raise ValueError(cfg.pos_encodings)
        self.L_level = ReasoningModule(cfg)
        # Official: created in bf16 (trunc normal std 1). We draw in fp32 and round through bf16.
        self.register_buffer("H_init", trunc_normal_init_(torch.empty(D), std=1).to(torch.bfloat16).float(),
                             persistent=True)
        self.register_buffer("L_init", trunc_normal_init_(torch.empty(D), std=1).to(torch.bfloat16).float(),
                             persistent=True)
        with torch.no_grad():
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5)

    # x = input embedding [B, S, D]
    def input_embeddings(self, inputs: torch.Tensor, puzzle_ids: torch.Tensor,
                         puzzle_override: Optional[torch.Tensor] = None) -> torch.Tensor:
        cfg = self.cfg
        dt = self.forward_dtype
        emb = self.embed_tokens(inputs, dt)  # [B, L, D]
        if cfg.puzzle_emb_ndim > 0:
            pe = self.puzzle_emb(puzzle_ids, dt, puzzle_override)  # [B, ndim]
            pad = self.P * cfg.hidden_size - pe.shape[-1]
            if pad > 0:
                pe = F.pad(pe, (0, pad))
            emb = torch.cat((pe.view(-1, self.P, cfg.hidden_size), emb), dim=-2)
        if cfg.pos_encodings == "learned":
            emb = 0.707106781 * (emb + self.embed_pos.embedding_weight.to(dt))
        return self.embed_scale * emb

    def cos_sin(self):
        return self.rotary_emb() if hasattr(self, "rotary_emb") else None

    def empty_carry(self, batch_size: int) -> InnerCarry:
        S, D = self.cfg.full_len, self.cfg.hidden_size
        z = torch.zeros(batch_size, S, D, dtype=self.forward_dtype)
        return InnerCarry(z_H=z, z_L=z.clone())

    def reset_carry(self, reset: torch.Tensor, carry: InnerCarry) -> InnerCarry:
        r = reset.view(-1, 1, 1)
        return InnerCarry(
            z_H=torch.where(r, self.H_init.to(carry.z_H.dtype), carry.z_H),
            z_L=torch.where(r, self.L_init.to(carry.z_L.dtype), carry.z_L),
        )

    def latent_cycle(self, z_H, z_L, x, cos_sin):
        for _ in range(self.cfg.L_cycles):
            z_L = self.L_level(z_L, z_H + x, cos_sin)
        z_H = self.L_level(z_H, z_L, cos_sin)
        return z_H, z_L

    def heads(self, z_H: torch.Tensor):
        logits = self.lm_head(z_H)[:, self.P:]
        q = self.q_head(z_H[:, 0]).to(torch.float32 if z_H.dtype != torch.float64 else torch.float64)
        return logits, q[..., 0], q[..., 1]

    def forward(self, carry: InnerCarry, batch: Dict[str, torch.Tensor],
                puzzle_override: Optional[torch.Tensor] = None):
        cos_sin = self.cos_sin()
        x = self.input_embeddings(batch["inputs"], batch["puzzle_identifiers"], puzzle_override)
        z_H, z_L = carry.z_H, carry.z_L
        with torch.no_grad():
            for _ in range(self.cfg.H_cycles - 1):
                z_H, z_L = self.latent_cycle(z_H, z_L, x, cos_sin)
        z_H, z_L = self.latent_cycle(z_H, z_L, x, cos_sin)
        new_carry = InnerCarry(z_H=z_H.detach(), z_L=z_L.detach())
        logits, q_halt, q_cont = self.heads(z_H)
        return new_carry, logits, (q_halt, q_cont)


class TRMACT(nn.Module):
    """ACT wrapper (spec 2.2)."""

    def __init__(self, cfg: TRMConfig, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.cfg = cfg
        self.inner = TRMInner(cfg, dtype)

    def initial_carry(self, batch: Dict[str, torch.Tensor]) -> Carry:
        B = batch["inputs"].shape[0]
        return Carry(
            inner=self.inner.empty_carry(B),
            steps=torch.zeros(B, dtype=torch.int32),
            halted=torch.ones(B, dtype=torch.bool),
            current_data={k: torch.zeros_like(v) for k, v in batch.items()},
        )

    def forward(self, carry: Carry, batch: Dict[str, torch.Tensor],
                puzzle_override: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None):
        cfg = self.cfg
        inner_carry = self.inner.reset_carry(carry.halted, carry.inner)
        steps = torch.where(carry.halted, torch.zeros_like(carry.steps), carry.steps)
        data = {k: torch.where(carry.halted.view((-1,) + (1,) * (batch[k].ndim - 1)), batch[k], v)
                for k, v in carry.current_data.items()}
        inner_carry, logits, (q_halt, q_cont) = self.inner(inner_carry, data, puzzle_override)
        outputs = {"logits": logits, "q_halt_logits": q_halt, "q_continue_logits": q_cont}
        with torch.no_grad():
            steps = steps + 1
            is_last = steps >= cfg.halt_max_steps
            halted = is_last
            if self.training and cfg.halt_max_steps > 1:
                if cfg.no_ACT_continue:
                    halted = halted | (q_halt > 0)
                else:
                    halted = halted | (q_halt > q_cont)
                if cfg.halt_exploration_prob > 0:
                    explore = torch.rand(q_halt.shape, generator=generator) < cfg.halt_exploration_prob
                    rnd = torch.randint(2, cfg.halt_max_steps + 1, steps.shape, generator=generator,
                                        dtype=steps.dtype)
                    min_halt = explore.to(steps.dtype) * rnd
                    halted = halted & (steps >= min_halt)
                if not cfg.no_ACT_continue:
                    # Q-learning target (docs/hrm.md): one more step from the new, un-reset carry
                    # with the current weights. Eval mode only changes the puzzle-embedding
                    # lookup (same values, but it keeps the taped local rows of this step).
                    self.inner.eval()
                    _, _, (next_halt, next_cont) = self.inner(inner_carry, data, puzzle_override)
                    self.inner.train()
                    outputs["target_q_continue"] = torch.sigmoid(
                        torch.where(is_last, next_halt, torch.maximum(next_halt, next_cont)))
        return Carry(inner_carry, steps, halted, data), outputs


# --------------------------------------------------------------------------------------------
# Loss (spec 3)
# --------------------------------------------------------------------------------------------
def stablemax_s(x: torch.Tensor, eps: float = 1e-30) -> torch.Tensor:
    return torch.where(x < 0, 1 / (1 - x + eps), x + 1)


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    s = stablemax_s(x)
    return torch.log(s / torch.sum(s, dim=dim, keepdim=True))


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                            ignore_index: int = IGNORE_LABEL_ID) -> torch.Tensor:
    logprobs = log_stablemax(logits.to(torch.float64), dim=-1)
    mask = labels != ignore_index
    safe = torch.where(mask, labels, torch.zeros_like(labels)).to(torch.long)
    lp = torch.gather(logprobs, index=safe.unsqueeze(-1), dim=-1).squeeze(-1)
    return -torch.where(mask, lp, torch.zeros_like(lp))


class ACTLossHead(nn.Module):
    def __init__(self, model: TRMACT):
        super().__init__()
        self.model = model

    def initial_carry(self, batch):
        return self.model.initial_carry(batch)

    def forward(self, carry: Carry, batch: Dict[str, torch.Tensor], **kw):
        new_carry, outputs = self.model(carry, batch, **kw)
        labels = new_carry.current_data["labels"]
        logits = outputs["logits"]
        with torch.no_grad():
            preds = torch.argmax(logits, dim=-1)
            outputs["preds"] = preds
            mask = labels != IGNORE_LABEL_ID
            counts = mask.sum(-1)
            divisor = counts.clamp_min(1).unsqueeze(-1)
            is_correct = mask & (preds == labels)
            seq_correct = is_correct.sum(-1) == counts
            valid = new_carry.halted & (counts > 0)
            metrics = {
                "count": valid.sum(),
                "accuracy": torch.where(valid, (is_correct.to(torch.float64) / divisor).sum(-1),
                                        torch.zeros((), dtype=torch.float64)).sum(),
                "exact_accuracy": (valid & seq_correct).sum(),
                "q_halt_accuracy": (valid & ((outputs["q_halt_logits"] >= 0) == seq_correct)).sum(),
                "steps": torch.where(valid, new_carry.steps, torch.zeros_like(new_carry.steps)).sum(),
            }
        lm_loss = (stablemax_cross_entropy(logits, labels) / divisor).sum()
        q_halt = outputs["q_halt_logits"]
        q_halt_loss = F.binary_cross_entropy_with_logits(q_halt, seq_correct.to(q_halt.dtype),
                                                         reduction="sum")
        metrics["lm_loss"] = lm_loss.detach()
        metrics["q_halt_loss"] = q_halt_loss.detach()
        outputs["seq_correct"] = seq_correct
        loss = lm_loss + 0.5 * q_halt_loss
        if "target_q_continue" in outputs:  # no_ACT_continue = False, training only
            q_continue_loss = F.binary_cross_entropy_with_logits(outputs["q_continue_logits"],
                                                                 outputs["target_q_continue"], reduction="sum")
            metrics["q_continue_loss"] = q_continue_loss.detach()
            loss = loss + 0.5 * q_continue_loss
        return new_carry, loss, metrics, outputs, new_carry.halted.all()


def build_model(cfg: TRMConfig, dtype: torch.dtype = torch.float32) -> ACTLossHead:
    m = ACTLossHead(TRMACT(cfg, dtype))
    if dtype == torch.float64:
        m = m.double()
    return m


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def reduce_train_metrics(metrics: Dict[str, torch.Tensor], global_batch_size: int) -> Dict[str, float]:
    """pretrain.py logging: losses / global batch size, the rest / max(count, 1)."""
    count = max(int(metrics["count"]), 1)
    out = {}
    for k, v in metrics.items():
        v = float(v)
        if k.endswith("loss"):
            out[k] = v / global_batch_size
        elif k == "count":
            out[k] = v
        else:
            out[k] = v / count
    return out


# --------------------------------------------------------------------------------------------
# Optimizers, schedule, EMA (spec 4)
# --------------------------------------------------------------------------------------------
def compute_lr(base_lr: float, step: int, warmup_steps: int, total_steps: int = 1,
               min_ratio: float = 1.0, num_cycles: float = 0.5) -> float:
    """Official cosine_schedule_with_warmup_lr_lambda; step starts at 1."""
    if step < warmup_steps:
        return base_lr * float(step) / float(max(1, warmup_steps))
    progress = float(step - warmup_steps) / float(max(1, total_steps - warmup_steps))
    return base_lr * (min_ratio + max(0.0, (1 - min_ratio) * 0.5 *
                                      (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))))


class AdamATan2:
    """imoneoi/adam-atan2 semantics (spec 4.1). Elementwise, in the parameter dtype."""

    def __init__(self, params, betas=(0.9, 0.95), weight_decay=0.1):
        self.params = [p for p in params]
        self.beta1, self.beta2 = betas
        self.wd = weight_decay
        self.state: Dict[int, dict] = {}

    @torch.no_grad()
    def step(self, lr: float):
        b1, b2 = self.beta1, self.beta2
        for p in self.params:
            if p.grad is None:
                continue
            st = self.state.setdefault(id(p), {"step": 0, "m": torch.zeros_like(p), "v": torch.zeros_like(p)})
            st["step"] += 1
            t = st["step"]
            g = p.grad
            m, v = st["m"], st["v"]
            p.mul_(1.0 - lr * self.wd)
            m.mul_(b1).add_(g, alpha=1.0 - b1)
            v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
            bc1 = 1.0 - b1 ** t
            bc2_sqrt = math.sqrt(1.0 - b2 ** t)
            denom = v.sqrt() / bc2_sqrt
            p.add_(torch.atan2(m, denom), alpha=-lr / bc1)

    def zero_grad(self):
        for p in self.params:
            p.grad = None


class SparseSignSGD:
    """CastedSparseEmbeddingSignSGD_Distributed, world size 1 (spec 1.2)."""

    def __init__(self, emb: SparsePuzzleEmbedding, weight_decay: float):
        self.emb = emb
        self.wd = weight_decay

    @torch.no_grad()
    def step(self, lr: float):
        lw = self.emb.local_weights
        if lw is None or lw.grad is None:
            return
        g_local, ids = lw.grad, self.emb.local_ids.to(torch.long)
        uniq, inv = ids.unique(return_inverse=True)
        g = torch.zeros(uniq.shape[0], g_local.shape[1], dtype=g_local.dtype)
        g.scatter_add_(0, inv.unsqueeze(-1).expand(-1, g_local.shape[1]), g_local)
        w = self.emb.weights
        p = w[uniq]
        p.mul_(1.0 - lr * self.wd).add_(torch.sign(g).to(p.dtype), alpha=-lr)
        w[uniq] = p

    def zero_grad(self):
        self.emb.local_weights = None
        self.emb.local_ids = None


class EMA:
    def __init__(self, module: nn.Module, mu: float = 0.999):
        self.mu = mu
        self.shadow = {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, module: nn.Module):
        for n, p in module.named_parameters():
            if p.requires_grad:
                self.shadow[n] = (1.0 - self.mu) * p.detach() + self.mu * self.shadow[n]


@dataclass
class TrainHParams:
    lr: float = 1e-4
    lr_warmup_steps: int = 2000
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    puzzle_emb_lr: float = 1e-2
    puzzle_emb_weight_decay: float = 0.1
    ema_rate: float = 0.999
    global_batch_size: int = 768
    lr_min_ratio: float = 1.0
    total_steps: int = 1

    def to_json(self) -> str:
        keys = ["lr", "lr_warmup_steps", "weight_decay", "beta1", "beta2", "puzzle_emb_lr",
                "puzzle_emb_weight_decay", "ema_rate", "global_batch_size", "lr_min_ratio"]
        return json.dumps({k: getattr(self, k) for k in keys}, separators=(", ", ": "))


class Trainer:
    """One optimizer step per call, as pretrain.py's train_batch (world size 1)."""

    def __init__(self, model: ACTLossHead, hp: TrainHParams, use_ema: bool = True):
        self.model = model
        self.hp = hp
        self.opt = AdamATan2(model.parameters(), betas=(hp.beta1, hp.beta2), weight_decay=hp.weight_decay)
        inner = model.model.inner
        self.sparse_opt = (SparseSignSGD(inner.puzzle_emb, hp.puzzle_emb_weight_decay)
                           if hasattr(inner, "puzzle_emb") else None)
        self.ema = EMA(model, hp.ema_rate) if use_ema else None
        self.step = 0
        self.carry: Optional[Carry] = None

    def train_batch(self, batch: Dict[str, torch.Tensor], keep_grads: bool = False,
                    autocast_bf16: bool = False):
        hp = self.hp
        self.step += 1
        if self.carry is None:
            self.carry = self.model.initial_carry(batch)
        self.model.train()
        if autocast_bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                carry, loss, metrics, outputs, _ = self.model(self.carry, batch)
        else:
            carry, loss, metrics, outputs, _ = self.model(self.carry, batch)
        self.carry = carry
        ((1.0 / hp.global_batch_size) * loss).backward()
        grads = None
        if keep_grads:
            grads = {n: p.grad.detach().clone() for n, p in self.model.named_parameters()}
            lw = self.model.model.inner.puzzle_emb.local_weights if self.sparse_opt else None
            if lw is not None:
                grads["puzzle_emb_local"] = lw.grad.detach().clone()
        lr = compute_lr(hp.lr, self.step, hp.lr_warmup_steps, hp.total_steps, hp.lr_min_ratio)
        plr = compute_lr(hp.puzzle_emb_lr, self.step, hp.lr_warmup_steps, hp.total_steps, hp.lr_min_ratio)
        self.opt.step(lr)
        self.opt.zero_grad()
        if self.sparse_opt is not None:
            self.sparse_opt.step(plr)
            self.sparse_opt.zero_grad()
        if self.ema is not None:
            self.ema.update(self.model)
        return dict(loss=loss.detach(), metrics=metrics, outputs=outputs, carry=carry, grads=grads,
                    lr=lr, puzzle_lr=plr)


# --------------------------------------------------------------------------------------------
# Minimal safetensors writer / reader (no dependency)
# --------------------------------------------------------------------------------------------
_ST_DTYPES = {
    torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"), torch.int32: ("I32", "<i4"),
    torch.int64: ("I64", "<i8"), torch.bool: ("BOOL", "|b1"), torch.uint8: ("U8", "|u1"),
}
_ST_BYTES = {"F32": 4, "F64": 8, "I32": 4, "I64": 8, "BOOL": 1, "U8": 1}


def _tensor_bytes(t: torch.Tensor) -> bytes:
    import numpy as np  # numpy ships with python3-torch's dependencies
    code = _ST_DTYPES[t.dtype][1]
    return t.detach().contiguous().cpu().numpy().astype(code, copy=False).tobytes(order="C")


def save_safetensors(path: str, tensors: Dict[str, torch.Tensor], metadata: Dict[str, str]):
    names = sorted(tensors)
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for n in names:
        t = tensors[n]
        dt = _ST_DTYPES[t.dtype][0]
        b = _tensor_bytes(t)
        assert len(b) == t.numel() * _ST_BYTES[dt]
        header[n] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    pad = (-len(hj)) % 8
    hj += b" " * pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


def load_safetensors(path: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    import numpy as np
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    back = {v[0]: v[1] for v in _ST_DTYPES.values()}
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        arr = np.frombuffer(raw[base + b: base + e], dtype=back[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta
