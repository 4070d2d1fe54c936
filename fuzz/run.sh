#!/usr/bin/env bash
# Builds the libFuzzer targets in build-fuzz/ (clang, sanitizers) and runs
# each for SECONDS (default 30) from its seed corpus in fuzz/corpus/<target>.
# New inputs the fuzzer finds go to build-fuzz/corpus/<target>, not into the
# repo; a crash leaves its input in build-fuzz/crashes/ and fails the script.
#   fuzz/run.sh [SECONDS] [TARGET...]
# FUZZ_ARGS adds libFuzzer flags, e.g. FUZZ_ARGS="-seed=1 -runs=200000": CI
# uses that, so its smoke run replays (a prefix of) a sequence checked
# before the commit instead of a fresh random one.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fuzz_tensor_decoder fuzz_config_parser fuzz_declarations_csv fuzz_manifest_verifier)
fi
mkdir -p build-fuzz
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.ccache}"
cmake -S . -B build-fuzz -G Ninja -DFEDCUSTOMS_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ > build-fuzz/configure.log 2>&1 ||
  { cat build-fuzz/configure.log; exit 1; }
cmake --build build-fuzz -j2 --target "${targets[@]}"
mkdir -p build-fuzz/crashes
status=0
for target in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$target"
  # Leaks of LibTorch's and protobuf's process-lifetime singletons are not ours.
  if ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
      "build-fuzz/bin/$target" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 \
      -timeout=10 -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$target-" \
      ${FUZZ_ARGS:-} \
      "build-fuzz/corpus/$target" "fuzz/corpus/$target" > "build-fuzz/$target.log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "build-fuzz/$target.log" |
      grep -o '[0-9]*$' || true)
    echo "$target: ${runs:-?} executions in ${seconds} s, clean"
  else
    echo "$target: FAILED (build-fuzz/$target.log):"
    tail -40 "build-fuzz/$target.log"
    status=1
  fi
done
exit $status
