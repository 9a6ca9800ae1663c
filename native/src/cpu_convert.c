/* cpu_convert.c - scalar conversions between f32, bf16, f16, e4m3 and e5m2 (DESIGN.md 3),
 * and the run-time check for the AVX2 path.
 *
 * Everything here is plain C on the integer bits, so that the result does not depend on
 * the MXCSR rounding mode or on flush-to-zero / denormals-are-zero. These functions are
 * the reference of every vector path: cpu_avx2_*.c must agree with them bit for bit.
 *
 * f32 -> fp8 equals NVIDIA's host __nv_cvt_float_to_fp8(x, __NV_SATFINITE, fmt) on all
 * 2^32 inputs: round to nearest even, saturate to +-max (Inf too), NaN -> 0x7f, signed
 * zeros kept, underflow to signed zero.
 */
#include <string.h>

#include "internal.h"

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* m >> s rounded to nearest, ties to even; 1 <= s <= 31. */
static inline uint32_t shr_rne(uint32_t m, unsigned s) {
    uint32_t q = m >> s;
    uint32_t r = m & ((1u << s) - 1u);
    uint32_t half = 1u << (s - 1u);
    return q + (uint32_t)(r > half || (r == half && (q & 1u)));
}

/* f32 -> e4m3 (1.4.3, bias 7, no Inf, max 448 = 0x7e, NaN 0x7f). */
uint8_t cpu_f32_to_e4m3(float x) {
    uint32_t b = f32_bits(x);
    uint32_t a = b & 0x7fffffffu;
    uint32_t sign = (b >> 24) & 0x80u;
    uint32_t c;
    if (a > 0x7f800000u) return 0x7f; /* every NaN, sign dropped */
    if (a >= 0x3c800000u) {           /* >= 2^-6: normal in e4m3 */
        /* round the 3 kept mantissa bits (bit 20 up) to nearest even, then rebias 127 -> 7 */
        c = ((a + 0x7ffffu + ((a >> 20) & 1u)) >> 20) - (120u << 3);
        if (c > 0x7eu) c = 0x7eu; /* saturate, Inf included */
    } else {
        /* subnormal in e4m3: code = rne(|x| * 2^9) = rne(M * 2^(E-141)); code 8 = 2^-6 */
        unsigned s = 141u - (a >> 23);
        c = s > 25u ? 0u : shr_rne((a & 0x7fffffu) | 0x800000u, s);
    }
    return (uint8_t)(c | sign);
}

/* f32 -> e5m2 (1.5.2, bias 15, max 57344 = 0x7b, Inf/NaN saturate / -> 0x7f). */
uint8_t cpu_f32_to_e5m2(float x) {
    uint32_t b = f32_bits(x);
    uint32_t a = b & 0x7fffffffu;
    uint32_t sign = (b >> 24) & 0x80u;
    uint32_t c;
    if (a > 0x7f800000u) return 0x7f;
    if (a >= 0x38800000u) { /* >= 2^-14: normal in e5m2 */
        c = ((a + 0xfffffu + ((a >> 21) & 1u)) >> 21) - (112u << 2);
        if (c > 0x7bu) c = 0x7bu;
    } else {
        /* code = rne(|x| * 2^16) = rne(M * 2^(E-134)) */
        unsigned s = 134u - (a >> 23);
        c = s > 25u ? 0u : shr_rne((a & 0x7fffffu) | 0x800000u, s);
    }
    return (uint8_t)(c | sign);
}

/* e4m3 -> f32, exact; 0x7f / 0xff -> quiet NaN with the sign kept (sign|0x7fc00000). */
float cpu_e4m3_to_f32(uint8_t v) {
    uint32_t sign = (uint32_t)(v & 0x80u) << 24;
    uint32_t a = v & 0x7fu;
    if (a == 0x7fu) return bits_f32(sign | 0x7fc00000u);
    if (a >= 8u) return bits_f32(sign | ((a << 20) + (120u << 23)));
    return bits_f32(sign | f32_bits((float)a * 0x1p-9f)); /* subnormal: a * 2^-9, exact */
}

/* e5m2 -> f32, exact; 0x7c Inf, 0x7d..0x7f -> quiet NaN with the sign kept. */
float cpu_e5m2_to_f32(uint8_t v) {
    uint32_t sign = (uint32_t)(v & 0x80u) << 24;
    uint32_t a = v & 0x7fu;
    if (a > 0x7cu) return bits_f32(sign | 0x7fc00000u);
    if (a == 0x7cu) return bits_f32(sign | 0x7f800000u);
    if (a >= 4u) return bits_f32(sign | ((a << 21) + (112u << 23)));
    return bits_f32(sign | f32_bits((float)a * 0x1p-16f)); /* subnormal: a * 2^-16 */
}

/* bf16 -> f32: the upper half of the f32 bits, exact. */
float cpu_bf16_to_f32(uint16_t v) { return bits_f32((uint32_t)v << 16); }

/* f32 -> bf16: round to nearest even of the upper 16 bits (overflow to Inf);
 * NaN -> (bits >> 16) | 0x0040 (quiet, sign and upper payload kept). */
uint16_t cpu_f32_to_bf16(float x) {
    uint32_t b = f32_bits(x);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x0040u);
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

/* f16 -> f32, exact; NaN quieted with sign and payload kept (as F16C vcvtph2ps). */
float cpu_f16_to_f32(uint16_t v) {
    uint32_t sign = (uint32_t)(v & 0x8000u) << 16;
    uint32_t e = (v >> 10) & 0x1fu;
    uint32_t m = v & 0x3ffu;
    if (e == 0x1fu) return bits_f32(sign | 0x7f800000u | (m ? 0x00400000u | (m << 13) : 0u));
    if (e == 0u) return bits_f32(sign | f32_bits((float)m * 0x1p-24f)); /* zero/subnormal */
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

/* f32 -> f16: IEEE round to nearest even, subnormals, overflow to Inf. NaN -> sign | 0x7e00 |
 * upper 10 payload bits (= F16C vcvtps2ph and Java 25 Float.floatToFloat16). */
uint16_t cpu_f32_to_f16(float x) {
    uint32_t b = f32_bits(x);
    uint32_t a = b & 0x7fffffffu;
    uint32_t sign = (b >> 16) & 0x8000u;
    uint32_t c;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((b >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) { /* >= 65520 = max + half ulp: rounds to Inf (Inf included) */
        c = 0x7c00u;
    } else if (a >= 0x38800000u) { /* >= 2^-14: normal */
        c = ((a + 0xfffu + ((a >> 13) & 1u)) >> 13) - (112u << 10);
    } else {
        /* code = rne(|x| * 2^24) = rne(M * 2^(E-126)) */
        unsigned s = 126u - (a >> 23);
        c = s > 25u ? 0u : shr_rne((a & 0x7fffffu) | 0x800000u, s);
    }
    return (uint16_t)(c | sign);
}

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
/* One CPUID feature bit (reg 0..3 = eax, ebx, ecx, edx); 0 when the leaf does not exist. Used for
 * the features that clang's __builtin_cpu_supports does not know (f16c, amx-tile, amx-bf16,
 * avx512bf16 in clang 14), so that the library builds with gcc and clang alike. */
static int cpuid_bit(unsigned leaf, unsigned sub, int reg, int bit) {
    unsigned r[4];
    if (!__get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3])) return 0;
    return (int)((r[reg] >> bit) & 1u);
}
#endif

/* AVX2 + FMA + F16C present (the cpu_avx2_*.c files may run). */
int cpu_has_avx2_fma(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           cpuid_bit(1, 0, 2, 29) /* f16c */;
#else
    return 0;
#endif
}

int cpu_has_avx512(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
    return 0;
#endif
}

#if defined(__x86_64__) && defined(__linux__)
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#define DSK4J_ARCH_REQ_XCOMP_PERM 0x1023
#define DSK4J_XFEATURE_XTILEDATA 18
static int amx_granted;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;
static void amx_request(void) {
    amx_granted = syscall(SYS_arch_prctl, DSK4J_ARCH_REQ_XCOMP_PERM, DSK4J_XFEATURE_XTILEDATA) == 0;
}
#endif

int cpu_has_amx(void) {
#if defined(__x86_64__) && defined(__linux__)
    if (!cpu_has_avx512() || !__builtin_cpu_supports("avx512vbmi") || !cpuid_bit(7, 0, 3, 24) /* amx-tile */ ||
        !cpuid_bit(7, 0, 3, 22) /* amx-bf16 */ || !cpuid_bit(7, 1, 0, 5) /* avx512bf16 */)
        return 0;
    pthread_once(&amx_once, amx_request);
    return amx_granted;
#else
    return 0;
#endif
}
