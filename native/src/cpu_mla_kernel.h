/* cpu_mla_kernel.h - the inner loops of mla on the cpu backend, written once with GCC vector
 * extensions and instantiated per ISA by the file that includes it:
 *   cpu_mla.c        (MK_VL 4,  portable: SSE2 on x86-64, whatever the target has elsewhere)
 *   cpu_avx2_mla.c   (MK_VL 8,  compiled with -mavx2 -mfma: ymm, fused multiply-add)
 *   cpu_avx512_mla.c (MK_VL 16, compiled with -mavx512f...: zmm, fused multiply-add)
 * Before including, define MK_VL (lanes), MK_NAME(x) (a unique prefix), MK_QK_RB / MK_PV_ROWS /
 * MK_PV_CB (register blocking, chosen for the register file). a * b + c contracts to an FMA where
 * the target has one (gnu11 default -ffp-contract=fast); results therefore differ between paths
 * in the last bits, which the conformance tolerances of DESIGN.md 6 allow.
 *
 * Layouts (all f32, "Rpad" = rows rounded up to MK_VL, key tiles padded to a multiple of 8):
 *   Qt [d][Rpad]     queries transposed (row r of query i at Qt[i*Rpad + r]), pre-scaled.
 *   K  [nt][kstride] keys in natural layout (the first d of each row used).
 *   St [ntpad][Rpad] scores transposed, then probabilities in place.
 *   V  [nt][vstride] values in natural layout (the first dv of each row used).
 *   O  [R][ostride]  f32 accumulators.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MK_BYTES (MK_VL * 4)
typedef float MK_NAME(vf) __attribute__((vector_size(MK_BYTES)));
typedef int32_t MK_NAME(vi) __attribute__((vector_size(MK_BYTES)));
#define VF MK_NAME(vf)
#define VI MK_NAME(vi)

static inline VF MK_NAME(ld)(const float* p) {
    VF v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void MK_NAME(st)(float* p, VF v) { memcpy(p, &v, sizeof v); }
/* A broadcast. Written as a literal of equal elements, which GCC emits as one vbroadcastss
 * ((VF){0} + s adds 0.0f first; a loop over the lanes becomes masked inserts). */
static inline VF MK_NAME(bc)(float s) {
#if MK_VL == 4
    return (VF){s, s, s, s};
#elif MK_VL == 8
    return (VF){s, s, s, s, s, s, s, s};
#elif MK_VL == 16
    return (VF){s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s};
#else
#error "MK_VL must be 4, 8 or 16"
#endif
}
static inline VF MK_NAME(sel)(VI m, VF a, VF b) { return (VF)(((VI)a & m) | ((VI)b & ~m)); }
static inline VF MK_NAME(vmax)(VF a, VF b) { return MK_NAME(sel)(a > b, a, b); }

/* exp(x) in f32, about 2 ulp (Cephes expf polynomial); x < -87.33 (and -inf) gives exactly 0. */
static inline VF MK_NAME(vexp)(VF x) {
    VI zero = x < -87.33654f;
    x = MK_NAME(sel)(x > 88.37626f, MK_NAME(bc)(88.37626f), x);
    x = MK_NAME(sel)(zero, MK_NAME(bc)(-87.33654f), x);
    VF t = x * 1.44269504088896341f + 12582912.0f;
    VF n = t - 12582912.0f;
    VI ni = (VI)t - 0x4B400000;
    VF r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    VF p = MK_NAME(bc)(1.9875691500E-4f);
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * (r * r) + r + 1.0f;
    VF y = (VF)((VI)p + (ni << 23));
    return MK_NAME(sel)(zero, MK_NAME(bc)(0.0f), y);
}

/* St[n][r0 .. r0 + RB*VL) for keys n0 .. n0+NK: sum_i Qt[i][r] * K[n][i]. */
static inline __attribute__((always_inline)) void MK_NAME(qk_blk)(float* St, const float* Qt, int64_t Rpad,
                                                                   const float* K, int64_t ks, int64_t i0,
                                                                   int64_t i1, int64_t r0, int64_t n0, const int NK,
                                                                   const int RB) {
    VF acc[8][4];
#pragma GCC unroll 8
    for (int a = 0; a < NK; a++)
#pragma GCC unroll 4
        for (int j = 0; j < RB; j++)
            acc[a][j] = i0 == 0 ? MK_NAME(bc)(0.0f) : MK_NAME(ld)(St + (n0 + a) * Rpad + r0 + j * MK_VL);
    const float* kp = K + n0 * ks;
    for (int64_t i = i0; i < i1; i++) {
        VF q[4];
        const float* qp = Qt + i * Rpad + r0;
#pragma GCC unroll 4
        for (int j = 0; j < RB; j++) q[j] = MK_NAME(ld)(qp + j * MK_VL);
#pragma GCC unroll 8
        for (int a = 0; a < NK; a++) {
            VF kb = MK_NAME(bc)(kp[a * ks + i]);
#pragma GCC unroll 4
            for (int j = 0; j < RB; j++) acc[a][j] = q[j] * kb + acc[a][j];
        }
    }
#pragma GCC unroll 8
    for (int a = 0; a < NK; a++)
#pragma GCC unroll 4
        for (int j = 0; j < RB; j++) MK_NAME(st)(St + (n0 + a) * Rpad + r0 + j * MK_VL, acc[a][j]);
}

/* St[ntpad][Rpad] = Qt^T K^T over d; ntpad % 8 == 0, Rpad % MK_VL == 0. The sum over d runs in
 * chunks of MK_DC so that a chunk of Qt and of K stay in L1 while every (rows, keys) block uses them;
 * St is the accumulator between chunks. */
#define MK_DC 64
static void MK_NAME(qk)(float* St, const float* Qt, int64_t Rpad, const float* K, int64_t ks, int64_t ntpad,
                        int64_t d) {
    const int64_t nv = Rpad / MK_VL;
    for (int64_t i0 = 0; i0 < d; i0 += MK_DC) {
        const int64_t i1 = d - i0 < MK_DC ? d : i0 + MK_DC;
        for (int64_t v0 = 0; v0 < nv;) {
            int64_t rb = nv - v0;
            if (rb >= MK_QK_RB) {
                for (int64_t n0 = 0; n0 < ntpad; n0 += 4)
                    MK_NAME(qk_blk)(St, Qt, Rpad, K, ks, i0, i1, v0 * MK_VL, n0, 4, MK_QK_RB);
                v0 += MK_QK_RB;
            } else if (rb >= 2) {
                for (int64_t n0 = 0; n0 < ntpad; n0 += 4)
                    MK_NAME(qk_blk)(St, Qt, Rpad, K, ks, i0, i1, v0 * MK_VL, n0, 4, 2);
                v0 += 2;
            } else {
                for (int64_t n0 = 0; n0 < ntpad; n0 += 8)
                    MK_NAME(qk_blk)(St, Qt, Rpad, K, ks, i0, i1, v0 * MK_VL, n0, 8, 1);
                v0 += 1;
            }
        }
    }
}
#undef MK_DC

/* Online softmax step over one key tile, vectorized over rows. For each row r, keys n >= vis[r]
 * are masked. m[r] (running max, -inf at first), l[r] (running sum) are updated; alpha[r] =
 * exp(m_old - m_new) is what the accumulators must be multiplied by; St becomes the
 * probabilities exp(s - m_new) (0 where masked). */
static void MK_NAME(softmax)(float* St, int64_t Rpad, int64_t ntpad, const int32_t* vis, float* m, float* l,
                             float* alpha) {
    const VF ninf = MK_NAME(bc)(-INFINITY);
    for (int64_t r = 0; r < Rpad; r += MK_VL) {
        VF mo = MK_NAME(ld)(m + r);
        VI vv;
        memcpy(&vv, vis + r, sizeof vv);
        VF mx = mo;
        for (int64_t n = 0; n < ntpad; n++) {
            float* sp = St + n * Rpad + r;
            VI keep = (VI){0} + (int32_t)n < vv;
            VF s = MK_NAME(sel)(keep, MK_NAME(ld)(sp), ninf);
            MK_NAME(st)(sp, s);
            mx = MK_NAME(vmax)(mx, s);
        }
        VF mu = MK_NAME(sel)(mx == ninf, MK_NAME(bc)(0.0f), mx);
        VF al = MK_NAME(vexp)(mo - mu);
        VF sum = MK_NAME(bc)(0.0f);
        for (int64_t n = 0; n < ntpad; n++) {
            float* sp = St + n * Rpad + r;
            VF p = MK_NAME(vexp)(MK_NAME(ld)(sp) - mu);
            MK_NAME(st)(sp, p);
            sum += p;
        }
        MK_NAME(st)(l + r, MK_NAME(ld)(l + r) * al + sum);
        MK_NAME(st)(m + r, mx);
        MK_NAME(st)(alpha + r, al);
    }
}

/* O rows r0 .. r0+PR, columns c0 .. c0 + CB*VL: O = O * alpha[r] + sum_n Pt[n][r] V[n][c]. */
static inline __attribute__((always_inline)) void MK_NAME(pv_blk)(float* O, int64_t os, const float* Pt,
                                                                   int64_t Rpad, const float* V, int64_t vs,
                                                                   int64_t nt, const float* alpha, int64_t r0,
                                                                   int64_t c0, const int PR, const int CB) {
    VF acc[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < PR; i++) {
        VF al = MK_NAME(bc)(alpha ? alpha[r0 + i] : 1.0f);
#pragma GCC unroll 4
        for (int j = 0; j < CB; j++) acc[i][j] = MK_NAME(ld)(O + (r0 + i) * os + c0 + j * MK_VL) * al;
    }
    for (int64_t n = 0; n < nt; n++) {
        VF vv[4];
        const float* vp = V + n * vs + c0;
#pragma GCC unroll 4
        for (int j = 0; j < CB; j++) vv[j] = MK_NAME(ld)(vp + j * MK_VL);
        const float* pp = Pt + n * Rpad + r0;
#pragma GCC unroll 4
        for (int i = 0; i < PR; i++) {
            VF pb = MK_NAME(bc)(pp[i]);
#pragma GCC unroll 4
            for (int j = 0; j < CB; j++) acc[i][j] = pb * vv[j] + acc[i][j];
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < PR; i++)
#pragma GCC unroll 4
        for (int j = 0; j < CB; j++) MK_NAME(st)(O + (r0 + i) * os + c0 + j * MK_VL, acc[i][j]);
}

/* O[R][dvpad] (row stride os) = O * alpha + Pt^T V; dvpad % (MK_PV_CB * MK_VL) == 0. alpha NULL: 1. */
static void MK_NAME(pv)(float* O, int64_t os, const float* Pt, int64_t Rpad, int64_t R, const float* V, int64_t vs,
                        int64_t nt, int64_t dvpad, const float* alpha) {
    for (int64_t c0 = 0; c0 < dvpad; c0 += MK_PV_CB * MK_VL) {
        int64_t r0 = 0;
        for (; r0 + MK_PV_ROWS <= R; r0 += MK_PV_ROWS)
            MK_NAME(pv_blk)(O, os, Pt, Rpad, V, vs, nt, alpha, r0, c0, MK_PV_ROWS, MK_PV_CB);
        for (; r0 < R; r0++) MK_NAME(pv_blk)(O, os, Pt, Rpad, V, vs, nt, alpha, r0, c0, 1, MK_PV_CB);
    }
}

/* dst[n] f32 = widen(src[n] bf16) (exact: the bits shifted up). */
static void MK_NAME(widen_bf16)(float* dst, const uint16_t* src, int64_t n) {
    typedef uint16_t vh __attribute__((vector_size(MK_VL * 2)));
    const int64_t nv = n / MK_VL * MK_VL;
    for (int64_t i = 0; i < nv; i += MK_VL) {
        vh h;
        memcpy(&h, src + i, sizeof h);
        VI w = __builtin_convertvector(h, VI) << 16;
        memcpy(dst + i, &w, sizeof w);
    }
    for (int64_t i = nv; i < n; i++) {
        uint32_t b = (uint32_t)src[i] << 16;
        memcpy(dst + i, &b, 4);
    }
}

/* dst[n] = float(e4m3 src[n]) * s, exact as the table of cpu_e4m3_to_f32 then one f32 multiply:
 * normal codes by moving the exponent and mantissa bits, subnormals as m * 2^-9, 0x7f/0xff NaN. */
static void MK_NAME(dequant_e4m3)(float* dst, const uint8_t* src, int64_t n, float s) {
    typedef uint8_t vb __attribute__((vector_size(MK_VL)));
    const int64_t nv = n / MK_VL * MK_VL;
    const VF sv = MK_NAME(bc)(s);
    for (int64_t i = 0; i < nv; i += MK_VL) {
        vb b;
        memcpy(&b, src + i, sizeof b);
        VI c = __builtin_convertvector(b, VI);
        VI x = c & 0x7f, sign = (c & 0x80) << 24;
        VF normal = (VF)(((x << 20) + (120 << 23)) | sign);
        VF sub = (VF)((VI)(__builtin_convertvector(x, VF) * 0x1p-9f) | sign);
        VF v = MK_NAME(sel)(x < 8, sub, normal);
        v = MK_NAME(sel)(x == 0x7f, (VF)(sign | 0x7fc00000), v);
        MK_NAME(st)(dst + i, v * sv);
    }
    for (int64_t i = nv; i < n; i++) {
        uint32_t c = src[i], x = c & 0x7f, sign = (c & 0x80) << 24, bits;
        float v;
        if (x == 0x7f) {
            bits = sign | 0x7fc00000u;
            memcpy(&v, &bits, 4);
        } else if (x < 8) {
            v = (float)x * 0x1p-9f;
            memcpy(&bits, &v, 4);
            bits |= sign;
            memcpy(&v, &bits, 4);
        } else {
            bits = ((x << 20) + (120u << 23)) | sign;
            memcpy(&v, &bits, 4);
        }
        dst[i] = v * s;
    }
}

#undef VF
#undef VI
