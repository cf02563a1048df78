#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The comparison that proves the point: TRM with puzzle ids against ETRM (demonstration
# encoder) on the built-in few-shot generator, same task pool, about the same parameter count
# (TRM is widened to ETRM_COMPARE_TRM_HIDDEN so that its network matches the encoder + network of
# ETRM; TRM's per-task embeddings come on top), same training time; evaluated on (i) held-back
# queries of the training tasks, (ii) unseen tasks (new tasks of the training rules, and held-out
# rules; TRM gets the blank id there), plus the ETRM controls, the encoder-collapse metric and a
# table per rule family. A third run trains ETRM on its default data, the endless generator
# (which TRM cannot use: every task would need an id). All three models are then evaluated on the
# first held-out rows with test-time training of the weights on each task's demos (reported
# apart; TRM is fitted on the same demo rows under the blank id, so the table shows what the
# encoder adds to the fit). Rewrites the part of docs/RESULTS.md between its comparison markers.
#
#   tools/run-comparison.sh              # ETRM_COMPARE_MINUTES per model (default 10)
#   ETRM_BIN=build/release/examples/etrm ETRM_COMPARE_POOL=256 ETRM_COMPARE_OUT=runs/compare
#   ETRM_COMPARE_TRM_HIDDEN=120 ETRM_COMPARE_TTT_BATCHES=4 ETRM_COMPARE_TTT_STEPS=32 ETRM_COMPARE_TTT_VOTES=1
#   ETRM_COMPARE_TTT_AUGMENT=false ETRM_COMPARE_TRM_TTT_LR=1e-3   # the fit's augmented copies; TRM's lr
#   ETRM_COMPARE_REPORT_ONLY=1           # rewrite the report from the runs already in ETRM_COMPARE_OUT
#   ETRM_COMPARE_TTT_ONLY=1              # redo only the test-time training of those runs, then the report
#   ETRM_COMPARE_MODELS="etrm etrm_gen"  # train (and fit) only these; the report reads every run in the folder
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="${ETRM_BIN:-build/release/examples/etrm}"
minutes="${ETRM_COMPARE_MINUTES:-10}"
trm_hidden="${ETRM_COMPARE_TRM_HIDDEN:-120}"
pool="${ETRM_COMPARE_POOL:-256}"
out="${ETRM_COMPARE_OUT:-runs/compare}"
ttt_batches="${ETRM_COMPARE_TTT_BATCHES:-4}"
ttt_steps="${ETRM_COMPARE_TTT_STEPS:-32}"
ttt_votes="${ETRM_COMPARE_TTT_VOTES:-1}"
ttt_augment="${ETRM_COMPARE_TTT_AUGMENT:-false}"
trm_ttt_lr="${ETRM_COMPARE_TRM_TTT_LR:-1e-3}"
results="${ETRM_COMPARE_RESULTS:-docs/RESULTS.md}"
read -r -a models <<<"${ETRM_COMPARE_MODELS:-trm etrm etrm_gen}"
if [ ! -x "$bin" ]; then
  tools/setup.sh
  cmake --preset release >/dev/null
  cmake --build --preset release --target etrm_cli
fi
mkdir -p "$out"
[ -n "${ETRM_COMPARE_REPORT_ONLY:-}${ETRM_COMPARE_TTT_ONLY:-}" ] || for model in "${models[@]}"; do
  args=(--model "${model%_gen}" --task-pool "$pool")
  [ "$model" = trm ] && args+=(--hidden-size "$trm_hidden")
  [ "$model" = etrm_gen ] && args=(--model etrm)
  echo "== train $model ($minutes min, ${args[*]})"
  "$bin" train --task fewshot "${args[@]}" --minutes "$minutes" --eval-every 0 --eval-batches 0 --no-progress \
    --out "$out/$model" > "$out/$model.train.log"
  echo "== eval $model"
  "$bin" eval --checkpoint "$out/$model/checkpoint.safetensors" --eval-batches 8 --out "$out/$model" \
    | tee "$out/$model.eval.log"
done
[ -n "${ETRM_COMPARE_REPORT_ONLY:-}" ] || for model in "${models[@]}"; do
  lr=3e-3
  [ "$model" = trm ] && lr="$trm_ttt_lr"
  echo "== test-time training of $model ($ttt_batches held-out batches, $ttt_steps steps per task, lr $lr, augment $ttt_augment, $ttt_votes votes)"
  "$bin" eval --checkpoint "$out/$model/checkpoint.safetensors" --split held_out --eval-batches "$ttt_batches" \
    --no-controls --adapt weights --adapt-steps "$ttt_steps" --adapt-supervision-steps 2 --adapt-votes "$ttt_votes" \
    --adapt-lr "$lr" --adapt-augment "$ttt_augment" --out "$out/$model.ttt" | tee "$out/$model.ttt.log"
done
/usr/bin/python3 - "$out" "$results" "$minutes" "$pool" "$trm_hidden" "$ttt_steps" "$ttt_votes" "$ttt_augment" "$trm_ttt_lr" <<'PY'
import datetime, json, os, pathlib, platform, re, sys
sys.path.insert(0, "tools")
from fewshot_families import by_family, by_kind
out, results, minutes, pool, trm_hidden, ttt_steps, ttt_votes, ttt_augment, trm_ttt_lr = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), *sys.argv[3:]
BEGIN, END = "<!-- comparison:begin -->", "<!-- comparison:end -->"
MODELS = {"trm": "TRM, pool + ids", "etrm": "ETRM, pool", "etrm_gen": "ETRM, generator"}
def load(model):
    rows = {r["split"]: r for r in json.load(open(out / model / "eval.json"))}
    m = re.search(r"(\d+) parameters", open(out / f"{model}.train.log").read())
    train = [json.loads(l) for l in open(out / model / "metrics.jsonl") if '"type":"train"' in l]
    return rows, (f"{int(m.group(1)):,}" if m else "?"), (train[-1]["step"] if train else "?")
def pct(n, k):
    return f"{100 * k / n:.1f}% ({k}/{n})" if n else "–"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
lines = [BEGIN, "# Results: TRM with puzzle ids against ETRM on unseen tasks", "",
         f"Produced by `tools/run-comparison.sh` (ETRM_COMPARE_MINUTES={minutes}, pool of {pool} tasks, "
         f"TRM hidden size {trm_hidden}) on {datetime.date.today().isoformat()}, {os.cpu_count()} cores ({cpu}), CPU backend.", "",
         "TRM and ETRM (pool) train for the same time on the same pool of generated tasks and are evaluated on the",
         "same rows (`examples/configs/fewshot_{trm,etrm}.json`). TRM is widened so that its network has about as many",
         "parameters as ETRM's encoder and network together; its per-task embeddings come on top and are not",
         "counted. TRM reads a learned puzzle id; ETRM reads the task's demonstrations. On unseen tasks TRM gets",
         "the blank id 0, so it can only guess from the query. ETRM (generator) trains for the same time on",
         "ETRM's default data, fresh tasks of the training rules at every step, which TRM cannot use (each",
         "task would need an id); its `train_rules` rows are fresh tasks, so they compare with `new_tasks`.", "",
         "| model | parameters | steps | split | exact | token accuracy |", "|---|---|---|---|---|---|"]
loaded = {m: load(m) for m in MODELS}
for model, (rows, params, steps) in loaded.items():
    for split, r in rows.items():
        lines.append(f"| {MODELS[model]} | {params} | {steps} | {split} | {100 * r['exact_accuracy']:.2f}% | {100 * r['accuracy']:.2f}% |")
lines += ["", "Splits: `train_rules` = a held-back query of each pool task (TRM uses the task's id);",
          "`new_tasks` = fresh tasks of the training rules, not in the pool; `held_out` = rules the",
          "generator never produces for training (held-out families, parameter values, compositions).",
          "`/no_demos` and `/wrong_demos` are the ETRM controls (demonstrations removed, or taken from",
          "another task); they must score lower than the real demonstrations.", ""]
def listed(rows, key):
    return ", ".join(f"{r[key]:.3f}" for r in rows)
for model in ("etrm", "etrm_gen"):
    plain = [r for r in loaded[model][0].values() if r.get("context_spread") is not None]
    if plain:
        lines.append(f"Encoder-collapse monitor of {MODELS[model]}, per split (near 0 means collapsed): spread of the K "
                     f"context tokens across tasks {listed(plain, 'context_spread')}; demo dependence (relative change "
                     f"of the decoder's input when each query reads another task's demos) "
                     f"{listed(plain, 'demo_dependence')}.")
# Per family: the unseen-task columns of every model (ETRM (generator)'s train_rules are fresh tasks).
columns = [("train_rules", "trm"), ("train_rules", "etrm"), ("new_tasks", "trm"), ("new_tasks", "etrm"),
           ("train_rules", "etrm_gen"), ("held_out", "trm"), ("held_out", "etrm"), ("held_out", "etrm_gen")]
heads = ["train_rules TRM", "train_rules ETRM", "new_tasks TRM", "new_tasks ETRM", "new tasks ETRM (gen.)",
         "held_out TRM", "held_out ETRM", "held_out ETRM (gen.)"]
tables = [by_family(out / m / f"eval_{s}.jsonl") if (out / m / f"eval_{s}.jsonl").exists() else {} for s, m in columns]
families = sorted({f for t in tables for f in t})
lines += ["", "Exact accuracy per rule family (rows in brackets; `tools/fewshot_families.py` on the per-row files):", "",
          "| family | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
def cell(t, f):
    n, k = t[f][:2] if f in t else (0, 0)
    return f"{100 * k / n:.0f}% ({n})" if n else "–"
for f in families:
    lines.append(f"| {f} | " + " | ".join(cell(t, f) for t in tables) + " |")
lines += ["", "Held-out rows by kind. The training episodes never show a held-out parameter value, also not",
          "through their colour permutation or dihedral transform (`include/etrm/data/generator_augment.hpp`).", ""]
for model in MODELS:
    path = out / model / "eval_held_out.jsonl"
    if path.exists():
        lines.append(f"* {MODELS[model]}: " + "; ".join(f"{name} {pct(n, k)}" for name, (n, k) in by_kind(path).items()))
vote_flag = "" if ttt_votes == "1" else f" --adapt-votes {ttt_votes}"
copies = ("under dihedral and colour augmentations (augmented copies of the whole task)" if ttt_augment == "true"
          else "as they are (`--adapt-augment false`)")
lines += ["", f"Test-time training (`etrm eval --adapt weights --adapt-steps {ttt_steps} --adapt-supervision-steps 2{vote_flag}`):",
          "for each held-out task alone, a copy of the whole network takes that many Adam steps on the task's",
          f"leave-one-out rows (each demo predicted from the others) {copies}, then",
          ("answers the query." if ttt_votes == "1" else
           f"answers the query under {ttt_votes} augmentations (the first unchanged), and the answers vote.")
          + " TRM reads no demos, so its rows are each demo's input and output under the blank id: the same",
          f"fit without the encoder (TRM at `--adapt-lr {trm_ttt_lr}`, its best; ETRM at 3e-3). A task whose",
          "leave-one-out rows the model already answers exactly is not fitted (`--adapt-skip-solved`, the default).",
          "Same rows with and without; pass@2 counts a row when the fitted answer or, as the second attempt,",
          "the unfitted one is exact:", "",
          "| model | rows | exact without | exact with test-time training | pass@2 (fitted, then unfitted) | held-out families with | parameter values with | compositions with |",
          "|---|---|---|---|---|---|---|---|"]
for model in MODELS:
    d = out / f"{model}.ttt"
    if not (d / "eval.json").exists():
        continue
    rows = {r["split"]: r for r in json.load(open(d / "eval.json"))}
    plain, ttt = rows.get("held_out"), rows.get("held_out/ttt")
    if not plain or not ttt:
        continue
    kinds = by_kind(d / "eval_held_out.ttt.jsonl")
    order = ("rules with a held-out family", "held-out parameter values", "reserved compositions of training families")
    pass2 = f"{100 * ttt['pass@2_with_unadapted']:.2f}%" if "pass@2_with_unadapted" in ttt else "n/a"
    lines.append(f"| {MODELS[model]} | {ttt['rows']} | {100 * plain['exact_accuracy']:.2f}% | {100 * ttt['exact_accuracy']:.2f}% | {pass2} | "
                 + " | ".join(pct(*kinds.get(k, (0, 0))) for k in order) + " |")
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
