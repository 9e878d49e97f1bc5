"""Compiled im2col and col2im in NHWC and NCHW: the patches of a batch as a matrix, and back.

What cyconv.im2col / cyconv.col2im return, and what the im2col-GEMM backward adds back into
grad_x. The kernels trust their caller (cyconv._validation checked shapes, dtypes, contiguity
and the geometry); the per-patch work is in cyconv/_patches.pxd, shared with cyconv._gemm.

Geometry arguments, shared by every kernel:
  out_h, out_w      output size (the caller computed it from all four paddings)
  kh, kw            kernel taps
  sh, sw            strides
  dh, dw            dilation as gaps between taps (document 001): tap i sits at i * (dh + 1)
  pad_top, pad_left padding before the first row / column (signed offsets)
  num_threads       OpenMP threads; the results do not depend on it

cols may have more columns (NHWC) / rows (NCHW) than the kh * kw * C taps: im2col leaves those
alone and col2im ignores them.
"""
from cython cimport floating
from cython.parallel cimport prange

from cyconv._patches cimport Geom, gather_row_nchw, gather_row_nhwc, patches_nhwc, taps_nchw


def im2col_nhwc(const floating[:, :, :, ::1] x,    # IN  (N, H, W, C)
                floating[:, ::1] cols,             # OUT (N * out_h * out_w, >= kh * kw * C)
                Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value, int num_threads):
    """Row (n, oh, ow) of cols holds the patch of output pixel (oh, ow) of image n, ordered
    (i, j, c). Parallel over (image, output row)."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t taps = kh * kw * C, ld = cols.shape[1], r
    cdef floating pad = <floating>pad_value
    if x.shape[0] == 0:
        return
    with nogil:
        for r in prange(x.shape[0] * out_h, schedule="static", num_threads=num_threads):
            patches_nhwc(&x[0, 0, 0, 0], H, W, C, 0, C, &g, r * out_w, (r + 1) * out_w, 0, taps,
                         &cols[r * out_w, 0], ld, pad)


def col2im_nhwc(const floating[:, ::1] cols,       # IN  (N * out_h * out_w, >= kh * kw * C)
                floating[:, :, :, ::1] x,          # OUT (N, H, W, C), summed into
                Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                Py_ssize_t pad_top, Py_ssize_t pad_left, int num_threads):
    """Adjoint of im2col_nhwc: every cols entry is added to the input position it was read from;
    entries read from the padding are dropped. Parallel over (image, input row): each input row
    gathers what reads it, so no two threads write one element and the order of the sums does
    not depend on the thread count."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t input_rows = x.shape[0] * H, ld = cols.shape[1], r
    if input_rows == 0 or cols.shape[0] == 0:
        return
    with nogil:
        for r in prange(input_rows, schedule="static", num_threads=num_threads):
            gather_row_nhwc(&cols[0, 0], ld, &x[0, 0, 0, 0], H, W, C, 0, C, &g, r // H, r % H)


def im2col_nchw(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W)
                floating[:, :, ::1] cols,          # OUT (N, >= C * kh * kw, out_h * out_w)
                Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value, int num_threads):
    """Row (c, i, j) of cols[n] holds tap (i, j) of channel c at every output pixel, ordered
    (oh, ow). Parallel over (image, row)."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t taps = C * kh * kw, pixels = out_h * out_w, nr
    cdef floating pad = <floating>pad_value
    if x.shape[0] == 0:
        return
    with nogil:
        for nr in prange(x.shape[0] * taps, schedule="static", num_threads=num_threads):
            taps_nchw(&x[nr // taps, 0, 0, 0], H, W, &g, nr % taps, 0, pixels, &cols[nr // taps, nr % taps, 0], pad)


def col2im_nchw(const floating[:, :, ::1] cols,    # IN  (N, >= C * kh * kw, out_h * out_w)
                floating[:, :, :, ::1] x,          # OUT (N, C, H, W), summed into
                Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                Py_ssize_t pad_top, Py_ssize_t pad_left, int num_threads):
    """Adjoint of im2col_nchw. Parallel over (image, channel, input row), each a gather: no races,
    and the order of the sums does not depend on the thread count."""
    cdef Geom g = Geom(out_h, out_w, kh, kw, sh, sw, dh, dw, pad_top, pad_left)
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t per_image = C * H, ld = out_h * out_w, r
    if x.shape[0] == 0:
        return
    with nogil:
        for r in prange(x.shape[0] * per_image, schedule="static", num_threads=num_threads):
            gather_row_nchw(&cols[r // per_image, 0, 0], ld, &x[r // per_image, 0, 0, 0], H, W, &g,
                            (r % per_image) // H, r % H)
