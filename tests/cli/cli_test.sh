#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CLI tests of the `etrm` tool, one case per ctest test:  cli_test.sh CASE
# Environment: ETRM_BIN (the binary), ETRM_SRC (repository root), WORK (scratch directory).
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh"
# A tiny fewshot model: seconds per run on two cores.
tiny=(--hidden-size 32 --heads 2 --expansion 2 --layers 1 --H-cycles 1 --L-cycles 1 --halt-max-steps 2
      --puzzle-emb-len 4 --grid-side 8 --max-demos 2 --encoder-layers 1 --latent-layers 1 --batch-size 8
      --threads 2 --no-progress --eval-batches 1 --warmup-steps 2)

train_lines() { grep -c '"type":"train"' "$1"; }
# The loss of each training line, "step loss" per line.
losses() { "$py" -c 'import json,sys
for l in open(sys.argv[1]):
    j = json.loads(l)
    if j["type"] == "train": print(j["step"], repr(j["loss"]))' "$1"; }

# expect_error NAME CMD...: non-zero exit (no crash), exactly one stderr line naming NAME.
expect_error() {
  local name="$1"
  shift
  "$@" >out.txt 2>err.txt
  local rc=$?
  echo "exit $rc: $(cat err.txt)"
  [ "$rc" -ne 0 ] || fail "'$*' succeeded"
  [ "$rc" -lt 128 ] || fail "'$*' crashed (exit $rc)"
  [ "$(wc -l <err.txt)" -eq 1 ] || fail "stderr is not one line: $(cat err.txt)"
  grep -q -- "$name" err.txt || fail "message does not name $name"
  grep -q "^etrm: error: " err.txt || fail "message lacks the 'etrm: error:' prefix"
}

case "$case_name" in
help)
  "$bin" --help >/dev/null || fail "etrm --help"
  for sub in train resume eval solve generate infer; do
    "$bin" "$sub" --help >help.txt || fail "etrm $sub --help"
    grep -q -- "--" help.txt || fail "$sub --help lists no options"
  done
  "$bin" train --help >train_help.txt || fail "etrm train --help"
  for opt in --grid-side --precision --leave-one-out --adapt-steps --adapt --adapt-votes --adapt-augment --matching-init \
    --curriculum-steps --curriculum-families --encoder-lr-scale --readout-weight --neighbour-cells --neighbour-rays \
    --neighbour-relations --pattern-cells; do
    grep -q -- "$opt" train_help.txt || fail "train --help lacks $opt"
  done
  "$bin" >/dev/null 2>&1 && fail "no subcommand must fail"
  true
  ;;
generate)
  "$bin" generate --kind fewshot --count 4 --split held_out --out tasks --seed 3 || fail "fewshot"
  [ "$(ls tasks/held_out_3_*.json | wc -l)" -eq 4 ] || fail "expected 4 task files"
  "$py" -c 'import json,sys; t=json.load(open(sys.argv[1])); assert t["train"] and t["test"] and "output" in t["test"][0]' \
    tasks/held_out_3_00000.json || fail "task JSON"
  [ "$(sed -n 2p tasks/rules.tsv | cut -f1)" = "held_out_3_00000.json" ] || fail "rules.tsv"
  "$bin" generate --kind sudoku --count 3 --out sudoku.csv --seed 1 || fail "sudoku"
  [ "$(head -1 sudoku.csv)" = "source,question,answer,rating" ] || fail "sudoku header"
  [ "$(wc -l <sudoku.csv)" -eq 4 ] || fail "sudoku rows"
  "$bin" generate --kind maze --count 2 --maze-size 9 --out mazes || fail "maze"
  [ -f mazes/maze_0_00001.json ] && [ -f mazes/maze_0_00001.txt ] || fail "maze files"
  ;;
train)
  "$bin" train --task fewshot --model etrm --steps 5 --log-every 1 --out run "${tiny[@]}" || fail "train"
  [ -f run/checkpoint.safetensors ] || fail "no checkpoint"
  [ "$(train_lines run/metrics.jsonl)" -eq 5 ] || fail "expected 5 train lines"
  grep -q '"split":"held_out"' run/metrics.jsonl || fail "no held_out evaluation line"
  "$py" -c 'import json,sys
for l in open(sys.argv[1]):
    j = json.loads(l)
    for k in ("step", "loss", "accuracy", "exact_accuracy", "q_halt_accuracy", "elapsed_s"): assert k in j, k
    if j["type"] == "train":
        for k in ("lr", "steps", "samples_per_s"): assert k in j, k' run/metrics.jsonl || fail "metrics fields"
  "$bin" train --task fewshot --model etrm --steps 3 --log-every 1 --precision bf16 --out run_bf16 "${tiny[@]}" \
    >bf16.txt || fail "train with bf16 GEMMs"
  grep -q "bf16 GEMMs" bf16.txt || fail "bf16 run does not say it uses bf16 GEMMs"
  [ "$(train_lines run_bf16/metrics.jsonl)" -eq 3 ] || fail "bf16: expected 3 train lines"
  losses run_bf16/metrics.jsonl | "$py" -c 'import math,sys
assert all(math.isfinite(float(l.split()[1])) for l in sys.stdin)' || fail "bf16: non-finite loss"
  "$bin" train --precision tf32 --steps 1 --out tf32 "${tiny[@]}" >/dev/null 2>err.txt && fail "--precision tf32 accepted"
  grep -q -- "--precision" err.txt || fail "--precision tf32: the usage error does not name the option"
  # --init-from: a new run starts from trained weights (its first loss is that of the trained
  # model, below a fresh start's), remembers where it started, and refuses another architecture.
  "$bin" train --steps 30 --out pre "${tiny[@]}" --lr 3e-3 >/dev/null || fail "pretraining for --init-from"
  "$bin" train --steps 1 --log-every 1 --out fresh "${tiny[@]}" >/dev/null || fail "fresh run"
  "$bin" train --steps 1 --log-every 1 --init-from pre/checkpoint.safetensors --out tuned "${tiny[@]}" >/dev/null ||
    fail "--init-from"
  "$py" -c 'import sys
first = lambda f: float(open(f).readline().split()[1])
fresh, tuned = first(sys.argv[1]), first(sys.argv[2])
assert tuned < fresh - 0.2, (fresh, tuned)' <(losses fresh/metrics.jsonl) <(losses tuned/metrics.jsonl) ||
    fail "--init-from: the first loss is not that of the trained weights"
  grep -q '"init_from": "pre/checkpoint.safetensors"' tuned/run.json || fail "run.json lacks init_from"
  expect_error pre/checkpoint.safetensors "$bin" train --steps 1 --init-from pre/checkpoint.safetensors --out bad \
    "${tiny[@]}" --hidden-size 16
  ;;
tasks)  # every task x model kind trains (TRM on fewshot with a task pool, sudoku, maze with mlp_t, ARC both ways)
  "$bin" train --model trm --task-pool 16 --steps 2 --out trm "${tiny[@]}" || fail "trm fewshot"
  # TRM's test-time training: fitted on each held-out task's demos under the blank id.
  "$bin" eval --checkpoint trm/checkpoint.safetensors --split held_out --eval-batches 1 --threads 2 \
    --adapt weights --adapt-steps 1 --adapt-supervision-steps 1 --out trm_ttt >trm_ttt.txt || fail "trm eval --adapt weights"
  grep -q "^held_out/ttt " trm_ttt.txt || fail "trm: table lacks held_out/ttt"
  expect_error "adapt context" "$bin" eval --checkpoint trm/checkpoint.safetensors --adapt-steps 1 --out trm_bad
  "$bin" train --model trm --task-pool 16 --curriculum-steps 1 --curriculum-families color_map,denoise,dihedral,gravity --steps 2 --out trm_cur "${tiny[@]}" || fail "trm curriculum"
  "$bin" train --model etrm --curriculum-steps 1 --curriculum-families color_map,denoise --steps 2 --out etrm_cur \
    "${tiny[@]}" || fail "etrm curriculum"
  "$py" -c 'import json,sys
d = json.load(open(sys.argv[1]))["data"]
assert d["curriculum_steps"] == 1 and d["curriculum_families"] == ["color_map", "denoise"], d' etrm_cur/run.json \
    || fail "run.json lacks the curriculum"
  expect_error encoder-lr-scale "$bin" train --encoder-lr-scale -1 --steps 1 --out bad_scale "${tiny[@]}"
  "$bin" train --model etrm --readout-weight 1 --steps 2 --log-every 1 --out etrm_readout "${tiny[@]}" || fail "readout"
  grep -q '"readout_loss"' etrm_readout/metrics.jsonl || fail "readout: no readout_loss in the log"
  "$py" -c 'import json,sys; assert json.load(open(sys.argv[1]))["encoder"]["readout_weight"] == 1' etrm_readout/run.json \
    || fail "readout: run.json lacks readout_weight"
  "$bin" train --model etrm --query-attention false --steps 1 --out etrm_no_query "${tiny[@]}" \
    || fail "--query-attention false must switch the default readout and alignment search off"
  "$py" -c 'import json,sys; e = json.load(open(sys.argv[1]))["encoder"]; assert not e["search_alignment"], e' \
    etrm_no_query/run.json || fail "--query-attention false left the alignment search on"
  "$py" -c 'import json,sys; e = json.load(open(sys.argv[1]))["encoder"]; assert not e["pattern_cells"], e' \
    etrm_no_query/run.json || fail "--query-attention false left the pattern cells on"
  "$py" -c 'import json,sys; e = json.load(open(sys.argv[1]))["encoder"]; assert not e["search_alignment"], e' \
    etrm_readout/run.json || fail "the few-shot defaults (the learned ETRM) search the alignment"
  "$py" -c 'import json,sys; e = json.load(open(sys.argv[1]))["encoder"]; assert e["neighbour_cells"] and not e["neighbour_rays"], e' \
    etrm_readout/run.json || fail "the few-shot defaults embed the adjacent neighbour cells"
  "$py" -c 'import json,sys; e = json.load(open(sys.argv[1]))["encoder"]; assert not e["pattern_cells"], e' \
    etrm_readout/run.json || fail "the few-shot defaults (the learned ETRM) embed the pattern cells"
  expect_error "search_alignment needs query_attention" "$bin" train --query-attention false --search-alignment true \
    --steps 1 --out bad_alignment "${tiny[@]}"
  # An encoder option that needs another: written to run.json when set; a later run that switches
  # what it needs off switches it off too; set together with that switched off, refused in one line.
  check_dependent_option() {  # option key, its flag, the needed option's key and flag, extra flags
    local key="$1" flag="$2" needs="$3" needs_flag="$4"
    shift 4
    "$bin" train --model etrm "$@" "$flag" true --steps 1 --out "etrm_$key" "${tiny[@]}" || fail "$flag"
    "$bin" train --config "etrm_$key/run.json" "$needs_flag" false --steps 1 --out "etrm_no_$key" "${tiny[@]}" \
      || fail "$needs_flag false must switch $key of the configuration off"
    "$py" -c 'import json,sys; e = json.load(open(sys.argv[1]))["encoder"]; assert e[sys.argv[2]], e' \
      "etrm_$key/run.json" "$key" || fail "run.json lacks $key"
    "$py" -c 'import json,sys; e = json.load(open(sys.argv[1]))["encoder"]; assert not e[sys.argv[2]], e' \
      "etrm_no_$key/run.json" "$key" || fail "$needs_flag false left $key on"
    expect_error "$key needs $needs" "$bin" train "$needs_flag" false "$flag" true --steps 1 --out "bad_$key" "${tiny[@]}"
  }
  check_dependent_option candidate_cells --candidate-cells search_alignment --search-alignment --search-alignment true
  check_dependent_option neighbour_rays --neighbour-rays neighbour_cells --neighbour-cells --neighbour-cells true
  check_dependent_option neighbour_relations --neighbour-relations neighbour_cells --neighbour-cells \
    --neighbour-cells true
  check_dependent_option pattern_cells --pattern-cells query_attention --query-attention
  expect_error readout_weight "$bin" train --query-attention false --readout-weight 1 --steps 1 --out bad_readout \
    "${tiny[@]}"
  expect_error "rule family 'colour_map'" "$bin" train --curriculum-steps 1 --curriculum-families colour_map \
    --steps 1 --out bad_cur "${tiny[@]}"
  # Families without a held-out rule have no held_out split; held-out families alone cannot train.
  "$bin" train --model etrm --families gravity --steps 1 --eval-batches 1 --out etrm_gravity "${tiny[@]}" \
    >gravity.txt || fail "--families gravity"
  grep -q "^train_rules " gravity.txt || fail "--families gravity: no train_rules row"
  ! grep -q "^held_out " gravity.txt || fail "--families gravity: a held_out row without held-out rules"
  expect_error "--families" "$bin" train --families keep_color --steps 1 --out bad_families "${tiny[@]}"
  "$bin" train --task sudoku --model trm --sudoku-clues 40 --steps 2 --out sudoku "${tiny[@]}" || fail "sudoku"
  "$bin" train --task maze --model trm --maze-size 7 --mlp-t --steps 2 --out maze "${tiny[@]}" || fail "maze"
  "$bin" generate --kind fewshot --count 8 --out arc/arc-agi-1/training --seed 5 --max-side 6 >/dev/null
  "$bin" generate --kind fewshot --count 2 --split held_out --out arc/arc-agi-1/evaluation --seed 6 --max-side 6 >/dev/null
  "$bin" train --task arc --model trm --arc-augmentations 1 --data-dir arc --steps 1 --out arc_trm "${tiny[@]}" \
    --batch-size 4 || fail "arc trm"
  grep -q '"ARC/pass@1"' arc_trm/metrics.jsonl || fail "arc trm: no pass@1"
  [ -f arc_trm/submission.json ] || fail "arc trm: no submission.json"
  ETRM_DATA_DIR=arc "$bin" train --task arc --model etrm --steps 1 --out arc_etrm "${tiny[@]}" --batch-size 4 || fail "arc etrm"
  "$bin" eval --checkpoint arc_etrm/checkpoint.safetensors --augmentations 2 --threads 2 || fail "arc etrm eval"
  # Test-time training on ARC: the fitted copy's answers under --adapt-votes augmentations vote for pass@k.
  "$bin" eval --checkpoint arc_etrm/checkpoint.safetensors --no-controls --adapt weights --adapt-steps 1 \
    --adapt-supervision-steps 1 --adapt-votes 2 --threads 2 --out arc_ttt >arc_ttt.txt || fail "arc etrm eval --adapt weights"
  grep -A2 "^arc-eval/ttt " arc_ttt.txt | grep -q "(2 tasks, 2 answered, 2 fit the canvas)" || fail "arc ttt: no pass@k over the 2 tasks"
  [ -f arc_ttt/submission.json ] && [ -f arc_ttt/arc-eval.ttt/submission.json ] ||
    fail "arc ttt: the plain and the adapted split need a submission.json each"
  # A smaller canvas: only what fits trains; evaluation tasks that do not fit are scored, unanswered.
  "$bin" generate --kind fewshot --count 8 --out small/arc-agi-1/training --seed 5 --max-side 4 >/dev/null
  "$bin" generate --kind fewshot --count 2 --split held_out --out small/arc-agi-1/evaluation --seed 6 --min-side 6 \
    --max-side 6 >/dev/null
  "$bin" train --task arc --model etrm --arc-canvas-side 5 --data-dir small --steps 1 --out arc_small "${tiny[@]}" \
    --batch-size 4 >small.txt || fail "arc etrm --arc-canvas-side 5"
  grep -q "(2 tasks, 0 answered, 0 fit the canvas)" small.txt || fail "--arc-canvas-side 5: the 6x6 evaluation tasks were answered"
  grep -q '"seq_len": 25' arc_small/run.json || fail "--arc-canvas-side 5: seq_len is not 25"
  expect_error arc-canvas-side "$bin" train --task arc --model trm --arc-canvas-side 5 --data-dir small --steps 1 \
    --out arc_small_trm "${tiny[@]}"
  # ARC-AGI-2 folders: a run reads arc-agi-2/{training,evaluation} and the checkpoint remembers it
  "$bin" generate --kind fewshot --count 4 --out arc/arc-agi-2/training --seed 7 --max-side 6 >/dev/null
  "$bin" generate --kind fewshot --count 3 --split held_out --out arc/arc-agi-2/evaluation --seed 8 --max-side 6 >/dev/null
  "$bin" train --task arc --model etrm --arc-version 2 --data-dir arc --steps 1 --out arc2 "${tiny[@]}" --batch-size 4 \
    >arc2.txt || fail "arc-agi-2 etrm"
  grep -q "(3 tasks, " arc2.txt || fail "arc-agi-2: expected the 3 evaluation tasks of arc-agi-2"
  "$bin" eval --checkpoint arc2/checkpoint.safetensors --augmentations 1 --threads 2 >arc2_eval.txt || fail "arc2 eval"
  grep -q "(3 tasks, 3 answered, 3 fit the canvas)" arc2_eval.txt || fail "arc-agi-2 eval: expected the 3 evaluation tasks"
  expect_error arc-version "$bin" train --task arc --model etrm --arc-version 3 --data-dir arc --steps 1 --out arc3 "${tiny[@]}"
  ;;
priors)  # the learned default runs no per-task search (the priors' counter stays 0); --priors runs them
  "$bin" train --steps 2 --out learned "${tiny[@]}" >learned.txt || fail "train the default"
  grep -q "model etrm (learned, no per-task priors)" learned.txt || fail "the training header does not say: no priors"
  "$bin" eval --checkpoint learned/checkpoint.safetensors --eval-batches 1 --threads 2 --out learned_eval >/dev/null ||
    fail "eval the default"
  "$bin" train --steps 2 --priors true --out priors "${tiny[@]}" >priors.txt || fail "train with --priors true"
  grep -q "model etrm + per-task priors" priors.txt || fail "the training header does not say: priors"
  "$bin" eval --checkpoint priors/checkpoint.safetensors --eval-batches 1 --threads 2 --out priors_eval >/dev/null ||
    fail "eval with priors"
  "$py" -c 'import json,sys
learned, priors = (json.load(open(f)) for f in sys.argv[1:3])
assert len(learned) == 6 and all(r["prior_search_rows"] == 0 and r["priors"] is False for r in learned), learned
assert all(r["prior_search_rows"] > 0 and r["priors"] is True for r in priors), priors' \
    learned_eval/eval.json priors_eval/eval.json || fail "prior_search_rows: the default searched, or --priors did not"
  "$py" -c 'import json,sys; e = json.load(open(sys.argv[1]))["encoder"]; assert e["search_alignment"] and e["pattern_cells"], e' \
    priors/run.json || fail "--priors true: run.json lacks the priors"
  ;;
external)  # every task of a suite counts; one that does not fit the canvas (grid side 8) is failed
  mkdir -p data/arc-agi-1/evaluation data/arc-agi-1/training data/concept-arc/corpus/Copy
  "$py" - <<'PY' || fail "writing the suites"
import json
g = lambda n, c: [[c] * n for _ in range(n)]
def task(name, demo, test):
    json.dump({"train": [{"input": i, "output": o} for i, o in demo], "test": [{"input": i, "output": o} for i, o in test]},
              open(name, "w"))
e = "data/arc-agi-1/evaluation/"
task(e + "fits.json", [(g(3, 1), g(3, 2)), (g(2, 1), g(2, 2))], [(g(4, 1), g(4, 2))])
task(e + "big_output.json", [(g(2, 1), g(4, 1))], [(g(5, 1), g(10, 1))])   # the answer is 10x10
task(e + "big_input.json", [(g(2, 3), g(2, 4))], [(g(9, 3), g(2, 4))])     # the query is 9x9
task("data/concept-arc/corpus/Copy/Copy1.json", [(g(2, 5), g(2, 6))], [(g(3, 5), g(3, 6)), (g(2, 5), g(2, 6))])
t = "data/arc-agi-1/training/"
task(t + "fits.json", [(g(3, 7), g(3, 8)), (g(2, 7), g(2, 8))], [(g(4, 7), g(4, 8))])            # an evaluated id
task(t + "other.json", [(g(3, 2), g(3, 3)), (g(4, 1), g(4, 2))], [(g(2, 2), g(2, 3))])          # a test output
task(t + "clean.json", [(g(3, 6), g(3, 7)), (g(2, 6), g(2, 7))], [(g(4, 6), g(4, 7))])
PY
  "$bin" train --steps 2 --out run "${tiny[@]}" >/dev/null || fail "train"
  "$bin" eval --checkpoint run/checkpoint.safetensors --external --generator-tasks 8 --data-dir data --threads 2 \
    --eval-batches 1 --out ext >ext.txt || fail "eval --external"
  cat ext.txt
  grep -A2 "^arc1-eval " ext.txt | grep -q "(3 tasks, 1 answered, 1 fit the canvas)" || fail "arc1-eval: 3 tasks, 1 fits"
  grep -A2 "^concept-arc " ext.txt | grep -q "(1 tasks, 1 answered, 1 fit the canvas)" || fail "concept-arc"
  grep -A2 "^generator-held-out " ext.txt | grep -q "(8 tasks, " || fail "generator-held-out: 8 tasks"
  ! grep -q "^arc2-eval" ext.txt || fail "arc2-eval evaluated without its folder"
  for s in arc1-eval/no_demos arc1-eval/wrong_demos concept-arc/no_demos; do
    grep -q "^$s " ext.txt || fail "table lacks the control $s"
  done
  "$py" -c 'import json,sys
rows = {r["split"]: r for r in json.load(open(sys.argv[1]))}
a = rows["arc1-eval"]
assert a["fitting_tasks"] == 1 and a["arc"]["tasks"] == 3 and a["arc"]["answered_tasks"] == 1, a
assert a["arc"]["ARC/pass@2"] <= 1 / 3, a' ext/eval.json || fail "eval.json: the non-fitting tasks are not failed"
  [ -f ext/arc1-eval/submission.json ] || fail "no submission.json of arc1-eval"
  # TRM fitted on each task's demos under the blank id, on a suite (the ablation's baseline)
  "$bin" train --model trm --task-pool 16 --steps 2 --out trm "${tiny[@]}" >/dev/null || fail "train trm"
  "$bin" eval --checkpoint trm/checkpoint.safetensors --split generator-held-out --generator-tasks 4 --no-controls \
    --adapt weights --adapt-steps 1 --adapt-supervision-steps 1 --threads 2 --out trm_ttt >trm_ttt.txt ||
    fail "trm eval --adapt weights on a suite"
  grep -A1 "^generator-held-out/ttt " trm_ttt.txt | grep -q "(4 tasks, " || fail "trm: no pass@k of the fitted copies"
  # ARC training: nothing of an evaluated task's test pairs (the id 'fits', the output of 'other'),
  # no evaluation demos unless asked.
  "$bin" train --task arc --model etrm --arc-canvas-side 8 --data-dir data --steps 1 --out arc "${tiny[@]}" \
    --batch-size 4 >arc.txt || fail "train on ARC"
  grep -q "left out: 1 of 3 training tasks (an evaluated task's id or pairs), 1 pairs (output = an evaluated test output); evaluation demos in training: no" \
    arc.txt || fail "the training pool holds an evaluated test pair: $(grep 'training pool' arc.txt)"
  "$bin" train --task arc --model etrm --arc-canvas-side 8 --data-dir data --eval-demos-in-training true --steps 1 \
    --out arc_demos "${tiny[@]}" --batch-size 4 >arc_demos.txt || fail "--eval-demos-in-training"
  grep -q "evaluation demos in training: yes" arc_demos.txt || fail "--eval-demos-in-training: not said"
  grep -q '"eval_demos_in_training":false' arc/metrics.jsonl || fail "metrics lack eval_demos_in_training"
  grep -q '"eval_demos_in_training":true' arc_demos/metrics.jsonl || fail "metrics lack eval_demos_in_training"
  ;;
resume)  # 6 steps straight == 3 steps + resume to 6
  args=(--steps 6 --log-every 1 --eval-every 2 "${tiny[@]}")
  "$bin" train --out straight "${args[@]}" >/dev/null || fail "straight run"
  "$bin" train --out split "${args[@]}" --steps 3 >/dev/null || fail "first half"
  "$bin" resume --out split --steps 6 --no-progress --threads 2 >/dev/null || fail "resume"
  losses straight/metrics.jsonl >a.txt
  losses split/metrics.jsonl >b.txt
  cat a.txt
  [ "$(wc -l <a.txt)" -eq 6 ] || fail "expected 6 train lines"
  "$py" -c 'import sys
a = [l.split() for l in open(sys.argv[1])]; b = [l.split() for l in open(sys.argv[2])]
assert [x[0] for x in a] == [x[0] for x in b], (a, b)
for (s, x), (_, y) in zip(a, b):
    assert abs(float(x) - float(y)) <= 1e-6 * max(1.0, abs(float(x))), f"step {s}: {x} vs {y}"' a.txt b.txt ||
    fail "resumed run differs"
  ;;
eval)
  "$bin" train --steps 3 --out run "${tiny[@]}" >/dev/null || fail "train"
  "$bin" eval --checkpoint run/checkpoint.safetensors --eval-batches 1 --threads 2 --svg run/pred.svg >table.txt || fail "eval"
  cat table.txt
  for s in train_rules held_out held_out/no_demos held_out/wrong_demos; do
    grep -q "^$s " table.txt || fail "table lacks $s"
  done
  [ -f run/eval.json ] && [ -f run/eval_held_out.jsonl ] || fail "result files"
  # The collapse monitor: both measures, on the plain split only (not on the controls).
  "$py" -c 'import json, sys
rows = {r["split"]: r for r in json.load(open(sys.argv[1]))}
for name in ("train_rules", "held_out"):
    assert rows[name]["demo_dependence"] > 0 and rows[name]["context_spread"] >= 0, rows[name]
assert "demo_dependence" not in rows["held_out/wrong_demos"]' run/eval.json || fail "collapse monitor in eval.json"
  grep -q "<svg" run/pred.svg || fail "no SVG"
  [ -f run/pred.json ] || fail "no prediction data next to the SVG"
  "$bin" eval --checkpoint run/checkpoint.safetensors --split held_out --no-controls --eval-batches 1 --threads 2 \
    --out only >table2.txt || fail "eval --split"
  grep -q "^held_out " table2.txt && ! grep -q "^train_rules" table2.txt || fail "--split held_out"
  "$bin" eval --checkpoint run/checkpoint.safetensors --split held_out --no-controls --eval-batches 1 --threads 2 \
    --adapt-steps 2 --out tta >table3.txt || fail "eval --adapt-steps"
  cat table3.txt
  grep -q "^held_out/tta " table3.txt || fail "table lacks held_out/tta"
  grep -q '"split":"held_out/tta"' tta/eval.jsonl || fail "eval.jsonl lacks held_out/tta"
  "$bin" eval --checkpoint run/checkpoint.safetensors --split held_out --no-controls --eval-batches 1 --threads 2 \
    --adapt weights --adapt-steps 1 --adapt-supervision-steps 1 --adapt-skip-solved false --out ttt >table4.txt \
    || fail "eval --adapt weights"
  grep -q "^held_out/ttt " table4.txt || fail "table lacks held_out/ttt"
  # pass@2 of the fit: rows that the adapted or the unadapted answer gets exactly right.
  either=$(paste -d'|' ttt/eval_held_out.jsonl ttt/eval_held_out.ttt.jsonl | grep -c '"exact":true')
  want=$(awk -v n="$either" -v t="$(wc -l <ttt/eval_held_out.jsonl)" 'BEGIN { printf "%.2f%%", 100 * n / t }')
  grep -A1 "^held_out/ttt " table4.txt | grep -q "pass@2 $want (the unadapted answer as the second attempt)" ||
    fail "held_out/ttt: pass@2 is not $want"
  grep -q '"pass@2_with_unadapted"' ttt/eval.json || fail "eval.json lacks pass@2_with_unadapted"
  "$bin" eval --checkpoint run/checkpoint.safetensors --split held_out --no-controls --eval-batches 1 --threads 2 \
    --adapt weights --adapt-steps 1 --adapt-supervision-steps 1 --adapt-votes 4 --out votes >table5.txt \
    || fail "eval --adapt-votes"
  [ "$(grep "^held_out/ttt " table5.txt | awk '{print $2}')" = "$(grep "^held_out/ttt " table4.txt | awk '{print $2}')" ] \
    || fail "--adapt-votes changed the number of rows"
  "$bin" eval --checkpoint run/checkpoint.safetensors --adapt weights --adapt-votes 0 --out bad >/dev/null 2>&1 \
    && fail "--adapt-votes 0 accepted"
  [ -f ttt/eval_held_out.ttt.jsonl ] || fail "no per-row file of held_out/ttt"
  "$bin" eval --checkpoint run/checkpoint.safetensors --adapt nothing --out bad >/dev/null 2>&1 && fail "--adapt nothing accepted"
  ;;
solve)
  "$bin" generate --kind fewshot --count 1 --split held_out --out tasks --max-side 5 >/dev/null || fail "generate"
  "$bin" train --steps 2 --out run "${tiny[@]}" >/dev/null || fail "train"
  "$bin" solve --checkpoint run/checkpoint.safetensors --task tasks/held_out_0_00000.json --svg solve.svg \
    --augmentations 3 --out sol --threads 2 >solve.txt || fail "solve"
  cat solve.txt
  grep -q "attempt_1" solve.txt && grep -q "attempt_2" solve.txt || fail "no attempts printed"
  grep -q "<svg" solve.svg || fail "no SVG"
  "$py" -c 'import json,sys; s=json.load(open(sys.argv[1])); (k,v),=s.items(); assert "attempt_2" in v[0]' sol/submission.json ||
    fail "submission.json"
  # Test-time training before answering: the fit lowers the task's leave-one-out loss.
  "$bin" solve --checkpoint run/checkpoint.safetensors --task tasks/held_out_0_00000.json --augmentations 2 \
    --adapt-steps 5 --adapt-lr 1e-2 --adapt-supervision-steps 1 --threads 2 >solve_ttt.txt || fail "solve --adapt-steps"
  cat solve_ttt.txt
  "$py" -c 'import re,sys
m = re.search(r"test-time training: 5 steps on the demos, leave-one-out loss ([0-9.]+) -> ([0-9.]+)", open(sys.argv[1]).read())
assert m and float(m.group(2)) < float(m.group(1)), m and m.groups()' solve_ttt.txt || fail "solve --adapt-steps: no fit"
  grep -q "attempt_2" solve_ttt.txt || fail "solve --adapt-steps: no attempts"
  # TRM reads no demos: it solves only with test-time training (on the demos, under the blank id).
  "$bin" train --model trm --task-pool 16 --steps 2 --out trm "${tiny[@]}" >/dev/null || fail "train trm"
  expect_error adapt-steps "$bin" solve --checkpoint trm/checkpoint.safetensors --task tasks/held_out_0_00000.json
  "$bin" solve --checkpoint trm/checkpoint.safetensors --task tasks/held_out_0_00000.json --augmentations 2 \
    --adapt-steps 3 --adapt-supervision-steps 1 --threads 2 >solve_trm.txt || fail "solve trm --adapt-steps"
  grep -q "test-time training: 3 steps on the demos" solve_trm.txt && grep -q "attempt_2" solve_trm.txt ||
    fail "solve trm --adapt-steps: no fit or no attempts"
  # A folder: one line per task, a task too large for the canvas unanswered, one submission.json.
  "$bin" generate --kind fewshot --count 3 --split held_out --out folder --max-side 5 >/dev/null || fail "generate"
  "$py" -c 'import json; print(json.dumps({"train": [{"input": [[1]*9]*9, "output": [[2]]}], "test": [{"input": [[1]], "output": [[2]]}]}))' \
    >folder/big.json
  "$bin" solve --checkpoint run/checkpoint.safetensors --task folder --augmentations 2 --out sol_folder --threads 2 \
    >solve_folder.txt || fail "solve a folder"
  cat solve_folder.txt
  grep -q "^big: not answered" solve_folder.txt || fail "solve a folder: the large task"
  [ "$(grep -c "^held_out_0_0000[0-2]: 1 test input(s), attempt_1 votes [12], pass@2 [01]/1" solve_folder.txt)" -eq 3 ] ||
    fail "solve a folder: a line per task"
  grep -q "^4 tasks, 3 answered; with known answers (4): pass@1 " solve_folder.txt || fail "solve a folder: summary"
  "$py" -c 'import json,sys; s=json.load(open(sys.argv[1])); assert sorted(s) == ["big"] + ["held_out_0_%05d" % i for i in range(3)], s.keys(); assert s["big"] == [{"attempt_1": [[0]], "attempt_2": [[0]]}]' \
    sol_folder/submission.json || fail "solve a folder: submission.json"
  ;;
api_examples)
  # The evaluated rows as task files (--save-tasks), answered by the API examples.
  "$bin" train --steps 3 --out run "${tiny[@]}" >/dev/null || fail "train"
  "$bin" train --steps 3 --out run_plain --neighbour-cells false "${tiny[@]}" >/dev/null || fail "train --neighbour-cells false"
  "$bin" eval --checkpoint run/checkpoint.safetensors --split held_out --no-controls --eval-batches 1 --threads 2 \
    --save-tasks saved --out ev >/dev/null || fail "eval --save-tasks"
  [ "$(ls saved/held_out/*.json | wc -l)" -eq 8 ] || fail "--save-tasks: expected the 8 rows of one batch"
  "$py" -c 'import json,sys; t=json.load(open(sys.argv[1])); assert len(t["train"]) >= 1 and "output" in t["test"][0], t' \
    saved/held_out/00007.json || fail "--save-tasks: a row is demos + the query with its answer"
  "${ETRM_EXAMPLES:?}/example_solve_task" run/checkpoint.safetensors saved/held_out/00000.json >solve.txt || fail "example_solve_task"
  grep -q "^test 1 (.* votes) (\(correct\|wrong\)):" solve.txt || fail "example_solve_task: no answer"
  "$ETRM_EXAMPLES/example_ensemble_solve" --votes 2 --adapt-steps 1 saved/held_out run/checkpoint.safetensors \
    run_plain/checkpoint.safetensors >ens.txt || fail "example_ensemble_solve"
  cat ens.txt
  grep -q "^8 tasks with known answers, 2 votes per model and test input, 1 steps of test-time training" ens.txt ||
    fail "example_ensemble_solve: summary"
  [ "$(grep -c "pass@1 .*pass@2" ens.txt)" -eq 3 ] || fail "example_ensemble_solve: two models and the pooled vote"
  # The pattern cells alone on generated tasks (their quality is the unit tests').
  "$ETRM_EXAMPLES/example_pattern_cells_probe" held_out 60 >probe.txt || fail "example_pattern_cells_probe"
  cat probe.txt
  grep -q "^held_out split, seed 77: [0-9]* tasks" probe.txt && grep -q "^total  " probe.txt ||
    fail "example_pattern_cells_probe: summary"
  if "$ETRM_EXAMPLES/example_pattern_cells_probe" tests 2>/dev/null; then fail "example_pattern_cells_probe: a bad split"; fi
  # The priors alone on a folder of tasks, every one counted (the 8 saved rows fit their 8x8 canvas).
  "$ETRM_EXAMPLES/example_pattern_cells_probe" --tasks saved/held_out 8 >probe_folder.txt || fail "probe --tasks"
  cat probe_folder.txt
  grep -q "^saved/held_out: 8 tasks, 8 fit the 8x8 canvas; priors alone: pass@1 [0-9.]*% ([0-8]), pass@2 " \
    probe_folder.txt || fail "probe --tasks: summary"
  "$ETRM_EXAMPLES/example_pattern_cells_probe" --tasks saved/held_out 3 >probe_small.txt || fail "probe --tasks, side 3"
  grep -q "8 tasks, [0-7] fit the 3x3 canvas" probe_small.txt || fail "probe --tasks: tasks larger than the canvas fit"
  ;;
hrm)  # HRM trains, resumes and evaluates through the same commands; its checkpoint has the official names
  # tiny's sizes with HRM's computed prefix (one token) and two cycles of two latent updates
  tiny=(--hidden-size 32 --heads 2 --expansion 2 --layers 1 --H-cycles 2 --L-cycles 2 --halt-max-steps 2 --batch-size 8
        --threads 2 --no-progress --eval-batches 1 --warmup-steps 2)
  "$bin" train --task sudoku --model hrm --sudoku-clues 40 --steps 2 --log-every 1 --out sudoku "${tiny[@]}" \
    >sudoku.txt || fail "hrm sudoku"
  grep -q "model hrm" sudoku.txt || fail "hrm sudoku: the banner does not name the model"
  [ "$(train_lines sudoku/metrics.jsonl)" -eq 2 ] || fail "hrm sudoku: expected 2 train lines"
  "$py" -c 'import json, struct, sys
raw = open(sys.argv[1], "rb").read()
h = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
cfg = json.loads(h["__metadata__"]["config"])
# H_layers follows the default depth (2); --layers sets L_level alone.
assert cfg["H_layers"] == 2 and cfg["L_layers"] == 1 and cfg["puzzle_emb_len"] == 0 and not cfg["no_ACT_continue"], cfg
for n in ("H_level.layers.1.self_attn.qkv_proj.weight", "L_level.layers.0.mlp.down_proj.weight", "q_head.bias",
          "H_init", "L_init", "puzzle_emb.weights"):
    assert "model.inner." + n in h, n
assert h["model.inner.puzzle_emb.weights"]["shape"] == [1, 32], h["model.inner.puzzle_emb.weights"]
assert not any("L_level.layers.1." in n for n in h), "one block in L_level"' sudoku/checkpoint.safetensors ||
    fail "hrm checkpoint: config or tensor names"
  "$bin" resume --out sudoku --steps 3 --no-progress --threads 2 >/dev/null || fail "hrm resume"
  [ "$(train_lines sudoku/metrics.jsonl)" -eq 3 ] || fail "hrm resume: expected 3 train lines"
  "$bin" eval --checkpoint sudoku/checkpoint.safetensors --eval-batches 1 --threads 2 >eval.txt || fail "hrm eval"
  grep -q "^test " eval.txt || fail "hrm eval: no test row"
  "$bin" train --model hrm --task-pool 16 --steps 2 --H-layers 2 --out fewshot "${tiny[@]}" || fail "hrm fewshot"
  grep -q '"H_layers": 2' fewshot/run.json || fail "hrm fewshot: --H-layers not applied"
  expect_error "mlp_t" "$bin" train --task maze --model hrm --maze-size 7 --mlp-t --steps 1 --out bad_mlp "${tiny[@]}"
  expect_error "model hrm" "$bin" train --task sudoku --model trm --H-layers 2 --steps 1 --out bad_trm "${tiny[@]}"
  ;;
infer)
  # parity_hrm: an HRM checkpoint under the official names (H_level, L_level) runs as HRM from its config alone.
  for f in parity_att parity_mlp parity_hrm; do
    "$py" "$src/tests/cli/infer_parity.py" "$bin" "$src/tests/fixtures/$f.safetensors" "$f" || fail "$f"
  done
  ;;
bad_infer_input)  # token ids and puzzle ids outside the model's tables (issue #32)
  "$py" "$src/tests/cli/infer_parity.py" "$bin" "$src/tests/fixtures/parity_att.safetensors" ok >/dev/null || fail "infer"
  for bad in "inputs 0 999" "inputs 3 -1" "puzzle_identifiers 1 99999"; do
    set -- $bad
    "$py" -c 'import sys, json, struct
raw = bytearray(open(sys.argv[1], "rb").read()); n = struct.unpack("<Q", raw[:8])[0]
e = json.loads(raw[8:8 + n])[sys.argv[2]]
struct.pack_into("<i", raw, 8 + n + e["data_offsets"][0] + 4 * int(sys.argv[3]), int(sys.argv[4]))
open(sys.argv[5], "wb").write(raw)' ok/in.safetensors "$1" "$2" "$3" bad_ids.safetensors
    expect_error "bad_ids.safetensors': tensor '$1' value $3 at index $2" "$bin" infer \
      --checkpoint "$src/tests/fixtures/parity_att.safetensors" --input bad_ids.safetensors --output o.safetensors
  done
  [ ! -e o.safetensors ] || fail "an output was written for a bad input"
  ;;
bad_missing_file)
  expect_error missing.safetensors "$bin" eval --checkpoint missing.safetensors
  expect_error nope.json "$bin" train --config nope.json --steps 1 --out run
  ;;
bad_task_json)
  "$bin" train --steps 1 --out run "${tiny[@]}" >/dev/null || fail "train"
  printf '{"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": []}' >ragged.json
  printf '{"train": [{"input": [[1, 2]' >broken.json
  expect_error ragged.json "$bin" solve --checkpoint run/checkpoint.safetensors --task ragged.json
  expect_error broken.json "$bin" solve --checkpoint run/checkpoint.safetensors --task broken.json
  expect_error missing_task.json "$bin" solve --checkpoint run/checkpoint.safetensors --task missing_task.json
  # A test input larger than the model's 8x8 canvas
  "$py" -c 'import json; g=[[1]*9]*9; print(json.dumps({"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": g}]}))' >big.json
  expect_error "big.json: test\[0\].input is 9x9, larger than the model's canvas side 8" \
    "$bin" solve --checkpoint run/checkpoint.safetensors --task big.json
  ;;
bad_checkpoint)
  "$bin" train --steps 1 --out run "${tiny[@]}" >/dev/null || fail "train"
  size=$(stat -c %s run/checkpoint.safetensors)
  head -c $((size / 2)) run/checkpoint.safetensors >half.safetensors
  expect_error half.safetensors "$bin" eval --checkpoint half.safetensors
  expect_error half.safetensors "$bin" resume --checkpoint half.safetensors --out resumed
  printf 'not a checkpoint' >junk.safetensors
  expect_error junk.safetensors "$bin" solve --checkpoint junk.safetensors --task x.json
  ;;
bad_other_config)
  printf '{"hidden_size": 32, "num_heads": 4, "seq_len": 16, "vocab_size": 6, "puzzle_emb_ndim": 32, "puzzle_emb_len": 4, "num_puzzle_identifiers": 5}' >other.json
  "$py" "$src/tests/cli/infer_parity.py" "$bin" "$src/tests/fixtures/parity_att.safetensors" ok >/dev/null || fail "infer"
  expect_error parity_att.safetensors "$bin" infer --checkpoint "$src/tests/fixtures/parity_att.safetensors" \
    --config other.json --input ok/in.safetensors --output o.safetensors
  grep -q "another configuration" err.txt || fail "message does not say 'another configuration'"
  # A checkpoint whose run description disagrees with its tensors.
  "$bin" train --steps 1 --out run "${tiny[@]}" >/dev/null || fail "train"
  expect_error in.safetensors "$bin" infer --checkpoint run/checkpoint.safetensors --input ok/in.safetensors --output o.safetensors
  ;;
bad_output_dir)
  expect_error /proc/etrm-out "$bin" train --steps 1 --out /proc/etrm-out "${tiny[@]}"
  "$bin" generate --kind fewshot --count 1 --out tasks >/dev/null || fail "generate"
  "$bin" train --steps 1 --out run "${tiny[@]}" >/dev/null || fail "train"
  expect_error /proc/etrm-out "$bin" eval --checkpoint run/checkpoint.safetensors --out /proc/etrm-out
  expect_error /proc/etrm-out "$bin" solve --checkpoint run/checkpoint.safetensors --task tasks/train_0_00000.json --out /proc/etrm-out
  expect_error /proc/etrm-out "$bin" generate --kind maze --count 1 --out /proc/etrm-out
  "$py" "$src/tests/cli/infer_parity.py" "$bin" "$src/tests/fixtures/parity_att.safetensors" ok >/dev/null || fail "infer"
  expect_error /proc/etrm-out/o.safetensors "$bin" infer --checkpoint "$src/tests/fixtures/parity_att.safetensors" \
    --input ok/in.safetensors --output /proc/etrm-out/o.safetensors
  ;;
sigint)
  "$bin" train --steps 1000000 --log-every 1 --out run "${tiny[@]}" >train.txt 2>train.err &
  pid=$!
  for _ in $(seq 300); do
    [ -s run/metrics.jsonl ] && break
    sleep 0.1
  done
  [ -s run/metrics.jsonl ] || { kill "$pid"; fail "no metrics line after 30 s"; }
  kill -INT "$pid"
  wait "$pid"
  rc=$?
  cat train.err
  [ "$rc" -eq 130 ] || fail "exit $rc after SIGINT, expected 130"
  grep -q "etrm resume --out" train.err || fail "no resume hint"
  [ -f run/checkpoint.safetensors ] || fail "no checkpoint"
  step=$(tail -1 run/metrics.jsonl | "$py" -c 'import json,sys; print(json.load(sys.stdin)["step"])')
  "$bin" resume --out run --steps $((step + 2)) --no-progress --threads 2 >resume.txt || fail "resume"
  [ "$(tail -1 run/metrics.jsonl | "$py" -c 'import json,sys; print(json.load(sys.stdin)["step"])')" -ge $((step + 2)) ] ||
    fail "resume did not continue"
  ;;
main_pipeline)
  ETRM_MAIN_SKIP_BUILD=1 ETRM_BIN="$bin" ETRM_MAIN_STEPS=5 ETRM_MAIN_OUT="$work/main" ETRM_MAIN_EVAL_EVERY=5 \
    ETRM_MAIN_EVAL_BATCHES=1 ETRM_MAIN_THREADS=2 ETRM_MAIN_DATA_DIR="$work/no_data" ETRM_MAIN_ARGS="${tiny[*]}" \
    "$src/tools/run-main.sh" >main.txt 2>&1 ||
    { cat main.txt; fail "run-main.sh"; }
  tail -20 main.txt
  for f in checkpoint.safetensors metrics.jsonl eval.json predictions.svg; do
    [ -f "main/$f" ] || fail "missing $f"
  done
  if "$py" -c "import matplotlib" 2>/dev/null; then
    [ -f main/learning_curves.png ] && [ -f main/predictions.png ] || fail "missing PNGs"
  fi
  grep -q "held_out/no_demos" main.txt || fail "no control in the summary"
  grep -q "learned ETRM, per-task priors off" main.txt || fail "the summary does not say the priors were off"
  grep -q "^generator-held-out .*%" main.txt || fail "no external suite line (with its controls) in the summary"
  ;;
*)
  fail "unknown case"
  ;;
esac
echo "PASS $case_name"
