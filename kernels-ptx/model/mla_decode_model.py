# mla_decode_model.py - a Python port of decode_impl (kernels-ptx/src/mla_decode.cu) run warp by
# warp between its barriers on the lane model of mla_fragments.py (ldmatrix / mma.sync; for the
# sm_90a variant, wgmma read through the no-swizzle K-major descriptor layout as this port
# understands the PTX ISA), with cache bytes built per dsk4j.h (BF16, FP8), Q / KV staging,
# masks (causal, sequence ends), online softmax with bf16 P, split-KV partials and the combine;
# checked against a float64 evaluation of the contract (every output written exactly once, -inf
# lse and zero rows for empty sequences). It checks index math only: the hardware semantics are
# the model's reading of the ISA, not a GPU run. `python3 kernels-ptx/model/mla_decode_model.py`.
import numpy as np, struct, sys
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from mla_fragments import ldsm_x4, mma, PITCH, KD, LAT, BT, PP
rng = np.random.default_rng(7)
LOG2E = 1.4426950408889634; LN2 = 0.6931471805599453

def bf16(x):
    x = np.asarray(x, dtype=np.float32); u = x.view(np.uint32).astype(np.uint64)
    u = ((u + 0x7fff + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32)
def bf16_bits(x): return (bf16(x).view(np.uint32) >> 16).astype(np.uint16)
def e4m3_to_f32(v):
    s = -1.0 if v & 0x80 else 1.0; e = (v >> 3) & 15; m = v & 7
    if e == 15 and m == 7: return float('nan')
    return s * (m * 2.0**-9 if e == 0 else (1 + m / 8) * 2.0**(e - 7))
E4M3 = np.array([e4m3_to_f32(v) for v in range(256)])
def f32_to_e4m3(x):  # nearest (ties any: fine for the model), saturating
    best = np.nanargmin(np.where(np.isnan(E4M3), np.inf, np.abs(E4M3 - x)))
    return int(best)

def build_cache(fmt, num_pages, tokvals):  # tokvals: dict pool_token -> (latent f32[512], rope f32[64])
    tb = {1: 1152, 2: 656}[fmt]
    buf = bytearray(b'\xff' * (num_pages * 64 * tb)); vals = {}
    for tok, (lat, rope) in tokvals.items():
        base = tok * tb
        if fmt == 1:
            buf[base:base + 1024] = bf16_bits(lat).tobytes(); buf[base + 1024:base + 1152] = bf16_bits(rope).tobytes()
            vals[tok] = np.concatenate([bf16(lat), bf16(rope)]).astype(np.float64)
        else:
            codes = np.zeros(512, np.uint8); sc = np.zeros(4, np.float32); v = np.zeros(576)
            for j in range(4):
                g = lat[128*j:128*j+128]; amax = max(np.abs(g).max(), 1e-4)
                s = 2.0 ** np.ceil(np.log2(amax / 448)); sc[j] = s
                for i in range(128):
                    c = f32_to_e4m3(g[i] / s); codes[128*j+i] = c; v[128*j+i] = E4M3[c] * s
            buf[base:base + 512] = codes.tobytes(); buf[base + 512:base + 528] = sc.tobytes()
            buf[base + 528:base + 656] = bf16_bits(rope).tobytes(); v[512:] = bf16(rope)
            vals[tok] = v
    return bytes(buf), vals

def toff(r, ch, rows, WG):  # element offset of chunk ch of row r (tile_off / 2)
    return (ch*rows*16 + r*16)//2 if WG else r*PITCH + ch*8

def load_kv(smem_kv, cache, fmt, bt_row, t0, L, WG=False):  # writes bf16 values (as float) into smem_kv [BT*PITCH]
    n_valid = L - t0; page = bt_row[t0 // 64]; tok0 = page * 64 + t0 % 64
    if fmt == 1:
        for idx in range(BT * 72):
            r, ch = idx // 72, idx % 72; v = r < n_valid
            src = (tok0 + (r if v else 0)) * 1152 + ch * 16
            data = np.frombuffer(cache[src:src+16], np.uint16) if v else np.zeros(8, np.uint16)
            o = toff(r, ch, BT, WG); smem_kv[o:o+8] = (data.astype(np.uint32) << 16).view(np.float32)
    else:
        for idx in range(BT * 40):
            r, it = idx // 40, idx % 40; v = r < n_valid
            tok = (tok0 + (r if v else 0)) * 656
            if it >= 32:
                ch = 64 + (it - 32); src = tok + 528 + (it - 32) * 16
                data = np.frombuffer(cache[src:src+16], np.uint16) if v else np.zeros(8, np.uint16)
                o = toff(r, ch, BT, WG); smem_kv[o:o+8] = (data.astype(np.uint32) << 16).view(np.float32)
                continue
            out = np.zeros(16)
            if v:
                codes = cache[tok + it*16: tok + it*16 + 16]; s = struct.unpack('<f', cache[tok + 512 + 4*(it >> 3): tok + 516 + 4*(it >> 3)])[0]
                out = bf16(np.array([E4M3[c] * s for c in codes], np.float32))
            o = toff(r, 2*it, BT, WG); smem_kv[o:o+8] = out[:8]; o = toff(r, 2*it+1, BT, WG); smem_kv[o:o+8] = out[8:]

def decode_block(blk, BM, WG, q_lat, q_pe, cache, fmt, bt, lens, sq, heads, max_pages, nsplit, row_tiles, rows_total, scale, causal, out):
    RG = BM // 16; NS = 8 // RG; TW = BT // NS; NT = TW // 8; CW = LAT // NS; NO = CW // 8
    rt = blk % row_tiles; split = (blk // row_tiles) % nsplit; b = blk // (row_tiles * nsplit)
    rows_b = sq * heads; row0 = rt * BM; valid_rows = min(BM, rows_b - row0)
    L = lens[b]; tiles_b = (L + BT - 1) // BT; tb = tiles_b * split // nsplit; te = tiles_b * (split + 1) // nsplit
    bt_row = bt[b * max_pages:]
    QB = BM * KD * 2 if WG else BM * PITCH * 2; KVB = BT * KD * 2 if WG else BT * PITCH * 2
    smem = np.zeros((QB + KVB + BM * PP * 2) // 2)
    qrow0 = b * rows_b + row0
    for idx in range(BM * 72):  # load_q (bf16 values; f32 input rounded)
        r, ch = idx // 72, idx % 72; v = r < valid_rows; qr = qrow0 + (r if v else 0)
        src = q_lat[qr, ch*8:ch*8+8] if ch < 64 else q_pe[qr, (ch-64)*8:(ch-64)*8+8]
        o = toff(r, ch, BM, WG); smem[o:o+8] = bf16(src) if v else 0
    kv = QB; s_p = QB + KVB
    st = {}  # per warp state
    for warp in range(8):
        st[warp] = dict(acc=[[[0.0]*4 for _ in range(32)] for _ in range(NO)], m=[[-np.inf]*2 for _ in range(32)], l=[[0.0]*2 for _ in range(32)])
    def kv_end(rg, g, h):
        rr = row0 + rg*16 + g + h*8
        return 0 if (rr >= rows_b or L <= 0) else (L - sq + rr // heads + 1 if causal else L)
    red = np.zeros(NS * BM)
    for it in range(tb, te):
        smem_kv = smem[kv//2: kv//2 + BT*PITCH]; smem_kv[:] = 0
        load_kv(smem_kv, cache, fmt, bt_row, it * BT, L, WG)
        S = {}
        for warp in range(8):  # phase A..B: S, mask, row max -> red
            rg, wj = (warp & 3, warp >> 2) if WG else (warp // NS, warp % NS); active = rg * 16 < valid_rows
            s = [[[0.0]*4 for _ in range(32)] for _ in range(NT)]
            if WG:  # wgmma m64n16k16 x 36 via the canonical no-swizzle K-major descriptor layout
                def desc_read(start, lbo, sbo, rows, ks):  # element (row, k) of a k16 slab
                    M = np.zeros((rows, 16))
                    for r in range(rows):
                        for k in range(16):
                            M[r, k] = smem[(start + (r // 8) * sbo + (r % 8) * 16 + (k // 8) * lbo + (k % 8) * 2) // 2]
                    return M
                D = np.zeros((64, 16))
                for ks in range(KD // 16):
                    A = desc_read(0 + ks * 2 * BM * 16, BM * 16, 128, 64, ks)
                    Bt = desc_read(kv + wj * TW * 16 + ks * 2 * BT * 16, BT * 16, 128, 16, ks)
                    D += A @ Bt.T
                w_in_wg = warp & 3
                for l in range(32):
                    g, t4 = l // 4, l % 4
                    for j in range(2):
                        s[j][l] = [D[16*w_in_wg + g][8*j + 2*t4], D[16*w_in_wg + g][8*j + 2*t4 + 1], D[16*w_in_wg + g + 8][8*j + 2*t4], D[16*w_in_wg + g + 8][8*j + 2*t4 + 1]]
            for ks in range(KD // 16 if (active and not WG) else 0):
                A = ldsm_x4(smem, [((rg*16 + (l & 15)) * PITCH * 2 + (l >> 4) * 16) + ks*32 for l in range(32)], False)
                for j in range(0, NT, 2) if NT > 1 else [0]:
                    if NT == 1:
                        Bm = ldsm_x4(smem, [kv + ((wj*TW + (l & 7)) * PITCH * 2 + ((l >> 3) & 1) * 16) + ks*32 for l in range(32)], False)
                        mma(s[0], A, [(Bm[l][0], Bm[l][1]) for l in range(32)])
                    else:
                        Bm = ldsm_x4(smem, [kv + ((wj*TW + j*8 + (l & 7) + ((l >> 4) << 3)) * PITCH * 2 + ((l >> 3) & 1) * 16) + ks*32 for l in range(32)], False)
                        mma(s[j], A, [(Bm[l][0], Bm[l][1]) for l in range(32)])
                        mma(s[j+1], A, [(Bm[l][2], Bm[l][3]) for l in range(32)])
            for l in range(32):
                g, t4 = l // 4, l % 4
                for j in range(NT):
                    for e in range(4):
                        h = e >> 1; pos = it*BT + wj*TW + j*8 + t4*2 + (e & 1)
                        s[j][l][e] = np.float32(s[j][l][e]) * np.float32(scale * LOG2E) if pos < kv_end(rg, g, h) else -np.inf
            for g in range(8):
                for h in range(2):
                    red[wj*BM + rg*16 + g + h*8] = max(s[j][4*g + t][e] for j in range(NT) for t in range(4) for e in (2*h, 2*h+1))
            S[warp] = s
        for warp in range(8):  # phase B..C: m, alpha, P
            rg, wj = (warp & 3, warp >> 2) if WG else (warp // NS, warp % NS); w = st[warp]; s = S[warp]
            for l in range(32):
                g, t4 = l // 4, l % 4; mu = [0, 0]; al = [0, 0]
                for h in range(2):
                    mx = max([w['m'][l][h]] + [red[x*BM + rg*16 + g + h*8] for x in range(NS)])
                    mu[h] = 0.0 if mx == -np.inf else mx
                    al[h] = 0.0 if w['m'][l][h] == -np.inf else 2.0 ** (w['m'][l][h] - mx)
                    w['m'][l][h] = mx; w['l'][l][h] *= al[h]
                for j in range(NO):
                    for e in range(4): w['acc'][j][l][e] *= al[e >> 1]
                for j in range(NT):
                    p = [2.0 ** (s[j][l][e] - mu[e >> 1]) for e in range(4)]
                    w['l'][l][0] += p[0] + p[1]; w['l'][l][1] += p[2] + p[3]
                    col = wj*TW + j*8 + t4*2
                    pb = bf16(np.array(p, np.float32))
                    smem[s_p//2 + (rg*16+g)*PP + col: s_p//2 + (rg*16+g)*PP + col + 2] = pb[0:2]
                    smem[s_p//2 + (rg*16+g+8)*PP + col: s_p//2 + (rg*16+g+8)*PP + col + 2] = pb[2:4]
        for warp in range(8):  # phase C..: O += P V
            rg, wj = (warp & 3, warp >> 2) if WG else (warp // NS, warp % NS); active = rg * 16 < valid_rows
            for kk in range(BT // 16):
                if not active: break
                A = ldsm_x4(smem, [s_p + ((rg*16 + (l & 15)) * PP + kk*16 + (l >> 4) * 8) * 2 for l in range(32)], False)
                v_addr = [kv + 2 * toff(kk*16 + (l & 7) + ((l >> 3) & 1) * 8, wj*CW // 8 + (l >> 4), BT, WG) for l in range(32)]
                CH = BT * 16 if WG else 16
                for j in range(0, NO, 2):
                    Bm = ldsm_x4(smem, [a + j*CH for a in v_addr], True)
                    mma(st[warp]['acc'][j], A, [(Bm[l][0], Bm[l][1]) for l in range(32)])
                    mma(st[warp]['acc'][j+1], A, [(Bm[l][2], Bm[l][3]) for l in range(32)])
    for warp in range(8):  # l partials -> red
        rg, wj = (warp & 3, warp >> 2) if WG else (warp // NS, warp % NS)
        for g in range(8):
            for h in range(2): red[wj*BM + rg*16 + g + h*8] = sum(st[warp]['l'][4*g + t][h] for t in range(4))
    for warp in range(8):
        rg, wj = (warp & 3, warp >> 2) if WG else (warp // NS, warp % NS); w = st[warp]
        for l in range(32):
            g, t4 = l // 4, l % 4
            for h in range(2):
                lt = sum(red[x*BM + rg*16 + g + h*8] for x in range(NS))
                inv = 1.0 / lt if lt > 0 else 0.0
                lse = (w['m'][l][h] + np.log2(lt)) * LN2 if lt > 0 else -np.inf
                rr = row0 + rg*16 + g + h*8
                if rr >= rows_b: continue
                grow = b * rows_b + rr
                for j in range(NO):
                    c = wj*CW + j*8 + t4*2
                    out['o'][split, grow, c:c+2] = [w['acc'][j][l][2*h] * inv, w['acc'][j][l][2*h+1] * inv]
                    out['hit'][split, grow, c:c+2] += 1
                if wj == 0 and t4 == 0: out['lse'][split, grow] = lse; out['lhit'][split, grow] += 1

def run(BM, fmt, batch, sq, heads, lens, nsplit, causal, scale=0.1352338, WG=False):
    max_pages = max((L + 63) // 64 for L in lens) + 1; need = sum((L + 63) // 64 for L in lens); num_pages = need + 2
    perm = rng.permutation(num_pages); bt = np.full(batch * max_pages, -1); k = 0
    for b in range(batch):
        for g in range((lens[b] + 63) // 64): bt[b*max_pages + g] = perm[k]; k += 1
    tokvals = {}
    for b in range(batch):
        for p in range(lens[b]):
            tokvals[bt[b*max_pages + p // 64] * 64 + p % 64] = (rng.uniform(-1, 1, 512).astype(np.float32), rng.uniform(-1, 1, 64).astype(np.float32))
    cache, vals = build_cache(fmt, num_pages, tokvals)
    rows = batch * sq * heads
    q_lat = rng.uniform(-1, 1, (rows, 512)).astype(np.float32); q_pe = rng.uniform(-1, 1, (rows, 64)).astype(np.float32)
    rows_b = sq * heads; row_tiles = (rows_b + BM - 1) // BM
    out = dict(o=np.full((nsplit, rows, 512), np.nan), hit=np.zeros((nsplit, rows, 512)), lse=np.full((nsplit, rows), np.nan), lhit=np.zeros((nsplit, rows)))
    for blk in range(batch * nsplit * row_tiles):
        decode_block(blk, BM, WG, q_lat, q_pe, cache, fmt, bt, lens, sq, heads, max_pages, nsplit, row_tiles, rows, scale, causal, out)
    assert (out['hit'] == 1).all() and (out['lhit'] == 1).all(), "every output written exactly once per split"
    # combine (dsk4j_mla_decode_combine)
    lp = out['lse']; mx = lp.max(0); o = np.zeros((rows, 512)); lse = np.full(rows, -np.inf)
    for r in range(rows):
        if mx[r] == -np.inf: continue
        ssum = sum(np.exp(lp[i, r] - mx[r]) for i in range(nsplit))
        for i in range(nsplit):
            if lp[i, r] == -np.inf: continue
            o[r] += np.exp(lp[i, r] - mx[r]) / ssum * out['o'][i, r]
        lse[r] = mx[r] + np.log(ssum)
    # reference (float64, contract; q as the kernel sees it: bf16)
    qb = np.concatenate([bf16(q_lat), bf16(q_pe)], 1).astype(np.float64)
    o_ref = np.zeros((rows, 512)); lse_ref = np.full(rows, -np.inf)
    for r in range(rows):
        b, s = r // (sq * heads), (r // heads) % sq; L = lens[b]
        end = 0 if L == 0 else (L - sq + s + 1 if causal else L)
        if end == 0: continue
        K = np.array([vals[bt[b*max_pages + p // 64] * 64 + p % 64] for p in range(end)])
        lg = scale * (K @ qb[r]); m = lg.max(); p = np.exp(lg - m)
        o_ref[r] = p @ K[:, :512] / p.sum(); lse_ref[r] = m + np.log(p.sum())
    err = np.linalg.norm(o - o_ref) / max(np.linalg.norm(o_ref), 1e-30)
    fin = np.isfinite(lse_ref)
    assert ((~fin) == (lse == -np.inf)).all(), "lse -inf exactly where empty"
    assert (o[~fin] == 0).all(), "empty rows are 0"
    lerr = np.abs(lse[fin] - lse_ref[fin]).max() if fin.any() else 0
    print(f"WG={WG} BM={BM} fmt={'bf16' if fmt == 1 else 'fp8'} B={batch} sq={sq} H={heads} L={lens} nsplit={nsplit} causal={causal}: o rel err {err:.2e}, lse err {lerr:.2e}")
    assert err < 5e-3 and lerr < 1e-2

if __name__ == '__main__':
    run(64, 1, 3, 2, 5, [65, 0, 33], 1, True)
    run(32, 2, 2, 1, 20, [100, 1], 2, False)
    run(64, 2, 2, 2, 3, [64, 97], 3, True)
    run(32, 1, 1, 2, 16, [130], 2, True)
    run(64, 1, 3, 2, 5, [65, 0, 33], 1, True, WG=True)
    run(64, 2, 2, 2, 3, [64, 97], 3, True, WG=True)
    run(64, 1, 1, 1, 70, [40], 2, False, WG=True)
