#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The external evaluation in one command: train the models of the ablation at the same STEP budget
# (the machine may be shared, so wall-clock budgets would not be fair), evaluate each on tasks
# nobody here wrote (ARC-AGI-1 evaluation 400, ConceptARC corpus 160, ARC-AGI-2 evaluation 120)
# and on the generator's held-out rules drawn once, and regenerate docs/results/external.md.
# Every task counts: one that does not fit the canvas is failed (the table says how many fit).
# No evaluated task's test pair trains (the models train on the generator only; `etrm train
# --task arc` leaves them out too); whether their demos trained is a column (always "no" here).
#
#   ETRM_DATA_DIR=/work/shared/data tools/run-external-eval.sh
#
# Rows (ETRM_EXT_MODELS, any of):
#   learned        ETRM, no per-task priors (the default configuration)
#   learned_ttt    the same checkpoint, test-time trained on each task's demos (--adapt weights)
#   trm_ttt        TRM trained on a task pool, fitted on each task's demos under the blank id
#   priors         ETRM + per-task priors (--priors true)
#   priors_alone   the priors with no network (examples/api/pattern_cells_probe.cpp --tasks)
# Environment (all optional):
#   ETRM_EXT_MODELS="learned learned_ttt trm_ttt priors priors_alone"
#   ETRM_EXT_STEPS=1000        training steps per model
#   ETRM_EXT_SEEDS="0"         one training run per seed and model
#   ETRM_EXT_SIDE=6            canvas side (grid side) of every model
#   ETRM_EXT_ADAPT_STEPS=8     test-time training steps (lr 1e-3)
#   ETRM_EXT_GENERATOR_TASKS=256   tasks of generator-held-out
#   ETRM_EXT_THREADS=0         CPU threads (0: all)
#   ETRM_EXT_OUT=runs/external output directory
#   ETRM_EXT_DOC=docs/results/external.md   the table (written from every run found in ETRM_EXT_OUT)
#   ETRM_BIN, ETRM_PROBE       the binaries (default build/release/examples/{etrm,example_pattern_cells_probe})
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
models="${ETRM_EXT_MODELS:-learned learned_ttt trm_ttt priors priors_alone}"
steps="${ETRM_EXT_STEPS:-1000}"
seeds="${ETRM_EXT_SEEDS:-0}"
side="${ETRM_EXT_SIDE:-6}"
adapt_steps="${ETRM_EXT_ADAPT_STEPS:-8}"
generator_tasks="${ETRM_EXT_GENERATOR_TASKS:-256}"
threads="${ETRM_EXT_THREADS:-0}"
out="${ETRM_EXT_OUT:-runs/external}"
doc="${ETRM_EXT_DOC:-docs/results/external.md}"
bin="${ETRM_BIN:-build/release/examples/etrm}"
probe="${ETRM_PROBE:-build/release/examples/example_pattern_cells_probe}"
data="${ETRM_DATA_DIR:-}"
[ -x "$bin" ] || { echo "run-external-eval: no etrm binary at $bin (cmake --build build/release --target etrm_cli)" >&2; exit 1; }
[ -n "$data" ] || echo "run-external-eval: ETRM_DATA_DIR unset: only the generator-held-out suite" >&2
has() { [[ " $models " == *" $1 "* ]]; }
say() { printf '\n== %s\n' "$*"; }
common=(--grid-side "$side" --steps "$steps" --threads "$threads" --no-progress --eval-batches 2 --log-every 50)
suites=(--external --generator-tasks "$generator_tasks" --threads "$threads" --eval-batches 1 ${data:+--data-dir "$data"})
ttt=(--adapt weights --adapt-steps "$adapt_steps" --adapt-lr 1e-3 --no-controls)
mkdir -p "$out"

train() {  # NAME SEED ARGS...: one training run, kept when already there
  local name="$1" seed="$2"
  shift 2
  local dir="$out/${name}_s$seed"
  if [ -f "$dir/checkpoint.safetensors" ]; then echo "$dir: trained already"; return; fi
  say "train $name, seed $seed, $steps steps"
  "$bin" train "${common[@]}" --seed "$seed" --out "$dir" "$@" >"$dir.train.txt"
  tail -3 "$dir.train.txt"
}
evaluate() {  # RUN ROW ARGS...: the suites for one row of the table into RUN/ROW
  local run="$1" row="$2"
  shift 2
  say "eval $row of $run"
  "$bin" eval --checkpoint "$out/$run/checkpoint.safetensors" "${suites[@]}" --out "$out/$run/$row" "$@" \
    >"$out/$run/$row.txt"
  grep -A1 -E "^(arc1-eval|concept-arc|arc2-eval|generator-held-out)(/ttt)? " "$out/$run/$row.txt" || true
}

for seed in $seeds; do
  if has learned || has learned_ttt; then train learned "$seed"; fi
  has learned && evaluate "learned_s$seed" learned
  has learned_ttt && evaluate "learned_s$seed" learned_ttt "${ttt[@]}" --split generator-held-out
  if has priors; then train priors "$seed" --priors true && evaluate "priors_s$seed" priors; fi
  if has trm_ttt; then
    train trm "$seed" --model trm --task-pool 512
    evaluate "trm_s$seed" trm_ttt "${ttt[@]}" --split generator-held-out
  fi
done
if has priors_alone; then
  say "priors alone (no network) at a ${side}x$side canvas"
  [ -x "$probe" ] || { echo "run-external-eval: no probe at $probe" >&2; exit 1; }
  p="$out/priors_alone"
  mkdir -p "$p"
  # generator-held-out: tasks of the held-out rules drawn once by `etrm generate` (drawn like the
  # suite's, not the same tasks)
  [ -d "$p/generator" ] || "$bin" generate --kind fewshot --split held_out --count "$generator_tasks" --seed 3000017 \
    --min-side 2 --max-side 5 --out "$p/generator" >/dev/null
  rm -f "$p/lines.txt"
  for s in arc1-eval:arc-agi-1/evaluation concept-arc:concept-arc/corpus arc2-eval:arc-agi-2/evaluation generator-held-out:; do
    name="${s%%:*}" folder="${s#*:}"
    dir="$p/generator"
    if [ -n "$folder" ]; then [ -n "$data" ] && [ -d "$data/$folder" ] || continue; dir="$data/$folder"; fi
    echo "$name $("$probe" --tasks "$dir" "$side")" | tee -a "$p/lines.txt"
  done
fi

say "table: $doc"
mkdir -p "$(dirname "$doc")"
/usr/bin/python3 - "$out" "$doc" "$side" "$(date -u +%F)" "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" <<'EOF'
import glob, json, os, re, sys
out, doc, side, date, cpu = sys.argv[1:6]
suites = ["arc1-eval", "concept-arc", "arc2-eval", "generator-held-out"]
rows = []
def pct(x): return f"{100 * x:.2f}%"
for ev in sorted(glob.glob(f"{out}/*_s*/*/eval.json")):
    row = os.path.basename(os.path.dirname(ev))
    run = os.path.basename(os.path.dirname(os.path.dirname(ev)))
    spec = json.load(open(os.path.join(os.path.dirname(os.path.dirname(ev)), "run.json")))
    res = {r["split"]: r for r in json.load(open(ev))}
    suffix = "/ttt" if row.endswith("_ttt") else ""
    for s in suites:
        r = res.get(s + suffix)
        if not r: continue
        a, fit = r["arc"], r["fitting_tasks"]
        ctl = []
        for c in ("/no_demos", "/wrong_demos"):
            cr = res.get(s + c)
            ctl.append(pct(cr["arc"]["ARC/pass@2"]) if cr else "–")
        rows.append([row, "on" if r["priors"] else "off", "yes" if r["eval_demos_in_training"] else "no",
                     f"{r['parameters']:,}", str(spec["budget"]["steps"]), str(spec["seed"]), s, str(a["tasks"]), str(fit),
                     pct(a["ARC/pass@1"]), pct(a["ARC/pass@2"]),
                     pct(a["ARC/pass@2"] * a["tasks"] / fit) if fit else "–", *ctl])
lines = f"{out}/priors_alone/lines.txt"
if os.path.exists(lines):
    for l in open(lines):
        m = re.match(r"(\S+) .*: (\d+) tasks, (\d+) fit .* pass@1 ([\d.]+)% \((\d+)\), pass@2 ([\d.]+)% \((\d+)\)", l)
        if not m: continue
        s, n, fit, p1, _, p2, k2 = m.groups()
        rows.append(["priors_alone", "on (no network)", "no", "0", "0", "–", s, n, fit, p1 + "%", p2 + "%",
                     (f"{100 * int(k2) / int(fit):.2f}%" if int(fit) else "–"), "–", "–"])
head = ["row", "priors", "eval demos in training", "parameters", "steps", "seed", "suite", "tasks", "fit",
        "pass@1", "pass@2", "pass@2 on fit", "no demos pass@2", "wrong demos pass@2"]
md = [f"# External evaluation (generated by tools/run-external-eval.sh)", "",
      f"Regenerated {date} on {cpu} (CPU), canvas {side}×{side}, "
      f"{'/'.join(sorted({r[4] for r in rows if r[4] != '0'})) or 'no'} training steps per model (a step budget: "
      "the machine was shared; the steps and seed of each row are in its columns). Every task counts: one whose test pairs (or every demo) do not fit the canvas is "
      "failed; `fit` says how many fit. pass@k over every task; \"on fit\" over the tasks that fit. ETRM rows vote "
      "over 8 augmentations; `_ttt` rows fit a copy of the weights on each task's demos (TRM under the blank id) "
      "and answer once. `generator-held-out`: tasks of the generator's held-out rules drawn once (no redraw when "
      "the answer does not fit). ConceptARC: the 160 corpus tasks (not the 16 minimal ones); no evaluated task "
      "trains (the models train on the generator only).", "",
      "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
md += ["| " + " | ".join(r) + " |" for r in rows]
open(doc, "w").write("\n".join(md) + "\n")
print("\n".join(md))
EOF
