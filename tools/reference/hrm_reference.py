"""Independent PyTorch reference of the Hierarchical Reasoning Model (HRM).

Written from the computation described in docs/hrm.md, not copied from the official sapientinc/HRM code. HRM
shares its layers, embeddings, heads, ACT wrapper, loss and optimizers with TRM (the official
repositories share models/layers.py, the sparse embedding and the loss head), so those come
from trm_reference.py; what is HRM's own is written here:

  * two reasoning modules, ``H_level`` (H_layers blocks) and ``L_level`` (L_layers blocks);
  * one supervision step of H_cycles x L_cycles updates in which every update but the last L
    update and the last H update runs under no_grad (the one-step gradient, docs/hrm.md);
  * the prefix length P = ceil(puzzle_emb_ndim / hidden_size) (puzzle_emb_len = 0);
  * ACT with Q-learning: halting on q_halt > q_continue and the continue target from a second
    no-grad step (no_ACT_continue = False, handled by trm_reference.TRMACT / ACTLossHead).

Tensor names reproduce the official state_dict (``model.inner.H_level.layers.0...``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from trm_reference import ACTLossHead, InnerCarry, ReasoningModule, TRMACT, TRMConfig, TRMInner


@dataclass
class HRMConfig(TRMConfig):
    # hrm_v1.yaml (docs/hrm.md); P is computed, halting uses the continue head.
    H_layers: int = 4
    L_layers: int = 4
    H_cycles: int = 2
    L_cycles: int = 2
    puzzle_emb_len: int = 0
    no_ACT_continue: bool = False

    OFFICIAL_FIELDS = TRMConfig.OFFICIAL_FIELDS + ("H_layers", "no_ACT_continue")

    def to_json(self) -> str:
        d = {k: getattr(self, k) for k in self.OFFICIAL_FIELDS}
        return json.dumps(d, sort_keys=False, separators=(", ", ": "))


class HRMInner(TRMInner):
    """One HRM supervision step: TRMInner's embeddings, heads and z inits, two nets."""

    def __init__(self, cfg: HRMConfig, dtype: torch.dtype = torch.float32):
        if cfg.mlp_t:
            raise ValueError("HRM has no mlp_t variant")
        super().__init__(cfg, dtype)
        self.H_level = ReasoningModule(cfg, cfg.H_layers)

    def forward(self, carry: InnerCarry, batch, puzzle_override=None):
        cfg = self.cfg
        cos_sin = self.cos_sin()
        x = self.input_embeddings(batch["inputs"], batch["puzzle_identifiers"], puzzle_override)
        z_H, z_L = carry.z_H, carry.z_L
        last_h, last_l = cfg.H_cycles - 1, cfg.L_cycles - 1
        with torch.no_grad():
            for h in range(cfg.H_cycles):
                for l in range(cfg.L_cycles):
                    if not (h == last_h and l == last_l):
                        z_L = self.L_level(z_L, z_H + x, cos_sin)
                if h != last_h:
                    z_H = self.H_level(z_H, z_L, cos_sin)  # H sees z_L only, no x
        # The one-step gradient: only these two updates are differentiated.
        z_L = self.L_level(z_L, z_H + x, cos_sin)
        z_H = self.H_level(z_H, z_L, cos_sin)
        new_carry = InnerCarry(z_H=z_H.detach(), z_L=z_L.detach())
        logits, q_halt, q_cont = self.heads(z_H)
        return new_carry, logits, (q_halt, q_cont)


class HRMACT(TRMACT):
    def __init__(self, cfg: HRMConfig, dtype: torch.dtype = torch.float32):
        torch.nn.Module.__init__(self)
        self.cfg = cfg
        self.inner = HRMInner(cfg, dtype)


def build_hrm_model(cfg: HRMConfig, dtype: torch.dtype = torch.float32) -> ACTLossHead:
    m = ACTLossHead(HRMACT(cfg, dtype))
    if dtype == torch.float64:
        m = m.double()
    return m
