#!/usr/bin/env bash
# native/check-isa.sh BUILD_DIR - fails if AVX instructions leaked out of the files compiled for
# them: only cpu_avx2_* may use ymm/FMA/F16C, only cpu_avx512_* and cpu_amx_* may use zmm or mask registers (and AMX tiles),
# so that a CPU without AVX2 (or AVX-512) runs the portable (or AVX2) path and never SIGILLs.
set -euo pipefail
dir=$1
if ! command -v objdump >/dev/null 2>&1; then
  echo "dsk4j: objdump not found - skipping the instruction-set check of the native objects"
  exit 0
fi
avx='%[yz]mm|%k[0-7]|%tmm|vfmadd|vfnmadd|vcvtph2ps|vcvtps2ph|vpbroadcast|vperm'
avx512='%zmm|%k[0-7]|%tmm|%[xy]mm(1[6-9]|2[0-9]|3[01])'
bad=0 n=0
while IFS= read -r -d '' o; do
  n=$((n + 1))
  name=$(basename "$o")
  case "$name" in
    cpu_avx512_*|cpu_amx_*) continue ;;
    cpu_avx2_*) pat=$avx512 ;;
    *) pat=$avx ;;
  esac
  if objdump -d "$o" | grep -qE "$pat"; then
    echo "dsk4j: $name holds instructions its CPU path may not have:" >&2
    objdump -d "$o" | grep -E "$pat" | head -5 >&2
    bad=1
  fi
done < <(find "$dir" -name '*.o' -print0)
if [ "$n" = 0 ]; then echo "dsk4j: no object files under $dir" >&2; exit 1; fi
[ "$bad" = 0 ] && echo "dsk4j: instruction sets of $n native objects checked (AVX only in cpu_avx2_*/cpu_avx512_*/cpu_amx_*)"
exit "$bad"
