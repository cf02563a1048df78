#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""PNG of predictions from the JSON `etrm eval --svg FILE.svg` writes next to the SVG
(FILE.json): per task its demonstrations, the query input, the prediction and the truth.
usage: /usr/bin/python3 tools/render_grids.py PREDICTIONS.json OUT.png"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

PALETTE = ["#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF",
           "#870C25"]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    try:
        tasks = json.load(open(sys.argv[1]))
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"render_grids: {sys.argv[1]}: {e}")
    if not tasks:
        sys.exit(f"render_grids: {sys.argv[1]}: no predictions")
    cols = max(2 * len(t["demos"]) + 3 for t in tasks)
    fig, axes = plt.subplots(len(tasks), cols, figsize=(1.6 * cols, 1.8 * len(tasks)), squeeze=False)
    cmap = ListedColormap(PALETTE)
    for r, t in enumerate(tasks):
        cells = []
        for i, (a, b) in enumerate(t["demos"]):
            cells += [(f"demo {i + 1} in", a, None), (f"demo {i + 1} out", b, None)]
        ok = t["prediction"] == t["truth"]
        cells += [("query", t["input"], None), ("prediction", t["prediction"], "#2ECC40" if ok else "#FF4136"),
                  ("truth", t["truth"], None)]
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(cells):
                ax.axis("off")
                continue
            title, g, frame = cells[c]
            if g and g[0]:
                ax.imshow(g, cmap=cmap, vmin=0, vmax=9, interpolation="nearest")
            ax.set_title(title, fontsize=7)
            if frame:
                for s in ax.spines.values():
                    s.set_edgecolor(frame)
                    s.set_linewidth(3)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=90)
    print(f"predictions: {sys.argv[2]}")


main()
