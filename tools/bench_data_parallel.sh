#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Scaling of data-parallel training on this machine (docs/SCALING.md): one rank x 1 thread at a
# batch of ROWS against `mpirun -np 2` x 1 thread at a global batch of 2 x ROWS (ROWS per rank),
# same preset and task, run alternately REPEATS times. Throughput is the median samples/s of the
# logged steps after the first two; efficiency = samples/s of 2 ranks / (2 x samples/s of 1).
# A third run starts two independent one-rank trainings at once: their summed samples/s is what
# the machine gives two processes right now (on a shared machine, less than twice one), and
# "vs pair" compares the two ranks with that.
#
#   tools/bench_data_parallel.sh [path/to/etrm]      env: PRESET TASK ROWS STEPS REPEATS
set -euo pipefail
bin="${1:-build/release/examples/etrm}"
preset="${PRESET:-sudoku_mlp}"
task="${TASK:-sudoku}"
rows="${ROWS:-4}"
steps="${STEPS:-8}"
repeats="${REPEATS:-2}"
unset ETRM_DATA_DIR  # generated puzzles: no solver run over a puzzle bank at start
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
args=(--task "$task" --model trm --preset "$preset" --steps "$steps" --log-every 1 --eval-batches 0 --no-progress
      --threads 1)
rate() {  # median samples/s of steps 3..STEPS
  /usr/bin/python3 -c 'import json,statistics,sys
r = [j["samples_per_s"] for j in map(json.loads, open(sys.argv[1])) if j["type"] == "train" and j["step"] > 2]
print(statistics.median(r))' "$1"
}
lscpu | grep -E "Model name|^CPU\(s\)" | sed 's/  */ /g'
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "preset $preset, task $task, $rows rows per rank, $steps steps"
printf '%-7s %-9s %-9s %-12s %-11s %-8s %s\n' repeat "1 rank" "2 ranks" "2 x 1 at once" efficiency "vs pair" \
  "load (1 min)"
for i in $(seq "$repeats"); do
  "$bin" train "${args[@]}" --batch-size "$rows" --out "$work/one_$i" >/dev/null
  one=$(rate "$work/one_$i/metrics.jsonl")
  mpirun -np 2 "$bin" train "${args[@]}" --batch-size $((2 * rows)) --out "$work/two_$i" >/dev/null
  two=$(rate "$work/two_$i/metrics.jsonl")
  "$bin" train "${args[@]}" --batch-size "$rows" --out "$work/a_$i" >/dev/null &
  "$bin" train "${args[@]}" --batch-size "$rows" --out "$work/b_$i" --seed 1 >/dev/null
  wait
  pair=$(echo "$(rate "$work/a_$i/metrics.jsonl") + $(rate "$work/b_$i/metrics.jsonl")" | bc -l)
  printf '%-7s %-9.3f %-9.3f %-12.3f %-11.3f %-8.3f %s\n' "$i" "$one" "$two" "$pair" \
    "$(echo "$two / (2 * $one)" | bc -l)" "$(echo "$two / $pair" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
done
