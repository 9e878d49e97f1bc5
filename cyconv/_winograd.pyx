"""Compiled Winograd convolution for 3x3 kernels at stride 1 (Lavin & Gray, arXiv 1509.09308).

F(m x m, 3x3) computes an m x m tile of outputs from an alpha x alpha tile of inputs,
alpha = m + 2, with alpha**2 products per (channel, filter) pair instead of 9 m**2:

    Y = A^T [ sum_c (G g_c G^T) * (B^T d_c B) ] A        (* elementwise)

m = 2 (alpha = 4) or m = 4 (alpha = 6). The matrices, rows written out in the 1-D helpers below:

    F(2x2): B^T = [[1, 0,-1, 0], [0, 1, 1, 0], [0,-1, 1, 0], [0, 1, 0,-1]]
            G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2,-1/2, 1/2], [0, 0, 1]]
            A^T = [[1, 1, 1, 0], [0, 1,-1,-1]]
    F(4x4): B^T = [[4, 0,-5, 0, 1, 0], [0,-4,-4, 1, 1, 0], [0, 4,-4,-1, 1, 0],
                   [0,-2,-1, 2, 1, 0], [0, 2,-1,-2, 1, 0], [0, 4, 0,-5, 0, 1]]
            G   = [[1/4, 0, 0], [-1/6,-1/6,-1/6], [-1/6, 1/6,-1/6],
                   [1/24, 1/12, 1/6], [1/24,-1/12, 1/6], [0, 0, 1]]
            A^T = [[1, 1, 1, 1, 1, 0], [0, 1,-1, 2,-2, 0], [0, 1, 1, 4, 4, 0], [0, 1,-1, 8,-8, 1]]

How a call runs. transform_kernel computes U[a] = (G g G^T)[a] once per weight set, as alpha**2
matrices (C, F). The convolution cuts the output into tiles and the tiles into blocks; one OpenMP
team works through the blocks, and for a block
  1. the input tiles are transformed into V (alpha**2 matrices, tiles x C), lanes = channels,
  2. the alpha**2 products M[a] = V[a] @ U[a] run, each one single-threaded BLAS call
     (cyconv._blas.gemm),
  3. the output transform of M (lanes = filters) plus the bias is written to y.
While U fits in cache, each thread takes whole blocks with its own V and M (a few dozen tiles,
cache-sized); when U is larger the team shares one V and M of hundreds of tiles and splits each
of the three steps among its threads (see _blocks and _run). An NCHW input is copied image by
image into channels-last order in the thread's own buffer before its tiles are transformed, and
NCHW outputs are staged and written filter plane by filter plane.
Every output element is written by exactly one thread, by the same operations whatever the thread
count (the blocks and the products do not depend on it), so results are identical for any
num_threads. The caller holds SciPy's BLAS to one thread (threadpoolctl) around the call, so
BLAS's own workers do not fight the team.

Vectorisation. The transforms are loops over LANES contiguous channels (filters) that the compiler
vectorises at the project's flags (SSE2 on x86-64: 4 float32 lanes). -march=native (AVX-512 here)
made the transforms 5-35% faster on the benchmark layers but the whole call at most 8% (F(4x4)),
0% (F(2x2)): they are bound by memory traffic, and the products run in BLAS's own kernels anyway.

Geometry (stride 1). y[n, oh, ow, f] = bias[f]
    + sum_{i, j < 3, c} xp(n, oh - pad_top + i (dh + 1), ow - pad_left + j (dw + 1), c) kernel[f, i, j, c]
where xp reads x inside the input and pad_value (cast to the dtype) outside it. pad_top and pad_left
are signed (a negative pad starts inside the input); the padding after is implied by y's shape.
Dilation dh (gaps) splits the output rows into dh + 1 interleaved sub-grids, oh = p + (dh + 1) q:
each is an ordinary 3x3 convolution on the input rows p - pad_top + (dh + 1) q'. Tiles are cut
sub-grid by sub-grid (rows and columns alike), m consecutive outputs of one sub-grid per tile.

Edge tiles. A tile whose last rows (columns) fall outside y is partial: its outputs there are not
written, and the input rows (columns) of its window that no written output reads are taken as 0,
not read, so they add no rounding error (and a non-finite value there cannot reach y). A non-finite
value that a written output does read spreads to every output of its tile (inf - inf in the
transforms), unlike in a direct convolution.

kernel_grad_nhwc / kernel_grad_nchw compute the kernel gradient of the same convolution by
F(2x2, 3x3), whatever the forward's tile (see the section before them).

These functions trust their caller: shapes, dtypes, contiguity and the geometry are validated
before, once. Compiled without bounds checks (unless built with CYCONV_CYTHON_DEBUG=1).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid

import numpy as np

from cyconv._blas cimport gemm


cdef enum:
    # Channels (input transform) or filters (output and kernel transforms) transformed together:
    # the length of the inner loops.
    LANES = 32
    ALPHA_MAX = 6
    # Distance between the outputs of a 1-D transform in the thread's local buffers: a constant,
    # so the compiler sees that the outputs of one loop never overlap.
    STRIDE = ALPHA_MAX * LANES
    # Added to the distance between the alpha**2 matrices of V and of M: without it that distance
    # is often a multiple of 4 KiB, and a tile's alpha**2 vectors, read or written together, fall
    # into the same few L1 cache sets (measured 10-20% slower transforms on the L1 and L2 layers).
    SKEW = 16
    # Tiles per task of the transforms when the team shares V and M (see _run).
    CHUNK = 32


# ---------------------------------------------------------------------------------------------
# 1-D transforms over n <= LANES lanes: input vector k is p[k][0:n].
# The input transform writes output k to d[k * ds : k * ds + n], one loop per output, so that a
# loop has a single store stream and vectorises without aliasing checks even when d is V.
# The output transform writes only to the thread's local buffers, at the constant distance
# STRIDE, so one loop computes every output.
# ---------------------------------------------------------------------------------------------

cdef inline void _input_1d_f2(const floating** p, floating* d, Py_ssize_t ds,
                              Py_ssize_t n) noexcept nogil:
    """d = B^T s for F(2x2, 3x3): 4 vectors in, 4 out, one rounded operation on every path."""
    cdef const floating* s0 = p[0]
    cdef const floating* s1 = p[1]
    cdef const floating* s2 = p[2]
    cdef const floating* s3 = p[3]
    cdef Py_ssize_t c
    for c in range(n):
        d[c] = s0[c] - s2[c]
    for c in range(n):
        d[ds + c] = s1[c] + s2[c]
    for c in range(n):
        d[2 * ds + c] = s2[c] - s1[c]
    for c in range(n):
        d[3 * ds + c] = s1[c] - s3[c]


cdef inline void _input_1d_f4(const floating** p, floating* d, Py_ssize_t ds,
                              Py_ssize_t n) noexcept nogil:
    """d = B^T s for F(4x4, 3x3): 6 vectors in, 6 out. At most 2 rounded operations on any path
    from an input to an output (products by 2 and 4 are exact)."""
    cdef const floating* s0 = p[0]
    cdef const floating* s1 = p[1]
    cdef const floating* s2 = p[2]
    cdef const floating* s3 = p[3]
    cdef const floating* s4 = p[4]
    cdef const floating* s5 = p[5]
    cdef floating two = 2, four = 4, five = 5  # typed: a bare 4 * s would compute in double
    cdef Py_ssize_t c
    for c in range(n):
        d[c] = (four * s0[c] + s4[c]) - five * s2[c]
    for c in range(n):
        d[ds + c] = (s3[c] + s4[c]) - four * (s1[c] + s2[c])
    for c in range(n):
        d[2 * ds + c] = (s4[c] - s3[c]) + four * (s1[c] - s2[c])
    for c in range(n):
        d[3 * ds + c] = (s4[c] - s2[c]) + two * (s3[c] - s1[c])
    for c in range(n):
        d[4 * ds + c] = (s4[c] - s2[c]) - two * (s3[c] - s1[c])
    for c in range(n):
        d[5 * ds + c] = (four * s1[c] + s5[c]) - five * s3[c]


cdef inline void _output_1d_f2(const floating** p, floating* d, Py_ssize_t n) noexcept nogil:
    """d = A^T s for F(2x2, 3x3): 4 vectors in, 2 out, at most 2 rounded operations on a path."""
    cdef const floating* s0 = p[0]
    cdef const floating* s1 = p[1]
    cdef const floating* s2 = p[2]
    cdef const floating* s3 = p[3]
    cdef Py_ssize_t c
    for c in range(n):
        d[c] = (s0[c] + s1[c]) + s2[c]
        d[STRIDE + c] = (s1[c] - s2[c]) - s3[c]


cdef inline void _output_1d_f4(const floating** p, floating* d, Py_ssize_t n) noexcept nogil:
    """d = A^T s for F(4x4, 3x3): 6 vectors in, 4 out. At most 3 rounded operations on any path
    (products by 2, 4, 8 are exact)."""
    cdef const floating* s0 = p[0]
    cdef const floating* s1 = p[1]
    cdef const floating* s2 = p[2]
    cdef const floating* s3 = p[3]
    cdef const floating* s4 = p[4]
    cdef const floating* s5 = p[5]
    cdef floating two = 2, four = 4, eight = 8
    cdef Py_ssize_t c
    for c in range(n):
        d[c] = (s0[c] + (s1[c] + s2[c])) + (s3[c] + s4[c])
        d[STRIDE + c] = (s1[c] - s2[c]) + two * (s3[c] - s4[c])
        d[2 * STRIDE + c] = (s1[c] + s2[c]) + four * (s3[c] + s4[c])
        d[3 * STRIDE + c] = ((s1[c] - s2[c]) + eight * (s3[c] - s4[c])) + s5[c]


cdef inline void _input_1d(int m, const floating** p, floating* d, Py_ssize_t ds,
                           Py_ssize_t n) noexcept nogil:
    if m == 2:
        _input_1d_f2(p, d, ds, n)
    else:
        _input_1d_f4(p, d, ds, n)


cdef inline void _output_1d(int m, const floating** p, floating* d, Py_ssize_t n) noexcept nogil:
    if m == 2:
        _output_1d_f2(p, d, n)
    else:
        _output_1d_f4(p, d, n)


cdef inline void _input_2d(int m, const floating** p, floating* t, floating* v, Py_ssize_t plane,
                           Py_ssize_t n) noexcept nogil:
    """Input transform of one window, window element (k, l) at p[k * ALPHA_MAX + l][0:n]:
    v[(k' alpha + l') * plane] = (B^T d B)[k', l'], through t (local, alpha x alpha x LANES)."""
    cdef const floating* col[ALPHA_MAX]
    cdef const floating* row[ALPHA_MAX]
    cdef Py_ssize_t alpha = m + 2, k, l
    # t[(k' * ALPHA_MAX + l) * LANES] = (B^T d)[k', l], column by column
    for l in range(alpha):
        for k in range(alpha):
            col[k] = p[k * ALPHA_MAX + l]
        _input_1d(m, col, t + l * LANES, STRIDE, n)
    # then row by row, straight into V
    for k in range(alpha):
        for l in range(alpha):
            row[l] = t + k * STRIDE + l * LANES
        _input_1d(m, row, v + k * alpha * plane, plane, n)


cdef inline void _output_2d(int m, const floating* mm, Py_ssize_t ss, floating* t, floating* o,
                            Py_ssize_t n) noexcept nogil:
    """Output transform of one tile: from the products, product a at mm + a * ss, to
    o[(j * ALPHA_MAX + i) * LANES] = (A^T M A)[i, j]."""
    cdef const floating* p[ALPHA_MAX]
    cdef const floating* q[ALPHA_MAX]
    cdef Py_ssize_t alpha = m + 2, i, b, k
    for b in range(alpha):
        for k in range(alpha):
            p[k] = mm + (k * alpha + b) * ss
        _output_1d(m, p, t + b * LANES, n)
    for i in range(m):
        for b in range(alpha):
            q[b] = t + i * STRIDE + b * LANES
        _output_1d(m, q, o + i * LANES, n)


cdef inline void _kernel_1d(int m, const double* s, Py_ssize_t ss, double* d, Py_ssize_t ds,
                            Py_ssize_t n) noexcept nogil:
    """d[k * ds + i] = (G s)[k] at lane i < n, for s[k * ss + i]: 3 vectors in, alpha out, in
    float64. Every path has at most 3 rounded operations (2 additions and a division by 6;
    products by 1/2 and 1/4 are exact)."""
    cdef Py_ssize_t i
    if m == 2:
        for i in range(n):
            d[i] = s[i]
            d[ds + i] = ((s[i] + s[ss + i]) + s[2 * ss + i]) / 2
            d[2 * ds + i] = ((s[i] - s[ss + i]) + s[2 * ss + i]) / 2
            d[3 * ds + i] = s[2 * ss + i]
    else:
        for i in range(n):
            d[i] = s[i] / 4
            d[ds + i] = -((s[i] + s[ss + i]) + s[2 * ss + i]) / 6
            d[2 * ds + i] = -((s[i] - s[ss + i]) + s[2 * ss + i]) / 6
            d[3 * ds + i] = ((s[i] / 4 + s[ss + i] / 2) + s[2 * ss + i]) / 6
            d[4 * ds + i] = ((s[i] / 4 - s[ss + i] / 2) + s[2 * ss + i]) / 6
            d[5 * ds + i] = s[2 * ss + i]


# ---------------------------------------------------------------------------------------------
# Tiles. Along one axis, tile r covers outputs o0 + step * (0 .. m - 1) of one sub-grid; `valid`
# of them (1..m) exist. Window position k (0 .. alpha - 1) reads input o0 - pad + step * k and is
# needed by a written output iff k < valid + 2.
# ---------------------------------------------------------------------------------------------

cdef inline Py_ssize_t _tiles_along(Py_ssize_t out, Py_ssize_t step, Py_ssize_t m) noexcept nogil:
    """Number of tiles along an axis of `out` outputs split into `step` sub-grids."""
    cdef Py_ssize_t p, total = 0
    for p in range(min(step, out)):
        total += ((out - p + step - 1) // step + m - 1) // m
    return total


cdef inline (Py_ssize_t, Py_ssize_t) _tile(Py_ssize_t r, Py_ssize_t out, Py_ssize_t step,
                                          Py_ssize_t m) noexcept nogil:
    """Tile r along an axis -> (its first output o0, the outputs of its sub-grid from o0 on, of
    which the tile has the first m or fewer). Sub-grid p holds the outputs p, p + step, ...; its
    tiles come after those of the sub-grids before it."""
    cdef Py_ssize_t p, count, tiles
    for p in range(min(step, out)):
        count = (out - p + step - 1) // step
        tiles = (count + m - 1) // m
        if r < tiles:
            return p + step * m * r, count - m * r
        r -= tiles
    return 0, 0


cdef struct _Geometry:
    Py_ssize_t N, H, W, C          # input
    Py_ssize_t OH, OW, F           # output
    Py_ssize_t pad_top, pad_left   # signed
    Py_ssize_t sh, sw              # dilation + 1: the step between a sub-grid's rows / columns
    Py_ssize_t m, alpha            # tile size, window size
    Py_ssize_t tiles_h, tiles_w    # tiles per image along each axis
    bint shared                    # one V and M for the team (see _run), else one per thread
    Py_ssize_t block               # tiles per block: the capacity of V and M
    Py_ssize_t v_plane, m_plane    # distance between the alpha**2 matrices of V, of M


cdef inline _Geometry _geometry(Py_ssize_t N, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C,
                                Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t F,
                                Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t dh, Py_ssize_t dw,
                                int tile, Py_ssize_t itemsize) noexcept:
    cdef _Geometry g
    g.N, g.H, g.W, g.C, g.OH, g.OW, g.F = N, H, W, C, OH, OW, F
    g.pad_top, g.pad_left, g.sh, g.sw = pad_top, pad_left, dh + 1, dw + 1
    g.m, g.alpha = tile, tile + 2
    g.tiles_h, g.tiles_w = _tiles_along(OH, g.sh, g.m), _tiles_along(OW, g.sw, g.m)
    g.shared, g.block = _blocks(g.alpha, C, F, itemsize, N * g.tiles_h * g.tiles_w)
    g.v_plane = g.block * C + SKEW
    g.m_plane = g.block * F + SKEW
    return g


cdef inline (Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t) _locate(
        const _Geometry* g, Py_ssize_t t) noexcept nogil:
    """Tile t (numbered image by image, tile row by tile row) -> (image n, first output row oh0,
    valid rows, first output column ow0, valid columns)."""
    cdef Py_ssize_t per_image = g.tiles_h * g.tiles_w
    cdef Py_ssize_t oh0, rows, ow0, cols
    oh0, rows = _tile((t % per_image) // g.tiles_w, g.OH, g.sh, g.m)
    ow0, cols = _tile(t % g.tiles_w, g.OW, g.sw, g.m)
    return t // per_image, oh0, min(g.m, rows), ow0, min(g.m, cols)


cdef (bint, Py_ssize_t) _blocks(Py_ssize_t alpha, Py_ssize_t C, Py_ssize_t F, Py_ssize_t itemsize,
                                Py_ssize_t total) noexcept:
    """(shared, tiles per block), from the problem alone, never from the thread count, so the
    products (and results) are the same for any thread count. Chosen by sweeping the block on
    the benchmark's 3x3 layers (C = F = 64, 128, 256; 8 to 384 tiles, both tiles and layouts).

    Each thread runs whole blocks of tiles, V and M of a block (alpha**2 (C + F) values a tile)
    within 512 KiB, 8 to 64 tiles, and at most 10**6 / (C F) tiles: a product of at most 10**6
    multiply-adds stays in cache, and OpenBLAS then runs it without repacking U[a] (its
    small-matrix kernel; at C = F = 256, 15 tiles ran 2-3x faster than 16). Over 8 to 64 tiles
    the time was flat within noise at C = F = 64. Every block reads all of U; when U exceeds
    8 MiB (it no longer stays in the last-level cache) the team instead shares one V and M of at
    least 256 tiles (see _run), so U is read once per block (F(4x4) at C = F = 256: 1.7x faster
    than 8-tile blocks)."""
    if alpha * alpha * C * F * itemsize > (8 << 20):
        return True, max(1, min(total, max(256, (8 << 20) // (alpha * alpha * (C + F) * itemsize))))
    cdef Py_ssize_t by_cache = (512 << 10) // (alpha * alpha * (C + F) * itemsize)
    return False, max(1, min(total, max(8, min(64, by_cache, 1000000 // (C * F)))))


# ---------------------------------------------------------------------------------------------
# Blocks of tiles. Lanes are channels (input transform) and filters (output transform). An NCHW
# input is first copied, image by image, into channels-last order in the thread's own buffer.
# V is (alpha**2, block, C) and M is (alpha**2, block, F), their matrices v_plane / m_plane apart.
# ---------------------------------------------------------------------------------------------

cdef inline void _fill(floating* d, Py_ssize_t n, floating value) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(n):
        d[c] = value


cdef inline void _add(floating* d, const floating* s, const floating* b, Py_ssize_t n) noexcept nogil:
    """d[:n] = s[:n] + b[:n]"""
    cdef Py_ssize_t c
    for c in range(n):
        d[c] = s[c] + b[c]


cdef void _image_hwc(const floating* x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                     floating* image) noexcept nogil:
    """image (H, W, C) = the (C, H, W) image x in channels-last order. In blocks of LANES columns:
    each row segment of x is read once, and the LANES pixels written to stay in cache across the
    channels."""
    cdef Py_ssize_t c, h, chunk, w0, w, ww
    cdef const floating* src
    cdef floating* dst
    for h in range(H):
        for chunk in range((W + LANES - 1) // LANES):
            w0 = chunk * LANES
            ww = min(LANES, W - w0)
            dst = image + (h * W + w0) * C
            for c in range(C):
                src = x + (c * H + h) * W + w0
                for w in range(ww):
                    dst[w * C + c] = src[w]


cdef void _input_tile(const floating* x, const _Geometry* g, floating pad, Py_ssize_t n,
                      Py_ssize_t oh0, Py_ssize_t vr, Py_ssize_t ow0, Py_ssize_t vc,
                      floating* v, Py_ssize_t plane) noexcept nogil:
    """Transform the input window of the tile with outputs (oh0, ow0) + step * (0..vr-1, 0..vc-1)
    of image n of the channels-last x into v[a * plane + c], a < alpha**2, c < C."""
    cdef floating t[ALPHA_MAX * STRIDE]
    cdef floating pads[LANES]
    cdef floating zeros[LANES]
    cdef const floating* p[ALPHA_MAX * ALPHA_MAX]
    # Offset in x of window row k / column l, or -1 (padding), or -2 (read by no written output)
    cdef Py_ssize_t rows[ALPHA_MAX]
    cdef Py_ssize_t cols[ALPHA_MAX]
    cdef Py_ssize_t alpha = g.alpha, C = g.C
    cdef Py_ssize_t chunk, c0, k, l, ih, iw
    _fill(pads, LANES, pad)
    _fill(zeros, LANES, 0)
    for k in range(alpha):
        ih = oh0 - g.pad_top + g.sh * k
        rows[k] = -2 if k >= vr + 2 else (-1 if ih < 0 or ih >= g.H else (n * g.H + ih) * g.W * C)
        iw = ow0 - g.pad_left + g.sw * k
        cols[k] = -2 if k >= vc + 2 else (-1 if iw < 0 or iw >= g.W else iw * C)
    for chunk in range((C + LANES - 1) // LANES):
        c0 = chunk * LANES
        for k in range(alpha):
            for l in range(alpha):
                if rows[k] == -2 or cols[l] == -2:
                    p[k * ALPHA_MAX + l] = zeros
                elif rows[k] == -1 or cols[l] == -1:
                    p[k * ALPHA_MAX + l] = pads
                else:
                    p[k * ALPHA_MAX + l] = x + rows[k] + cols[l] + c0
        if C - c0 >= LANES:  # a full chunk: constant trip counts
            _input_2d(g.m, p, t, v + c0, plane, LANES)
        else:
            _input_2d(g.m, p, t, v + c0, plane, C - c0)


cdef void _output_tile(const floating* mm, Py_ssize_t plane, const floating* bias, const _Geometry* g,
                       Py_ssize_t vr, Py_ssize_t vc, floating* out, Py_ssize_t row_step,
                       Py_ssize_t col_step) noexcept nogil:
    """From the tile's products mm[a * plane + f], write its vr x vc outputs plus bias: output
    (i, j), filter f to out[i * row_step + j * col_step + f]."""
    cdef floating t[ALPHA_MAX * STRIDE]
    cdef floating o[ALPHA_MAX * STRIDE]
    cdef Py_ssize_t F = g.F, chunk, f0, fw, i, j
    cdef floating* dst
    cdef const floating* src
    for chunk in range((F + LANES - 1) // LANES):
        f0 = chunk * LANES
        fw = min(LANES, F - f0)
        if fw == LANES:  # a full chunk: constant trip counts
            _output_2d(g.m, mm + f0, plane, t, o, LANES)
        else:
            _output_2d(g.m, mm + f0, plane, t, o, fw)
        for i in range(vr):
            for j in range(vc):
                dst = out + i * row_step + j * col_step + f0
                src = o + (j * ALPHA_MAX + i) * LANES
                if fw == LANES:
                    _add(dst, src, bias + f0, LANES)
                else:
                    _add(dst, src, bias + f0, fw)


cdef void _inputs(const floating* x, const _Geometry* g, bint nchw, floating pad, Py_ssize_t first,
                  Py_ssize_t count, floating* v, floating* image, Py_ssize_t* image_n) noexcept nogil:
    """Input transforms of tiles first .. first + count - 1 into rows 0 .. count - 1 of v.
    NCHW: image holds image image_n[0] of x in channels-last order, refilled when n changes."""
    cdef Py_ssize_t b, n, oh0, vr, ow0, vc
    for b in range(count):
        n, oh0, vr, ow0, vc = _locate(g, first + b)
        if not nchw:
            _input_tile(x, g, pad, n, oh0, vr, ow0, vc, v + b * g.C, g.v_plane)
            continue
        if image_n[0] != n:
            _image_hwc(x + n * g.C * g.H * g.W, g.C, g.H, g.W, image)
            image_n[0] = n
        _input_tile(image, g, pad, 0, oh0, vr, ow0, vc, v + b * g.C, g.v_plane)


cdef inline void _products(const floating* u, const floating* v, floating* mm, const _Geometry* g,
                           Py_ssize_t count, Py_ssize_t a) noexcept nogil:
    """M[a] = V[a] @ U[a] for rows 0 .. count - 1: one single-threaded BLAS product."""
    gemm(False, False, <int>count, <int>g.F, <int>g.C, <floating>1, v + a * g.v_plane, <int>g.C,
         u + a * g.C * g.F, <int>g.F, <floating>0, mm + a * g.m_plane, <int>g.F)


cdef void _outputs(const floating* mm, const floating* bias, floating* y, const _Geometry* g,
                   bint nchw, Py_ssize_t first, Py_ssize_t count, floating* stage,
                   Py_ssize_t* where) noexcept nogil:
    """Output transforms of tiles first .. first + count - 1 from rows 0 .. count - 1 of mm.
    NCHW: the outputs go to stage, as (count, m, m, F + SKEW), then to y plane by plane (whole
    cache lines at a time), the tiles' (offset in y, valid rows, valid columns) noted in where."""
    cdef Py_ssize_t F = g.F, m = g.m, OH = g.OH, OW = g.OW, pixel = F + SKEW
    cdef Py_ssize_t b, n, oh0, vr, ow0, vc, f, i, j
    cdef const floating* src
    cdef floating* dst
    for b in range(count):
        n, oh0, vr, ow0, vc = _locate(g, first + b)
        if not nchw:
            _output_tile(mm + b * F, g.m_plane, bias, g, vr, vc, y + ((n * OH + oh0) * OW + ow0) * F,
                         g.sh * OW * F, g.sw * F)
            continue
        _output_tile(mm + b * F, g.m_plane, bias, g, vr, vc, stage + b * m * m * pixel, m * pixel, pixel)
        where[3 * b] = n * F * OH * OW + oh0 * OW + ow0
        where[3 * b + 1] = vr
        where[3 * b + 2] = vc
    if nchw:
        for f in range(F):
            for b in range(count):
                dst = y + where[3 * b] + f * OH * OW
                src = stage + b * m * m * pixel + f
                for i in range(where[3 * b + 1]):
                    for j in range(where[3 * b + 2]):
                        dst[i * g.sh * OW + j * g.sw] = src[(i * m + j) * pixel]


cdef void _run(const floating* x, const floating* u, const floating* bias, floating* y,
               _Geometry g, bint nchw, double pad_value, int num_threads):
    """Split the work among num_threads threads. Each thread has its own buffers for NCHW (an
    image of x in channels-last order, the output staging and its index). Either (g.shared
    false) each thread takes whole blocks of tiles with its own V and M: transforms, alpha**2
    products, output transforms; or (g.shared) the team shares one V and M and, block after
    block, splits the input transforms (CHUNK tiles a task), then the alpha**2 products (one
    product a task), then the output transforms."""
    cdef Py_ssize_t total = g.N * g.tiles_h * g.tiles_w
    if total == 0:
        return
    cdef Py_ssize_t n_blocks = (total + g.block - 1) // g.block
    cdef Py_ssize_t alpha2 = g.alpha * g.alpha, threads = max(num_threads, 1)
    cdef Py_ssize_t vm_size = alpha2 * (g.v_plane + g.m_plane)
    cdef Py_ssize_t staged = min(g.block, CHUNK) if g.shared else g.block
    cdef Py_ssize_t image_size = g.H * g.W * g.C if nchw else 0
    cdef Py_ssize_t stage_size = staged * g.m * g.m * (g.F + SKEW) if nchw else 0
    cdef object dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] team = np.empty(vm_size if g.shared else 1, dtype=dtype)
    cdef floating[:, ::1] own = np.empty((threads, (0 if g.shared else vm_size) + image_size + stage_size + 1),
                                         dtype=dtype)
    cdef Py_ssize_t[:, ::1] where = np.empty((threads, 3 * staged + 1), dtype=np.intp)
    cdef floating pad = <floating>pad_value
    cdef Py_ssize_t blk, first, count, tid, task, a, image_at = 3 * staged
    cdef floating* v
    cdef floating* image
    where[:, image_at] = -1  # the image each thread holds: none yet
    if not g.shared:
        with nogil:
            for blk in prange(n_blocks, schedule="static", num_threads=num_threads):
                tid = threadid()
                v = &own[tid, 0]
                image = v + vm_size
                first = blk * g.block
                count = min(g.block, total - first)
                _inputs(x, &g, nchw, pad, first, count, v, image, &where[tid, image_at])
                for a in range(alpha2):
                    _products(u, v, v + alpha2 * g.v_plane, &g, count, a)
                _outputs(v + alpha2 * g.v_plane, bias, y, &g, nchw, first, count, image + image_size,
                         &where[tid, 0])
        return
    v = &team[0]
    for blk in range(n_blocks):
        first = blk * g.block
        count = min(g.block, total - first)
        with nogil, parallel(num_threads=num_threads):
            tid = threadid()
            image = &own[tid, 0]
            for task in prange((count + CHUNK - 1) // CHUNK, schedule="static"):
                _inputs(x, &g, nchw, pad, first + task * CHUNK, min(CHUNK, count - task * CHUNK),
                        v + task * CHUNK * g.C, image, &where[tid, image_at])
            for a in prange(alpha2, schedule="static"):
                _products(u, v, v + alpha2 * g.v_plane, &g, count, a)
            for task in prange((count + CHUNK - 1) // CHUNK, schedule="static"):
                _outputs(v + alpha2 * g.v_plane + task * CHUNK * g.F, bias, y, &g, nchw, first + task * CHUNK,
                         min(CHUNK, count - task * CHUNK), image + image_size, &where[tid, 0])


def winograd_nhwc(const floating[:, :, :, ::1] x,   # IN  (N, H, W, C)
                  const floating[:, :, ::1] u,      # IN  (alpha**2, C, F) from transform_kernel
                  const floating[::1] bias,         # IN  (F,)
                  floating[:, :, :, ::1] y,         # OUT (N, OH, OW, F)
                  Py_ssize_t pad_top, Py_ssize_t pad_left,
                  Py_ssize_t dh, Py_ssize_t dw,
                  double pad_value, int tile, int num_threads):
    """y = the 3x3 stride-1 convolution of x (see the module docstring) by Winograd F(tile x tile,
    3x3), tile 2 or 4, with the kernel transformed by transform_kernel(kernel, u, False, tile)."""
    cdef _Geometry g = _geometry(x.shape[0], x.shape[1], x.shape[2], x.shape[3], y.shape[1], y.shape[2],
                                 y.shape[3], pad_top, pad_left, dh, dw, tile, sizeof(floating))
    _run(&x[0, 0, 0, 0], &u[0, 0, 0], &bias[0], &y[0, 0, 0, 0], g, False, pad_value, num_threads)


def winograd_nchw(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
                  const floating[:, :, ::1] u,      # IN  (alpha**2, C, F) from transform_kernel
                  const floating[::1] bias,         # IN  (F,)
                  floating[:, :, :, ::1] y,         # OUT (N, F, OH, OW)
                  Py_ssize_t pad_top, Py_ssize_t pad_left,
                  Py_ssize_t dh, Py_ssize_t dw,
                  double pad_value, int tile, int num_threads):
    """The NCHW twin of winograd_nhwc, kernel transformed by transform_kernel(kernel, u, True, tile).
    Each thread keeps one image of x in channels-last order (H * W * C values)."""
    cdef _Geometry g = _geometry(x.shape[0], x.shape[2], x.shape[3], x.shape[1], y.shape[2], y.shape[3],
                                 y.shape[1], pad_top, pad_left, dh, dw, tile, sizeof(floating))
    _run(&x[0, 0, 0, 0], &u[0, 0, 0], &bias[0], &y[0, 0, 0, 0], g, True, pad_value, num_threads)


def tile_count(Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t tile):
    """The tiles of F(tile x tile, 3x3) in one image of out_h x out_w outputs, dilation (dh, dw):
    the callers' count of what the kernels below loop over."""
    return _tiles_along(out_h, dh + 1, tile) * _tiles_along(out_w, dw + 1, tile)


def transform_kernel(const floating[:, :, :, ::1] kernel,  # IN  (F, 3, 3, C), or (F, C, 3, 3) if nchw
                     floating[:, :, ::1] u,                 # OUT (alpha**2, C, F)
                     bint nchw, int tile):
    """u[a, c, f] = (G g G^T)[a] for g = the 3x3 kernel of filter f, channel c, computed in float64
    and rounded once to u's dtype. Channel by channel, LANES filters at a time: u is written in
    order, and the divisions run as vector instructions (measured 3x faster than one (c, f) pair
    at a time at C = F = 256)."""
    cdef Py_ssize_t F = kernel.shape[0], C = kernel.shape[1] if nchw else kernel.shape[3]
    cdef Py_ssize_t alpha = tile + 2
    cdef double g[9 * LANES]
    cdef double t[3 * ALPHA_MAX * LANES]
    cdef double r[ALPHA_MAX * ALPHA_MAX * LANES]
    cdef Py_ssize_t c, chunk, f0, n, f, i, j, a
    with nogil:
        for c in range(C):
            for chunk in range((F + LANES - 1) // LANES):
                f0 = chunk * LANES
                n = min(LANES, F - f0)
                for f in range(n):
                    for i in range(3):
                        for j in range(3):
                            g[(i * 3 + j) * LANES + f] = kernel[f0 + f, c, i, j] if nchw else kernel[f0 + f, i, j, c]
                # t[a][j] = (G g)[a, j], then r[a][b] = (t G^T)[a, b]
                for j in range(3):
                    _kernel_1d(tile, g + j * LANES, 3 * LANES, t + j * LANES, 3 * LANES, n)
                for a in range(alpha):
                    _kernel_1d(tile, t + a * 3 * LANES, LANES, r + a * alpha * LANES, LANES, n)
                for a in range(alpha * alpha):
                    for f in range(n):
                        u[a, c, f0 + f] = <floating>r[a * LANES + f]


# ---------------------------------------------------------------------------------------------
# The kernel gradient by F(2x2, 3x3). A tile's outputs y = A^T [(G g G^T) * (B^T d B)] A are
# bilinear in the 3x3 kernel g and the 4x4 input window d, so a loss with dL/dy = e (2x2) on the
# tile has dL/dg = G^T [(A e A^T) * (B^T d B)] G: the correlation of d with e, the 3x3 taps
# sum_{i, j} e[i, j] d[i + k, j + l]. Summed over every tile of every image, for filter f and
# channel c:
#     grad_kernel[f, c] = G^T M[f, c] G,   M[a][f, c] = sum_t E[a][t, f] V[a][t, c],  a < 16,
# with V = B^T d B the forward's input transform and E = A e A^T the grad_y tile, 2x2 -> 4x4,
# A = [[1, 0], [1, 1], [1, -1], [0, -1]]. Outputs of a tile outside y have e = 0, and the window
# positions that only they read are 0 in V (as in the forward): they add nothing.
#
# How a call runs. The tiles (numbered as in the forward) are cut into `parts` contiguous parts
# and each part into blocks of `block` tiles, both sizes the caller's choice from the problem only.
# One OpenMP team takes whole parts, each thread with its own V (16, block, C) and E (16, block, F):
# for each block of its part, in order, the transforms, then the 16 products M[a] += E[a]^T V[a]
# (single-threaded BLAS, K = the block's tiles) into the part's own M, and the part's bias sum in
# float64. No barrier inside the loop. The parts are then added in order, in float64, and
# grad_kernel = G^T M G, filter by filter: the same operations whatever the thread count.
# ---------------------------------------------------------------------------------------------

cdef inline void _grad_1d(const floating* s0, const floating* s1, floating* d, Py_ssize_t ds,
                          Py_ssize_t n) noexcept nogil:
    """d = A s for F(2x2, 3x3): 2 vectors in, 4 out, at most one rounded operation on a path."""
    cdef Py_ssize_t c
    for c in range(n):
        d[c] = s0[c]
    for c in range(n):
        d[ds + c] = s0[c] + s1[c]
    for c in range(n):
        d[2 * ds + c] = s0[c] - s1[c]
    for c in range(n):
        d[3 * ds + c] = -s1[c]


cdef inline void _grad_2d(const floating** p, floating* t, floating* e, Py_ssize_t plane,
                          Py_ssize_t n) noexcept nogil:
    """E = A e A^T of one tile, e[i, j] at p[2 i + j][0:n]: E[a, b] to e[(4 a + b) * plane], through
    t (local, (A e)[a, j] at t[a * STRIDE + j * LANES])."""
    cdef Py_ssize_t j, a
    for j in range(2):
        _grad_1d(p[j], p[2 + j], t + j * LANES, STRIDE, n)
    for a in range(4):
        _grad_1d(t + a * STRIDE, t + a * STRIDE + LANES, e + 4 * a * plane, plane, n)


cdef void _grad_tile(const floating* gy, const _Geometry* g, Py_ssize_t oh0, Py_ssize_t vr,
                     Py_ssize_t ow0, Py_ssize_t vc, floating* e, Py_ssize_t plane) noexcept nogil:
    """E of the tile with outputs (oh0, ow0) + step * (0..vr-1, 0..vc-1) of the channels-last
    grad_y image gy (OH, OW, F), its outputs outside y taken as 0, into e[a * plane + f]."""
    cdef floating t[4 * STRIDE]
    cdef floating zeros[LANES]
    cdef const floating* p[4]
    cdef Py_ssize_t F = g.F, chunk, f0, i, j
    _fill(zeros, LANES, 0)
    for chunk in range((F + LANES - 1) // LANES):
        f0 = chunk * LANES
        for i in range(2):
            for j in range(2):
                if i < vr and j < vc:
                    p[2 * i + j] = gy + ((oh0 + g.sh * i) * g.OW + ow0 + g.sw * j) * F + f0
                else:
                    p[2 * i + j] = zeros
        if F - f0 >= LANES:  # a full chunk: constant trip counts
            _grad_2d(p, t, e + f0, plane, LANES)
        else:
            _grad_2d(p, t, e + f0, plane, F - f0)


cdef void _grads(const floating* gy, const _Geometry* g, bint nchw, Py_ssize_t first, Py_ssize_t count,
                 floating* e, floating* image, Py_ssize_t* image_n) noexcept nogil:
    """E of tiles first .. first + count - 1 into rows 0 .. count - 1 of e. NCHW: image holds
    image image_n[0] of grad_y in channels-last order, refilled when n changes."""
    cdef Py_ssize_t b, n, oh0, vr, ow0, vc, size = g.OH * g.OW * g.F
    for b in range(count):
        n, oh0, vr, ow0, vc = _locate(g, first + b)
        if not nchw:
            _grad_tile(gy + n * size, g, oh0, vr, ow0, vc, e + b * g.F, g.m_plane)
            continue
        if image_n[0] != n:
            _image_hwc(gy + n * size, g.F, g.OH, g.OW, image)
            image_n[0] = n
        _grad_tile(image, g, oh0, vr, ow0, vc, e + b * g.F, g.m_plane)


cdef void _bias_sums(const floating* gy, const _Geometry* g, bint nchw, Py_ssize_t first,
                     Py_ssize_t count, double* bias) noexcept nogil:
    """bias[f] += grad_y summed over the outputs of tiles first .. first + count - 1, in float64,
    in a fixed order (NHWC tile by tile, NCHW filter by filter)."""
    cdef Py_ssize_t OH = g.OH, OW = g.OW, F = g.F, b, n, oh0, vr, ow0, vc, i, j, f
    cdef const floating* src
    if not nchw:
        for b in range(count):
            n, oh0, vr, ow0, vc = _locate(g, first + b)
            for i in range(vr):
                for j in range(vc):
                    src = gy + ((n * OH + oh0 + g.sh * i) * OW + ow0 + g.sw * j) * F
                    for f in range(F):
                        bias[f] += src[f]
        return
    for f in range(F):
        for b in range(count):
            n, oh0, vr, ow0, vc = _locate(g, first + b)
            src = gy + ((n * F + f) * OH + oh0) * OW + ow0
            for i in range(vr):
                for j in range(vc):
                    bias[f] += src[g.sh * i * OW + g.sw * j]


cdef inline void _kernel_grad_1d(const double* s, Py_ssize_t ss, double* d, Py_ssize_t ds,
                                 Py_ssize_t n) noexcept nogil:
    """d[k * ds + i] = (G^T s)[k] at lane i < n for s[k * ss + i], F(2x2, 3x3): 4 vectors in, 3
    out, in float64, G^T = [[1, 1/2, 1/2, 0], [0, 1/2, -1/2, 0], [0, 1/2, 1/2, 1]]."""
    cdef Py_ssize_t i
    for i in range(n):
        d[i] = s[i] + (s[ss + i] + s[2 * ss + i]) / 2
        d[ds + i] = (s[ss + i] - s[2 * ss + i]) / 2
        d[2 * ds + i] = (s[ss + i] + s[2 * ss + i]) / 2 + s[3 * ss + i]


cdef void _kernel_grad_out(const floating* partials, Py_ssize_t parts, Py_ssize_t F, Py_ssize_t C,
                           Py_ssize_t f, bint nchw, floating* out) noexcept nogil:
    """out = grad_kernel of filter f, G^T M[f, c] G for every c, from partials (parts, 16, F, C):
    M = the sum of the parts in order, then the transform, in float64, rounded once. out is
    (3, 3, C), or (C, 3, 3) if nchw."""
    cdef double s[16 * LANES]
    cdef double t[12 * LANES]
    cdef double r[9 * LANES]
    cdef const floating* src
    cdef Py_ssize_t chunk, c0, n, part, a, b, i, c
    for chunk in range((C + LANES - 1) // LANES):
        c0 = chunk * LANES
        n = min(LANES, C - c0)
        for a in range(16):
            for c in range(n):
                s[a * LANES + c] = 0
            for part in range(parts):
                src = partials + ((part * 16 + a) * F + f) * C + c0
                for c in range(n):
                    s[a * LANES + c] += src[c]
        # t[i][b] = (G^T M)[i, b], column by column, then r[i][j] = (G^T M G)[i, j], row by row
        for b in range(4):
            _kernel_grad_1d(s + b * LANES, 4 * LANES, t + b * LANES, 4 * LANES, n)
        for i in range(3):
            _kernel_grad_1d(t + i * 4 * LANES, LANES, r + i * 3 * LANES, LANES, n)
        for a in range(9):
            for c in range(n):
                if nchw:
                    out[(c0 + c) * 9 + a] = <floating>r[a * LANES + c]
                else:
                    out[a * C + c0 + c] = <floating>r[a * LANES + c]


cdef void _grad_run(const floating* x, const floating* gy, floating* grad_kernel, double* grad_bias,
                    floating[:, :, :, ::1] mm, _Geometry g, bint nchw, double pad_value, Py_ssize_t block,
                    Py_ssize_t parts, int num_threads):
    """grad_kernel and grad_bias (see the section's comment), with num_threads threads. The tiles
    are cut into `parts` contiguous parts; a thread takes a whole part and sums its blocks, in
    order, into the part's own M (mm[part], in the dtype: the part's first block overwrites it,
    so mm need not be zeroed) and bias (in float64), with its own V and E (and,
    for NCHW, an image of x and one of grad_y in channels-last order). The parts are then added
    in order, in float64."""
    cdef Py_ssize_t total = g.N * g.tiles_h * g.tiles_w, threads = max(num_threads, 1)
    cdef Py_ssize_t F = g.F, C = g.C
    g.block = block
    g.v_plane = block * C + SKEW
    g.m_plane = block * F + SKEW
    cdef Py_ssize_t ve_size = 16 * (g.v_plane + g.m_plane)
    cdef Py_ssize_t x_image = g.H * g.W * C if nchw else 0
    cdef Py_ssize_t gy_image = g.OH * g.OW * F if nchw else 0
    cdef object dtype = np.float32 if floating is float else np.float64
    cdef double[:, ::1] bias = np.zeros((parts, F))
    cdef floating[:, ::1] own = np.empty((threads, ve_size + x_image + gy_image), dtype=dtype)
    cdef Py_ssize_t[:, ::1] image_n = np.full((threads, 2), -1, dtype=np.intp)
    cdef floating pad = <floating>pad_value
    cdef floating* v
    cdef floating* e
    cdef Py_ssize_t part, start, first, stop, count, a, f
    with nogil, parallel(num_threads=num_threads):
        v = &own[threadid(), 0]
        e = v + 16 * g.v_plane
        for part in prange(parts, schedule="dynamic"):
            start = part * total // parts
            first = start
            stop = (part + 1) * total // parts
            while first < stop:
                count = min(block, stop - first)
                _inputs(x, &g, nchw, pad, first, count, v, e + 16 * g.m_plane, &image_n[threadid(), 0])
                _grads(gy, &g, nchw, first, count, e, e + 16 * g.m_plane + x_image, &image_n[threadid(), 1])
                for a in range(16):
                    gemm(True, False, <int>F, <int>C, <int>count, <floating>1, e + a * g.m_plane, <int>F,
                         v + a * g.v_plane, <int>C, <floating>(first > start), &mm[part, a, 0, 0], <int>C)
                _bias_sums(gy, &g, nchw, first, count, &bias[part, 0])
                first = first + count
    with nogil:
        for f in prange(F, schedule="static", num_threads=num_threads):
            grad_bias[f] = 0
            for part in range(parts):
                grad_bias[f] += bias[part, f]
            _kernel_grad_out(&mm[0, 0, 0, 0], parts, F, C, f, nchw, grad_kernel + f * 9 * C)


def kernel_grad_nhwc(const floating[:, :, :, ::1] x,       # IN  (N, H, W, C)
                     const floating[:, :, :, ::1] grad_y,  # IN  (N, OH, OW, F)
                     floating[:, :, :, ::1] grad_kernel,   # OUT (F, 3, 3, C)
                     double[::1] grad_bias,                # OUT (F,)
                     floating[:, :, :, ::1] partials,      # WORK (parts, 16, F, C)
                     Py_ssize_t pad_top, Py_ssize_t pad_left,
                     Py_ssize_t dh, Py_ssize_t dw,
                     double pad_value, Py_ssize_t block, Py_ssize_t parts, int num_threads):
    """grad_kernel = dL/dkernel of the 3x3 stride-1 convolution of x (see the module docstring) for
    grad_y = dL/dy, by Winograd F(2x2, 3x3), and grad_bias = grad_y summed per filter in float64.
    The tiles are cut into `parts` parts (1 <= parts <= the number of tiles, which is
    N * ceil(OH / 2) * ceil(OW / 2) without dilation), taken `block` tiles (>= 1: the products' K)
    at a time: the result depends on both, never on num_threads. partials holds the parts' partial
    sums (its contents on entry do not matter); per thread the call allocates 16 block (C + F)
    values (plus H W C + OH OW F for NCHW)."""
    cdef _Geometry g = _geometry(x.shape[0], x.shape[1], x.shape[2], x.shape[3], grad_y.shape[1],
                                 grad_y.shape[2], grad_y.shape[3], pad_top, pad_left, dh, dw, 2, sizeof(floating))
    _grad_run(&x[0, 0, 0, 0], &grad_y[0, 0, 0, 0], &grad_kernel[0, 0, 0, 0], &grad_bias[0], partials, g,
              False, pad_value, block, parts, num_threads)


def kernel_grad_nchw(const floating[:, :, :, ::1] x,       # IN  (N, C, H, W)
                     const floating[:, :, :, ::1] grad_y,  # IN  (N, F, OH, OW)
                     floating[:, :, :, ::1] grad_kernel,   # OUT (F, C, 3, 3)
                     double[::1] grad_bias,                # OUT (F,)
                     floating[:, :, :, ::1] partials,      # WORK (parts, 16, F, C)
                     Py_ssize_t pad_top, Py_ssize_t pad_left,
                     Py_ssize_t dh, Py_ssize_t dw,
                     double pad_value, Py_ssize_t block, Py_ssize_t parts, int num_threads):
    """The NCHW twin of kernel_grad_nhwc. Each thread keeps one image of x and one of grad_y in
    channels-last order."""
    cdef _Geometry g = _geometry(x.shape[0], x.shape[2], x.shape[3], x.shape[1], grad_y.shape[2],
                                 grad_y.shape[3], grad_y.shape[1], pad_top, pad_left, dh, dw, 2, sizeof(floating))
    _grad_run(&x[0, 0, 0, 0], &grad_y[0, 0, 0, 0], &grad_kernel[0, 0, 0, 0], &grad_bias[0], partials, g,
              True, pad_value, block, parts, num_threads)
