"""Depthwise convolution computed directly: forward, input gradient and kernel gradient, NHWC and NCHW.

Depthwise convolution is grouped convolution with one group per input channel (groups = C) and a
channel multiplier M: output channel f = c * M + m (m < M) reads input channel c only (PyTorch's
grouping; TensorFlow's depthwise_conv2d, MobileNet, EfficientNet).

  NHWC  x (N, H, W, C)   kernel (C * M, kh, kw, 1)   y (N, OH, OW, C * M)
  NCHW  x (N, C, H, W)   kernel (C * M, 1, kh, kw)   y (N, C * M, OH, OW)

  y[n, oh, ow, f] = bias[f] + sum over i < kh, j < kw of
                    xp(n, oh * sh - pad_top + i * (dh + 1), ow * sw - pad_left + j * (dw + 1), f // M) * kernel[f, i, j]

xp is x inside the input and pad_value outside. Dilation dh, dw counts the gaps between taps
(0 is the ordinary kernel); pad_top / pad_left are signed offsets (negative ones crop, large ones
read only padding). OH and OW are the shape of y / grad_y, computed by the caller from all four
paddings; kh and kw are the kernel's. Every function trusts its caller (cyconv._validation):
arrays C-contiguous, of one dtype, of consistent shapes; H, W, OH, OW >= 1, C >= 2 and, for the
forward, N >= 1 (the engine returns early for an empty batch; the gradients take N = 0).

Each output reads kh * kw inputs, so the work is memory-bound and im2col + GEMM per group would
copy the input kh * kw times for products of inner size kh * kw; these kernels read x and write y
once, summing in registers:
  NHWC  channels are contiguous: LANES channels of one output pixel are summed over the taps at once.
  NCHW  output columns are contiguous: LANES columns of one output row are summed over the taps at once.
Positions whose every tap lies inside the input (the interior) are computed without a bounds test;
the border is computed apart.

Threads: every element of y and grad_x is computed by one thread in an order fixed by the problem
(grad_x as a gather: each input pixel sums what reads it, so grad_x is overwritten and need not be
zeroed). The kernel gradient is summed as partial sums over at most ROW_GROUPS groups of output
rows, fewer when their copies of the kernel would exceed PARTIAL_BYTES (the grouping depends on the
problem only), added in a fixed order in float64: split by rows, not by channels, so that few
channels (C = 1..3) still keep every thread busy and each float32 partial sum is 16 times shorter. Results are identical for any num_threads.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid

import numpy as np

from cyconv._patches cimport Geom, end_valid, fill, first_valid, output_row_reading


cdef enum:
    # Sums held in registers at once: 8 SSE registers of float32 (4 AVX2, 2 AVX-512).
    LANES = 32
    # _grad_block runs its loop over LANES sums as two loops of HALF: GCC's unroll-and-jam (-O3)
    # fuses the copies of a lone inner loop across pixels and then fails to vectorise it (3x
    # slower); with two inner loops it leaves the nest alone. (The taps loops elsewhere end on a
    # NULL mark instead, which has the same effect.)
    HALF = LANES // 2
    # The kernel gradient is summed over at most this many groups of output rows, then the groups.
    ROW_GROUPS = 16
    # ... and over fewer when their partial sums (groups copies of the kernel) would exceed this
    # many bytes (16 MiB; a 31x31 kernel of 4096 channels is 15.7 MB per copy in float32).
    PARTIAL_BYTES = 16 << 20


# ----------------------------------------------------------------------------------------------
# Shared pieces


def _scratch(int num_threads, Py_ssize_t nbytes):
    """Per-thread scratch: a row of at least nbytes per OpenMP thread, rows 64-byte multiples
    starting on a 64-byte boundary (so aligned for any type, and no two threads, nor another
    array, write one cache line)."""
    cdef Py_ssize_t rows = max(num_threads, 1), row = max(nbytes + 63, 64) // 64 * 64
    buffer = np.empty(rows * row + 64, dtype=np.uint8)
    cdef Py_ssize_t start = -buffer.ctypes.data % 64
    return buffer[start:start + rows * row].reshape(rows, row)


def _by_multiplier(kernel, Py_ssize_t C, Py_ssize_t M, Py_ssize_t kh, Py_ssize_t kw):
    """The NHWC kernel (C * M, kh, kw, 1) as a C-contiguous (M, kh, kw, C): the C weights of each
    multiplier and tap contiguous."""
    return np.ascontiguousarray(np.asarray(kernel).reshape(C, M, kh, kw).transpose(1, 2, 3, 0))


cdef Geom _transposed(const Geom* g) noexcept nogil:
    """g with rows and columns swapped, so that output_row_reading answers for columns."""
    return Geom(g.out_w, g.out_h, g.kw, g.kh, g.sw, g.sh, g.dw, g.dh, g.pad_left, g.pad_top)


cdef void _plan_readers(Py_ssize_t size, const Geom* g, Py_ssize_t[:, ::1] plan) noexcept nogil:
    """plan[p] = [count, i0, o0, i1, o1, ...]: the kernel rows i (increasing) and output rows o with
    output row o reading input row p < size through kernel row i. plan is (size, 1 + 2 * kh)."""
    cdef Py_ssize_t p, i, o, count
    for p in range(size):
        count = 0
        for i in range(g.kh):
            o = output_row_reading(p, i, g)
            if o >= 0:
                plan[p, 1 + 2 * count] = i
                plan[p, 2 + 2 * count] = o
                count += 1
        plan[p, 0] = count


cdef inline Py_ssize_t _row_groups(Py_ssize_t rows, Py_ssize_t partial_bytes) noexcept nogil:
    """How many partial sums the kernel gradient takes over `rows` output rows, each of
    partial_bytes: a function of the problem only, so results do not depend on the thread count."""
    return max(1, min(rows, ROW_GROUPS, PARTIAL_BYTES // partial_bytes))


cdef void _sum_groups(const floating* pk, const double* pb, Py_ssize_t groups, Py_ssize_t F, Py_ssize_t M,
                      Py_ssize_t taps, bint channels_last, floating* grad_kernel,
                      double* grad_bias) noexcept nogil:
    """grad_kernel (F, taps) and grad_bias (F): the partial sums pk (groups, F * taps) and pb
    (groups, F) added in order of the group, in float64. pk[u] is laid out (M, taps, C) when
    channels_last (NHWC: f = c * M + m at ((m * taps + t) * C + c)), (F, taps) otherwise."""
    cdef Py_ssize_t size = F * taps, C = F // M, f, t, k, u
    cdef double total
    for f in range(F):
        for t in range(taps):
            k = ((f % M) * taps + t) * C + f // M if channels_last else f * taps + t
            total = 0
            for u in range(groups):
                total += pk[u * size + k]
            grad_kernel[f * taps + t] = <floating>total
        total = 0
        for u in range(groups):
            total += pb[u * F + f]
        grad_bias[f] = total


# ----------------------------------------------------------------------------------------------
# NHWC: a block of channels of one pixel, summed over a table of taps


cdef inline void _taps_block(const floating** src, Py_ssize_t src_step, const floating** wts,
                             const floating* init, Py_ssize_t c0, Py_ssize_t nv, floating* out,
                             Py_ssize_t out_step) noexcept nogil:
    """out[c * out_step] = init[c] + sum over taps t of src[t][c * src_step] * wts[t][c], for c in
    [c0, c0 + nv), nv <= LANES; src is a NULL-terminated table. The nv sums stay in registers.

    How GCC -O3 is kept vectorising this, holding the sums in registers, for SSE2, AVX2 and
    AVX-512 alike: the count of taps is a NULL mark, not a number, so that it cannot unroll-and-jam
    the taps loop (which left the channel loop scalar, 3x slower); init is never a constant."""
    cdef floating acc[LANES]
    cdef const floating* s
    cdef const floating* w
    cdef Py_ssize_t t = 0, v
    for v in range(nv):
        acc[v] = init[c0 + v]
    while src[t] != NULL:
        s = src[t] + c0 * src_step
        w = wts[t] + c0
        for v in range(nv):
            acc[v] += s[v * src_step] * w[v]
        t += 1
    for v in range(nv):
        out[(c0 + v) * out_step] = acc[v]


cdef inline void _taps_dot(const floating** src, Py_ssize_t src_step, const floating** wts,
                           const floating* init, Py_ssize_t C, floating* out,
                           Py_ssize_t out_step) noexcept nogil:
    """_taps_block over all C channels, in blocks of LANES. When LANES does not divide C, the last
    block overlaps the one before it (computing some channels twice, identically), so that every
    block has the compiled width. Unit steps (M = 1) take a copy compiled for them."""
    cdef Py_ssize_t c0 = 0
    if C < LANES:
        _taps_block(src, src_step, wts, init, 0, C, out, out_step)
    elif src_step == 1 and out_step == 1:
        while c0 < C:
            _taps_block(src, 1, wts, init, min(c0, C - LANES), LANES, out, 1)
            c0 += LANES
    else:
        while c0 < C:
            _taps_block(src, src_step, wts, init, min(c0, C - LANES), LANES, out, out_step)
            c0 += LANES


cdef inline void _forward_row_nhwc(const floating* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C,
                                   Py_ssize_t M, const Geom* g, Py_ssize_t n, Py_ssize_t oh,
                                   const floating** wts, const floating* bt, const floating* pad_pixel,
                                   const floating** rows, const floating** src,
                                   floating* y_row) noexcept nogil:
    """y_row (OW, C * M) = output row oh of image n. wts[m * kh * kw + t]: the C weights of tap t
    for multiplier m; bt (M, C): the bias by multiplier; pad_pixel: C pad values;
    rows (kh) and src (kh * kw + 1): this thread's tables."""
    cdef Py_ssize_t taps = g.kh * g.kw, F = C * M, i, j, t, m, ih, iw, iw0, ow
    # Output columns [ow_lo, ow_hi) read a whole kernel row inside the input.
    cdef Py_ssize_t ow_lo = first_valid(-g.pad_left, g.sw, g.out_w)
    cdef Py_ssize_t ow_hi = max(end_valid(-g.pad_left + (g.kw - 1) * (g.dw + 1), g.sw, W, g.out_w), ow_lo)
    cdef bint rows_inside = True
    for i in range(g.kh):
        ih = oh * g.sh - g.pad_top + i * (g.dh + 1)
        if 0 <= ih < H:
            rows[i] = x + (n * H + ih) * W * C
        else:
            rows[i] = NULL
            rows_inside = False
    src[taps] = NULL
    for ow in range(g.out_w):
        iw0 = ow * g.sw - g.pad_left
        if rows_inside and ow_lo <= ow < ow_hi:
            for i in range(g.kh):
                for j in range(g.kw):
                    src[i * g.kw + j] = rows[i] + (iw0 + j * (g.dw + 1)) * C
        else:
            for i in range(g.kh):
                for j in range(g.kw):
                    iw = iw0 + j * (g.dw + 1)
                    if rows[i] != NULL and 0 <= iw < W:
                        src[i * g.kw + j] = rows[i] + iw * C
                    else:
                        src[i * g.kw + j] = pad_pixel
        for m in range(M):
            _taps_dot(src, 1, wts + m * taps, bt + m * C, C, y_row + ow * F + m, M)


cdef inline void _input_grad_row_nhwc(const floating* gy, Py_ssize_t C, Py_ssize_t M, const Geom* g,
                                      Py_ssize_t n, const Py_ssize_t* row_plan, Py_ssize_t W,
                                      const Py_ssize_t* col_plan, const floating* kt,
                                      const floating** src, const floating** wts, const floating* zeros,
                                      floating* gx_row) noexcept nogil:
    """gx_row (W, C) = grad_x of one input row: each pixel sums, over the multipliers m and the
    taps (i, j) whose output pixel (oh, ow) reads it, grad_y[n, oh, ow, c * M + m] * kt[m, i, j, c].
    row_plan: the (tap, output) pairs of this row, col_plan (W, 1 + 2 * kw) those of each column
    (_plan_readers);
    kt (M, kh, kw, C); zeros (C); src (M * kh * kw + 1), wts (M * kh * kw): this thread's tables."""
    cdef Py_ssize_t F = C * M, iw, m, a, b, i, oh, j, ow, t
    cdef const Py_ssize_t* col
    for iw in range(W):
        col = col_plan + iw * (1 + 2 * g.kw)
        t = 0
        for m in range(M):
            for a in range(row_plan[0]):
                i, oh = row_plan[1 + 2 * a], row_plan[2 + 2 * a]
                for b in range(col[0]):
                    j, ow = col[1 + 2 * b], col[2 + 2 * b]
                    src[t] = gy + ((n * g.out_h + oh) * g.out_w + ow) * F + m
                    wts[t] = kt + ((m * g.kh + i) * g.kw + j) * C
                    t += 1
        src[t] = NULL
        _taps_dot(src, M, wts, zeros, C, gx_row + iw * C, 1)


cdef inline void _grad_block(floating* pk, const floating* x_row, Py_ssize_t base, Py_ssize_t lo,
                             Py_ssize_t hi, const floating* gy_row, Py_ssize_t step, Py_ssize_t F,
                             Py_ssize_t C, Py_ssize_t sw, Py_ssize_t out_w, floating pad,
                             Py_ssize_t nv) noexcept nogil:
    """pk[v] += sum over ow < out_w of xp(ow, v) * gy_row[ow * F + v * step], v < nv <= LANES:
    xp(ow, v) = x_row[(ow * sw + base) * C + v] for ow in [lo, hi) (x_row not NULL), pad otherwise
    (those terms skipped when pad is 0). The nv sums stay in registers."""
    cdef floating acc[LANES]
    cdef const floating* s
    cdef const floating* e
    cdef Py_ssize_t ow, v
    for v in range(nv):
        acc[v] = pk[v]
    if x_row != NULL:
        for ow in range(lo, hi):
            s = x_row + (ow * sw + base) * C
            e = gy_row + ow * F
            for v in range(min(nv, HALF)):
                acc[v] += s[v] * e[v * step]
            for v in range(HALF, nv):
                acc[v] += s[v] * e[v * step]
    if pad != 0:
        for ow in range(out_w):
            if x_row == NULL or ow < lo or ow >= hi:
                e = gy_row + ow * F
                for v in range(nv):
                    acc[v] += pad * e[v * step]
    for v in range(nv):
        pk[v] = acc[v]


cdef inline void _kernel_grad_rows_nhwc(const floating* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C,
                                        Py_ssize_t M, const Geom* g, Py_ssize_t r0, Py_ssize_t r1,
                                        const floating* gy, floating pad, floating* pk,
                                        double* pb) noexcept nogil:
    """pk (M, kh, kw, C) = the kernel gradient summed over output rows [r0, r1) of the batch
    (row r = image r // OH, row r % OH); pb (C * M) = grad_y summed over them."""
    cdef Py_ssize_t F = C * M, taps = g.kh * g.kw, r, n, oh, ow, f, c0, nv, m, i, j, ih, base, lo, hi
    cdef const floating* gy_row
    cdef const floating* x_row
    cdef floating* acc
    fill(pk, M * taps * C, 0)
    fill(pb, F, 0)
    for r in range(r0, r1):
        n, oh = r // g.out_h, r % g.out_h
        gy_row = gy + r * g.out_w * F
        for ow in range(g.out_w):
            for f in range(F):
                pb[f] += gy_row[ow * F + f]
        c0 = 0
        while c0 < C:
            nv = min(LANES, C - c0)
            for m in range(M):
                for i in range(g.kh):
                    ih = oh * g.sh - g.pad_top + i * (g.dh + 1)
                    x_row = x + ((n * H + ih) * W) * C + c0 if 0 <= ih < H else NULL
                    for j in range(g.kw):
                        base = j * (g.dw + 1) - g.pad_left
                        lo = first_valid(base, g.sw, g.out_w)
                        hi = max(end_valid(base, g.sw, W, g.out_w), lo)
                        acc = pk + ((m * g.kh + i) * g.kw + j) * C + c0
                        if nv == LANES and M == 1:
                            _grad_block(acc, x_row, base, lo, hi, gy_row + c0, 1, F, C, g.sw, g.out_w,
                                        pad, LANES)
                        elif nv == LANES:
                            _grad_block(acc, x_row, base, lo, hi, gy_row + c0 * M + m, M, F, C, g.sw,
                                        g.out_w, pad, LANES)
                        else:
                            _grad_block(acc, x_row, base, lo, hi, gy_row + c0 * M + m, M, F, C, g.sw,
                                        g.out_w, pad, nv)
            c0 += LANES


# ----------------------------------------------------------------------------------------------
# NCHW: a block of positions of one row, summed over a table of (row, column offset) taps


cdef inline void _row_block(const floating** rows, const Py_ssize_t* offs, const floating* w,
                            Py_ssize_t in_step, const floating* init, Py_ssize_t o0, Py_ssize_t nv,
                            floating* out, Py_ssize_t out_step) noexcept nogil:
    """out[o * out_step] = init[0] + sum over taps t of rows[t][o * in_step + offs[t]] * w[t], for o in
    [o0, o0 + nv), nv <= LANES; rows is a NULL-terminated table, every index inside its row. The
    nv sums stay in registers (the NULL mark and init in memory as in _taps_block)."""
    cdef floating acc[LANES]
    cdef const floating* s
    cdef floating wv
    cdef Py_ssize_t t = 0, v
    for v in range(nv):
        acc[v] = init[0]
    while rows[t] != NULL:
        s = rows[t] + o0 * in_step + offs[t]
        wv = w[t]
        for v in range(nv):
            acc[v] += s[v * in_step] * wv
        t += 1
    for v in range(nv):
        out[(o0 + v) * out_step] = acc[v]


cdef inline void _row_blocks(const floating** rows, const Py_ssize_t* offs, const floating* w,
                             Py_ssize_t in_step, const floating* init, Py_ssize_t o0, Py_ssize_t o1,
                             floating* out, Py_ssize_t out_step) noexcept nogil:
    """_row_block over [o0, o1), in blocks of LANES, the last one overlapping the one before it
    when LANES does not divide o1 - o0 (as in _taps_dot). Unit steps take a copy compiled for them."""
    cdef Py_ssize_t o = o0
    if o1 - o0 < LANES:
        _row_block(rows, offs, w, in_step, init, o0, o1 - o0, out, out_step)
    elif in_step == 1 and out_step == 1:
        while o < o1:
            _row_block(rows, offs, w, 1, init, min(o, o1 - LANES), LANES, out, 1)
            o += LANES
    else:
        while o < o1:
            _row_block(rows, offs, w, in_step, init, min(o, o1 - LANES), LANES, out, out_step)
            o += LANES


cdef inline floating _row_point(const floating** rows, const Py_ssize_t* offs, const floating* w,
                                Py_ssize_t in_step, floating init, Py_ssize_t o, Py_ssize_t length,
                                floating pad) noexcept nogil:
    """One position of _row_block where some index may fall outside [0, length): it reads pad."""
    cdef floating acc = init
    cdef Py_ssize_t t = 0, idx
    while rows[t] != NULL:
        idx = o * in_step + offs[t]
        acc += (rows[t][idx] if 0 <= idx < length else pad) * w[t]
        t += 1
    return acc


cdef inline void _row_nchw(const floating** rows, const Py_ssize_t* offs, const floating* w,
                           Py_ssize_t in_step, const floating* init, Py_ssize_t length, floating pad,
                           floating* out, Py_ssize_t out_step, Py_ssize_t count) noexcept nogil:
    """out[o * out_step] = init[0] + sum over taps t of v(t, o * in_step + offs[t]) * w[t] for
    o < count, where v(t, idx) is rows[t][idx] inside [0, length), pad outside; rows is a
    NULL-terminated table. The interior (every index inside) in blocks without bounds tests, the
    border position by position."""
    cdef Py_ssize_t t, o, lo, hi, off_min, off_max
    if rows[0] == NULL:
        for o in range(count):
            out[o * out_step] = init[0]
        return
    off_min, off_max, t = offs[0], offs[0], 1
    while rows[t] != NULL:
        off_min, off_max = min(off_min, offs[t]), max(off_max, offs[t])
        t += 1
    lo = first_valid(off_min, in_step, count)
    hi = max(end_valid(off_max, in_step, length, count), lo)
    for o in range(lo):
        out[o * out_step] = _row_point(rows, offs, w, in_step, init[0], o, length, pad)
    _row_blocks(rows, offs, w, in_step, init, lo, hi, out, out_step)
    for o in range(hi, count):
        out[o * out_step] = _row_point(rows, offs, w, in_step, init[0], o, length, pad)


cdef inline void _forward_row_nchw(const floating* x_plane, Py_ssize_t H, Py_ssize_t W, const Geom* g,
                                   Py_ssize_t oh, const floating* pad_row, const floating** rows) noexcept nogil:
    """rows[i * kw + j] = the row of x_plane (H, W) that tap (i, j) of output row oh reads (pad_row
    outside the input), NULL-terminated: the table of taps _row_nchw takes."""
    cdef Py_ssize_t i, j, ih
    cdef const floating* row
    for i in range(g.kh):
        ih = oh * g.sh - g.pad_top + i * (g.dh + 1)
        row = x_plane + ih * W if 0 <= ih < H else pad_row
        for j in range(g.kw):
            rows[i * g.kw + j] = row
    rows[g.kh * g.kw] = NULL


cdef inline void _input_grad_row_nchw(const floating* gy, Py_ssize_t C, Py_ssize_t M, const Geom* g,
                                      Py_ssize_t n, Py_ssize_t c, const Py_ssize_t* row_plan,
                                      Py_ssize_t residues, const Py_ssize_t* columns,
                                      const floating* kernel, const floating* zero, const floating** rows,
                                      Py_ssize_t* offs, floating* w, floating* gx_row) noexcept nogil:
    """gx_row (W) = grad_x[n, c] of one input row: the sum over the multipliers m and the taps
    (i, j) whose output position (oh, ow) reads it of grad_y[n, c * M + m, oh, ow] * kernel[c * M + m, i, j].
    row_plan: the (i, oh) pairs of this row (_plan_readers); columns (residues, 2 + 2 * kw): for
    input columns rho + sw * q, [count, q_count, j0, off0, ...] with kernel column j reading output
    column q + off; zero: a 0; rows (M * kh * kw + 1), offs and w (M * kh * kw): this thread's
    table of taps."""
    cdef Py_ssize_t F = C * M, width = 2 + 2 * g.kw, m, a, rho, k, t
    cdef const Py_ssize_t* col
    cdef const floating* gy_row
    cdef const floating* k_row
    for rho in range(residues):
        col = columns + rho * width
        t = 0
        for m in range(M):
            for a in range(row_plan[0]):
                gy_row = gy + ((n * F + c * M + m) * g.out_h + row_plan[2 + 2 * a]) * g.out_w
                k_row = kernel + ((c * M + m) * g.kh + row_plan[1 + 2 * a]) * g.kw
                for k in range(col[0]):
                    rows[t], offs[t], w[t] = gy_row, col[3 + 2 * k], k_row[col[2 + 2 * k]]
                    t += 1
        rows[t] = NULL
        _row_nchw(rows, offs, w, 1, zero, g.out_w, 0, gx_row + rho, g.sw, col[1])


cdef inline void _multiply_add(floating* acc, const floating* a, Py_ssize_t a_step, const floating* b,
                               Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """acc[o] += a[o * a_step] * b[o] for o in [lo, hi)."""
    cdef Py_ssize_t o
    for o in range(lo, hi):
        acc[o] += a[o * a_step] * b[o]


cdef inline void _scale_add(floating* acc, floating scale, const floating* b, Py_ssize_t lo,
                            Py_ssize_t hi) noexcept nogil:
    """acc[o] += scale * b[o] for o in [lo, hi)."""
    cdef Py_ssize_t o
    for o in range(lo, hi):
        acc[o] += scale * b[o]


cdef inline void _kernel_grad_plane_nchw(const floating* x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                         Py_ssize_t M, const Geom* g, Py_ssize_t f, Py_ssize_t r0,
                                         Py_ssize_t r1, const floating* gy, floating pad, floating* pk,
                                         double* pb, floating* columns, double* bias_columns) noexcept nogil:
    """pk (kh, kw) = the gradient of kernel[f] summed over output rows [r0, r1) of the batch (row r =
    image r // OH, row r % OH); pb[0] = grad_y[:, f] summed over them.
    Each tap's products are first summed down the rows into columns[ow] (OW values, this thread's
    scratch; element-wise, so vectorised for any OW), then across; the bias likewise in float64."""
    cdef Py_ssize_t F = C * M, c = f // M, i, j, r, n, oh, ih, base, lo, hi, ow
    cdef const floating* gy_row
    cdef const floating* x_row
    cdef floating total
    for i in range(g.kh):
        for j in range(g.kw):
            base = j * (g.dw + 1) - g.pad_left
            lo = first_valid(base, g.sw, g.out_w)
            hi = max(end_valid(base, g.sw, W, g.out_w), lo)
            fill(columns, g.out_w, 0)
            n, oh = r0 // g.out_h, r0 % g.out_h
            for r in range(r0, r1):
                gy_row = gy + ((n * F + f) * g.out_h + oh) * g.out_w
                ih = oh * g.sh - g.pad_top + i * (g.dh + 1)
                if 0 <= ih < H:
                    x_row = x + ((n * C + c) * H + ih) * W + base
                    if g.sw == 1:
                        _multiply_add(columns, x_row, 1, gy_row, lo, hi)
                    else:
                        _multiply_add(columns, x_row, g.sw, gy_row, lo, hi)
                    if pad != 0:
                        _scale_add(columns, pad, gy_row, 0, lo)
                        _scale_add(columns, pad, gy_row, hi, g.out_w)
                elif pad != 0:
                    _scale_add(columns, pad, gy_row, 0, g.out_w)
                oh += 1
                if oh == g.out_h:
                    n, oh = n + 1, 0
            total = 0
            for ow in range(g.out_w):
                total += columns[ow]
            pk[i * g.kw + j] = total
    fill(bias_columns, g.out_w, 0)
    for r in range(r0, r1):
        gy_row = gy + ((r // g.out_h * F + f) * g.out_h + r % g.out_h) * g.out_w
        for ow in range(g.out_w):
            bias_columns[ow] += gy_row[ow]
    pb[0] = 0
    for ow in range(g.out_w):
        pb[0] += bias_columns[ow]


# ----------------------------------------------------------------------------------------------
# Entry points


def forward_nhwc(const floating[:, :, :, ::1] x,       # IN  (N, H, W, C)
                 const floating[:, :, :, ::1] kernel,  # IN  (C * M, kh, kw, 1)
                 const floating[::1] bias,             # IN  (C * M,): zeros for none
                 floating[:, :, :, ::1] y,             # OUT (N, OH, OW, C * M)
                 Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                 Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value, int num_threads):
    """y = depthwise convolution of x. Parallel over output rows (image, oh)."""
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t kh = kernel.shape[1], kw = kernel.shape[2], M = kernel.shape[0] // C
    cdef Geom g = Geom(y.shape[1], y.shape[2], kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t taps = kh * kw, r, t
    dtype = np.float32 if floating is float else np.float64
    # The kernel as (M, kh, kw, C) and the bias as (M, C): channels contiguous for each multiplier.
    cdef const floating[:, :, :, ::1] kt = _by_multiplier(kernel, C, M, kh, kw)
    cdef const floating[:, ::1] bt = np.ascontiguousarray(np.asarray(bias).reshape(C, M).T)
    cdef const floating[::1] pad_pixel = np.full(C, pad_value, dtype=dtype)
    cdef unsigned char[:, ::1] scratch = _scratch(num_threads, (kh + taps + 1) * sizeof(void*))
    # wts[m * kh * kw + t]: the C weights of tap t for multiplier m, shared by the threads.
    cdef unsigned char[:, ::1] table = _scratch(1, M * taps * sizeof(void*))
    cdef const floating** wts = <const floating**>&table[0, 0]
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef const floating** rows
    cdef const floating** src
    for t in range(M * taps):
        wts[t] = &kt[0, 0, 0, 0] + t * C
    with nogil, parallel(num_threads=num_threads):
        rows = <const floating**>&scratch[threadid(), 0]
        src = rows + kh
        for r in prange(N * g.out_h, schedule="guided"):
            _forward_row_nhwc(xp, H, W, C, M, &g, r // g.out_h, r % g.out_h, wts, &bt[0, 0], &pad_pixel[0],
                              rows, src, &y[r // g.out_h, r % g.out_h, 0, 0])


def forward_nchw(const floating[:, :, :, ::1] x,       # IN  (N, C, H, W)
                 const floating[:, :, :, ::1] kernel,  # IN  (C * M, 1, kh, kw)
                 const floating[::1] bias,             # IN  (C * M,): zeros for none
                 floating[:, :, :, ::1] y,             # OUT (N, C * M, OH, OW)
                 Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                 Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value, int num_threads):
    """y = depthwise convolution of x. Parallel over output rows (image, f, oh)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t F = kernel.shape[0], kh = kernel.shape[2], kw = kernel.shape[3], M = F // C
    cdef Geom g = Geom(y.shape[2], y.shape[3], kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t r, n, f, oh
    cdef floating pad = <floating>pad_value
    dtype = np.float32 if floating is float else np.float64
    cdef const floating[::1] pad_row = np.full(W, pad_value, dtype=dtype)
    # Tap t = (i, j) reads column ow * sw + offs[t] of its row.
    cdef Py_ssize_t[::1] offs = np.tile(np.arange(kw, dtype=np.intp) * (dw + 1) - pad_left, kh)
    cdef unsigned char[:, ::1] scratch = _scratch(num_threads, (kh * kw + 1) * sizeof(void*))
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef const floating** rows
    with nogil, parallel(num_threads=num_threads):
        rows = <const floating**>&scratch[threadid(), 0]
        for r in prange(N * F * g.out_h, schedule="guided"):
            n, f, oh = r // (F * g.out_h), (r // g.out_h) % F, r % g.out_h
            _forward_row_nchw(xp + (n * C + f // M) * H * W, H, W, &g, oh, &pad_row[0], rows)
            _row_nchw(rows, &offs[0], &kernel[f, 0, 0, 0], sw, &bias[f],
                      W, pad, &y[n, f, oh, 0], 1, g.out_w)


def input_grad_nhwc(const floating[:, :, :, ::1] grad_y,  # IN  (N, OH, OW, C * M)
                    const floating[:, :, :, ::1] kernel,  # IN  (C * M, kh, kw, 1)
                    floating[:, :, :, ::1] grad_x,        # OUT (N, H, W, C), every element written
                    Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                    Py_ssize_t pad_top, Py_ssize_t pad_left, int num_threads):
    """grad_x = gradient of <y, grad_y> with respect to x, overwriting grad_x (it need not be
    zeroed). A gather: each input pixel sums what reads it. Parallel over input rows (image, ih)."""
    cdef Py_ssize_t N = grad_x.shape[0], H = grad_x.shape[1], W = grad_x.shape[2], C = grad_x.shape[3]
    cdef Py_ssize_t kh = kernel.shape[1], kw = kernel.shape[2], M = kernel.shape[0] // C
    cdef Geom g = Geom(grad_y.shape[1], grad_y.shape[2], kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Geom gt = _transposed(&g)
    cdef Py_ssize_t taps = M * kh * kw, r
    if grad_x.size == 0:  # N = 0: the engine's backward does not return early for an empty batch
        return
    cdef const floating[:, :, :, ::1] kt = _by_multiplier(kernel, C, M, kh, kw)
    cdef Py_ssize_t[:, ::1] row_plan = np.empty((H, 1 + 2 * kh), dtype=np.intp)
    cdef Py_ssize_t[:, ::1] col_plan = np.empty((W, 1 + 2 * kw), dtype=np.intp)
    cdef const floating[::1] zeros = np.zeros(C, dtype=np.float32 if floating is float else np.float64)
    cdef unsigned char[:, ::1] scratch = _scratch(num_threads, (2 * taps + 1) * sizeof(void*))
    cdef const floating* gy = &grad_y[0, 0, 0, 0]
    cdef const floating** src
    cdef const floating** wts
    with nogil:
        _plan_readers(H, &g, row_plan)
        _plan_readers(W, &gt, col_plan)
        with parallel(num_threads=num_threads):
            src = <const floating**>&scratch[threadid(), 0]
            wts = src + taps + 1
            for r in prange(N * H, schedule="guided"):
                _input_grad_row_nhwc(gy, C, M, &g, r // H, &row_plan[r % H, 0], W, &col_plan[0, 0], &kt[0, 0, 0, 0],
                                     src, wts, &zeros[0], &grad_x[r // H, r % H, 0, 0])


def input_grad_nchw(const floating[:, :, :, ::1] grad_y,  # IN  (N, C * M, OH, OW)
                    const floating[:, :, :, ::1] kernel,  # IN  (C * M, 1, kh, kw)
                    floating[:, :, :, ::1] grad_x,        # OUT (N, C, H, W), every element written
                    Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                    Py_ssize_t pad_top, Py_ssize_t pad_left, int num_threads):
    """As input_grad_nhwc. Parallel over input rows (image, c, ih). Input columns iw = rho + sw * q
    of one residue rho = iw mod sw are read by the same kernel columns j, from output columns
    ow = q + offset_j: each residue is a stride-1 sum over q, written with step sw."""
    cdef Py_ssize_t N = grad_x.shape[0], C = grad_x.shape[1], H = grad_x.shape[2], W = grad_x.shape[3]
    cdef Py_ssize_t F = kernel.shape[0], kh = kernel.shape[2], kw = kernel.shape[3], M = F // C
    cdef Geom g = Geom(grad_y.shape[2], grad_y.shape[3], kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t residues = min(sw, W), rho, j, k, t, r, n, c, ih
    if grad_x.size == 0:  # N = 0: the engine's backward does not return early for an empty batch
        return
    cdef Py_ssize_t[:, ::1] row_plan = np.empty((H, 1 + 2 * kh), dtype=np.intp)
    # columns[rho] = [count, q_count, j0, off0, j1, off1, ...]: kernel column j reads output column
    # q + off for input column rho + sw * q (q < q_count).
    cdef Py_ssize_t[:, ::1] columns = np.empty((residues, 2 + 2 * kw), dtype=np.intp)
    cdef Py_ssize_t taps = M * kh * kw, rows_bytes = (taps + 1) * sizeof(void*)
    cdef Py_ssize_t offs_bytes = taps * sizeof(Py_ssize_t)
    cdef unsigned char[:, ::1] scratch = _scratch(num_threads, rows_bytes + offs_bytes + taps * sizeof(double))
    cdef const floating[::1] zero = np.zeros(1, dtype=np.float32 if floating is float else np.float64)
    cdef const floating* gy = &grad_y[0, 0, 0, 0]
    cdef const floating** rows
    cdef Py_ssize_t* offs
    cdef floating* w
    with nogil:
        _plan_readers(H, &g, row_plan)
        for rho in range(residues):
            columns[rho, 0], columns[rho, 1] = 0, (W - 1 - rho) // sw + 1
            for j in range(kw):
                t = j * (dw + 1) - pad_left - rho
                if t % sw == 0:
                    k = columns[rho, 0]
                    columns[rho, 2 + 2 * k], columns[rho, 3 + 2 * k] = j, -(t // sw)
                    columns[rho, 0] = k + 1
        with parallel(num_threads=num_threads):
            rows = <const floating**>&scratch[threadid(), 0]
            offs = <Py_ssize_t*>&scratch[threadid(), rows_bytes]
            w = <floating*>&scratch[threadid(), rows_bytes + offs_bytes]
            for r in prange(N * C * H, schedule="guided"):
                n, c, ih = r // (C * H), (r // H) % C, r % H
                _input_grad_row_nchw(gy, C, M, &g, n, c, &row_plan[ih, 0], residues, &columns[0, 0],
                                     &kernel[0, 0, 0, 0], &zero[0], rows, offs, w, &grad_x[n, c, ih, 0])


def kernel_grad_nhwc(const floating[:, :, :, ::1] x,       # IN  (N, H, W, C)
                     const floating[:, :, :, ::1] grad_y,  # IN  (N, OH, OW, C * M)
                     floating[:, :, :, ::1] grad_kernel,   # OUT (C * M, kh, kw, 1)
                     double[::1] grad_bias,                # OUT (C * M,)
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                     Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value, int num_threads):
    """grad_kernel[f, i, j] = sum over (n, oh, ow) of xp(tap (i, j) of (n, oh, ow), f // M) *
    grad_y[n, oh, ow, f] and grad_bias[f] = sum of grad_y[..., f] (in float64): partial sums over
    _row_groups groups of output rows, in parallel, then added in order."""
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t F = grad_kernel.shape[0], kh = grad_kernel.shape[1], kw = grad_kernel.shape[2]
    cdef Py_ssize_t M = F // C, size = F * kh * kw
    cdef Geom g = Geom(grad_y.shape[1], grad_y.shape[2], kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t R = N * g.out_h, groups = _row_groups(R, size * sizeof(floating)), u
    cdef floating pad = <floating>pad_value
    cdef floating[:, ::1] pk = np.empty((groups, size), dtype=np.float32 if floating is float else np.float64)
    cdef double[:, ::1] pb = np.empty((groups, F))
    # N = 0 (the engine's backward does not return early for an empty batch): no rows, zeros.
    cdef const floating* xp = &x[0, 0, 0, 0] if x.size else NULL
    cdef const floating* gy = &grad_y[0, 0, 0, 0] if grad_y.size else NULL
    with nogil:
        for u in prange(groups, schedule="dynamic", num_threads=num_threads):
            _kernel_grad_rows_nhwc(xp, H, W, C, M, &g, u * R // groups, (u + 1) * R // groups, gy, pad,
                                   &pk[u, 0], &pb[u, 0])
        _sum_groups(&pk[0, 0], &pb[0, 0], groups, F, M, kh * kw, True, &grad_kernel[0, 0, 0, 0], &grad_bias[0])


def kernel_grad_nchw(const floating[:, :, :, ::1] x,       # IN  (N, C, H, W)
                     const floating[:, :, :, ::1] grad_y,  # IN  (N, C * M, OH, OW)
                     floating[:, :, :, ::1] grad_kernel,   # OUT (C * M, 1, kh, kw)
                     double[::1] grad_bias,                # OUT (C * M,)
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                     Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value, int num_threads):
    """As kernel_grad_nhwc. Parallel over (group of output rows, f)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t F = grad_kernel.shape[0], kh = grad_kernel.shape[2], kw = grad_kernel.shape[3]
    cdef Py_ssize_t M = F // C, size = F * kh * kw
    cdef Geom g = Geom(grad_y.shape[2], grad_y.shape[3], kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t R = N * g.out_h, groups = _row_groups(R, size * sizeof(floating)), item, u, f
    cdef floating pad = <floating>pad_value
    cdef floating[:, ::1] pk = np.empty((groups, size), dtype=np.float32 if floating is float else np.float64)
    cdef double[:, ::1] pb = np.empty((groups, F))
    cdef unsigned char[:, ::1] scratch = _scratch(num_threads, g.out_w * (sizeof(double) + sizeof(floating)))
    # N = 0 (the engine's backward does not return early for an empty batch): no rows, zeros.
    cdef const floating* xp = &x[0, 0, 0, 0] if x.size else NULL
    cdef const floating* gy = &grad_y[0, 0, 0, 0] if grad_y.size else NULL
    cdef double* bias_columns
    with nogil, parallel(num_threads=num_threads):
        bias_columns = <double*>&scratch[threadid(), 0]
        for item in prange(groups * F, schedule="dynamic"):
            u, f = item // F, item % F
            _kernel_grad_plane_nchw(xp, C, H, W, M, &g, f, u * R // groups, (u + 1) * R // groups, gy, pad,
                                    &pk[u, f * kh * kw], &pb[u, f], <floating*>(bias_columns + g.out_w),
                                    bias_columns)
    with nogil:
        _sum_groups(&pk[0, 0], &pb[0, 0], groups, F, M, kh * kw, False, &grad_kernel[0, 0, 0, 0], &grad_bias[0])
