#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Learning curves from an `etrm train` metrics.jsonl: training loss and accuracy per step, and
the exact accuracy of every evaluation split.
usage: /usr/bin/python3 tools/plot_metrics.py RUN_DIR/metrics.jsonl OUT.png [--title TEXT]"""
import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("metrics")
    ap.add_argument("png")
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    train, evals = [], {}
    try:
        with open(a.metrics) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    j = json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit(f"plot_metrics: {a.metrics}:{n}: invalid JSON: {e}")
                if j.get("type") == "train":
                    train.append(j)
                elif j.get("type") == "eval":
                    evals.setdefault(j["split"], []).append(j)
    except OSError as e:
        sys.exit(f"plot_metrics: cannot read {a.metrics}: {e.strerror}")
    if not train:
        sys.exit(f"plot_metrics: {a.metrics}: no training lines")
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    steps = [j["step"] for j in train]
    ax[0].plot(steps, [j["loss"] for j in train], lw=1)
    ax[0].set_title("training loss")
    ax[0].set_yscale("log")
    ax[1].plot(steps, [100 * j["accuracy"] for j in train], lw=1, label="token accuracy")
    ax[1].plot(steps, [100 * j["exact_accuracy"] for j in train], lw=1, label="exact")
    ax[1].set_title("training accuracy (halted rows), %")
    ax[1].legend()
    for i, (split, rows) in enumerate(sorted(evals.items())):
        colour = f"C{i}"
        s = [j["step"] for j in rows]
        ax[2].plot(s, [100 * j["exact_accuracy"] for j in rows], marker="o", ms=3, color=colour, label=f"{split} exact")
        ax[2].plot(s, [100 * j["accuracy"] for j in rows], ls="--", color=colour, label=f"{split} token acc")
    ax[2].set_title("evaluation accuracy, %")
    if evals:
        ax[2].legend(fontsize=8)
    for x in ax:
        x.set_xlabel("step")
        x.grid(alpha=0.3)
    if a.title:
        fig.suptitle(a.title)
    fig.tight_layout()
    fig.savefig(a.png, dpi=100)
    print(f"learning curves: {a.png}")


main()
