#!/usr/bin/env bash
# kernels-ptx/build.sh OUTDIR - compiles the dsk4j GPU kernels (src/dsk4j_kernels.cu, one
# module per target) with nvcc:
#   OUTDIR/dsk4j_kernels.compute_80.ptx   (any GPU of compute capability >= 8.0, via the JIT)
#   OUTDIR/dsk4j_kernels.sm_89.cubin
#   OUTDIR/dsk4j_kernels.sm_90a.cubin
#   OUTDIR/ptxas-report.txt               (ptxas -v for sm_80, sm_89, sm_90a)
# Fails on any spill, stack frame or local memory in the ptxas report, when the sm_89 /
# sm_90a PTX lacks the hardware fp8 conversion, when the sm_90a PTX lacks the TMA / wgmma /
# mbarrier / setmaxnreg of dsk4j_gemm_fp8_block_sm90, or when another target's PTX has them, or
# when a fast mla decode kernel lacks mma.sync bf16 / cp.async / ldmatrix(.trans) in any PTX,
# or the sm_90a flash mla decode kernel lacks its wgmma bf16 (m64n32k16, m64n256k16), TMA and
# mbarrier instructions (or another target's PTX has them). Without nvcc it prints a note and exits 0,
# writing nothing (the native library then builds without GPU kernels).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUTDIR=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$HERE/src/dsk4j_kernels.cu

NVCC=$(command -v nvcc || true)
if [ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
    NVCC=/usr/local/cuda/bin/nvcc
fi
if [ -z "$NVCC" ]; then
    echo "dsk4j: nvcc not found - building without GPU kernels"
    exit 0
fi

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
TMP=$(mktemp -d "$OUTDIR/.build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# IEEE semantics are part of the contract: no --use_fast_math, no -ftz, precise div/sqrt.
FLAGS=(-O3 -lineinfo -std=c++17 -ftz=false -prec-div=true -prec-sqrt=true -fmad=true
       -Werror all-warnings -I "$HERE/src")

echo "dsk4j: $("$NVCC" --version | tail -n 1)"

# Distributed outputs.
"$NVCC" "${FLAGS[@]}" -arch=compute_80 -ptx -o "$TMP/dsk4j_kernels.compute_80.ptx" "$SRC"
REPORT=$TMP/ptxas-report.txt
: >"$REPORT"
for target in sm_89 sm_90a; do
    arch=compute_${target#sm_}
    echo "== $target" >>"$REPORT"
    "$NVCC" "${FLAGS[@]}" "-gencode=arch=$arch,code=$target" -cubin -Xptxas -v \
        -o "$TMP/dsk4j_kernels.$target.cubin" "$SRC" 2>>"$REPORT"
    # The PTX of this target must use the hardware fp8 conversion.
    "$NVCC" "${FLAGS[@]}" "-gencode=arch=$arch,code=$arch" -ptx -o "$TMP/$target.ptx" "$SRC"
    # ... and the gemm kernels the fp8 / bf16 tensor-core mma.
    for insn in cvt.rn.satfinite.e4m3x2.f32 cvt.rn.satfinite.e5m2x2.f32 \
                mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 \
                mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 cp.async.cg.shared.global \
                ldmatrix.sync.aligned.m8n8.x4.shared.b16; do
        if ! grep -q "$insn" "$TMP/$target.ptx"; then
            echo "dsk4j: the $target PTX lacks $insn" >&2
            exit 1
        fi
    done
    # ... and only sm_90a the Hopper gemm (sm90_gemm_fp8_wgmma.cu; a trap elsewhere).
    for insn in wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 cp.async.bulk.tensor \
                mbarrier.try_wait setmaxnreg; do
        if [ "$target" = sm_90a ] && ! grep -q "$insn" "$TMP/$target.ptx"; then
            echo "dsk4j: the $target PTX lacks $insn" >&2
            exit 1
        fi
        if [ "$target" != sm_90a ] && grep -q "$insn" "$TMP/$target.ptx"; then
            echo "dsk4j: the $target PTX holds $insn (sm_90a only)" >&2
            exit 1
        fi
    done
done
# sm_80: what the JIT will see on an A100 (report only; the PTX above is what ships).
echo "== sm_80" >>"$REPORT"
"$NVCC" "${FLAGS[@]}" -gencode=arch=compute_80,code=sm_80 -cubin -Xptxas -v \
    -o "$TMP/sm_80.cubin" "$SRC" 2>>"$REPORT"
if grep -q "cvt.rn.satfinite" "$TMP/dsk4j_kernels.compute_80.ptx"; then
    echo "dsk4j: the compute_80 PTX holds an fp8 cvt (needs sm_89)" >&2
    exit 1
fi
if grep -q "wgmma\.mma_async\|wgmma\.fence\|cp\.async\.bulk\|setmaxnreg\." "$TMP/dsk4j_kernels.compute_80.ptx"; then
    echo "dsk4j: the compute_80 PTX holds sm_90a instructions" >&2
    exit 1
fi
if grep -q "e4m3.e4m3" "$TMP/dsk4j_kernels.compute_80.ptx"; then
    echo "dsk4j: the compute_80 PTX holds an fp8 mma (needs sm_89)" >&2
    exit 1
fi
for insn in mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 cp.async.cg.shared.global \
            ldmatrix.sync.aligned.m8n8.x4.shared.b16; do
    if ! grep -q "$insn" "$TMP/dsk4j_kernels.compute_80.ptx"; then
        echo "dsk4j: the compute_80 PTX lacks $insn" >&2
        exit 1
    fi
done

# The fast mla decode and prefill kernels (mla_decode.cu, mla_prefill.cu) must run on the bf16 tensor cores with cp.async and
# ldmatrix (.trans for V) in every shipped PTX: grep each entry's own body.
mla_entry_body() { # PTX_FILE ENTRY
    awk -v e="$2" '/\.entry / { on = index($0, e "(") > 0 } on' "$1"
}
for ptx in "$TMP/dsk4j_kernels.compute_80.ptx" "$TMP/sm_89.ptx" "$TMP/sm_90a.ptx"; do
    for entry in dsk4j_mla_decode_mma_bm64_s3 dsk4j_mla_decode_mma_bm64_s2 dsk4j_mla_decode_mma_bm32_s1 \
                 dsk4j_mla_prefill_mma; do
        body=$(mla_entry_body "$ptx" "$entry")
        for insn in mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 cp.async.cg.shared.global \
                    ldmatrix.sync.aligned.m8n8.x4.shared.b16 ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16; do
            if ! grep -q "$insn" <<<"$body"; then
                echo "dsk4j: $entry in $(basename "$ptx") lacks $insn" >&2
                exit 1
            fi
        done
    done
    # dsk4j_mla_decode_wgmma_bm64_s3: S by wgmma (+ P V by mma.sync) in the sm_90a PTX only.
    body=$(mla_entry_body "$ptx" dsk4j_mla_decode_wgmma_bm64_s3)
    if [ "$(basename "$ptx")" = sm_90a.ptx ]; then
        for insn in wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 wgmma.fence.sync.aligned \
                    wgmma.wait_group.sync.aligned fence.proxy.async.shared::cta \
                    mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16; do
            if ! grep -q "$insn" <<<"$body"; then
                echo "dsk4j: dsk4j_mla_decode_wgmma_bm64_s3 in sm_90a.ptx lacks $insn" >&2
                exit 1
            fi
        done
    elif grep -q "wgmma\.\|fence\.proxy\.async" <<<"$body"; then
        echo "dsk4j: dsk4j_mla_decode_wgmma_bm64_s3 in $(basename "$ptx") holds wgmma (sm_90a only)" >&2
        exit 1
    fi
    # dsk4j_mla_decode_flash_sm90 (mla_decode_sm90.cu): TMA pages on mbarriers, wgmma bf16 for
    # S = Q K^T (m64n32k16) and O += P V (m64n256k16, V MN-major) in the sm_90a PTX only.
    body=$(mla_entry_body "$ptx" dsk4j_mla_decode_flash_sm90)
    if [ "$(basename "$ptx")" = sm_90a.ptx ]; then
        for insn in wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 \
                    wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 wgmma.fence.sync.aligned \
                    wgmma.commit_group.sync.aligned wgmma.wait_group.sync.aligned \
                    cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes \
                    mbarrier.try_wait.parity mbarrier.arrive.expect_tx fence.proxy.async.shared::cta; do
            if ! grep -q "$insn" <<<"$body"; then
                echo "dsk4j: dsk4j_mla_decode_flash_sm90 in sm_90a.ptx lacks $insn" >&2
                exit 1
            fi
        done
        # no mma.sync / ldmatrix / cp.async (non-bulk): both products on wgmma, loads by TMA
        if grep -q "mma\.sync\|ldmatrix\|cp\.async\.cg\|cp\.async\.ca" <<<"$body"; then
            echo "dsk4j: dsk4j_mla_decode_flash_sm90 in sm_90a.ptx holds mma.sync / ldmatrix / cp.async" >&2
            exit 1
        fi
    elif grep -q "wgmma\.\|cp\.async\.bulk\|mbarrier" <<<"$body"; then
        echo "dsk4j: dsk4j_mla_decode_flash_sm90 in $(basename "$ptx") holds sm_90a instructions" >&2
        exit 1
    fi
done

# Resource check: every entry must have no stack frame, no spills, no local memory.
bad=$(awk '
    /^== /                     { target = $2 }
    /Compiling entry function/ { fn = $0; sub(/.*function .\047?/, "", fn); sub(/\047.*/, "", fn) }
    /bytes stack frame/ {
        if ($1 != 0 || $5 != 0 || $9 != 0) print target " " fn ": " $0
    }
    /lmem/ {
        for (i = 2; i <= NF; i++) if ($i ~ /^lmem/) {
            v = ($(i-1) == "bytes") ? $(i-2) : $(i-1); gsub(/,/, "", v)
            if (v !~ /^0(\+0)*$/) print target " " fn ": " $0
        }
    }' "$REPORT")
if [ -n "$bad" ]; then
    echo "dsk4j: ptxas reports spills, stack frames or local memory:" >&2
    echo "$bad" >&2
    exit 1
fi
# setmaxnreg in dsk4j_gemm_fp8_block_sm90 moves registers within the CTA's pool: 128 producer
# threads at 48 and 256 consumer threads at 224 need 63488 = 384 x 165.3, so the kernel must be
# compiled to at least 168 registers per thread, or setmaxnreg.inc would wait forever.
r90=$(awk '/^== /{t=$2} /Compiling entry function .dsk4j_gemm_fp8_block_sm90/{f=1; next}
           f && /Used [0-9]+ registers/ { if (t == "sm_90a") for (i = 1; i <= NF; i++) if ($i == "Used") print $(i+1); f = 0 }' "$REPORT")
if [ -z "$r90" ] || [ "$r90" -lt 168 ]; then
    echo "dsk4j: dsk4j_gemm_fp8_block_sm90 uses ${r90:-?} registers on sm_90a; its setmaxnreg 48/224 needs >= 168" >&2
    exit 1
fi
n_entries=$(grep -c "Compiling entry function" "$REPORT" || true)
if [ "$n_entries" -ne 159 ]; then
    echo "dsk4j: expected 53 kernels (8 fp8, 11 gemm, 2 rope, 11 mla, 15 moe, 6 elementwise) x 3 targets in the ptxas report, found $n_entries" >&2
    exit 1
fi

# Install (replace) the outputs.
for f in dsk4j_kernels.compute_80.ptx dsk4j_kernels.sm_89.cubin dsk4j_kernels.sm_90a.cubin \
         ptxas-report.txt; do
    mv -f "$TMP/$f" "$OUTDIR/$f"
done

echo "dsk4j: kernels in $OUTDIR (no spills, no stack, no local memory); registers:"
awk '
    /^== /                     { target = $2 }
    /Compiling entry function/ { fn = $0; sub(/.*function .\047?/, "", fn); sub(/\047.*/, "", fn) }
    /Used [0-9]+ registers/    { for (i = 1; i <= NF; i++) if ($i == "Used") r = $(i+1);
                                 regs[fn] = regs[fn] sprintf(" %s:%s", target, r); fns[fn] = 1 }
    END { for (f in fns) printf "  %-30s%s\n", f, regs[f] }' "$OUTDIR/ptxas-report.txt" | sort
