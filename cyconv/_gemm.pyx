"""The im2col-GEMM algorithm, fused per core: forward, kernel gradient and input gradient.

One OpenMP team does everything. Each thread takes a block of the patch matrix ("cols", see
cyconv/_patches.pxd for its layouts), writes it into its own cache-sized buffer and multiplies it
with a single-threaded BLAS product (cyconv/_blas.pxd) while it is still in cache; no Python runs
per block and no second thread pool competes with the team. The caller (cyconv._engine) holds
SciPy's BLAS to one thread around these calls, sizes the blocks and allocates every buffer.

Results do not depend on the thread count: every output element is computed by one product
whose shape depends only on the problem (kernel-gradient partial sums are fixed by the problem,
not by the threads, and added in a fixed order by the caller).

Shapes, with K = kh * kw * C taps per output pixel, P = out_h * out_w pixels per image:
  NHWC  x (N, H, W, C)   wm (F, K), columns (i, j, c)   y / grad_y (N * P, F)
  NCHW  x (N, C, H, W)   wm (F, K), columns (c, i, j)   y / grad_y (N, F, P)
The geometry arguments are those of cyconv._im2col (signed pads, dilation as gaps).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid

from cyconv._blas cimport gemm
from cyconv._patches cimport Geom, fill, gather_row_nchw, gather_row_nhwc, patches_nhwc, taps_nchw


cdef inline bint _is_pointwise(const Geom* g, Py_ssize_t H, Py_ssize_t W) noexcept nogil:
    """A 1x1 kernel at stride 1 without padding: the patch matrix is x itself."""
    return (g.kh == 1 and g.kw == 1 and g.sh == 1 and g.sw == 1 and g.pad_top == 0 and g.pad_left == 0
            and g.out_h == H and g.out_w == W)


cdef inline void _add_bias_rows(floating* y, Py_ssize_t rows, Py_ssize_t F, const floating* bias) noexcept nogil:
    """y[r, f] += bias[f] for r < rows (y row-major, F columns)."""
    cdef Py_ssize_t r, f
    for r in range(rows):
        for f in range(F):
            y[r * F + f] += bias[f]


def forward_nhwc(const floating[:, :, :, ::1] x,    # IN  (N, H, W, C)
                 const floating[:, ::1] wm,         # IN  (F, K)
                 const floating[::1] bias,          # IN  (F,), or (0,) for none
                 floating[:, ::1] y,                # OUT (N * P, F)
                 Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                 Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                 Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value,
                 Py_ssize_t block,                  # rows of cols per block
                 floating[:, ::1] work,             # OUT scratch (num_threads, >= block * K)
                 int num_threads):
    """y = cols @ wm.T + bias, block by block of output pixels."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t F = wm.shape[0], K = wm.shape[1], M = y.shape[0]
    cdef Py_ssize_t blocks = (M + block - 1) // block, b, m0, rows
    cdef bint pointwise = _is_pointwise(&g, H, W), has_bias = bias.shape[0] > 0
    cdef floating pad = <floating>pad_value
    cdef floating* buf
    cdef const floating* cols
    if M == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        buf = &work[threadid(), 0]
        for b in prange(blocks, schedule="dynamic"):
            m0 = b * block
            rows = min(block, M - m0)
            if pointwise:
                cols = &x[0, 0, 0, 0] + m0 * C
            else:
                patches_nhwc(&x[0, 0, 0, 0], H, W, C, &g, m0, m0 + rows, 0, K, buf, K, pad)
                cols = buf
            gemm(False, True, rows, F, K, 1, cols, K, &wm[0, 0], K, 0, &y[m0, 0], F)
            if has_bias:
                _add_bias_rows(&y[m0, 0], rows, F, &bias[0])


def forward_nchw(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W)
                 const floating[:, ::1] wm,         # IN  (F, K)
                 const floating[::1] bias,          # IN  (F,), or (0,) for none
                 floating[:, :, ::1] y,             # OUT (N, F, P)
                 Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                 Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                 Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value,
                 Py_ssize_t block,                  # output pixels of one image per block
                 floating[:, ::1] work,             # OUT scratch (num_threads, >= K * block)
                 int num_threads):
    """y[n] = wm @ cols[n] + bias, block by block of one image's output pixels."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t F = wm.shape[0], K = wm.shape[1], P = out_h * out_w
    cdef Py_ssize_t per_image = (P + block - 1) // block, b, n, p0, width, r, f, p
    cdef bint pointwise = _is_pointwise(&g, H, W), has_bias = bias.shape[0] > 0
    cdef floating pad = <floating>pad_value
    cdef floating* buf
    cdef floating* out
    cdef const floating* cols
    cdef Py_ssize_t ld
    if x.shape[0] == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        buf = &work[threadid(), 0]
        for b in prange(x.shape[0] * per_image, schedule="dynamic"):
            n = b // per_image
            p0 = (b % per_image) * block
            width = min(block, P - p0)
            if pointwise:
                cols, ld = &x[n, 0, 0, 0] + p0, P
            else:
                for r in range(K):
                    taps_nchw(&x[n, 0, 0, 0], H, W, &g, r, p0, p0 + width, buf + r * width, pad)
                cols, ld = buf, width
            out = &y[n, 0, p0]
            gemm(False, False, F, width, K, 1, &wm[0, 0], K, cols, ld, 0, out, P)
            if has_bias:
                for f in range(F):
                    for p in range(width):
                        out[f * P + p] += bias[f]


cdef inline (Py_ssize_t, Py_ssize_t) _share(Py_ssize_t total, Py_ssize_t parts, Py_ssize_t part) noexcept nogil:
    """[start, stop) of part `part` of [0, total) cut into `parts` near-equal contiguous parts."""
    return part * total // parts, (part + 1) * total // parts


def kernel_grad_nhwc(const floating[:, :, :, ::1] x,    # IN  (N, H, W, C)
                     const floating[:, ::1] grad_y,     # IN  (N * P, F)
                     floating[:, :, ::1] partials,      # OUT (groups, F, K): grad_kernel = sum over groups
                     double[:, ::1] bias_partials,      # OUT (groups, F), or (0, F) for none
                     Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                     Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value,
                     Py_ssize_t block,                  # rows of cols per block
                     Py_ssize_t column_parts,           # the K columns are cut into this many parts
                     floating[:, ::1] work,             # OUT scratch (num_threads, >= block * ceil(K / column_parts))
                     int num_threads):
    """grad_kernel = grad_y.T @ cols as partial sums: the blocks of rows are cut into `groups`
    contiguous groups and the columns into `column_parts`; each (group, part) is one unit of work
    that sums its blocks in order into partials[group][:, part]. With a bias, the units of part 0
    also sum grad_y's rows into bias_partials[group], in float64."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t groups = partials.shape[0], F = partials.shape[1], K = partials.shape[2]
    cdef Py_ssize_t M = grad_y.shape[0], blocks = (M + block - 1) // block
    cdef Py_ssize_t unit, group, part, k0, k1, b, b0, b1, m0, rows, r, f
    cdef bint pointwise = _is_pointwise(&g, H, W), has_bias = bias_partials.shape[0] > 0
    cdef floating pad = <floating>pad_value
    cdef floating* buf
    cdef const floating* cols
    cdef Py_ssize_t ld
    cdef floating beta
    with nogil, parallel(num_threads=num_threads):
        buf = &work[threadid(), 0]
        for unit in prange(groups * column_parts, schedule="dynamic"):
            group, part = unit // column_parts, unit % column_parts
            k0, k1 = _share(K, column_parts, part)
            b0, b1 = _share(blocks, groups, group)
            if b0 == b1:
                for f in range(F):
                    fill(&partials[group, f, k0], k1 - k0, 0)
            for b in range(b0, b1):
                m0 = b * block
                rows = min(block, M - m0)
                if pointwise:
                    cols, ld = &x[0, 0, 0, 0] + m0 * C + k0, C
                else:
                    patches_nhwc(&x[0, 0, 0, 0], H, W, C, &g, m0, m0 + rows, k0, k1, buf, k1 - k0, pad)
                    cols, ld = buf, k1 - k0
                beta = 0 if b == b0 else 1
                gemm(True, False, F, k1 - k0, rows, 1, &grad_y[m0, 0], F, cols, ld, beta, &partials[group, 0, k0], K)
                if has_bias and part == 0:
                    for r in range(m0, m0 + rows):
                        for f in range(F):
                            bias_partials[group, f] += grad_y[r, f]


def kernel_grad_nchw(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W)
                     const floating[:, :, ::1] grad_y,  # IN  (N, F, P)
                     floating[:, :, ::1] partials,      # OUT (groups, F, K): grad_kernel = sum over groups
                     double[:, ::1] bias_partials,      # OUT (groups, F), or (0, F) for none
                     Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                     Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value,
                     Py_ssize_t block,                  # output pixels of one image per block
                     Py_ssize_t column_parts,           # the K rows of cols are cut into this many parts
                     floating[:, ::1] work,             # OUT scratch (num_threads, >= ceil(K / column_parts) * block)
                     int num_threads):
    """As kernel_grad_nhwc: grad_kernel = sum over n of grad_y[n] @ cols[n].T, blocks being
    (image, run of `block` output pixels)."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t groups = partials.shape[0], F = partials.shape[1], K = partials.shape[2]
    cdef Py_ssize_t P = out_h * out_w, per_image = (P + block - 1) // block
    cdef Py_ssize_t blocks = x.shape[0] * per_image
    cdef Py_ssize_t unit, group, part, k0, k1, b, b0, b1, n, p0, width, r, f, p
    cdef bint pointwise = _is_pointwise(&g, H, W), has_bias = bias_partials.shape[0] > 0
    cdef floating pad = <floating>pad_value
    cdef floating* buf
    cdef const floating* cols
    cdef const floating* gy
    cdef Py_ssize_t ld
    cdef floating beta
    cdef double total
    with nogil, parallel(num_threads=num_threads):
        buf = &work[threadid(), 0]
        for unit in prange(groups * column_parts, schedule="dynamic"):
            group, part = unit // column_parts, unit % column_parts
            k0, k1 = _share(K, column_parts, part)
            b0, b1 = _share(blocks, groups, group)
            if b0 == b1:
                for f in range(F):
                    fill(&partials[group, f, k0], k1 - k0, 0)
            for b in range(b0, b1):
                n = b // per_image
                p0 = (b % per_image) * block
                width = min(block, P - p0)
                if pointwise:
                    cols, ld = &x[n, 0, 0, 0] + k0 * P + p0, P
                else:
                    for r in range(k0, k1):
                        taps_nchw(&x[n, 0, 0, 0], H, W, &g, r, p0, p0 + width, buf + (r - k0) * width, pad)
                    cols, ld = buf, width
                gy = &grad_y[n, 0, p0]
                beta = 0 if b == b0 else 1
                gemm(False, True, F, k1 - k0, width, 1, gy, P, cols, ld, beta, &partials[group, 0, k0], K)
                if has_bias and part == 0:
                    for f in range(F):
                        total = 0
                        for p in range(width):
                            total = total + gy[f * P + p]
                        bias_partials[group, f] += total


def input_grad_nhwc(const floating[:, ::1] grad_y,    # IN  (N * P, F)
                    const floating[:, ::1] wm,        # IN  (F, K)
                    floating[:, :, :, ::1] grad_x,    # OUT (N, H, W, C), zero on entry
                    Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                    Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                    Py_ssize_t pad_top, Py_ssize_t pad_left,
                    Py_ssize_t block,                 # rows of dcols per product
                    Py_ssize_t chunk,                 # images per round
                    floating[::1] dcols,              # OUT scratch (>= chunk * P * K)
                    int num_threads):
    """grad_x = col2im(grad_y @ wm), a round of `chunk` images at a time: the team first fills
    the round's dcols block by block, then each input row gathers what it receives from it."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t N = grad_x.shape[0], H = grad_x.shape[1], W = grad_x.shape[2], C = grad_x.shape[3]
    cdef Py_ssize_t F = wm.shape[0], K = wm.shape[1], P = out_h * out_w
    cdef Py_ssize_t rounds = (N + chunk - 1) // chunk, t, n0, images, rows_in_round, b, m0, rows, r
    if N == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        for t in range(rounds):
            n0 = t * chunk
            images = min(chunk, N - n0)
            rows_in_round = images * P
            for b in prange((rows_in_round + block - 1) // block, schedule="dynamic"):
                m0 = b * block
                rows = min(block, rows_in_round - m0)
                gemm(False, False, rows, K, F, 1, &grad_y[n0 * P + m0, 0], F, &wm[0, 0], K, 0, &dcols[m0 * K], K)
            for r in prange(images * H, schedule="dynamic"):
                gather_row_nhwc(&dcols[0], K, &grad_x[n0, 0, 0, 0], H, W, C, &g, r // H, r % H)


def input_grad_nchw(const floating[:, :, ::1] grad_y,  # IN  (N, F, P)
                    const floating[:, ::1] wm,         # IN  (F, K)
                    floating[:, :, :, ::1] grad_x,     # OUT (N, C, H, W), zero on entry
                    Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                    Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                    Py_ssize_t pad_top, Py_ssize_t pad_left,
                    Py_ssize_t block,                  # output pixels of one image per product
                    Py_ssize_t chunk,                  # images per round
                    floating[::1] dcols,               # OUT scratch (>= chunk * K * P)
                    int num_threads):
    """As input_grad_nhwc: dcols[n] = wm.T @ grad_y[n] (K, P), then col2im, by rounds of images."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t N = grad_x.shape[0], C = grad_x.shape[1], H = grad_x.shape[2], W = grad_x.shape[3]
    cdef Py_ssize_t F = wm.shape[0], K = wm.shape[1], P = out_h * out_w
    cdef Py_ssize_t per_image = (P + block - 1) // block
    cdef Py_ssize_t rounds = (N + chunk - 1) // chunk, t, n0, images, b, n, p0, width, r
    if N == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        for t in range(rounds):
            n0 = t * chunk
            images = min(chunk, N - n0)
            for b in prange(images * per_image, schedule="dynamic"):
                n = b // per_image
                p0 = (b % per_image) * block
                width = min(block, P - p0)
                gemm(True, False, K, width, F, 1, &wm[0, 0], K, &grad_y[n0 + n, 0, p0], P, 0,
                     &dcols[n * K * P + p0], P)
            for r in prange(images * C * H, schedule="dynamic"):
                n = r // (C * H)
                gather_row_nchw(&dcols[n * K * P], P, &grad_x[n0 + n, 0, 0, 0], H, W, &g, (r // H) % C, r % H)
