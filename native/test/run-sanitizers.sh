#!/usr/bin/env bash
# run-sanitizers.sh - builds the native test suite (native/test) and the libFuzzer targets
# (native/fuzz) with clang under AddressSanitizer + UndefinedBehaviorSanitizer (no recovery), then
# runs the suite (LeakSanitizer on) and each fuzz target for a bounded time over its corpus.
# Exits non-zero on any failed check or sanitizer report, or when a function exported by dsk4j.h is
# never called in test_abi.c; prints executions per fuzz target.
#
# Environment:
#   DSK4J_FUZZ_SECONDS  seconds per fuzz target (default 20; 0 = only replay the corpus)
#   DSK4J_SAN_CC        the clang to use (default: clang-14, then clang)
#   DSK4J_SAN_BUILD     build folder (default native/target/sanitizers)
# Without a clang whose libFuzzer runtime links (Debian: clang-14 + libclang-rt-14-dev) it prints
# "SKIPPED" and exits 0.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SECS=${DSK4J_FUZZ_SECONDS:-20}
BUILD=${DSK4J_SAN_BUILD:-$ROOT/native/target/sanitizers}
TARGETS=(fp8 gemm rope mla moe context)

# 0. coverage of the ABI (needs no compiler): every function declared DSK4J_EXPORT in dsk4j.h must
#    be called somewhere in test_abi.c (outside comments and string literals).
exported=$(tr '\n' ' ' <"$ROOT/native/include/dsk4j.h" | grep -oE 'DSK4J_EXPORT[^;(]*\(' |
           grep -oE 'dsk4j_[A-Za-z0-9_]+ *\($' | tr -d ' (' | sort -u)
suite_code=$(perl -0777 -pe 's{/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"}{ }gs' "$ROOT/native/test/test_abi.c")
uncalled=()
for f in $exported; do
  grep -qE "\b$f *\(" <<<"$suite_code" || uncalled+=("$f")
done
if [ -z "$exported" ] || [ "${#uncalled[@]}" -gt 0 ]; then
  echo "sanitizers: FAILED - exported functions never called in native/test/test_abi.c: ${uncalled[*]:-(none found in dsk4j.h)}"
  exit 1
fi
echo "sanitizers: test_abi calls all $(wc -w <<<"$exported") exported functions of dsk4j.h"

cc=${DSK4J_SAN_CC:-}
if [ -z "$cc" ]; then
  for c in clang-14 clang; do
    if command -v "$c" >/dev/null 2>&1; then cc=$c; break; fi
  done
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'int LLVMFuzzerTestOneInput(const unsigned char* d, unsigned long n) { return 0; }' >"$probe/p.c"
if [ -z "$cc" ] || ! "$cc" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
  echo "sanitizers: SKIPPED - no clang with libFuzzer found (install clang-14 and libclang-rt-14-dev;" \
       "or set DSK4J_SAN_CC)"
  exit 0
fi

jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p "$BUILD"
echo "sanitizers: building with $cc (-fsanitize=address,undefined -fno-sanitize-recover=all) in $BUILD"
cmake -S "$ROOT/native" -B "$BUILD" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDSK4J_BUILD_TESTS=ON -DDSK4J_FUZZ=ON -DDSK4J_KERNELS_DIR= >"$BUILD/configure.log" 2>&1 ||
  { cat "$BUILD/configure.log"; exit 1; }
cmake --build "$BUILD" -j "$jobs" --target test_abi "${TARGETS[@]/#/fuzz_}" >"$BUILD/build.log" 2>&1 ||
  { tail -40 "$BUILD/build.log"; exit 1; }

export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
REPORT='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer'
fail=0

# 1. the C suite, once per cpu path (the suite opens each path itself)
log="$BUILD/test_abi.log"
if "$BUILD/test/test_abi" >"$log" 2>&1 && ! grep -Eq "$REPORT" "$log"; then
  grep '^test_abi:' "$log"
else
  grep -v 'failed to allocate' "$log" | tail -40
  echo "sanitizers: test_abi FAILED (log: $log)"
  fail=1
fi

# 2. each fuzz target: the committed corpus is replayed, then fuzzing for $SECS seconds; new inputs
#    go to a scratch corpus in the build folder, a crashing input to $BUILD/artifacts/.
mkdir -p "$BUILD/artifacts"
printf '%-10s %12s %10s %s\n' target executions seconds result
for t in "${TARGETS[@]}"; do
  mkdir -p "$BUILD/corpus/$t"
  log="$BUILD/fuzz_$t.log"
  args=(-rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$t-")
  if [ "$SECS" -gt 0 ]; then args+=(-max_total_time="$SECS"); else args+=(-runs=0); fi
  start=$(date +%s)
  rc=0
  DSK4J_FUZZ_STATS=1 "$BUILD/fuzz/fuzz_$t" "${args[@]}" "$BUILD/corpus/$t" "$ROOT/native/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  secs=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  calls=$(sed -n 's/^fuzz calls: //p' "$log" | tail -1)
  if [ "$rc" -eq 0 ] && ! grep -Eq "$REPORT" "$log"; then
    printf '%-10s %12s %10s %s\n' "$t" "${execs:-?}" "$secs" "ok (${calls:-no stats})"
  else
    printf '%-10s %12s %10s %s\n' "$t" "${execs:-?}" "$secs" "FAILED (exit $rc)"
    grep -E "$REPORT|^    #[0-9]" "$log" | head -20
    echo "  log: $log; crashing input: $(ls "$BUILD/artifacts/$t-"* 2>/dev/null | head -1)" \
         "(fix the bug, then keep the input in native/fuzz/corpus/$t/ as a regression)"
    fail=1
  fi
done

if [ "$fail" -ne 0 ]; then
  echo "sanitizers: FAILED"
  exit 1
fi
echo "sanitizers: all clean (ASan + UBSan + LeakSanitizer, no reports)"
