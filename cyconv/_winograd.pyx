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
matrices (C, F). The convolution cuts the output into tiles and the tiles into blocks of a few
dozen; one OpenMP team takes the blocks, and for a block a thread
  1. transforms its input tiles into its own buffer V (alpha**2 matrices, tiles x C),
  2. runs the alpha**2 single-threaded products M[a] = V[a] @ U[a] with BLAS (cyconv._blas.gemm),
  3. applies the output transform to M, adds the bias and writes its tiles of y.
Every output element is written by exactly one thread, by the same operations whatever the thread
count, so results are identical for any num_threads. The caller holds SciPy's BLAS to one thread
(threadpoolctl) around the call, so BLAS's own workers do not fight the team.

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

These functions trust their caller: shapes, dtypes, contiguity and the geometry are validated
before, once. Compiled without bounds checks (unless built with CYCONV_CYTHON_DEBUG=1).
"""
from cython cimport floating
from cython.parallel cimport prange, threadid

import numpy as np

from cyconv._blas cimport gemm


cdef enum:
    # Channels (NHWC) or tiles (NCHW) transformed together: the length of the inner loops.
    LANES = 32
    ALPHA_MAX = 6


# ---------------------------------------------------------------------------------------------
# 1-D transforms. Each reads `alpha` (or 3) input vectors s + k * ss and writes its outputs to
# d + k * ds, n lanes each. One loop per output, so each loop has a single store stream and
# vectorises over the lanes without aliasing checks between outputs.
# ---------------------------------------------------------------------------------------------

cdef inline void _input_1d_f2(const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                              Py_ssize_t n) noexcept nogil:
    """d = B^T s for F(2x2, 3x3): 4 vectors in, 4 out."""
    cdef Py_ssize_t c
    for c in range(n):
        d[c] = s[c] - s[2 * ss + c]
    for c in range(n):
        d[ds + c] = s[ss + c] + s[2 * ss + c]
    for c in range(n):
        d[2 * ds + c] = s[2 * ss + c] - s[ss + c]
    for c in range(n):
        d[3 * ds + c] = s[ss + c] - s[3 * ss + c]


cdef inline void _input_1d_f4(const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                              Py_ssize_t n) noexcept nogil:
    """d = B^T s for F(4x4, 3x3): 6 vectors in, 6 out. At most 2 rounded operations on any path
    from an input to an output (products by 2 and 4 are exact)."""
    cdef Py_ssize_t c
    for c in range(n):
        d[c] = (4 * s[c] + s[4 * ss + c]) - 5 * s[2 * ss + c]
    for c in range(n):
        d[ds + c] = (s[3 * ss + c] + s[4 * ss + c]) - 4 * (s[ss + c] + s[2 * ss + c])
    for c in range(n):
        d[2 * ds + c] = (s[4 * ss + c] - s[3 * ss + c]) + 4 * (s[ss + c] - s[2 * ss + c])
    for c in range(n):
        d[3 * ds + c] = (s[4 * ss + c] - s[2 * ss + c]) + 2 * (s[3 * ss + c] - s[ss + c])
    for c in range(n):
        d[4 * ds + c] = (s[4 * ss + c] - s[2 * ss + c]) - 2 * (s[3 * ss + c] - s[ss + c])
    for c in range(n):
        d[5 * ds + c] = (4 * s[ss + c] + s[5 * ss + c]) - 5 * s[3 * ss + c]


cdef inline void _output_1d_f2(const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                               Py_ssize_t n) noexcept nogil:
    """d = A^T s for F(2x2, 3x3): 4 vectors in, 2 out."""
    cdef Py_ssize_t c
    for c in range(n):
        d[c] = (s[c] + s[ss + c]) + s[2 * ss + c]
    for c in range(n):
        d[ds + c] = (s[ss + c] - s[2 * ss + c]) - s[3 * ss + c]


cdef inline void _output_1d_f4(const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                               Py_ssize_t n) noexcept nogil:
    """d = A^T s for F(4x4, 3x3): 6 vectors in, 4 out. At most 3 rounded operations on any path
    (products by 2, 4, 8 are exact)."""
    cdef Py_ssize_t c
    for c in range(n):
        d[c] = (s[c] + (s[ss + c] + s[2 * ss + c])) + (s[3 * ss + c] + s[4 * ss + c])
    for c in range(n):
        d[ds + c] = (s[ss + c] - s[2 * ss + c]) + 2 * (s[3 * ss + c] - s[4 * ss + c])
    for c in range(n):
        d[2 * ds + c] = (s[ss + c] + s[2 * ss + c]) + 4 * (s[3 * ss + c] + s[4 * ss + c])
    for c in range(n):
        d[3 * ds + c] = ((s[ss + c] - s[2 * ss + c]) + 8 * (s[3 * ss + c] - s[4 * ss + c])) + s[5 * ss + c]


cdef inline void _input_1d(int m, const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                           Py_ssize_t n) noexcept nogil:
    if m == 2:
        _input_1d_f2(s, ss, d, ds, n)
    else:
        _input_1d_f4(s, ss, d, ds, n)


cdef inline void _output_1d(int m, const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                            Py_ssize_t n) noexcept nogil:
    if m == 2:
        _output_1d_f2(s, ss, d, ds, n)
    else:
        _output_1d_f4(s, ss, d, ds, n)


cdef inline void _kernel_1d(int m, const double* s, Py_ssize_t ss, double* d, Py_ssize_t ds) noexcept nogil:
    """d = G s: 3 values in, alpha out, in float64. Every path has at most 3 rounded operations
    (2 additions and a division by 6; products by 1/2 and 1/4 are exact)."""
    if m == 2:
        d[0] = s[0]
        d[ds] = ((s[0] + s[ss]) + s[2 * ss]) / 2
        d[2 * ds] = ((s[0] - s[ss]) + s[2 * ss]) / 2
        d[3 * ds] = s[2 * ss]
    else:
        d[0] = s[0] / 4
        d[ds] = -((s[0] + s[ss]) + s[2 * ss]) / 6
        d[2 * ds] = -((s[0] - s[ss]) + s[2 * ss]) / 6
        d[3 * ds] = ((s[0] / 4 + s[ss] / 2) + s[2 * ss]) / 6
        d[4 * ds] = ((s[0] / 4 - s[ss] / 2) + s[2 * ss]) / 6
        d[5 * ds] = s[2 * ss]


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
    """Tile r along an axis -> (its first output o0, the outputs of its sub-grid from o0 on).
    Sub-grid p holds the outputs p, p + step, ...; its tiles come after those of the sub-grids
    before it. The tile has min(m, rest) valid outputs; its sub-grid has ceil(rest / m) tiles
    from r on."""
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
    Py_ssize_t block               # tiles per block (the capacity of V and M)


cdef inline _Geometry _geometry(Py_ssize_t N, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C,
                                Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t F,
                                Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t dh, Py_ssize_t dw,
                                int tile, Py_ssize_t block) noexcept:
    cdef _Geometry g
    g.N, g.H, g.W, g.C, g.OH, g.OW, g.F = N, H, W, C, OH, OW, F
    g.pad_top, g.pad_left, g.sh, g.sw = pad_top, pad_left, dh + 1, dw + 1
    g.m, g.alpha = tile, tile + 2
    g.tiles_h, g.tiles_w = _tiles_along(OH, g.sh, g.m), _tiles_along(OW, g.sw, g.m)
    g.block = block
    return g


cdef inline (Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t) _locate(
        const _Geometry* g, Py_ssize_t t) noexcept nogil:
    """Tile t (numbered image by image, tile row by tile row) -> (image n, first output row oh0,
    valid rows, first output column ow0, outputs of its column sub-grid from ow0 on)."""
    cdef Py_ssize_t per_image = g.tiles_h * g.tiles_w
    cdef Py_ssize_t oh0, rows, ow0, cols
    oh0, rows = _tile((t % per_image) // g.tiles_w, g.OH, g.sh, g.m)
    ow0, cols = _tile(t % g.tiles_w, g.OW, g.sw, g.m)
    return t // per_image, oh0, min(g.m, rows), ow0, cols


cdef Py_ssize_t _block_tiles(Py_ssize_t alpha, Py_ssize_t C, Py_ssize_t F, Py_ssize_t total) noexcept:
    """Tiles per block: V and M together take alpha**2 (C + F) values per tile; about 1 MiB of
    float32 (the L2 cache) sets the block, but never fewer than 32 tiles (a thinner product
    spends its time repacking U[a]) nor more than 128. Depends only on the problem, never on the
    thread count, so the products (and results) are the same for any thread count."""
    cdef Py_ssize_t per_tile = alpha * alpha * (C + F) * 4
    return max(1, min(total, max(32, min(128, (1 << 20) // per_tile))))


# ---------------------------------------------------------------------------------------------
# NHWC: lanes are channels (input transform) and filters (output transform).
# V is (alpha**2, block, C), M is (alpha**2, block, F).
# ---------------------------------------------------------------------------------------------

cdef inline void _fill(floating* d, Py_ssize_t n, floating value) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(n):
        d[c] = value


cdef inline void _copy(floating* d, const floating* s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(n):
        d[c] = s[c]


cdef void _input_tile_nhwc(const floating* x, const _Geometry* g, floating pad, Py_ssize_t n,
                           Py_ssize_t oh0, Py_ssize_t vr, Py_ssize_t ow0, Py_ssize_t vc,
                           floating* v, Py_ssize_t plane) noexcept nogil:
    """Transform the input window of the tile with outputs (oh0, ow0) + step * (0..vr-1, 0..vc-1)
    of image n into v[a * plane + c], a < alpha**2, c < C."""
    cdef floating d[ALPHA_MAX * ALPHA_MAX * LANES]
    cdef floating t[ALPHA_MAX * ALPHA_MAX * LANES]
    cdef Py_ssize_t alpha = g.alpha, C = g.C
    cdef Py_ssize_t ih0 = oh0 - g.pad_top, iw0 = ow0 - g.pad_left
    cdef Py_ssize_t row_step = g.sh * g.W * C, col_step = g.sw * C
    cdef bint interior = (vr == g.m and vc == g.m and ih0 >= 0 and iw0 >= 0
                          and ih0 + g.sh * (alpha - 1) < g.H and iw0 + g.sw * (alpha - 1) < g.W)
    cdef Py_ssize_t chunk, c0, cw, k, l, ih, iw, ss, ls
    cdef const floating* src
    cdef floating* at
    for chunk in range((C + LANES - 1) // LANES):
        c0 = chunk * LANES
        cw = min(LANES, C - c0)
        if interior:
            src = x + ((n * g.H + ih0) * g.W + iw0) * C + c0
            ss, ls = row_step, col_step
        else:
            # Gather the window into d[k][l][:cw]: x inside the input, pad outside it, 0 where no
            # written output reads.
            for k in range(alpha):
                ih = ih0 + g.sh * k
                for l in range(alpha):
                    iw = iw0 + g.sw * l
                    at = d + (k * alpha + l) * LANES
                    if k >= vr + 2 or l >= vc + 2:
                        _fill(at, cw, 0)
                    elif ih < 0 or ih >= g.H or iw < 0 or iw >= g.W:
                        _fill(at, cw, pad)
                    else:
                        _copy(at, x + ((n * g.H + ih) * g.W + iw) * C + c0, cw)
            src = d
            ss, ls = alpha * LANES, LANES
        # t[k'][l] = (B^T d)[k', l], then v[k' alpha + l'] = (t B)[k', l']
        for l in range(alpha):
            _input_1d(g.m, src + l * ls, ss, t + l * LANES, alpha * LANES, cw)
        for k in range(alpha):
            _input_1d(g.m, t + k * alpha * LANES, LANES, v + k * alpha * plane + c0, plane, cw)


cdef void _output_tile_nhwc(const floating* mm, Py_ssize_t plane, const floating* bias,
                            floating* y, const _Geometry* g, Py_ssize_t n,
                            Py_ssize_t oh0, Py_ssize_t vr, Py_ssize_t ow0, Py_ssize_t vc) noexcept nogil:
    """From the tile's products mm[a * plane + f], write its vr x vc outputs (plus bias) to y."""
    cdef floating t[ALPHA_MAX * ALPHA_MAX * LANES]
    cdef floating o[ALPHA_MAX * ALPHA_MAX * LANES]
    cdef Py_ssize_t alpha = g.alpha, m = g.m, F = g.F
    cdef Py_ssize_t chunk, f0, fw, i, j, b, f
    cdef floating* dst
    cdef const floating* src
    for chunk in range((F + LANES - 1) // LANES):
        f0 = chunk * LANES
        fw = min(LANES, F - f0)
        # t[i][b] = (A^T M)[i, b], then o[i][j] = (t A)[i, j]
        for b in range(alpha):
            _output_1d(m, mm + b * plane + f0, alpha * plane, t + b * LANES, alpha * LANES, fw)
        for i in range(m):
            _output_1d(m, t + i * alpha * LANES, LANES, o + i * m * LANES, LANES, fw)
        for i in range(vr):
            for j in range(vc):
                dst = y + ((n * g.OH + oh0 + g.sh * i) * g.OW + ow0 + g.sw * j) * F + f0
                src = o + (i * m + j) * LANES
                for f in range(fw):
                    dst[f] = src[f] + bias[f0 + f]


cdef void _block_nhwc(const floating* x, const floating* u, const floating* bias, floating* y,
                      const _Geometry* g, floating pad, Py_ssize_t first, Py_ssize_t count,
                      floating* v, floating* mm) noexcept nogil:
    """Tiles first .. first + count - 1: transform into v, multiply into mm, transform into y."""
    cdef Py_ssize_t alpha2 = g.alpha * g.alpha, C = g.C, F = g.F, T = g.block
    cdef Py_ssize_t b, n, oh0, vr, ow0, cols, a
    for b in range(count):
        n, oh0, vr, ow0, cols = _locate(g, first + b)
        _input_tile_nhwc(x, g, pad, n, oh0, vr, ow0, min(g.m, cols), v + b * C, T * C)
    for a in range(alpha2):
        gemm(False, False, <int>count, <int>F, <int>C, <floating>1, v + a * T * C, <int>C,
             u + a * C * F, <int>F, <floating>0, mm + a * T * F, <int>F)
    for b in range(count):
        n, oh0, vr, ow0, cols = _locate(g, first + b)
        _output_tile_nhwc(mm + b * F, T * F, bias, y, g, n, oh0, vr, ow0, min(g.m, cols))


def winograd_nhwc(const floating[:, :, :, ::1] x,   # IN  (N, H, W, C)
                  const floating[:, :, ::1] u,      # IN  (alpha**2, C, F) from transform_kernel
                  const floating[::1] bias,         # IN  (F,)
                  floating[:, :, :, ::1] y,         # OUT (N, OH, OW, F)
                  Py_ssize_t pad_top, Py_ssize_t pad_left,
                  Py_ssize_t dh, Py_ssize_t dw,
                  double pad_value, int tile, int num_threads):
    """y = the 3x3 stride-1 convolution of x (see the module docstring) by Winograd F(tile x tile,
    3x3), tile 2 or 4, with the kernel transformed by transform_kernel(kernel, u, False, tile)."""
    cdef Py_ssize_t alpha = tile + 2
    cdef _Geometry g = _geometry(x.shape[0], x.shape[1], x.shape[2], x.shape[3], y.shape[1], y.shape[2],
                                 y.shape[3], pad_top, pad_left, dh, dw, tile, 1)
    cdef Py_ssize_t total = g.N * g.tiles_h * g.tiles_w
    if total == 0:
        return None
    g.block = _block_tiles(alpha, g.C, g.F, total)
    cdef Py_ssize_t n_blocks = (total + g.block - 1) // g.block
    cdef Py_ssize_t v_size = alpha * alpha * g.block * g.C, per_thread = v_size + alpha * alpha * g.block * g.F
    cdef floating[:, ::1] work = np.empty((max(num_threads, 1), per_thread),
                                          dtype=np.float32 if floating is float else np.float64)
    cdef floating pad = <floating>pad_value
    cdef Py_ssize_t blk, first
    cdef floating* buf
    with nogil:
        for blk in prange(n_blocks, schedule="static", num_threads=num_threads):
            buf = &work[threadid(), 0]
            first = blk * g.block
            _block_nhwc(&x[0, 0, 0, 0], &u[0, 0, 0], &bias[0], &y[0, 0, 0, 0], &g, pad, first,
                        min(g.block, total - first), buf, buf + v_size)
    return None


# ---------------------------------------------------------------------------------------------
# NCHW: lanes are consecutive tiles of one tile row and sub-grid (a run).
# V is (alpha**2, C, block), M is (alpha**2, F, block).
# ---------------------------------------------------------------------------------------------

cdef void _input_run_nchw(const floating* x, const _Geometry* g, floating pad, Py_ssize_t n,
                          Py_ssize_t oh0, Py_ssize_t vr, Py_ssize_t ow0, Py_ssize_t cols_left,
                          Py_ssize_t nt, floating* v, Py_ssize_t plane) noexcept nogil:
    """Transform nt <= LANES consecutive tiles of one tile row and sub-grid, the first with outputs
    from (oh0, ow0), into v[a * plane + c * block + j]. cols_left: valid output columns of the
    sub-grid from ow0 on."""
    cdef floating d[ALPHA_MAX * ALPHA_MAX * LANES]
    cdef floating t[ALPHA_MAX * ALPHA_MAX * LANES]
    cdef Py_ssize_t alpha = g.alpha, m = g.m, T = g.block, H = g.H, W = g.W
    cdef Py_ssize_t ih0 = oh0 - g.pad_top, iw0 = ow0 - g.pad_left
    cdef Py_ssize_t tile_step = g.sw * m
    cdef bint inside_rows = vr == m and ih0 >= 0 and ih0 + g.sh * (alpha - 1) < H
    cdef bint inside_cols = (cols_left >= nt * m and iw0 >= 0
                             and iw0 + tile_step * (nt - 1) + g.sw * (alpha - 1) < W)
    cdef Py_ssize_t c, k, l, j, ih, iw, need, row
    cdef floating* at
    for c in range(g.C):
        for k in range(alpha):
            ih = ih0 + g.sh * k
            row = ((n * g.C + c) * H + ih) * W  # offset of input row ih (used only if 0 <= ih < H)
            for l in range(alpha):
                at = d + (k * alpha + l) * LANES
                if inside_rows and inside_cols:
                    for j in range(nt):
                        at[j] = x[row + iw0 + tile_step * j + g.sw * l]
                else:
                    for j in range(nt):
                        # written outputs of tile j read window columns l < need
                        need = min(m, cols_left - m * j) + 2
                        iw = iw0 + tile_step * j + g.sw * l
                        if k >= vr + 2 or l >= need:
                            at[j] = 0
                        elif ih < 0 or ih >= H or iw < 0 or iw >= W:
                            at[j] = pad
                        else:
                            at[j] = x[row + iw]
        for l in range(alpha):
            _input_1d(m, d + l * LANES, alpha * LANES, t + l * LANES, alpha * LANES, nt)
        for k in range(alpha):
            _input_1d(m, t + k * alpha * LANES, LANES, v + k * alpha * plane + c * T, plane, nt)


cdef void _output_run_nchw(const floating* mm, Py_ssize_t plane, const floating* bias, floating* y,
                           const _Geometry* g, Py_ssize_t n, Py_ssize_t oh0, Py_ssize_t vr,
                           Py_ssize_t ow0, Py_ssize_t cols_left, Py_ssize_t nt) noexcept nogil:
    """From the products mm[a * plane + f * block + j] of a run of nt tiles, write their outputs."""
    cdef floating t[ALPHA_MAX * ALPHA_MAX * LANES]
    cdef floating o[ALPHA_MAX * ALPHA_MAX * LANES]
    cdef Py_ssize_t alpha = g.alpha, m = g.m, T = g.block
    cdef Py_ssize_t f, i, jj, b, j, vc
    cdef floating* dst
    for f in range(g.F):
        for b in range(alpha):
            _output_1d(m, mm + b * plane + f * T, alpha * plane, t + b * LANES, alpha * LANES, nt)
        for i in range(m):
            _output_1d(m, t + i * alpha * LANES, LANES, o + i * m * LANES, LANES, nt)
        for i in range(vr):
            dst = y + ((n * g.F + f) * g.OH + oh0 + g.sh * i) * g.OW + ow0
            for j in range(nt):
                vc = min(m, cols_left - m * j)
                for jj in range(vc):
                    dst[g.sw * (m * j + jj)] = o[(i * m + jj) * LANES + j] + bias[f]


cdef void _block_nchw(const floating* x, const floating* u, const floating* bias, floating* y,
                      const _Geometry* g, floating pad, Py_ssize_t first, Py_ssize_t count,
                      floating* v, floating* mm) noexcept nogil:
    """Tiles first .. first + count - 1, in runs of up to LANES consecutive tiles of one tile row
    and column sub-grid: transform into v, multiply into mm, transform into y."""
    cdef Py_ssize_t alpha2 = g.alpha * g.alpha, C = g.C, F = g.F, T = g.block
    cdef Py_ssize_t b, n, oh0, vr, ow0, cols, nt, a
    b = 0
    while b < count:
        n, oh0, vr, ow0, cols = _locate(g, first + b)
        nt = min(LANES, (cols + g.m - 1) // g.m, count - b)
        _input_run_nchw(x, g, pad, n, oh0, vr, ow0, cols, nt, v + b, C * T)
        b += nt
    for a in range(alpha2):
        gemm(True, False, <int>F, <int>count, <int>C, <floating>1, u + a * C * F, <int>F,
             v + a * C * T, <int>T, <floating>0, mm + a * F * T, <int>T)
    b = 0
    while b < count:
        n, oh0, vr, ow0, cols = _locate(g, first + b)
        nt = min(LANES, (cols + g.m - 1) // g.m, count - b)
        _output_run_nchw(mm + b, F * T, bias, y, g, n, oh0, vr, ow0, cols, nt)
        b += nt


def winograd_nchw(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
                  const floating[:, :, ::1] u,      # IN  (alpha**2, C, F) from transform_kernel
                  const floating[::1] bias,         # IN  (F,)
                  floating[:, :, :, ::1] y,         # OUT (N, F, OH, OW)
                  Py_ssize_t pad_top, Py_ssize_t pad_left,
                  Py_ssize_t dh, Py_ssize_t dw,
                  double pad_value, int tile, int num_threads):
    """The NCHW twin of winograd_nhwc, kernel transformed by transform_kernel(kernel, u, True, tile)."""
    cdef Py_ssize_t alpha = tile + 2
    cdef _Geometry g = _geometry(x.shape[0], x.shape[2], x.shape[3], x.shape[1], y.shape[2], y.shape[3],
                                 y.shape[1], pad_top, pad_left, dh, dw, tile, 1)
    cdef Py_ssize_t total = g.N * g.tiles_h * g.tiles_w
    if total == 0:
        return None
    g.block = _block_tiles(alpha, g.C, g.F, total)
    cdef Py_ssize_t n_blocks = (total + g.block - 1) // g.block
    cdef Py_ssize_t v_size = alpha * alpha * g.block * g.C, per_thread = v_size + alpha * alpha * g.block * g.F
    cdef floating[:, ::1] work = np.empty((max(num_threads, 1), per_thread),
                                          dtype=np.float32 if floating is float else np.float64)
    cdef floating pad = <floating>pad_value
    cdef Py_ssize_t blk, first
    cdef floating* buf
    with nogil:
        for blk in prange(n_blocks, schedule="static", num_threads=num_threads):
            buf = &work[threadid(), 0]
            first = blk * g.block
            _block_nchw(&x[0, 0, 0, 0], &u[0, 0, 0], &bias[0], &y[0, 0, 0, 0], &g, pad, first,
                        min(g.block, total - first), buf, buf + v_size)
    return None


def transform_kernel(const floating[:, :, :, ::1] kernel,  # IN  (F, 3, 3, C), or (F, C, 3, 3) if nchw
                     floating[:, :, ::1] u,                 # OUT (alpha**2, C, F)
                     bint nchw, int tile):
    """u[a, c, f] = (G g G^T)[a] for g = the 3x3 kernel of filter f, channel c, computed in float64
    and rounded once to u's dtype."""
    cdef Py_ssize_t F = kernel.shape[0], C = kernel.shape[1] if nchw else kernel.shape[3]
    cdef Py_ssize_t alpha = tile + 2
    cdef double g[9]
    cdef double t[3 * ALPHA_MAX]
    cdef double r[ALPHA_MAX * ALPHA_MAX]
    cdef Py_ssize_t f, c, i, j, a
    with nogil:
        for f in range(F):
            for c in range(C):
                for i in range(3):
                    for j in range(3):
                        g[i * 3 + j] = kernel[f, c, i, j] if nchw else kernel[f, i, j, c]
                # t = G g (alpha x 3), then r = t G^T (alpha x alpha)
                for j in range(3):
                    _kernel_1d(tile, g + j, 3, t + j, 3)
                for i in range(alpha):
                    _kernel_1d(tile, t + i * 3, 1, r + i * alpha, 1)
                for a in range(alpha * alpha):
                    u[a, c, f] = <floating>r[a]
    return None
