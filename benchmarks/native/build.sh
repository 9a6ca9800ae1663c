#!/usr/bin/env bash
# Builds benchmarks/target/libdsk4jbench.so (the AMX-BF16 tile ceiling, amx_peak.c) for
# `./dsk4j bench gemm`. Run by the benchmarks pom at compile time; never fails the build: where
# gcc is missing or cannot compile AMX code, it says so, leaves no library, and the benchmark
# prints the AMX ceiling as "n/a".
#
#   benchmarks/native/build.sh OUTPUT.so        (CC overrides gcc)
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
out="${1:?usage: build.sh OUTPUT.so}"
cc="${CC:-gcc}"
mkdir -p "$(dirname "$out")"
rm -f "$out"
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "dsk4j benchmarks: $cc not found: libdsk4jbench.so not built, the AMX ceiling will read n/a"
    exit 0
fi
if log=$("$cc" -O2 -mamx-tile -mamx-bf16 -pthread -shared -fPIC -o "$out" "$here/amx_peak.c" 2>&1); then
    echo "dsk4j benchmarks: built $out"
else
    rm -f "$out"
    echo "dsk4j benchmarks: $cc could not build amx_peak.c (needs gcc >= 11 for AMX): the AMX ceiling will read n/a"
    echo "$log" | head -5
fi
exit 0
