# mla_prefill_model.py - a lane-level Python port of dsk4j_mla_prefill_mma (kernels-ptx/src/
# mla_prefill.cu) on the ldmatrix / mma.sync model of mla_fragments.py: Q fragments in registers,
# K B fragments, masks (causal, sequence end, rows past the sequence), online softmax, P's C
# fragments reused as A fragments, V by ldmatrix.trans; varlen blocks and grid mapping. Checked
# against a float64 evaluation of the contract (q, k, v bf16-rounded as the kernel stages them).
# Index math only (no GPU). `python3 kernels-ptx/model/mla_prefill_model.py`.
import numpy as np, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mla_fragments import ldsm_x4, mma
rng = np.random.default_rng(3)
BM, BN, DQK, DV = 64, 32, 192, 128
QP, VP = DQK + 8, DV + 8
Q_BYTES, K_BYTES, V_BYTES = BM * QP * 2, BN * QP * 2, BN * VP * 2
LOG2E, LN2 = 1.4426950408889634, 0.6931471805599453

def bf16(x):
    x = np.asarray(x, dtype=np.float32); u = x.view(np.uint32).astype(np.uint64)
    return ((((u + 0x7fff + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32)).view(np.float32)

def load_rows(smem, base, pitch, src, tok0, n_valid, ROWS, dim, heads, h):
    for r in range(ROWS):
        row = bf16(src[tok0 + r, h]) if r < n_valid else np.zeros(dim)
        smem[base // 2 + r * pitch: base // 2 + r * pitch + dim] = row

def block(seq, qt, h, q, k, v, cu, heads, scale, causal, out, lse_out):
    s0, s1 = cu[seq], cu[seq + 1]; q0 = s0 + qt * BM
    if q0 >= s1: return
    q_valid = min(BM, s1 - q0); kv_end = min(q0 + BM, s1) if causal else s1
    n_tiles = (kv_end - s0 + BN - 1) // BN
    smem = np.zeros((Q_BYTES + 2 * (K_BYTES + V_BYTES)) // 2)
    load_rows(smem, 0, QP, q, q0, q_valid, BM, DQK, heads, h)
    kb = lambda slot: Q_BYTES + slot * (K_BYTES + V_BYTES)
    W = [dict(acc=[[[0.0]*4 for _ in range(32)] for _ in range(DV // 8)], m=[[-np.inf]*2 for _ in range(32)], l=[[0.0]*2 for _ in range(32)]) for _ in range(4)]
    for it in range(n_tiles):
        key0 = s0 + it * BN; nv = min(BN, kv_end - key0); slot = it & 1
        load_rows(smem, kb(slot), QP, k, key0, nv, BN, DQK, heads, h)
        load_rows(smem, kb(slot) + K_BYTES, VP, v, key0, nv, BN, DV, heads, h)
        for warp in range(4):
            w = W[warp]
            qf = [ldsm_x4(smem, [((warp*16 + (l & 15)) * QP * 2 + (ks*2 + (l >> 4)) * 16) for l in range(32)], False) for ks in range(DQK // 16)]
            s = [[[0.0]*4 for _ in range(32)] for _ in range(BN // 8)]
            for ks in range(DQK // 16):
                for j in range(0, BN // 8, 2):
                    Bm = ldsm_x4(smem, [kb(slot) + ((j*8 + (l & 7) + ((l >> 4) << 3)) * QP * 2 + (ks*2 + ((l >> 3) & 1)) * 16) for l in range(32)], False)
                    mma(s[j], qf[ks], [(Bm[l][0], Bm[l][1]) for l in range(32)])
                    mma(s[j+1], qf[ks], [(Bm[l][2], Bm[l][3]) for l in range(32)])
            pa = [[None, None] for _ in range(BN // 8)]
            pa_l = [[[None, None] for _ in range(BN // 8)] for _ in range(32)]
            for l in range(32):
                g, t4 = l // 4, l % 4
                qa = [q0 + warp*16 + g, q0 + warp*16 + g + 8]
                for j in range(BN // 8):
                    for e in range(4):
                        hh = e >> 1; key = key0 + j*8 + t4*2 + (e & 1)
                        ok = qa[hh] < s1 and key < kv_end and (not causal or key <= qa[hh])
                        s[j][l][e] = np.float32(s[j][l][e]) * np.float32(scale * LOG2E) if ok else -np.inf
            for l in range(32):
                g, t4 = l // 4, l % 4
                quad = [4*g + t for t in range(4)]
                al = [0, 0]; mu = [0, 0]
                for hh in range(2):
                    tmax = max(s[j][x][e] for x in quad for j in range(BN // 8) for e in (2*hh, 2*hh+1))
                    mx = max(w['m'][l][hh], tmax); mu[hh] = 0.0 if mx == -np.inf else mx
                    al[hh] = 0.0 if w['m'][l][hh] == -np.inf else 2.0 ** (w['m'][l][hh] - mx)
                    w['m'][l][hh] = mx; w['l'][l][hh] *= al[hh]
                for j in range(DV // 8):
                    for e in range(4): w['acc'][j][l][e] *= al[e >> 1]
                for j in range(BN // 8):
                    p = bf16(np.array([2.0 ** (s[j][l][e] - mu[e >> 1]) for e in range(4)], np.float32))
                    p32 = [2.0 ** (s[j][l][e] - mu[e >> 1]) for e in range(4)]
                    w['l'][l][0] += p32[0] + p32[1]; w['l'][l][1] += p32[2] + p32[3]
                    pa_l[l][j] = [(p[0], p[1]), (p[2], p[3])]
            for kk in range(BN // 16):
                A = [(pa_l[l][2*kk][0], pa_l[l][2*kk][1], pa_l[l][2*kk+1][0], pa_l[l][2*kk+1][1]) for l in range(32)]
                v_addr = [kb(slot) + K_BYTES + ((kk*16 + (l & 7) + ((l >> 3) & 1) * 8) * VP * 2 + (l >> 4) * 16) for l in range(32)]
                for j in range(0, DV // 8, 2):
                    Bm = ldsm_x4(smem, [a + j*16 for a in v_addr], True)
                    mma(w['acc'][j], A, [(Bm[l][0], Bm[l][1]) for l in range(32)])
                    mma(w['acc'][j+1], A, [(Bm[l][2], Bm[l][3]) for l in range(32)])
    for warp in range(4):
        w = W[warp]
        for l in range(32):
            g, t4 = l // 4, l % 4
            for hh in range(2):
                qa = q0 + warp*16 + g + 8*hh
                lt = sum(w['l'][4*g + t][hh] for t in range(4))
                if qa >= s1: continue
                inv = 1 / lt if lt > 0 else 0
                for j in range(DV // 8):
                    c = j*8 + t4*2
                    out[qa, h, c:c+2] = [w['acc'][j][l][2*hh] * inv, w['acc'][j][l][2*hh+1] * inv]
                if t4 == 0: lse_out[qa, h] = (w['m'][l][hh] + np.log2(lt)) * LN2 if lt > 0 else -np.inf

def run(lens, heads, causal, scale=0.1352338):
    cu = np.concatenate([[0], np.cumsum(lens)]).astype(int); T = cu[-1]; nseq = len(lens)
    q = rng.uniform(-1, 1, (T, heads, DQK)).astype(np.float32); k = rng.uniform(-1, 1, (T, heads, DQK)).astype(np.float32)
    v = rng.uniform(-1, 1, (T, heads, DV)).astype(np.float32)
    out = np.full((T, heads, DV), np.nan); lse = np.full((T, heads), np.nan)
    q_tiles = (max(lens) + BM - 1) // BM
    for bx in range(nseq * q_tiles):
        for h in range(heads): block(bx // q_tiles, bx % q_tiles, h, q, k, v, cu, heads, scale, causal, out, lse)
    qb, kb_, vb = bf16(q).astype(np.float64), bf16(k).astype(np.float64), bf16(v).astype(np.float64)
    ref = np.zeros_like(out); lref = np.zeros_like(lse)
    for i in range(nseq):
        for t in range(cu[i], cu[i+1]):
            end = t + 1 if causal else cu[i+1]
            for h in range(heads):
                lg = scale * (kb_[cu[i]:end, h] @ qb[t, h]); mx = lg.max(); p = np.exp(lg - mx)
                ref[t, h] = p @ vb[cu[i]:end, h] / p.sum(); lref[t, h] = mx + np.log(p.sum())
    assert not np.isnan(out).any() and not np.isnan(lse).any(), "every row written"
    err = np.linalg.norm(out - ref) / np.linalg.norm(ref); lerr = np.abs(lse - lref).max()
    print(f"prefill lens={lens} H={heads} causal={causal}: o rel err {err:.2e}, lse err {lerr:.2e}")
    assert err < 5e-3 and lerr < 1e-3

if __name__ == "__main__":
    run([70, 1, 33], 2, True)
    run([40, 65], 1, False)
