"""The im2col-GEMM algorithm, fused per core: forward, kernel gradient and input gradient.

One OpenMP team does everything. Each thread takes a block of the patch matrix ("cols", see
cyconv/_patches.pxd for its layouts), writes it into its own cache-sized buffer and multiplies it
with a single-threaded BLAS product (cyconv/_blas.pxd) while it is still in cache; no Python runs
per block and no second thread pool competes with the team. The caller (cyconv._engine) holds
SciPy's BLAS to one thread around these calls, sizes the blocks and allocates every buffer.

Results do not depend on the thread count: every output element is computed by one product
whose shape depends only on the problem (kernel-gradient partial sums are fixed by the problem,
not by the threads, and added in a fixed order by the caller).

Grouped convolution (`groups` = G): channels and filters split into G groups of Cg = C / G and
Fg = F / G; filter f reads only the channels of its group f // Fg. Shapes, with Kg = kh * kw * Cg
taps per output pixel and group, K = G * Kg, P = out_h * out_w pixels per image:
  NHWC  x (N, H, W, C)   wm (F, Kg), columns (i, j, c)   y / grad_y (N * P, F)
  NCHW  x (N, C, H, W)   wm (F, Kg), columns (c, i, j)   y / grad_y (N, F, P)
(wm is the kernel reshaped). A block's buffer holds the patches of all groups side by side,
group-major: columns [g * Kg, (g + 1) * Kg) are group g's. The geometry arguments are those of
cyconv._im2col (signed pads, dilation as gaps).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid

from cyconv._blas cimport gemm
from cyconv._patches cimport Geom, fill, gather_row_nchw, gather_row_nhwc, patches_nhwc, taps_nchw


cdef inline bint _is_pointwise(const Geom* g, Py_ssize_t H, Py_ssize_t W) noexcept nogil:
    """A 1x1 kernel at stride 1 without padding: the patch matrix is x itself."""
    return (g.kh == 1 and g.kw == 1 and g.sh == 1 and g.sw == 1 and g.pad_top == 0 and g.pad_left == 0
            and g.out_h == H and g.out_w == W)


cdef inline (Py_ssize_t, Py_ssize_t) _share(Py_ssize_t total, Py_ssize_t parts, Py_ssize_t part) noexcept nogil:
    """[start, stop) of part `part` of [0, total) cut into `parts` near-equal contiguous parts."""
    return part * total // parts, (part + 1) * total // parts


def forward_nhwc(const floating[:, :, :, ::1] x,    # IN  (N, H, W, C)
                 const floating[:, ::1] wm,         # IN  (F, Kg)
                 const floating[::1] bias,          # IN  (F,), or (0,) for none
                 floating[:, ::1] y,                # OUT (N * P, F)
                 Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                 Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                 Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value, Py_ssize_t groups,
                 Py_ssize_t block,                  # rows of cols per block
                 floating[:, ::1] work,             # OUT scratch (num_threads, >= block * K)
                 int num_threads):
    """y = cols @ wm.T + bias, group by group, block by block of output pixels."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t H = x.shape[1], W = x.shape[2], C = x.shape[3], M = y.shape[0]
    cdef Py_ssize_t F = wm.shape[0], Kg = wm.shape[1], K = groups * Kg
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups
    cdef Py_ssize_t blocks = (M + block - 1) // block, b, m0, rows, grp, r, f
    cdef bint pointwise = _is_pointwise(&g, H, W), has_bias = bias.shape[0] > 0
    cdef floating pad = <floating>pad_value
    cdef floating* buf
    cdef floating* out
    cdef const floating* cols
    cdef Py_ssize_t ld
    if M == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        buf = &work[threadid(), 0]
        for b in prange(blocks, schedule="dynamic"):
            m0 = b * block
            rows = min(block, M - m0)
            if pointwise:
                cols, ld = &x[0, 0, 0, 0] + m0 * C, C
            else:
                for grp in range(groups):
                    patches_nhwc(&x[0, 0, 0, 0], H, W, C, grp * Cg, Cg, &g, m0, m0 + rows, 0, Kg, buf + grp * Kg,
                                 K, pad)
                cols, ld = buf, K
            out = &y[m0, 0]
            for grp in range(groups):
                gemm(False, True, rows, Fg, Kg, 1, cols + grp * Kg, ld, &wm[grp * Fg, 0], Kg, 0, out + grp * Fg, F)
            if has_bias:
                for r in range(rows):
                    for f in range(F):
                        out[r * F + f] += bias[f]


def forward_nchw(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W)
                 const floating[:, ::1] wm,         # IN  (F, Kg)
                 const floating[::1] bias,          # IN  (F,), or (0,) for none
                 floating[:, :, ::1] y,             # OUT (N, F, P)
                 Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                 Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                 Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value, Py_ssize_t groups,
                 Py_ssize_t block,                  # output pixels of one image per block
                 floating[:, ::1] work,             # OUT scratch (num_threads, >= K * block)
                 int num_threads):
    """y[n] = wm @ cols[n] + bias, group by group, block by block of one image's output pixels."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3], P = out_h * out_w
    cdef Py_ssize_t F = wm.shape[0], Kg = wm.shape[1], K = groups * Kg
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups
    cdef Py_ssize_t per_image = (P + block - 1) // block, b, n, p0, width, r, f, p, grp
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
            for grp in range(groups):
                gemm(False, False, Fg, width, Kg, 1, &wm[grp * Fg, 0], Kg, cols + grp * Kg * ld, ld, 0,
                     out + grp * Fg * P, P)
            if has_bias:
                for f in range(F):
                    for p in range(width):
                        out[f * P + p] += bias[f]


def kernel_grad_nhwc(const floating[:, :, :, ::1] x,    # IN  (N, H, W, C)
                     const floating[:, ::1] grad_y,     # IN  (N * P, F)
                     floating[:, :, ::1] partials,      # OUT (parts_of_rows, F, Kg): grad_kernel = their sum
                     double[:, ::1] bias_partials,      # OUT (parts_of_rows, F), zero on entry
                     Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                     Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value, Py_ssize_t groups,
                     Py_ssize_t block,                  # rows of cols per block
                     Py_ssize_t column_parts,           # each group's Kg columns are cut into this many parts
                     floating[:, ::1] work,             # OUT scratch (num_threads, >= block * ceil(Kg / column_parts))
                     int num_threads):
    """grad_kernel = grad_y.T @ cols (group by group) as partial sums: the blocks of rows are cut
    into contiguous parts, each group's columns into `column_parts`; each (part of the rows,
    group, part of its columns) is one unit of work that sums its blocks in order into
    partials[part of the rows]. The units of a group's first column part also sum grad_y's rows
    into bias_partials, in float64."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t row_parts = partials.shape[0], F = partials.shape[1], Kg = partials.shape[2]
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups
    cdef Py_ssize_t M = grad_y.shape[0], blocks = (M + block - 1) // block
    cdef Py_ssize_t column_units = groups * column_parts
    cdef Py_ssize_t unit, row_part, grp, part, k0, k1, b, b0, b1, m0, rows, r, f
    cdef bint pointwise = _is_pointwise(&g, H, W)
    cdef floating pad = <floating>pad_value
    cdef floating* buf
    cdef floating* partial
    cdef const floating* cols
    cdef Py_ssize_t ld
    cdef floating beta
    with nogil, parallel(num_threads=num_threads):
        buf = &work[threadid(), 0]
        for unit in prange(row_parts * column_units, schedule="dynamic"):
            row_part = unit // column_units
            grp, part = (unit % column_units) // column_parts, unit % column_parts
            k0, k1 = _share(Kg, column_parts, part)
            b0, b1 = _share(blocks, row_parts, row_part)
            partial = &partials[row_part, grp * Fg, k0]
            if b0 == b1:
                for f in range(Fg):
                    fill(partial + f * Kg, k1 - k0, 0)
            for b in range(b0, b1):
                m0 = b * block
                rows = min(block, M - m0)
                if pointwise:
                    cols, ld = &x[0, 0, 0, 0] + m0 * C + grp * Cg + k0, C
                else:
                    patches_nhwc(&x[0, 0, 0, 0], H, W, C, grp * Cg, Cg, &g, m0, m0 + rows, k0, k1, buf, k1 - k0, pad)
                    cols, ld = buf, k1 - k0
                beta = 0 if b == b0 else 1
                gemm(True, False, Fg, k1 - k0, rows, 1, &grad_y[m0, grp * Fg], F, cols, ld, beta, partial, Kg)
                if part == 0:
                    for r in range(m0, m0 + rows):
                        for f in range(grp * Fg, grp * Fg + Fg):
                            bias_partials[row_part, f] += grad_y[r, f]


def kernel_grad_nchw(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W)
                     const floating[:, :, ::1] grad_y,  # IN  (N, F, P)
                     floating[:, :, ::1] partials,      # OUT (parts_of_rows, F, Kg): grad_kernel = their sum
                     double[:, ::1] bias_partials,      # OUT (parts_of_rows, F), zero on entry
                     Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                     Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value, Py_ssize_t groups,
                     Py_ssize_t block,                  # output pixels of one image per block
                     Py_ssize_t column_parts,           # each group's Kg rows of cols are cut into this many parts
                     floating[:, ::1] work,             # OUT scratch (num_threads, >= ceil(Kg / column_parts) * block)
                     int num_threads):
    """As kernel_grad_nhwc: grad_kernel = sum over n of grad_y[n] @ cols[n].T, group by group,
    blocks being (image, run of `block` output pixels)."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t row_parts = partials.shape[0], F = partials.shape[1], Kg = partials.shape[2]
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups
    cdef Py_ssize_t P = out_h * out_w, per_image = (P + block - 1) // block
    cdef Py_ssize_t blocks = x.shape[0] * per_image, column_units = groups * column_parts
    cdef Py_ssize_t unit, row_part, grp, part, k0, k1, b, b0, b1, n, p0, width, r, f, p
    cdef bint pointwise = _is_pointwise(&g, H, W)
    cdef floating pad = <floating>pad_value
    cdef floating* buf
    cdef floating* partial
    cdef const floating* cols
    cdef const floating* gy
    cdef Py_ssize_t ld
    cdef floating beta
    cdef double total
    with nogil, parallel(num_threads=num_threads):
        buf = &work[threadid(), 0]
        for unit in prange(row_parts * column_units, schedule="dynamic"):
            row_part = unit // column_units
            grp, part = (unit % column_units) // column_parts, unit % column_parts
            k0, k1 = _share(Kg, column_parts, part)
            b0, b1 = _share(blocks, row_parts, row_part)
            partial = &partials[row_part, grp * Fg, k0]
            if b0 == b1:
                for f in range(Fg):
                    fill(partial + f * Kg, k1 - k0, 0)
            for b in range(b0, b1):
                n = b // per_image
                p0 = (b % per_image) * block
                width = min(block, P - p0)
                if pointwise:
                    cols, ld = &x[n, grp * Cg + k0, 0, 0] + p0, P
                else:
                    for r in range(k0, k1):
                        taps_nchw(&x[n, 0, 0, 0], H, W, &g, grp * Kg + r, p0, p0 + width, buf + (r - k0) * width, pad)
                    cols, ld = buf, width
                gy = &grad_y[n, grp * Fg, p0]
                beta = 0 if b == b0 else 1
                gemm(False, True, Fg, k1 - k0, width, 1, gy, P, cols, ld, beta, partial, Kg)
                if part == 0:
                    for f in range(Fg):
                        total = 0
                        for p in range(width):
                            total = total + gy[f * P + p]
                        bias_partials[row_part, grp * Fg + f] += total


def input_grad_nhwc(const floating[:, ::1] grad_y,    # IN  (N * P, F)
                    const floating[:, ::1] wm,        # IN  (F, Kg)
                    floating[:, :, :, ::1] grad_x,    # OUT (N, H, W, C), zero on entry
                    Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                    Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                    Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t groups,
                    Py_ssize_t block,                 # rows of dcols per product
                    Py_ssize_t chunk,                 # images per round
                    floating[::1] dcols,              # OUT scratch (>= chunk * P * K)
                    int num_threads):
    """grad_x = col2im(grad_y @ wm) group by group, a round of `chunk` images at a time: the team
    first fills the round's dcols block by block, then each input row gathers what it receives."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t N = grad_x.shape[0], H = grad_x.shape[1], W = grad_x.shape[2], C = grad_x.shape[3]
    cdef Py_ssize_t F = wm.shape[0], Kg = wm.shape[1], K = groups * Kg, P = out_h * out_w
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups
    cdef Py_ssize_t rounds = (N + chunk - 1) // chunk, t, n0, images, rows_in_round, b, m0, rows, r, grp
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
                for grp in range(groups):
                    gemm(False, False, rows, Kg, Fg, 1, &grad_y[n0 * P + m0, grp * Fg], F, &wm[grp * Fg, 0], Kg, 0,
                         &dcols[m0 * K + grp * Kg], K)
            for r in prange(images * H, schedule="dynamic"):
                for grp in range(groups):
                    gather_row_nhwc(&dcols[grp * Kg], K, &grad_x[n0, 0, 0, 0], H, W, C, grp * Cg, Cg, &g, r // H,
                                    r % H)


def input_grad_nchw(const floating[:, :, ::1] grad_y,  # IN  (N, F, P)
                    const floating[:, ::1] wm,         # IN  (F, Kg)
                    floating[:, :, :, ::1] grad_x,     # OUT (N, C, H, W), zero on entry
                    Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                    Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                    Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t groups,
                    Py_ssize_t block,                  # output pixels of one image per product
                    Py_ssize_t chunk,                  # images per round
                    floating[::1] dcols,               # OUT scratch (>= chunk * K * P)
                    int num_threads):
    """As input_grad_nhwc: dcols[n] = wm.T @ grad_y[n] (K, P) group by group, then col2im, by
    rounds of images."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t N = grad_x.shape[0], C = grad_x.shape[1], H = grad_x.shape[2], W = grad_x.shape[3]
    cdef Py_ssize_t F = wm.shape[0], Kg = wm.shape[1], K = groups * Kg, P = out_h * out_w
    cdef Py_ssize_t Fg = F // groups, per_image = (P + block - 1) // block
    cdef Py_ssize_t rounds = (N + chunk - 1) // chunk, t, n0, images, b, n, p0, width, r, grp
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
                for grp in range(groups):
                    gemm(True, False, Kg, width, Fg, 1, &wm[grp * Fg, 0], Kg, &grad_y[n0 + n, grp * Fg, p0], P, 0,
                         &dcols[(n * K + grp * Kg) * P + p0], P)
            for r in prange(images * C * H, schedule="dynamic"):
                n = r // (C * H)
                gather_row_nchw(&dcols[n * K * P], P, &grad_x[n0 + n, 0, 0, 0], H, W, &g, (r // H) % C, r % H)
