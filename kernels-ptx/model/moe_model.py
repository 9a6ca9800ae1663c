# moe_model.py - Python ports of the index math of the fast moe kernels (kernels-ptx/src/moe.cu),
# run thread by thread / warp by warp between their barriers, checked against the cpu backend's
# sequential definitions (native/src/cpu_moe.c, api_moe.c):
#   dsk4j_moe_dispatch     (per-warp segments, __match_any_sync groups, the three passes) == the
#                          sequential dispatch, contiguous (align 1, 3, 128) and masked, with
#                          out-of-range ids and masked overflow handled as documented for cuda;
#   dsk4j_moe_logits_lanes / dsk4j_moe_logits_tiled: every (token, expert) lane receives exactly the
#                          products j = l, l+16, ... in ascending order, and the shuffle reduction
#                          adds the lanes in the contract's order (checked symbolically);
#   dsk4j_moe_block_best   (strided scans, xor butterfly, per-warp slots) == the sequential scan
#                          under dsk4j_moe_better, with many ties.
# It checks index math only, not the hardware. `python3 kernels-ptx/model/moe_model.py`.
import random

NW = 32  # DSK4J_MOE_DISPATCH_THREADS / 32


def dispatch_cpu(idx, experts, align, m_max, rows_cap):
    """api_moe.c's loop, with the cuda policy for bad ids (ignored) and masked overflow (dropped)."""
    cnt = [0] * experts
    for e in idx:
        if 0 <= e < experts:
            cnt[e] += 1
    offs, total = [], 0
    for e in range(experts):
        offs.append(e * m_max if m_max > 0 else total)
        if m_max <= 0:
            total += (cnt[e] + align - 1) // align * align
    if m_max > 0:
        total = experts * m_max
    offs.append(total)
    src = [-1] * rows_cap
    cur = [0] * experts
    row_of = []
    for p, e in enumerate(idx):
        row = -1
        if 0 <= e < experts:
            loc = cur[e]
            cur[e] += 1
            if m_max <= 0 or loc < m_max:
                row = offs[e] + loc
        row_of.append(row)
        if row >= 0:
            src[row] = p
    return cnt, offs, row_of, src


def match_any(keys):
    return [sum(1 << j for j in range(32) if keys[j] == keys[i]) for i in range(32)]


def popc(x):
    return bin(x).count("1")


def ffs(x):
    return (x & -x).bit_length()


def dispatch_kernel(idx, experts, align, m_max, rows_cap):
    """dsk4j_moe_dispatch, warp by warp (warps of one pass are independent: any order)."""
    pairs, E = len(idx), experts
    work = [0] * (NW * E)
    src = [-1] * rows_cap
    seg = (pairs + NW - 1) // NW
    # pass 1
    for w in range(NW):
        pb, pe = w * seg, min(pairs, w * seg + seg)
        p0 = pb
        while p0 < pe:
            keys, ins = [], []
            for lane in range(32):
                p = p0 + lane
                e = idx[p] if p < pe else -1
                inn = p < pe and 0 <= e < E
                keys.append(e if inn else -1)
                ins.append(inn)
            masks = match_any(keys)
            for lane in range(32):
                if ins[lane] and ffs(masks[lane]) - 1 == lane:
                    work[w * E + keys[lane]] += popc(masks[lane])
            p0 += 32
    # pass 2 (thread tid owns experts [tid*C, (tid+1)*C))
    T = 1024
    C = (E + T - 1) // T
    counts, offsets = [0] * E, [0] * (E + 1)
    local = []
    for tid in range(T):
        eb, ee = min(E, tid * C), min(E, tid * C + C)
        s = 0
        for e in range(eb, ee):
            run = 0
            for w in range(NW):
                c = work[w * E + e]
                work[w * E + e] = run
                run += c
            counts[e] = run
            s += m_max if m_max > 0 else (run + align - 1) // align * align
        local.append(s)
    incl = 0
    for tid in range(T):  # the shuffle + per-warp scan: an exclusive prefix of `local`
        start = incl
        incl += local[tid]
        eb, ee = min(E, tid * C), min(E, tid * C + C)
        for e in range(eb, ee):
            offsets[e] = e * m_max if m_max > 0 else start
            start += m_max if m_max > 0 else (counts[e] + align - 1) // align * align
    offsets[E] = E * m_max if m_max > 0 else incl
    # pass 3
    row_of = [None] * pairs
    for w in range(NW):
        pb, pe = w * seg, min(pairs, w * seg + seg)
        p0 = pb
        while p0 < pe:
            keys, ins = [], []
            for lane in range(32):
                p = p0 + lane
                e = idx[p] if p < pe else -1
                inn = p < pe and 0 <= e < E
                keys.append(e if inn else -1)
                ins.append(inn)
            masks = match_any(keys)
            bases = [work[w * E + keys[l]] if ins[l] else 0 for l in range(32)]
            for lane in range(32):
                if ins[lane] and ffs(masks[lane]) - 1 == lane:
                    work[w * E + keys[lane]] = bases[lane] + popc(masks[lane])
            for lane in range(32):
                p = p0 + lane
                if p >= pe:
                    continue
                row = -1
                if ins[lane]:
                    loc = bases[lane] + popc(masks[lane] & ((1 << lane) - 1))
                    if m_max <= 0 or loc < m_max:
                        row = offsets[keys[lane]] + loc
                if row >= rows_cap:
                    row = -1
                row_of[p] = row
                if row >= 0:
                    src[row] = p
            p0 += 32
    return counts, offsets[: E + 1], row_of, src


def check_dispatch(rng):
    n = 0
    for trial in range(60):
        E = rng.choice([1, 3, 8, 64, 256, 1500])
        K = rng.randint(1, min(E, 8))
        T = rng.choice([0, 1, 7, 33, 128, 300])
        idx = []
        for _ in range(T):
            idx += rng.sample(range(E), K)
        if trial % 5 == 0 and idx:  # out-of-range ids (device data)
            for _ in range(3):
                idx[rng.randrange(len(idx))] = rng.choice([-1, E, E + 7, -(1 << 31)])
        mode = trial % 3
        align = [1, 128, 3][trial % 3] if mode != 2 else 1
        m_max = 0 if mode != 2 else max(1, T // 2 if trial % 2 else T)
        rows_cap = E * m_max if m_max else len(idx) + E * (align - 1)
        want = dispatch_cpu(idx, E, align, m_max, rows_cap)
        got = dispatch_kernel(idx, E, align, m_max, rows_cap)
        assert want == got, (trial, E, K, T, align, m_max)
        n += 1
    print(f"dispatch: {n} cases equal to the sequential dispatch")


def check_logit_order():
    """Which products each lane chain receives, in order, and the reduction tree."""
    for H in [1, 15, 16, 17, 63, 64, 65, 200, 2048, 7168 + 5]:
        want = [[j for j in range(l, H, 16)] for l in range(16)]
        # lanes kernel: thread l: j = l, l + 16, ...
        lanes = [[j for j in range(l, H, 16)] for l in range(16)]
        # tiled kernel: chunks of 64 columns, lane l takes c0 + l + 16 i (i < 4) when < H
        tiled = [[] for _ in range(16)]
        for c0 in range(0, H, 64):
            for i in range(4):
                for l in range(16):
                    c = l + 16 * i
                    if c0 + c < H:
                        tiled[l].append(c0 + c)
        assert lanes == want and tiled == want, H
    # reduction: __shfl_down_sync(v, o, 16), o = 8, 4, 2, 1 : lane l gets v[l] + v[l + o]
    v = [f"a{l}" for l in range(16)]
    for o in [8, 4, 2, 1]:
        v = [f"({v[l]}+{v[l + o]})" if l + o < 16 else v[l] for l in range(16)]
    acc = [f"a{l}" for l in range(16)]
    for l in range(8):
        acc[l] = f"({acc[l]}+{acc[l + 8]})"
    for l in range(4):
        acc[l] = f"({acc[l]}+{acc[l + 4]})"
    for l in range(2):
        acc[l] = f"({acc[l]}+{acc[l + 2]})"
    assert v[0] == f"({acc[0]}+{acc[1]})", (v[0], acc[0], acc[1])
    print("logits: lanes and tiled kernels feed every lane the contract's products in order; reduction tree equal")


def better(va, a, vb, b):
    return va > vb or (va == vb and a < b)


def block_best(v, skip, threads=128):
    n = len(v)
    cand = []
    for t in range(threads):
        bi, bv = -1, 0.0
        for i in range(t, n, threads):
            if not skip[i] and (bi < 0 or better(v[i], i, bv, bi)):
                bi, bv = i, v[i]
        cand.append((bv, bi))
    warps = []
    for w in range(threads // 32):
        c = cand[32 * w: 32 * w + 32]
        for o in [16, 8, 4, 2, 1]:
            nc = []
            for l in range(32):
                bv, bi = c[l]
                ov, oi = c[l ^ o]
                if oi >= 0 and (bi < 0 or better(ov, oi, bv, bi)):
                    bv, bi = ov, oi
                nc.append((bv, bi))
            c = nc
        warps.append(c[0])
    b, best = -1, 0.0
    for bv, bi in warps:
        if bi >= 0 and (b < 0 or better(bv, bi, best, b)):
            b, best = bi, bv
    return b


def check_block_best(rng):
    for trial in range(400):
        n = rng.choice([1, 2, 8, 64, 100, 256, 1024])
        vals = [rng.choice([0.0, -0.0, 1.0, 0.5, 2.0, -1.0, float("inf"), float("-inf")]) if trial % 2 else rng.random()
                for _ in range(n)]
        skip = [rng.random() < 0.3 for _ in range(n)]
        want = -1
        for i in range(n):
            if not skip[i] and (want < 0 or better(vals[i], i, vals[want], want)):
                want = i
        assert block_best(vals, skip) == want, trial
    print("route: block-wide arg-best equals the sequential scan (400 cases, ties, +-0, +-inf)")


if __name__ == "__main__":
    rng = random.Random(5)
    check_logit_order()
    check_block_best(rng)
    check_dispatch(rng)
