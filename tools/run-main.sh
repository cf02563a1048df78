#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: build the `etrm` tool, train the learned ETRM (no per-task priors) on the built-in
# few-shot generator for a few minutes, evaluate it on held-out rules (plus training rules and the
# no-demo / wrong-demo controls) and on the external suites (ARC-AGI-1 and ARC-AGI-2 evaluation,
# ConceptARC: pass@2 on the tasks that fit the canvas, with the controls), and write checkpoint,
# metrics, learning curves and pictures of predictions.
#
#   tools/run-main.sh                       # ~12 minutes on 2 cores, output in runs/main
#
# Environment (all optional):
#   ETRM_MAIN_MINUTES=8        training budget in minutes
#   ETRM_MAIN_STEPS=N          training budget in steps (instead of minutes unless both are set)
#   ETRM_MAIN_OUT=runs/main    output directory
#   ETRM_MAIN_EVAL_EVERY=100   evaluation interval in steps during training
#   ETRM_MAIN_EVAL_BATCHES=8   batches per split in the final evaluation
#   ETRM_MAIN_THREADS=0        CPU threads (0: all)
#   ETRM_MAIN_CONFIG=examples/configs/fewshot_etrm.json   defaults of the model and training
#   ETRM_MAIN_ARGS="..."       extra `etrm train` options (e.g. "--hidden-size 64 --lr 3e-4")
#   ETRM_MAIN_DATA_DIR=...     external suites' data (default $ETRM_DATA_DIR; none: only generator-held-out)
#   ETRM_MAIN_SKIP_BUILD=1     use an existing binary (ETRM_BIN, default build/release/examples/etrm)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$(date +%s)
minutes="${ETRM_MAIN_MINUTES:-}"
steps="${ETRM_MAIN_STEPS:-}"
[ -z "$minutes" ] && [ -z "$steps" ] && minutes=8
out="${ETRM_MAIN_OUT:-runs/main}"
eval_every="${ETRM_MAIN_EVAL_EVERY:-100}"
eval_batches="${ETRM_MAIN_EVAL_BATCHES:-8}"
threads="${ETRM_MAIN_THREADS:-0}"
config="${ETRM_MAIN_CONFIG:-examples/configs/fewshot_etrm.json}"
bin="${ETRM_BIN:-build/release/examples/etrm}"
data_dir="${ETRM_MAIN_DATA_DIR:-${ETRM_DATA_DIR:-}}"
python=/usr/bin/python3

say() { printf '\n== %s\n' "$*"; }

if [ "${ETRM_MAIN_SKIP_BUILD:-0}" != 1 ]; then
  say "setup: Debian packages"
  tools/setup.sh
  say "build: cmake --preset release, target etrm_cli"
  cmake --preset release >/dev/null
  cmake --build --preset release --target etrm_cli
  bin=build/release/examples/etrm
fi
[ -x "$bin" ] || { echo "run-main: no etrm binary at $bin" >&2; exit 1; }
build_s=$(( $(date +%s) - start ))

budget=()
[ -n "$minutes" ] && budget+=(--minutes "$minutes")
[ -n "$steps" ] && budget+=(--steps "$steps")
# shellcheck disable=SC2206
extra=(${ETRM_MAIN_ARGS:-})

mkdir -p "$out"
say "train: ETRM on generated few-shot tasks (${minutes:+$minutes min}${minutes:+${steps:+, }}${steps:+$steps steps}), output $out"
"$bin" train --task fewshot --model etrm --config "$config" "${budget[@]}" --eval-every "$eval_every" \
  --eval-batches 2 --threads "$threads" --out "$out" "${extra[@]}"
train_s=$(( $(date +%s) - start - build_s ))

say "eval: held-out rules, training rules, external suites, controls without / with wrong demonstrations"
data=()
[ -n "$data_dir" ] && data+=(--data-dir "$data_dir")
"$bin" eval --checkpoint "$out/checkpoint.safetensors" --eval-batches "$eval_batches" --threads "$threads" \
  --external "${data[@]}" --svg "$out/predictions.svg" --out "$out" | tee "$out/eval_table.txt"

say "pictures"
if "$python" -c "import matplotlib" 2>/dev/null; then
  "$python" tools/plot_metrics.py "$out/metrics.jsonl" "$out/learning_curves.png" --title "ETRM on generated few-shot tasks"
  [ -f "$out/predictions.json" ] && "$python" tools/render_grids.py "$out/predictions.json" "$out/predictions.png"
else
  echo "run-main: matplotlib missing (tools/setup.sh installs python3-matplotlib): no PNGs" >&2
fi

total_s=$(( $(date +%s) - start ))
say "summary"
"$python" - "$out/eval.json" <<'EOF'
import json, sys
rows = {r["split"]: r for r in json.load(open(sys.argv[1]))}
first = next(iter(rows.values()))
print(f"learned ETRM, per-task priors {'ON' if first['priors'] else 'off'}, {first['parameters']:,} parameters")
print(f"{'split':<26} {'exact':>8} {'token acc':>10}")
for name, r in rows.items():
    if "fitting_tasks" not in r:
        print(f"{name:<26} {100 * r['exact_accuracy']:7.2f}% {100 * r['accuracy']:9.2f}%")
suites = [n for n, r in rows.items() if "fitting_tasks" in r and "/" not in n]
if suites:
    print(f"\nexternal suites: pass@2 over every task, and over the tasks that fit the canvas")
    print(f"{'suite':<20} {'tasks':>6} {'fit':>5} {'pass@2':>8} {'on fit':>8} {'no demos':>9} {'wrong demos':>12}")
    def on_fit(r):
        a = r["arc"]
        return 100 * a["ARC/pass@2"] * a["tasks"] / r["fitting_tasks"] if r["fitting_tasks"] else 0.0
    for n in suites:
        r, a = rows[n], rows[n]["arc"]
        ctl = [f"{on_fit(rows[n + c]):8.2f}%" if n + c in rows else f"{'-':>9}" for c in ("/no_demos", "/wrong_demos")]
        print(f"{n:<20} {a['tasks']:>6} {r['fitting_tasks']:>5} {100 * a['ARC/pass@2']:7.2f}% {on_fit(r):7.2f}% "
              f"{ctl[0]} {ctl[1]:>12}")
h, n = rows.get("held_out"), rows.get("held_out/no_demos")
if h and n:
    verdict = "uses" if h["accuracy"] > n["accuracy"] else "does not yet use"
    print(f"held-out token accuracy {100 * h['accuracy']:.2f}% vs {100 * n['accuracy']:.2f}% without demos: "
          f"the model {verdict} the demonstrations")
EOF
echo
echo "time: build ${build_s}s, training ${train_s}s, total ${total_s}s"
echo "files in $out:"
for f in checkpoint.safetensors metrics.jsonl eval.json eval_table.txt predictions.svg predictions.png learning_curves.png; do
  [ -e "$out/$f" ] && echo "  $out/$f"
done
exit 0
