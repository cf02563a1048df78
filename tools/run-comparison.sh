#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The comparison that proves the point: TRM with puzzle ids against ETRM (demonstration
# encoder) on the built-in few-shot generator, same task pool, about the same parameter count
# (TRM is widened to ETRM_COMPARE_TRM_HIDDEN so that its network matches the encoder + network of
# ETRM; TRM's per-task embeddings come on top), same training time; evaluated on (i) held-back
# queries of the training tasks, (ii) unseen tasks (new tasks of the training rules, and held-out
# rules; TRM gets the blank id there), plus the ETRM controls, the encoder-collapse metric and a
# table per rule family. Rewrites the part of docs/RESULTS.md between its comparison markers.
#
#   tools/run-comparison.sh              # ETRM_COMPARE_MINUTES per model (default 10)
#   ETRM_BIN=build/release/examples/etrm ETRM_COMPARE_POOL=256 ETRM_COMPARE_OUT=runs/compare
#   ETRM_COMPARE_TRM_HIDDEN=136
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="${ETRM_BIN:-build/release/examples/etrm}"
minutes="${ETRM_COMPARE_MINUTES:-10}"
trm_hidden="${ETRM_COMPARE_TRM_HIDDEN:-136}"
pool="${ETRM_COMPARE_POOL:-256}"
out="${ETRM_COMPARE_OUT:-runs/compare}"
results="${ETRM_COMPARE_RESULTS:-docs/RESULTS.md}"
if [ ! -x "$bin" ]; then
  tools/setup.sh
  cmake --preset release >/dev/null
  cmake --build --preset release --target etrm_cli
fi
mkdir -p "$out"
for model in trm etrm; do
  echo "== train $model ($minutes min, pool of $pool tasks)"
  width=()
  [ "$model" = trm ] && width=(--hidden-size "$trm_hidden")
  "$bin" train --task fewshot --model "$model" "${width[@]}" --task-pool "$pool" --minutes "$minutes" --eval-every 0 \
    --eval-batches 0 --no-progress --out "$out/$model" > "$out/$model.train.log"
  echo "== eval $model"
  "$bin" eval --checkpoint "$out/$model/checkpoint.safetensors" --eval-batches 8 --out "$out/$model" \
    | tee "$out/$model.eval.log"
done
/usr/bin/python3 - "$out" "$results" "$minutes" "$pool" "$trm_hidden" <<'PY'
import datetime, json, os, pathlib, platform, re, sys
sys.path.insert(0, "tools")
from fewshot_families import by_family, by_kind
out, results, minutes, pool, trm_hidden = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), *sys.argv[3:]
BEGIN, END = "<!-- comparison:begin -->", "<!-- comparison:end -->"
def load(model):
    rows = {r["split"]: r for r in json.load(open(out / model / "eval.json"))}
    m = re.search(r"(\d+) parameters", open(out / f"{model}.train.log").read())
    train = [json.loads(l) for l in open(out / model / "metrics.jsonl") if '"type":"train"' in l]
    return rows, {"parameters": f"{int(m.group(1)):,}" if m else "?"}, train
def families_of(model, split):
    path = out / model / f"eval_{split}.jsonl"
    return by_family(path) if path.exists() else {}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
lines = [BEGIN, "# Results: TRM with puzzle ids against ETRM on unseen tasks", "",
         f"Produced by `tools/run-comparison.sh` (ETRM_COMPARE_MINUTES={minutes}, pool of {pool} tasks, "
         f"TRM hidden size {trm_hidden}) on {datetime.date.today().isoformat()}, {os.cpu_count()} cores ({cpu}), CPU backend.", "",
         "Both models train for the same time on the same pool of generated tasks and are evaluated on the same",
         "rows (`examples/configs/fewshot_{trm,etrm}.json`). TRM is widened so that its network has about as many",
         "parameters as ETRM's encoder and network together; its per-task embeddings come on top and are not",
         "counted. TRM reads a learned puzzle id; ETRM reads the task's demonstrations. On unseen tasks TRM gets",
         "the blank id 0, so it can only guess from the query.", "",
         "| model | parameters | steps | split | exact | token accuracy |", "|---|---|---|---|---|---|"]
for model in ("trm", "etrm"):
    rows, run, train = load(model)
    steps = train[-1]["step"] if train else "?"
    params = run.get("parameters", "?")
    for split, r in rows.items():
        lines.append(f"| {model} | {params} | {steps} | {split} | {100 * r['exact_accuracy']:.2f}% | {100 * r['accuracy']:.2f}% |")
rows, _, _ = load("etrm")
spread = [r.get("context_spread") for r in rows.values() if r.get("context_spread") is not None]
lines += ["", "Splits: `train_rules` = a held-back query of each pool task (TRM uses the task's id);",
          "`new_tasks` = fresh tasks of the training rules, not in the pool; `held_out` = rules the",
          "generator never produces for training (held-out families, parameter values, compositions).",
          "`/no_demos` and `/wrong_demos` are the ETRM controls (demonstrations removed, or taken from",
          "another task); they must score lower than the real demonstrations.", ""]
if spread:
    lines.append(f"Encoder-collapse metric (spread of the context tokens across tasks, relative to their RMS; "
                 f"near 0 means collapsed): {', '.join(f'{s:.3f}' for s in spread)}.")
splits = ("train_rules", "new_tasks", "held_out")
tables = {(m, s): families_of(m, s) for m in ("trm", "etrm") for s in splits}
families = sorted({f for t in tables.values() for f in t})
lines += ["", "Exact accuracy per rule family (rows in brackets; `tools/fewshot_families.py` on the per-row files):", "",
          "| family | " + " | ".join(f"{s} TRM | {s} ETRM" for s in splits) + " |",
          "|---|" + "---|---|" * len(splits)]
def cell(t, f):
    n, k = t[f][:2] if f in t else (0, 0)
    return f"{100 * k / n:.0f}% ({n})" if n else "–"
for f in families:
    lines.append(f"| {f} | " + " | ".join(f"{cell(tables['trm', s], f)} | {cell(tables['etrm', s], f)}" for s in splits) + " |")
lines += ["", "Held-out rows by kind. The training episodes never show a held-out parameter value, also not",
          "through their colour permutation or dihedral transform (`include/etrm/data/generator_augment.hpp`).", ""]
for model in ("trm", "etrm"):
    path = out / model / "eval_held_out.jsonl"
    if path.exists():
        kinds = by_kind(path)
        lines.append(f"* {model.upper()}: " + "; ".join(f"{name} {100 * k / n:.1f}% exact ({k}/{n})" for name, (n, k) in kinds.items()))
lines.append(END)
block = "\n".join(lines)
text = results.read_text() if results.exists() else ""
if BEGIN in text and END in text:
    text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
else:
    text = block + "\n" + text
results.write_text(text if text.endswith("\n") else text + "\n")
print(f"wrote {results}")
PY
