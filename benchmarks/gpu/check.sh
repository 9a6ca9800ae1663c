#!/usr/bin/env bash
# benchmarks/gpu/check.sh [--sanitize] [gpu_check options] - run from anywhere on a machine
# with an NVIDIA GPU, its driver, the CUDA toolkit and cmake. Builds the kernels
# (kernels-ptx/build.sh build/kernels) and libdsk4j.so with them embedded (build/native),
# builds benchmarks/gpu/gpu_check.c against it and runs it: cuda (reference and fast kernels)
# vs the cpu backend, bit for bit, all 2^32 f32 -> fp8 casts, the gemms, rope.yarn_table / rope.apply
# (bit for bit; --only-rope runs only those), then timings, then the sm_90a wgmma fp8 gemm vs the
# mma.sync one (correctness and TFLOPS; `--only-wgmma` runs just that), then the mla ops (cache
# append byte for byte, decode / prefill / absorb vs the cpu backend, decode timed on FlashMLA's
# shapes with the H200 targets beside, the opt-in sm_90a decode kernels (DSK4J_CUDA_MLA_KERNEL=wgmma,
# =flash) on every decode case, flash also against the reference kernel over whole batches;
# `--only-mla` runs just those, `--no-mla` skips them), then
# the moe ops (gate / dispatch / gather / combine / silu_quant / bias_update on the DeepSeek-V3 and
# V2-Lite routers, T in {1, 7, 128, 1000}, poisoned outputs, vs the cpu backend; moe.forward checked
# and timed on the V3 layer for T in {1, 128, 4096}; `--only-moe` runs just those, `--no-moe` skips them),
# then the model API on CUDA (ModelCudaTest through offline Maven when a JDK >= 22 is present;
# DSK4J_SKIP_MODEL=1 skips it).
# --sanitize first runs quick passes under compute-sanitizer memcheck and racecheck (if installed).
# Exit: gpu_check's (0 pass, 1 mismatch, 2 error, 77 CUDA unavailable, 137 killed after
# GPU_CHECK_TIMEOUT seconds), or the build's.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

SANITIZE=0
ARGS=()
for a in "$@"; do
    case $a in
    --sanitize) SANITIZE=1 ;;
    *) ARGS+=("$a") ;;
    esac
done

if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader || true
fi

echo "== kernels"
bash kernels-ptx/build.sh build/kernels
echo "== native library"
cmake -S native -B build/native -DCMAKE_BUILD_TYPE=Release -DDSK4J_KERNELS_DIR="$ROOT/build/kernels" >/dev/null
cmake --build build/native -j "$(nproc 2>/dev/null || echo 4)" >/dev/null
echo "== gpu_check"
CC=${CC:-cc}
"$CC" -std=c11 -O2 -Wall -Wextra -I native/include benchmarks/gpu/gpu_check.c \
    -L build/native -ldsk4j -Wl,-rpath,"$ROOT/build/native" -lm -o build/gpu_check

rc_san=0
if [ "$SANITIZE" = 1 ]; then
    SAN=$(command -v compute-sanitizer || true)
    [ -z "$SAN" ] && [ -x /usr/local/cuda/bin/compute-sanitizer ] && SAN=/usr/local/cuda/bin/compute-sanitizer
    if [ -n "$SAN" ]; then
        set +e
        for tool in memcheck racecheck; do # racecheck: shared-memory hazards of the tiled / wgmma kernels
            echo "== compute-sanitizer $tool (quick)"
            "$SAN" --tool "$tool" --error-exitcode 3 build/gpu_check --quick --no-timing ${ARGS[@]+"${ARGS[@]}"}
            r=$?
            echo "compute-sanitizer $tool: exit $r"
            [ "$r" != 0 ] && rc_san=$r
        done
        set -e
    else
        echo "compute-sanitizer not found - skipping the memcheck pass"
    fi
fi

set +e
# A kernel that hangs must not eat a lent GPU's whole budget: kill the check after
# GPU_CHECK_TIMEOUT seconds (default 480; exit 137).
timeout -s KILL "${GPU_CHECK_TIMEOUT:-480}" build/gpu_check ${ARGS[@]+"${ARGS[@]}"}
rc=$?
# The model API on CUDA (Java: ModelCudaTest, the demo checkpoint's logits on the device against the
# plain-Java reference and the CPU model, greedy tokens with and without MTP). It needs a JDK >= 22
# and the Maven repository (offline) on the GPU machine; without them it says so.
rc_model=0
if [ "${DSK4J_SKIP_MODEL:-0}" != 1 ]; then
    JAVA_BIN=${JAVA_HOME:+$JAVA_HOME/bin/}java
    JV=$("$JAVA_BIN" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
    if [ -n "$JV" ] && [ "$JV" -ge 22 ] && [ -d "$HOME/.m2/repository/org/junit" ]; then
        echo "== model on CUDA (ModelCudaTest, JDK $JV)"
        ./mvnw -o -B -q --no-transfer-progress install -DskipTests >/dev/null &&
            ./mvnw -o -B --no-transfer-progress -pl conformance -Dtest=ModelCudaTest \
                -Dsurefire.failIfNoSpecifiedTests=false test | grep -E 'cuda |Tests run|FAIL|SKIPPED'
        rc_model=${PIPESTATUS[0]}
        echo "| model on CUDA (ModelCudaTest) | exit $rc_model |"
    else
        echo "| model on CUDA (ModelCudaTest) | SKIPPED: needs a JDK >= 22 and ~/.m2 (offline Maven) on this machine |"
    fi
fi
set -e
[ "$rc" = 0 ] && [ "$rc_model" != 0 ] && rc=$rc_model
if [ "$rc" = 0 ] && [ "$rc_san" != 0 ]; then
    echo "check.sh: the compute-sanitizer pass failed (exit $rc_san)"
    exit "$rc_san"
fi
exit "$rc"
