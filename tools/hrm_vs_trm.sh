#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# TRM against HRM on the same CPU budget: for each task the two models train at once, one thread
# each, for the same wall-clock minutes (so both see the same machine), on Sudoku (the puzzle bank
# of ETRM_DATA_DIR, labelled by the project's solver; the generator when absent) and the few-shot
# generator (TRM's task pool and defaults). The two models share every setting but the
# recursion: TRM one 2-block net, 2 x 2 cycles; HRM H_level and L_level of 2 blocks each,
# 2 x 2 cycles, the one-step gradient, P = 1 and the continue target. Prints one markdown row
# per run and split (parameters, steps reached, final evaluation) for docs/RESULTS.md.
#
#   tools/hrm_vs_trm.sh                       # HRM_VS_TRM_MINUTES (default 10) per run
#   HRM_VS_TRM_OUT=runs/hrm_vs_trm HRM_VS_TRM_SEEDS="0 1" ETRM_BIN=build/release/examples/etrm
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="${ETRM_BIN:-build/release/examples/etrm}"
minutes="${HRM_VS_TRM_MINUTES:-10}"
out="${HRM_VS_TRM_OUT:-runs/hrm_vs_trm}"
read -r -a seeds <<<"${HRM_VS_TRM_SEEDS:-0}"
mkdir -p "$out"
# Sudoku: the CLI's small defaults with a short EMA (0.999 would leave the weights near their start).
sudoku=(--task sudoku --hidden-size 64 --heads 4 --expansion 2 --layers 2 --H-cycles 2 --L-cycles 2
        --halt-max-steps 4 --batch-size 32 --ema-rate 0.99 --eval-batches 8)
fewshot=(--task fewshot --task-pool 256 --eval-batches 8)
for seed in "${seeds[@]}"; do
  for task in sudoku fewshot; do
    args=("${sudoku[@]}")
    [ "$task" = fewshot ] && args=("${fewshot[@]}")
    pids=()
    for model in trm hrm; do
      run="$out/${task}_${model}_s$seed"
      [ -f "$run/checkpoint.safetensors" ] && continue
      echo "== $task $model seed $seed ($minutes min)" >&2
      "$bin" train --model "$model" "${args[@]}" --minutes "$minutes" --seed "$seed" --threads 1 --no-progress \
        --log-every 50 --out "$run" >"$run.log" 2>&1 &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
  done
done
/usr/bin/python3 - "$out" <<'EOF'
import json, pathlib, re, sys
out = pathlib.Path(sys.argv[1])
print("| task (seed) | model | parameters | steps in the budget | train s | loss (last log) | split | token acc. | exact |")
print("|---|---|---|---|---|---|---|---|---|")
for log in sorted(out.glob("*.log")):
    run = out / log.stem
    params = re.search(r"(\d+) parameters", log.read_text()).group(1)
    lines = [json.loads(l) for l in open(run / "metrics.jsonl")]
    train = [l for l in lines if l["type"] == "train"]
    task, model, seed = log.stem.split("_")
    evals = [l for l in lines if l["type"] == "eval"]
    for e in (l for l in evals if l["step"] == evals[-1]["step"]):  # the final evaluation
        print(f"| {task} ({seed}) | {model} | {int(params):,} | {e['step']} | {e['elapsed_s']:.0f} "
              f"| {train[-1]['loss']:.3f} | {e['split']} | {100 * e['accuracy']:.1f}% | {100 * e['exact_accuracy']:.1f}% |")
EOF
