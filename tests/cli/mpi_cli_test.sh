#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `mpirun -np 2 etrm train` on tiny models, one case per ctest test:  mpi_cli_test.sh CASE
#   mpi_equal   two ranks x 1 thread and one process x 2 threads, same global batch: the same
#               parameters and puzzle table after 20 steps (TRM with puzzle ids, then ETRM)
#   mpi_resume  10 steps on 2 ranks resumed on 1 process, and 10 on 1 resumed on 2 ranks, both
#               equal 20 steps in one process
#   mpi_fail    a rank started with other options, and a rank that hangs (SIGSTOP): every rank
#               ends, mpirun exits non-zero within the collective timeout, stderr names the rank
# Environment: ETRM_BIN, ETRM_SRC, WORK, MPIEXEC (OpenMPI's mpirun; OMPI_* variables from ctest).
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
mpiexec="${MPIEXEC:?}"
tiny=(--hidden-size 32 --heads 2 --expansion 2 --layers 1 --H-cycles 1 --L-cycles 1 --halt-max-steps 3
      --puzzle-emb-len 4 --grid-side 8 --max-demos 2 --encoder-layers 1 --latent-layers 1 --batch-size 8
      --no-progress --eval-batches 1 --warmup-steps 2 --log-every 1 --halt-exploration-prob 0.3)
compare() { "$py" "$src/tests/cli/compare_checkpoints.py" "$@"; }
# Parameters (train.params.*) and, for TRM, the puzzle table.
same_weights() { compare "$1" "$2" 1e-5 train.params. model.inner.puzzle_emb.weights; }

case "$case_name" in
mpi_equal)
  for model in trm etrm; do
    args=(--model "$model" --steps 20 "${tiny[@]}")
    [ "$model" = trm ] && args+=(--task-pool 16)
    "$bin" train --out one_$model --threads 2 "${args[@]}" >/dev/null || fail "$model: one process"
    "$mpiexec" -n 2 "$bin" train --out two_$model --threads 1 "${args[@]}" >two_$model.txt ||
      fail "$model: mpirun -n 2"
    grep -q "x 2 ranks" two_$model.txt || fail "$model: the run does not say it trains on 2 ranks"
    [ "$(grep -c '"type":"train"' two_$model/metrics.jsonl)" -eq 20 ] || fail "$model: rank 0 did not log 20 steps"
    same_weights two_$model/checkpoint.safetensors one_$model/checkpoint.safetensors ||
      fail "$model: 2 ranks and 1 process differ"
    # The final evaluation covered the same rows, split over the ranks.
    "$py" -c 'import json,sys
ev = lambda f: {j["split"]: j for j in map(json.loads, open(f)) if j["type"] == "eval"}
a, b = ev(sys.argv[1]), ev(sys.argv[2])
assert a.keys() == b.keys() and a, (a, b)
for s in a:
    assert a[s]["rows"] == b[s]["rows"], (s, a[s], b[s])
    assert abs(a[s]["accuracy"] - b[s]["accuracy"]) < 0.02, (s, a[s], b[s])' two_$model/metrics.jsonl one_$model/metrics.jsonl ||
      fail "$model: the evaluation on 2 ranks differs"
  done
  ;;
mpi_resume)
  args=(--model trm --task-pool 16 "${tiny[@]}")
  "$bin" train --out straight --steps 20 --threads 2 "${args[@]}" >/dev/null || fail "straight run"
  "$mpiexec" -n 2 "$bin" train --out two_then_one --steps 10 --threads 1 "${args[@]}" >/dev/null || fail "2 ranks, 10 steps"
  "$bin" resume --out two_then_one --steps 20 --threads 2 --no-progress >/dev/null || fail "resume on one process"
  "$bin" train --out one_then_two --steps 10 --threads 2 "${args[@]}" >/dev/null || fail "1 process, 10 steps"
  "$mpiexec" -n 2 "$bin" resume --out one_then_two --steps 20 --threads 1 --no-progress >/dev/null ||
    fail "resume on 2 ranks"
  for run in two_then_one one_then_two; do
    same_weights $run/checkpoint.safetensors straight/checkpoint.safetensors || fail "$run differs from the straight run"
    [ "$(grep -c '"type":"train"' $run/metrics.jsonl)" -eq 20 ] || fail "$run: expected 20 train lines"
  done
  "$mpiexec" -n 3 "$bin" resume --out one_then_two --steps 30 --threads 1 --no-progress >/dev/null 2>err3.txt &&
    fail "a global batch of 8 resumed on 3 ranks"
  grep -q "does not split over 3 ranks" err3.txt || fail "3 ranks: the error does not say why"
  ;;
mpi_fail)
  args=(--model trm --task-pool 16 "${tiny[@]}" --threads 1)
  # A rank started with other options: refused on that rank, and the whole job ends.
  start=$SECONDS
  "$mpiexec" -n 1 "$bin" train --out mixed --steps 5 "${args[@]}" : -n 1 "$bin" train --out mixed --steps 5 \
    "${args[@]}" --lr 0.5 >out.txt 2>err.txt
  rc=$?
  cat err.txt
  [ "$rc" -ne 0 ] || fail "mixed options: mpirun exited 0"
  grep -q "etrm: error: rank 1 of 2: rank 1 was started with other options than rank 0" err.txt ||
    fail "mixed options: no one-line error naming rank 1"
  # A rank that stops answering: rank 0 gives up after ETRM_COLLECTIVE_TIMEOUT seconds.
  ETRM_COLLECTIVE_TIMEOUT=5 "$mpiexec" -x ETRM_COLLECTIVE_TIMEOUT -n 2 "$bin" train --out hang --steps 100000 \
    --minutes 3 "${args[@]}" >hang.txt 2>hang_err.txt &
  launcher=$!
  for _ in $(seq 100); do
    [ -s hang/metrics.jsonl ] && break
    sleep 0.2
  done
  [ -s hang/metrics.jsonl ] || fail "hang: training did not start"
  victim=""
  for p in $(pgrep -P "$launcher"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$p
  done
  [ -n "$victim" ] || fail "hang: rank 1's process not found among mpirun's children"
  kill -STOP "$victim"
  stopped=$SECONDS
  for _ in $(seq 300); do
    kill -0 "$launcher" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$launcher" 2>/dev/null; then
    kill -KILL "$victim" "$launcher" 2>/dev/null
    fail "hang: mpirun still runs 60 s after rank 1 stopped"
  fi
  wait "$launcher"
  rc=$?
  kill -KILL "$victim" 2>/dev/null
  cat hang_err.txt
  echo "mpirun exited $rc, $((SECONDS - stopped)) s after rank 1 stopped"
  [ "$rc" -ne 0 ] || fail "hang: mpirun exited 0"
  grep -q "etrm: error: rank 0 of 2: .* did not complete within 5 s" hang_err.txt || fail "hang: no timeout error from rank 0"
  ;;
*)
  fail "unknown case"
  ;;
esac
echo "PASS ($case_name)"
