#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GPU check of the CUDA backend, run from the repository root on a machine with an NVIDIA GPU:
# builds the CUDA tests and benchmarks (build/gpu, Release), runs the tests and the benchmarks,
# and writes a short markdown report (device, date, test summary, benchmark table) plus the
# raw benchmark JSON to $OUT (when set) or build/gpu.
#
#   tools/gpu-check.sh                       configure + build here, then run
#   tools/gpu-check.sh --prebuilt DIR        run binaries built elsewhere (see --bundle)
#   tools/gpu-check.sh --bundle DIR          (on a build machine, GPU or not) build the two
#                                            targets and copy them, with libbenchmark, to DIR
#   --min-time S       benchmark minimum time per benchmark (default 0.2)
#   --filter REGEX     benchmark filter (default: all)
#   --test-timeout S / --bench-timeout S     wall-clock limits (defaults 240 / 330)
#
# Missing build dependencies (cmake, doctest, Google Benchmark, Eigen, oneTBB, nlohmann-json)
# are installed with apt-get when running as root and a package registry is reachable. When
# the build cannot be set up, the script falls back to DIR of --prebuilt, or build/gpu-prebuilt
# if that exists. It always writes the report and exits non-zero when tests fail or nothing
# could run.
set -uo pipefail

BUILD=build/gpu
PREBUILT=""
BUNDLE=""
MIN_TIME=0.2
FILTER=""
TEST_TIMEOUT=240
BENCH_TIMEOUT=330
JOBS=16
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prebuilt) PREBUILT="$2"; shift 2 ;;
    --bundle) BUNDLE="$2"; shift 2 ;;
    --min-time) MIN_TIME="$2"; shift 2 ;;
    --filter) FILTER="$2"; shift 2 ;;
    --test-timeout) TEST_TIMEOUT="$2"; shift 2 ;;
    --bench-timeout) BENCH_TIMEOUT="$2"; shift 2 ;;
    -j) JOBS="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [[ ! -f include/etrm/etrm_cuda.cuh ]]; then
  echo "gpu-check: run from the repository root" >&2
  exit 2
fi
if [[ -z "${CUDACXX:-}" && -x /usr/local/cuda/bin/nvcc ]]; then export CUDACXX=/usr/local/cuda/bin/nvcc; fi
export PATH="$PATH:/usr/local/cuda/bin"
# The CUDA parity test reads the PyTorch fixtures of this checkout.
export ETRM_FIXTURE_DIR="${ETRM_FIXTURE_DIR:-$PWD/tests/fixtures}"

log() { echo "[gpu-check] $*"; }

configure_and_build() {  # $1: build dir, $2: jobs
  local dir="$1" jobs="$2" bench=ON
  local gbench=0
  for d in /usr/lib/x86_64-linux-gnu/cmake/benchmark /usr/lib/cmake/benchmark /usr/local/lib/cmake/benchmark \
           /usr/lib64/cmake/benchmark; do [[ -d $d ]] && gbench=1; done
  [[ $gbench == 1 ]] || bench=OFF
  log "configuring $dir (benchmarks $bench)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DETRM_BUILD_EXAMPLES=OFF -DETRM_BUILD_BENCHMARKS=$bench \
        -DCMAKE_CUDA_ARCHITECTURES=90 >"$dir.configure.log" 2>&1 || { tail -20 "$dir.configure.log"; return 1; }
  local targets=(etrm_cuda_tests)
  [[ $bench == ON ]] && targets+=(etrm_bench_cuda)
  log "building ${targets[*]} with -j$jobs"
  cmake --build "$dir" --target "${targets[@]}" -j"$jobs" >"$dir.build.log" 2>&1 || { tail -40 "$dir.build.log"; return 1; }
  return 0
}

# --bundle: build here and package the binaries for a GPU machine without the dependencies.
if [[ -n "$BUNDLE" ]]; then
  mkdir -p build
  configure_and_build build/gpu-bundle "$JOBS" || exit 1
  mkdir -p "$BUNDLE"
  cp build/gpu-bundle/tests/cuda/etrm_cuda_tests "$BUNDLE"/
  if [[ -x build/gpu-bundle/benchmarks/cuda/etrm_bench_cuda ]]; then
    cp build/gpu-bundle/benchmarks/cuda/etrm_bench_cuda "$BUNDLE"/
    # Google Benchmark's shared library (the GPU image has none); CUDA libraries come from there.
    ldd build/gpu-bundle/benchmarks/cuda/etrm_bench_cuda | awk '/libbenchmark/ {print $3}' | while read -r lib; do
      cp -L "$lib" "$BUNDLE"/
    done
  fi
  log "bundle in $BUNDLE:"; ls -la "$BUNDLE"
  exit 0
fi

REPORT_DIR="${OUT:-$BUILD}"
mkdir -p "$REPORT_DIR" build
REPORT="$REPORT_DIR/gpu-report.md"
BENCH_JSON="$REPORT_DIR/gpu-bench.json"
TEST_LOG="$REPORT_DIR/gpu-tests.log"
BENCH_LOG="$REPORT_DIR/gpu-bench.log"
START=$(date +%s)

DEVICE="(nvidia-smi not found)"
if command -v nvidia-smi >/dev/null 2>&1; then
  DEVICE=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
fi
log "device: $DEVICE"

# --- dependencies and build -------------------------------------------------------------
TEST_BIN=""
BENCH_BIN=""
BUILD_NOTE=""
if [[ -z "$PREBUILT" ]]; then
  missing=()
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  [[ -f /usr/include/doctest/doctest.h || -f /usr/local/include/doctest/doctest.h ]] || missing+=(doctest-dev)
  ls /usr/lib/x86_64-linux-gnu/cmake/benchmark >/dev/null 2>&1 || ls /usr/local/lib/cmake/benchmark >/dev/null 2>&1 ||
    missing+=(libbenchmark-dev)
  [[ -d /usr/include/eigen3 || -d /usr/local/include/eigen3 ]] || missing+=(libeigen3-dev)
  [[ -f /usr/include/tbb/tbb.h || -f /usr/include/oneapi/tbb.h || -f /usr/local/include/tbb/tbb.h ]] || missing+=(libtbb-dev)
  [[ -f /usr/include/nlohmann/json.hpp || -f /usr/local/include/nlohmann/json.hpp ]] || missing+=(nlohmann-json3-dev)
  if [[ ${#missing[@]} -gt 0 ]]; then
    log "missing: ${missing[*]}"
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      export DEBIAN_FRONTEND=noninteractive
      timeout 60 apt-get update -qq >/dev/null 2>&1 &&
        timeout 300 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 &&
        log "installed ${missing[*]}" || log "apt-get could not install ${missing[*]}"
    fi
  fi
  if configure_and_build "$BUILD" "$JOBS"; then
    TEST_BIN="$BUILD/tests/cuda/etrm_cuda_tests"
    [[ -x "$BUILD/benchmarks/cuda/etrm_bench_cuda" ]] && BENCH_BIN="$BUILD/benchmarks/cuda/etrm_bench_cuda"
    BUILD_NOTE="built here in $BUILD (Release, sm_90)"
  else
    log "build failed"
    BUILD_NOTE="build here failed (see $BUILD.configure.log / $BUILD.build.log)"
    [[ -d build/gpu-prebuilt ]] && PREBUILT=build/gpu-prebuilt
  fi
fi
if [[ -n "$PREBUILT" && -z "$TEST_BIN" ]]; then
  [[ -x "$PREBUILT/etrm_cuda_tests" ]] && TEST_BIN="$PREBUILT/etrm_cuda_tests"
  [[ -x "$PREBUILT/etrm_bench_cuda" ]] && BENCH_BIN="$PREBUILT/etrm_bench_cuda"
  BUILD_NOTE="${BUILD_NOTE:+$BUILD_NOTE; }prebuilt binaries from $PREBUILT"
  export LD_LIBRARY_PATH="$(cd "$PREBUILT" && pwd):/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}"
fi
log "binaries: tests=${TEST_BIN:-none} bench=${BENCH_BIN:-none}"

# --- tests ------------------------------------------------------------------------------
TEST_RC=1
TEST_SUMMARY="not run"
if [[ -n "$TEST_BIN" ]]; then
  log "running $TEST_BIN"
  timeout "$TEST_TIMEOUT" "$TEST_BIN" --duration=true >"$TEST_LOG" 2>&1
  TEST_RC=$?
  [[ $TEST_RC == 124 ]] && echo "[gpu-check] tests timed out after ${TEST_TIMEOUT}s" >>"$TEST_LOG"
  TEST_SUMMARY=$(grep -E '^\[doctest\] (test cases|assertions|Status)' "$TEST_LOG" | sed 's/^/    /')
  [[ -n "$TEST_SUMMARY" ]] || TEST_SUMMARY="    (no doctest summary; exit code $TEST_RC)"
  tail -5 "$TEST_LOG"
fi

# --- benchmarks -------------------------------------------------------------------------
BENCH_RC=1
if [[ -n "$BENCH_BIN" ]]; then
  log "running $BENCH_BIN (min time ${MIN_TIME}s, limit ${BENCH_TIMEOUT}s)"
  args=(--benchmark_min_time="$MIN_TIME" --benchmark_out="$BENCH_JSON" --benchmark_out_format=json)
  [[ -n "$FILTER" ]] && args+=(--benchmark_filter="$FILTER")
  timeout "$BENCH_TIMEOUT" "$BENCH_BIN" "${args[@]}" >"$BENCH_LOG" 2>&1
  BENCH_RC=$?
  [[ $BENCH_RC == 124 ]] && echo "[gpu-check] benchmarks timed out after ${BENCH_TIMEOUT}s" >>"$BENCH_LOG"
fi

# --- report -----------------------------------------------------------------------------
{
  echo "# etrm GPU check"
  echo
  echo "- device: $DEVICE"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
  echo "- build: ${BUILD_NOTE:-none}"
  echo "- wall time: $(( $(date +%s) - START )) s"
  echo
  echo "## Tests (exit code $TEST_RC)"
  echo
  echo "$TEST_SUMMARY"
  if [[ -f "$TEST_LOG" && $TEST_RC != 0 ]]; then
    echo
    echo "Failures (first 80 lines of the log that mention them):"
    echo
    grep -E -A3 'ERROR|FAILED|TEST CASE|error|timed out' "$TEST_LOG" | head -80 | sed 's/^/    /'
  fi
  echo
  echo "## Benchmarks (exit code $BENCH_RC)"
  echo
  if [[ -s "$BENCH_JSON" ]] && command -v python3 >/dev/null 2>&1; then
    python3 - "$BENCH_JSON" <<'PY' || echo "(could not parse $BENCH_JSON)"
import json, sys
try:
    data = json.load(open(sys.argv[1]))
except Exception as e:  # a run cut short leaves an unfinished file
    print(f"(benchmark JSON unreadable: {e}; see gpu-bench.log)")
    sys.exit(0)
def si(v):
    for unit, f in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= f:
            return f"{v / f:.3g}{unit}"
    return f"{v:.3g}"
print("| benchmark | time / iteration | iterations | FLOP/s | bytes/s | items/s | arena | note |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for b in data.get("benchmarks", []):
    name = b.get("name", "?").replace("/manual_time", "")
    if b.get("error_occurred"):
        msg = str(b.get("error_message", "")).replace("|", "/")[:90]
        print(f"| {name} | | | | | | | skipped: {msg} |")
        continue
    t = f"{b.get('real_time', 0):.4g} {b.get('time_unit', '')}"
    cells = [si(b[k]) if k in b else "" for k in ("FLOP/s", "bytes/s", "items_per_second")]
    cells.append(si(b["arena_bytes"]) + "B" if "arena_bytes" in b else "")
    print(f"| {name} | {t} | {b.get('iterations', '')} | " + " | ".join(cells) + " | |")
PY
  elif [[ -f "$BENCH_LOG" ]]; then
    echo '```'
    tail -60 "$BENCH_LOG"
    echo '```'
  else
    echo "not run"
  fi
} >"$REPORT"

log "report: $REPORT"
cat "$REPORT"
if [[ -z "$TEST_BIN" ]]; then exit 1; fi
exit $TEST_RC
