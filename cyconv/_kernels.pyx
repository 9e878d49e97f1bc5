"""Compiled data movement for cyconv: im2col and col2im in NHWC and NCHW.

These functions trust their caller (cyconv.functional): shapes, dtypes, contiguity and the
geometry are validated there, once, before any of this runs. Compiled without bounds checks
(unless built with CYCONV_CYTHON_DEBUG=1), so a wrong argument here is a memory error.

Geometry arguments, shared by every kernel:
  kh, kw            kernel height and width (taps)
  sh, sw            strides
  dh, dw            dilation as gaps between taps (document 001): tap i sits at i * (dh + 1)
  pad_top, pad_left padding before the first row / column; the padding after is implied by the
                    output size (out_h, out_w), which the caller computed from all four paddings
  num_threads       OpenMP threads; the results do not depend on it

cols may have more columns (NHWC) / rows (NCHW) than the kh * kw * C taps: im2col leaves those
alone and col2im ignores them (cyconv puts a column of ones there to fold the bias in).

Output pixel (oh, ow), tap (i, j) reads input row  ih = oh * sh - pad_top  + i * (dh + 1)
                                      and column  iw = ow * sw - pad_left + j * (dw + 1);
positions outside the input read pad_value (im2col) or are dropped (col2im).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy


cdef inline Py_ssize_t _first_valid(Py_ssize_t base, Py_ssize_t stride, Py_ssize_t out) noexcept nogil:
    """Smallest o in [0, out] with o * stride + base >= 0."""
    if base >= 0:
        return 0
    return min((-base + stride - 1) // stride, out)


cdef inline Py_ssize_t _end_valid(Py_ssize_t base, Py_ssize_t stride, Py_ssize_t size,
                                  Py_ssize_t out) noexcept nogil:
    """One past the largest o in [0, out) with o * stride + base < size (0 if there is none)."""
    if base >= size:
        return 0
    return min((size - 1 - base) // stride + 1, out)


cdef inline Py_ssize_t _output_row_reading(Py_ssize_t ih, Py_ssize_t i, Py_ssize_t out_h, Py_ssize_t sh,
                                           Py_ssize_t dh, Py_ssize_t pad_top) noexcept nogil:
    """The output row oh whose kernel row i reads input row ih, or -1 if there is none:
    oh * sh - pad_top + i * (dh + 1) == ih."""
    cdef Py_ssize_t t = ih + pad_top - i * (dh + 1)
    if t < 0 or t % sh != 0 or t // sh >= out_h:
        return -1
    return t // sh


cdef inline (Py_ssize_t, Py_ssize_t) _valid_taps(Py_ssize_t iw0, Py_ssize_t kw, Py_ssize_t dw,
                                                 Py_ssize_t W) noexcept nogil:
    """[j_lo, j_hi): the taps j whose column iw0 + j * (dw + 1) lies in [0, W); j_lo <= j_hi."""
    if iw0 >= 0 and iw0 + (kw - 1) * (dw + 1) < W:  # the common interior case, no division
        return 0, kw
    cdef Py_ssize_t j_lo = _first_valid(iw0, dw + 1, kw)
    return j_lo, max(_end_valid(iw0, dw + 1, W, kw), j_lo)


cdef inline void _copy(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] = src[:n]; short runs (a few channels) as a loop, long ones with memcpy."""
    cdef Py_ssize_t k
    if n >= 32:
        memcpy(dst, src, n * sizeof(floating))
    else:
        for k in range(n):
            dst[k] = src[k]


cdef inline void _fill(floating* dst, Py_ssize_t n, floating value) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        dst[k] = value


cdef inline void _add(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] += src[:n]"""
    cdef Py_ssize_t k
    for k in range(n):
        dst[k] += src[k]


cdef inline void _patch_row_nhwc(const floating[:, :, :, ::1] x, floating[:, ::1] cols,
                                 Py_ssize_t n, Py_ssize_t ih, Py_ssize_t iw0, Py_ssize_t r, Py_ssize_t off,
                                 Py_ssize_t kw, Py_ssize_t dw, floating pad) noexcept nogil:
    """One kernel row of one patch, for any column position: the kw taps of input row ih starting
    at column iw0 (taps outside the input read pad) into cols[r, off:off + kw * C]."""
    cdef Py_ssize_t W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t j, j_lo, j_hi
    j_lo, j_hi = _valid_taps(iw0, kw, dw, W)
    # Taps left of the input, inside it, right of it (each range may be empty, and an empty
    # range takes no address: it may lie one past the end).
    if j_lo > 0:
        _fill(&cols[r, off], j_lo * C, pad)
    if dw == 0 and j_hi > j_lo:
        _copy(&cols[r, off + j_lo * C], &x[n, ih, iw0 + j_lo, 0], (j_hi - j_lo) * C)
    elif dw > 0:
        for j in range(j_lo, j_hi):
            _copy(&cols[r, off + j * C], &x[n, ih, iw0 + j * (dw + 1), 0], C)
    if j_hi < kw:
        _fill(&cols[r, off + j_hi * C], (kw - j_hi) * C, pad)


cdef inline void _patch_row_add_nhwc(const floating[:, ::1] cols, floating[:, :, :, ::1] x,
                                     Py_ssize_t n, Py_ssize_t ih, Py_ssize_t iw0, Py_ssize_t r,
                                     Py_ssize_t off, Py_ssize_t kw, Py_ssize_t dw) noexcept nogil:
    """Adjoint of _patch_row_nhwc: cols[r, off:off + kw * C] added into the taps of input row ih
    starting at column iw0; taps outside the input are dropped."""
    cdef Py_ssize_t W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t j, j_lo, j_hi
    j_lo, j_hi = _valid_taps(iw0, kw, dw, W)
    if dw == 0 and j_hi > j_lo:
        _add(&x[n, ih, iw0 + j_lo, 0], &cols[r, off + j_lo * C], (j_hi - j_lo) * C)
    elif dw > 0:
        for j in range(j_lo, j_hi):
            _add(&x[n, ih, iw0 + j * (dw + 1), 0], &cols[r, off + j * C], C)


def im2col_nhwc(const floating[:, :, :, ::1] x,    # IN  (N, H, W, C)
                floating[:, ::1] cols,             # OUT (N * out_h * out_w, >= kh * kw * C)
                Py_ssize_t out_h, Py_ssize_t out_w,
                Py_ssize_t kh, Py_ssize_t kw,
                Py_ssize_t sh, Py_ssize_t sw,
                Py_ssize_t dh, Py_ssize_t dw,
                Py_ssize_t pad_top, Py_ssize_t pad_left,
                double pad_value, int num_threads):
    """Row (n, oh, ow) of cols holds the patch of output pixel (oh, ow) of image n, ordered
    (i, j, c). Each tap is a run of C contiguous values; with dw == 0 a kernel row inside the
    input is one run of kw * C values. Parallel over (image, output row)."""
    cdef Py_ssize_t H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t row_len = kw * C
    cdef Py_ssize_t n_rows = x.shape[0] * out_h
    # Output columns [ow_lo, ow_hi) are those whose whole kernel row lies inside the input.
    cdef Py_ssize_t ow_lo = _first_valid(-pad_left, sw, out_w)
    cdef Py_ssize_t ow_hi = max(_end_valid(-pad_left + (kw - 1) * (dw + 1), sw, W, out_w), ow_lo)
    cdef Py_ssize_t nr, n, oh, ow, i, ih, r, iw0, off
    cdef floating pad = <floating>pad_value
    with nogil:
        for nr in prange(n_rows, schedule="static", num_threads=num_threads):
            n = nr // out_h
            oh = nr % out_h
            if row_len < 32:
                # Short runs (few channels): sweep each kernel row across the output row, so the
                # interior columns are one tight loop (measured 1.7x faster for C = 1..3).
                for i in range(kh):
                    ih = oh * sh - pad_top + i * (dh + 1)
                    off = i * row_len
                    r = nr * out_w
                    if ih < 0 or ih >= H:
                        for ow in range(out_w):
                            _fill(&cols[r + ow, off], row_len, pad)
                    elif dw == 0:
                        for ow in range(ow_lo):
                            _patch_row_nhwc(x, cols, n, ih, ow * sw - pad_left, r + ow, off, kw, dw, pad)
                        for ow in range(ow_lo, ow_hi):
                            _copy(&cols[r + ow, off], &x[n, ih, ow * sw - pad_left, 0], row_len)
                        for ow in range(ow_hi, out_w):
                            _patch_row_nhwc(x, cols, n, ih, ow * sw - pad_left, r + ow, off, kw, dw, pad)
                    else:
                        for ow in range(out_w):
                            _patch_row_nhwc(x, cols, n, ih, ow * sw - pad_left, r + ow, off, kw, dw, pad)
            else:
                # Long runs: fill each patch in order, so cols is written sequentially.
                for ow in range(out_w):
                    r = nr * out_w + ow
                    iw0 = ow * sw - pad_left
                    for i in range(kh):
                        ih = oh * sh - pad_top + i * (dh + 1)
                        off = i * row_len
                        if ih < 0 or ih >= H:
                            _fill(&cols[r, off], row_len, pad)
                        elif dw == 0 and ow_lo <= ow < ow_hi:
                            _copy(&cols[r, off], &x[n, ih, iw0, 0], row_len)
                        else:
                            _patch_row_nhwc(x, cols, n, ih, iw0, r, off, kw, dw, pad)
    return None


def col2im_nhwc(const floating[:, ::1] cols,       # IN  (N * out_h * out_w, kh * kw * C)
                floating[:, :, :, ::1] x,          # OUT (N, H, W, C), zero on entry, summed into
                Py_ssize_t out_h, Py_ssize_t out_w,
                Py_ssize_t kh, Py_ssize_t kw,
                Py_ssize_t sh, Py_ssize_t sw,
                Py_ssize_t dh, Py_ssize_t dw,
                Py_ssize_t pad_top, Py_ssize_t pad_left,
                int num_threads):
    """Adjoint of im2col_nhwc: every cols entry is added to the input position it was read from;
    entries read from the padding are dropped. Parallel over (image, input row): each input row
    gathers from the output rows that read it, so no two threads write the same element and the
    summation order does not depend on the thread count."""
    cdef Py_ssize_t H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t n_rows = x.shape[0] * H, row_len = kw * C
    # Output columns [ow_lo, ow_hi) are those whose whole kernel row lies inside the input.
    cdef Py_ssize_t ow_lo = _first_valid(-pad_left, sw, out_w)
    cdef Py_ssize_t ow_hi = max(_end_valid(-pad_left + (kw - 1) * (dw + 1), sw, W, out_w), ow_lo)
    cdef Py_ssize_t nh, n, ih, oh, ow, i, r, off
    with nogil:
        for nh in prange(n_rows, schedule="static", num_threads=num_threads):
            n = nh // H
            ih = nh % H
            for i in range(kh):
                oh = _output_row_reading(ih, i, out_h, sh, dh, pad_top)
                if oh < 0:
                    continue
                off = i * row_len
                r = (n * out_h + oh) * out_w
                if dw == 0:
                    for ow in range(ow_lo):
                        _patch_row_add_nhwc(cols, x, n, ih, ow * sw - pad_left, r + ow, off, kw, dw)
                    for ow in range(ow_lo, ow_hi):
                        _add(&x[n, ih, ow * sw - pad_left, 0], &cols[r + ow, off], row_len)
                    for ow in range(ow_hi, out_w):
                        _patch_row_add_nhwc(cols, x, n, ih, ow * sw - pad_left, r + ow, off, kw, dw)
                else:
                    for ow in range(out_w):
                        _patch_row_add_nhwc(cols, x, n, ih, ow * sw - pad_left, r + ow, off, kw, dw)
    return None


def im2col_nchw(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W)
                floating[:, :, ::1] cols,          # OUT (N, >= C * kh * kw, out_h * out_w)
                Py_ssize_t out_h, Py_ssize_t out_w,
                Py_ssize_t kh, Py_ssize_t kw,
                Py_ssize_t sh, Py_ssize_t sw,
                Py_ssize_t dh, Py_ssize_t dw,
                Py_ssize_t pad_top, Py_ssize_t pad_left,
                double pad_value, int num_threads):
    """Row (c, i, j) of cols[n] holds tap (i, j) of channel c at every output pixel, ordered
    (oh, ow). Parallel over the rows of cols."""
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t taps = C * kh * kw
    cdef Py_ssize_t n_rows = x.shape[0] * taps
    cdef Py_ssize_t nrow, n, row, c, i, j, oh, ow, ih, base, lo, hi, col0
    cdef floating pad = <floating>pad_value
    with nogil:
        for nrow in prange(n_rows, schedule="static", num_threads=num_threads):
            n = nrow // taps
            row = nrow % taps
            c = row // (kh * kw)
            i = (row // kw) % kh
            j = row % kw
            base = j * (dw + 1) - pad_left
            lo = _first_valid(base, sw, out_w)
            hi = max(_end_valid(base, sw, W, out_w), lo)
            for oh in range(out_h):
                ih = oh * sh - pad_top + i * (dh + 1)
                col0 = oh * out_w
                if ih < 0 or ih >= H:
                    for ow in range(out_w):
                        cols[n, row, col0 + ow] = pad
                    continue
                for ow in range(lo):
                    cols[n, row, col0 + ow] = pad
                for ow in range(lo, hi):
                    cols[n, row, col0 + ow] = x[n, c, ih, ow * sw + base]
                for ow in range(hi, out_w):
                    cols[n, row, col0 + ow] = pad
    return None


def col2im_nchw(const floating[:, :, ::1] cols,    # IN  (N, C * kh * kw, out_h * out_w)
                floating[:, :, :, ::1] x,          # OUT (N, C, H, W), zero on entry, summed into
                Py_ssize_t out_h, Py_ssize_t out_w,
                Py_ssize_t kh, Py_ssize_t kw,
                Py_ssize_t sh, Py_ssize_t sw,
                Py_ssize_t dh, Py_ssize_t dw,
                Py_ssize_t pad_top, Py_ssize_t pad_left,
                int num_threads):
    """Adjoint of im2col_nchw. Parallel over (image, channel, input row): each input row gathers
    from the output rows that read it, so there are no races and the summation order does not
    depend on the thread count."""
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t n_rows = x.shape[0] * C * H
    cdef Py_ssize_t nch, nc, n, c, ih, i, j, row, oh, ow, base, lo, hi, col0
    with nogil:
        for nch in prange(n_rows, schedule="static", num_threads=num_threads):
            nc = nch // H
            ih = nch % H
            n = nc // C
            c = nc % C
            for i in range(kh):
                oh = _output_row_reading(ih, i, out_h, sh, dh, pad_top)
                if oh < 0:
                    continue
                col0 = oh * out_w
                for j in range(kw):
                    row = (c * kh + i) * kw + j
                    base = j * (dw + 1) - pad_left
                    lo = _first_valid(base, sw, out_w)
                    hi = _end_valid(base, sw, W, out_w)
                    for ow in range(lo, hi):
                        x[n, c, ih, ow * sw + base] += cols[n, row, col0 + ow]
    return None
