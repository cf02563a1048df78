#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets of the loaders (cmake --preset fuzz: clang, ASan + UBSan, in
# build/fuzz) and runs each for SECONDS (default 30) from its seed corpus in fuzz/corpus/<target>.
#   tools/fuzz.sh                   every target, 30 s each
#   tools/fuzz.sh safetensors 600   one target, 10 minutes
# New inputs libFuzzer finds go to build/fuzz/corpus/<target> (not the repository); a crashing
# input is written to build/fuzz/artifacts/<target>/ and the script exits 1. The last line of each
# run says how many inputs it executed.
set -euo pipefail
cd "$(dirname "$0")/.."
all=(safetensors arc_task config_json sudoku metrics_jsonl)
which=${1:-all}
seconds=${2:-30}
if [ "$which" = all ]; then targets=("${all[@]}"); else targets=("$which"); fi
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (${all[*]})" >&2; exit 2; }
done

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake --preset fuzz "${launcher[@]}" >/dev/null
cmake --build build/fuzz --target "${targets[@]/#/fuzz_}" -j2

status=0
for t in "${targets[@]}"; do
  dict=fuzz/json.dict
  [ "$t" = safetensors ] && dict=fuzz/safetensors.dict
  [ "$t" = sudoku ] && dict=
  work=build/fuzz/corpus/$t
  artifacts=build/fuzz/artifacts/$t
  mkdir -p "$work" "$artifacts"
  log=build/fuzz/$t.log
  # -timeout: an input slower than 10 s is a hang; -rss_limit_mb: a loader that allocates more
  # than 2 GB on inputs of a few kilobytes is a finding too.
  if build/fuzz/fuzz/fuzz_"$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      ${dict:+-dict=$dict} -artifact_prefix="$artifacts/" "$work" "fuzz/corpus/$t" >"$log" 2>&1; then
    echo "fuzz $t: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log"), no findings"
  else
    echo "fuzz $t: FINDING (log $log, inputs in $artifacts/):" >&2
    grep -m5 -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" >&2 || tail -20 "$log" >&2
    status=1
  fi
done
exit $status
