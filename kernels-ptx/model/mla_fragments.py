# mla_fragments.py - a lane-level model of the warp instructions kernels-ptx/src/mla_decode.cu uses
# (ldmatrix .x4 / .x4.trans, mma.sync m16n8k16 row.col), as the PTX ISA describes them, and a check
# of the kernel's fragment addressing (address formulas copied from the kernel): S = Q K^T and
# O = P V of one KV tile for BM = 64 and 32. Used without a GPU to check the kernel's index math;
# python3 + numpy; `python3 kernels-ptx/model/mla_fragments.py`. Not part of any build.
import numpy as np
rng = np.random.default_rng(1)
PITCH, KD, LAT, BT = 584, 576, 512, 32
PP = BT + 8

def ldsm_x4(smem, addrs, trans):
    # addrs: byte addresses per lane; matrix i rows from lanes 8i..8i+7; returns regs[lane][i] = (lo, hi)
    regs = [[None]*4 for _ in range(32)]
    for i in range(4):
        M = np.array([smem[addrs[8*i+r]//2: addrs[8*i+r]//2 + 8] for r in range(8)])
        for l in range(32):
            g, t = l // 4, l % 4
            if not trans: regs[l][i] = (M[g][2*t], M[g][2*t+1])
            else: regs[l][i] = (M[2*t][g], M[2*t+1][g])
    return regs

def mma(C, A_regs, B_regs):
    # C: [32][4]; A_regs[lane] = 4 pairs; B_regs[lane] = 2 pairs
    A = np.zeros((16, 16)); B = np.zeros((16, 8))
    for l in range(32):
        g, t = l // 4, l % 4
        a = A_regs[l]; b = B_regs[l]
        A[g][2*t:2*t+2] = a[0]; A[g+8][2*t:2*t+2] = a[1]; A[g][2*t+8:2*t+10] = a[2]; A[g+8][2*t+8:2*t+10] = a[3]
        B[2*t:2*t+2, g] = b[0]; B[2*t+8:2*t+10, g] = b[1]
    D = A @ B
    for l in range(32):
        g, t = l // 4, l % 4
        C[l][0] += D[g][2*t]; C[l][1] += D[g][2*t+1]; C[l][2] += D[g+8][2*t]; C[l][3] += D[g+8][2*t+1]

def run(BM):
    RG = BM // 16; NS = 8 // RG; TW = BT // NS; NT = TW // 8; CW = LAT // NS; NO = CW // 8
    Q = rng.integers(-4, 5, size=(BM, KD)).astype(float)
    KV = rng.integers(-4, 5, size=(BT, KD)).astype(float)
    QB = BM * PITCH * 2
    smem = np.zeros((QB + BT * PITCH * 2 + BM * PP * 2) // 2)
    for r in range(BM): smem[r*PITCH: r*PITCH + KD] = Q[r]
    kv = QB  # byte base of the KV stage; s_q = 0
    for r in range(BT): smem[kv//2 + r*PITCH: kv//2 + r*PITCH + KD] = KV[r]
    s_p = QB + BT * PITCH * 2
    S_ref = Q @ KV.T
    P_model = np.zeros((BM, BT))
    for warp in range(8):
        rg, wj = warp // NS, warp % NS
        s = [[[0.0]*4 for _ in range(32)] for _ in range(NT)]
        for ks in range(KD // 16):
            a_addr = [0 + ((rg*16 + (l & 15)) * PITCH * 2 + (l >> 4) * 16) + ks*32 for l in range(32)]
            A = ldsm_x4(smem, a_addr, False)
            if NT == 1:
                b_addr = [kv + ((wj*TW + (l & 7)) * PITCH * 2 + ((l >> 3) & 1) * 16) + ks*32 for l in range(32)]
                Bm = ldsm_x4(smem, b_addr, False)
                mma(s[0], A, [(Bm[l][0], Bm[l][1]) for l in range(32)])
            else:
                for j in range(0, NT, 2):
                    b_addr = []
                    for l in range(32):
                        nrow = wj*TW + j*8 + (l & 7) + ((l >> 4) << 3)
                        b_addr.append(kv + (nrow * PITCH * 2 + ((l >> 3) & 1) * 16) + ks*32)
                    Bm = ldsm_x4(smem, b_addr, False)
                    mma(s[j], A, [(Bm[l][0], Bm[l][1]) for l in range(32)])
                    mma(s[j+1], A, [(Bm[l][2], Bm[l][3]) for l in range(32)])
        # check S fragments and write P (= S here, as values) like the kernel
        for j in range(NT):
            for l in range(32):
                g, t4 = l // 4, l % 4
                for e in range(4):
                    h = e >> 1
                    row = rg*16 + g + h*8; tok = wj*TW + j*8 + t4*2 + (e & 1)
                    assert s[j][l][e] == S_ref[row][tok], (BM, warp, j, l, e)
                col = wj*TW + j*8 + t4*2
                smem[(s_p//2) + (rg*16+g)*PP + col: (s_p//2) + (rg*16+g)*PP + col + 2] = [s[j][l][0], s[j][l][1]]
                smem[(s_p//2) + (rg*16+g+8)*PP + col: (s_p//2) + (rg*16+g+8)*PP + col + 2] = [s[j][l][2], s[j][l][3]]
    P = smem[s_p//2: s_p//2 + BM*PP].reshape(BM, PP)[:, :BT]
    assert (P == S_ref).all()
    O_ref = P @ KV[:, :LAT]
    for warp in range(8):
        rg, wj = warp // NS, warp % NS
        acc = [[[0.0]*4 for _ in range(32)] for _ in range(NO)]
        for kk in range(BT // 16):
            p_addr = [s_p + ((rg*16 + (l & 15)) * PP + kk*16 + (l >> 4) * 8) * 2 for l in range(32)]
            A = ldsm_x4(smem, p_addr, False)
            v_addr = [kv + ((kk*16 + (l & 7) + ((l >> 3) & 1) * 8) * PITCH * 2 + (wj*CW + (l >> 4) * 8) * 2) for l in range(32)]
            for j in range(0, NO, 2):
                Bm = ldsm_x4(smem, [a + j*16 for a in v_addr], True)
                mma(acc[j], A, [(Bm[l][0], Bm[l][1]) for l in range(32)])
                mma(acc[j+1], A, [(Bm[l][2], Bm[l][3]) for l in range(32)])
        for j in range(NO):
            for l in range(32):
                g, t4 = l // 4, l % 4
                for h in range(2):
                    row = rg*16 + g + h*8
                    c = wj*CW + j*8 + t4*2
                    assert acc[j][l][2*h] == O_ref[row][c] and acc[j][l][2*h+1] == O_ref[row][c+1], (BM, warp, j, l, h)
    print("BM", BM, "ok: S = Q K^T and O = P V match through the lane model")

if __name__ == "__main__":
    run(64); run(32)
