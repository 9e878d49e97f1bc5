# Inline helpers shared by the compiled modules that move patches: where a kernel tap reads, and
# copying one patch (im2col) or adding one back (col2im), in NHWC and NCHW.
#
# Everything here trusts its caller: pointers, sizes and the geometry were validated in Python
# (cyconv._validation) before any compiled code runs.
#
# Geometry (a Geom): output pixel (oh, ow), kernel tap (i, j) reads input row
#     ih = oh * sh - pad_top + i * (dh + 1)   and column   iw = ow * sw - pad_left + j * (dw + 1)
# (dilation dh, dw counts the gaps between taps). pad_top / pad_left are signed offsets: a negative
# one crops. Positions outside the input read the padding value (im2col) or are dropped (col2im).
#
# Layouts of the patch matrix ("cols"), K = kh * kw * C taps per output pixel:
#   NHWC  one row per output pixel (n, oh, ow), columns ordered (i, j, c): a kernel row inside the
#         input is one run of kw * C contiguous values when dw == 0. A grouped convolution takes
#         the patches of one group's channels [c0, c0 + cg) at a time (x's pixels still C apart).
#   NCHW  per image, one row per tap (c, i, j), columns ordered (oh, ow): a group's rows are
#         already contiguous.
from cython cimport floating
from libc.string cimport memcpy


cdef struct Geom:
    Py_ssize_t out_h, out_w     # output size
    Py_ssize_t kh, kw           # kernel taps
    Py_ssize_t sh, sw           # strides
    Py_ssize_t dh, dw           # dilation: gaps between taps
    Py_ssize_t pad_top, pad_left


cdef inline Py_ssize_t first_valid(Py_ssize_t base, Py_ssize_t stride, Py_ssize_t out) noexcept nogil:
    """Smallest o in [0, out] with o * stride + base >= 0."""
    if base >= 0:
        return 0
    return min((-base + stride - 1) // stride, out)


cdef inline Py_ssize_t end_valid(Py_ssize_t base, Py_ssize_t stride, Py_ssize_t size,
                                 Py_ssize_t out) noexcept nogil:
    """One past the largest o in [0, out) with o * stride + base < size (0 if there is none)."""
    if base >= size:
        return 0
    return min((size - 1 - base) // stride + 1, out)


cdef inline (Py_ssize_t, Py_ssize_t) valid_range(Py_ssize_t base, Py_ssize_t stride, Py_ssize_t size,
                                                 Py_ssize_t out) noexcept nogil:
    """[lo, hi): the o in [0, out) with 0 <= o * stride + base < size (stride > 0); lo <= hi, so
    [0, lo), [lo, hi) and [hi, out) split [0, out) into before, inside and after the input."""
    cdef Py_ssize_t lo = first_valid(base, stride, out)
    return lo, max(end_valid(base, stride, size, out), lo)


cdef inline Py_ssize_t output_row_reading(Py_ssize_t ih, Py_ssize_t i, const Geom* g) noexcept nogil:
    """The output row oh whose kernel row i reads input row ih, or -1 if there is none."""
    cdef Py_ssize_t t = ih + g.pad_top - i * (g.dh + 1)
    if t < 0 or t % g.sh != 0 or t // g.sh >= g.out_h:
        return -1
    return t // g.sh


cdef inline void copy(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] = src[:n]; short runs (a few channels) as a loop, long ones with memcpy."""
    cdef Py_ssize_t k
    if n >= 32:
        memcpy(dst, src, n * sizeof(floating))
    else:
        for k in range(n):
            dst[k] = src[k]


cdef inline void fill(floating* dst, Py_ssize_t n, floating value) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        dst[k] = value


cdef inline void add(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] += src[:n]"""
    cdef Py_ssize_t k
    for k in range(n):
        dst[k] += src[k]


cdef inline void _kernel_row_nhwc(const floating* x_row, Py_ssize_t W, Py_ssize_t C, Py_ssize_t cg,
                                  Py_ssize_t iw0, Py_ssize_t kw, Py_ssize_t dw, Py_ssize_t lo, Py_ssize_t hi,
                                  floating* out, floating pad) noexcept nogil:
    """out[:hi - lo] = columns [lo, hi) of one kernel row of a patch: tap j reads input column
    iw0 + j * (dw + 1) of x_row (pixels C values apart), column j * cg + c its channel c < cg."""
    cdef Py_ssize_t j_lo, j_hi, a, b, j, c0, c1
    j_lo, j_hi = valid_range(iw0, dw + 1, W, kw)
    # Columns [a, b) of taps left of the input, inside it, right of it (each may be empty).
    a, b = lo, min(hi, j_lo * cg)
    if b > a:
        fill(out, b - a, pad)
    a, b = max(lo, j_lo * cg), min(hi, j_hi * cg)
    if b > a:
        if dw == 0 and cg == C:
            copy(out + (a - lo), x_row + iw0 * C + a, b - a)
        else:
            for j in range(a // cg, (b - 1) // cg + 1):
                c0, c1 = max(a, j * cg) - j * cg, min(b, j * cg + cg) - j * cg
                copy(out + (j * cg + c0 - lo), x_row + (iw0 + j * (dw + 1)) * C + c0, c1 - c0)
    a, b = max(lo, j_hi * cg), hi
    if b > a:
        fill(out + (a - lo), b - a, pad)


cdef inline void _kernel_row(const floating* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t cg,
                             const Geom* g, Py_ssize_t n, Py_ssize_t ih, Py_ssize_t ow, Py_ssize_t lo,
                             Py_ssize_t hi, bint inside, floating* out, floating pad) noexcept nogil:
    """Columns [lo, hi) of the kernel row reading input row ih for output column ow; `inside`:
    the whole kernel row lies inside the input's columns."""
    cdef Py_ssize_t iw0 = ow * g.sw - g.pad_left
    if ih < 0 or ih >= H:
        fill(out, hi - lo, pad)
    elif inside and g.dw == 0 and cg == C:
        copy(out, x + ((n * H + ih) * W + iw0) * C + lo, hi - lo)
    else:
        _kernel_row_nhwc(x + ((n * H + ih) * W) * C, W, C, cg, iw0, g.kw, g.dw, lo, hi, out, pad)


cdef inline void patches_nhwc(const floating* x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t c0,
                              Py_ssize_t cg, const Geom* g, Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t k0,
                              Py_ssize_t k1, floating* out, Py_ssize_t ld, floating pad) noexcept nogil:
    """out[m - m0, :k1 - k0] = columns [k0, k1) of rows m in [m0, m1) of the NHWC cols of channels
    [c0, c0 + cg) of x (N, H, W, C) (all channels: c0 = 0, cg = C); row m = (n, oh, ow) is output
    pixel (oh, ow) of image n; out has row stride ld.

    Works one output row (n, oh) at a time. Short kernel rows (kw * cg < 32 values: few channels)
    are swept across the output row, kernel row by kernel row, so the interior columns are one
    tight loop (1.7x faster for C = 1..3); long ones fill each patch in order."""
    cdef Py_ssize_t row_len = g.kw * cg, pixels = g.out_h * g.out_w
    # Output columns [ow_lo, ow_hi) read a whole kernel row inside the input: its first tap at
    # columns [0, W - (kw - 1) * (dw + 1)).
    cdef Py_ssize_t ow_lo, ow_hi
    ow_lo, ow_hi = valid_range(-g.pad_left, g.sw, W - (g.kw - 1) * (g.dw + 1), g.out_w)
    cdef Py_ssize_t i_first = k0 // row_len, i_last = (k1 - 1) // row_len
    cdef Py_ssize_t m = m0, n, oh, ow, ow0, ow1, i, ih, lo, hi
    cdef floating* row_out
    x = x + c0
    while m < m1:
        n, oh, ow0 = m // pixels, (m % pixels) // g.out_w, m % g.out_w
        ow1 = min(g.out_w, ow0 + m1 - m)
        row_out = out + (m - m0) * ld - ow0 * ld
        if row_len < 32:
            for i in range(i_first, i_last + 1):
                lo, hi = max(k0 - i * row_len, 0), min(k1 - i * row_len, row_len)
                ih = oh * g.sh - g.pad_top + i * (g.dh + 1)
                for ow in range(ow0, ow1):
                    _kernel_row(x, H, W, C, cg, g, n, ih, ow, lo, hi, ow_lo <= ow < ow_hi,
                                row_out + ow * ld + i * row_len + lo - k0, pad)
        else:
            for ow in range(ow0, ow1):
                for i in range(i_first, i_last + 1):
                    lo, hi = max(k0 - i * row_len, 0), min(k1 - i * row_len, row_len)
                    ih = oh * g.sh - g.pad_top + i * (g.dh + 1)
                    _kernel_row(x, H, W, C, cg, g, n, ih, ow, lo, hi, ow_lo <= ow < ow_hi,
                                row_out + ow * ld + i * row_len + lo - k0, pad)
        m += ow1 - ow0


cdef inline void taps_nchw(const floating* x_image, Py_ssize_t H, Py_ssize_t W, const Geom* g,
                           Py_ssize_t r, Py_ssize_t p0, Py_ssize_t p1, floating* out,
                           floating pad) noexcept nogil:
    """out[:p1 - p0] = columns [p0, p1) (output pixels oh * out_w + ow) of row r = (c, i, j) of one
    image's NCHW cols; x_image is that image, (C, H, W)."""
    cdef Py_ssize_t c = r // (g.kh * g.kw), i = (r // g.kw) % g.kh, j = r % g.kw
    cdef Py_ssize_t base = j * (g.dw + 1) - g.pad_left
    cdef Py_ssize_t p = p0, lo, hi, oh, ow, ow0, ow1, ih
    cdef const floating* x_row
    lo, hi = valid_range(base, g.sw, W, g.out_w)
    while p < p1:
        oh, ow0 = p // g.out_w, p % g.out_w
        ow1 = min(g.out_w, ow0 + p1 - p)
        ih = oh * g.sh - g.pad_top + i * (g.dh + 1)
        if ih < 0 or ih >= H:
            fill(out + (p - p0), ow1 - ow0, pad)
        else:
            x_row = x_image + (c * H + ih) * W + base
            for ow in range(ow0, min(lo, ow1)):
                out[p - p0 + ow - ow0] = pad
            for ow in range(max(lo, ow0), min(hi, ow1)):
                out[p - p0 + ow - ow0] = x_row[ow * g.sw]
            for ow in range(max(hi, ow0), ow1):
                out[p - p0 + ow - ow0] = pad
        p += ow1 - ow0


cdef inline void gather_row_nhwc(const floating* cols, Py_ssize_t ld, floating* x, Py_ssize_t H,
                                 Py_ssize_t W, Py_ssize_t C, Py_ssize_t c0, Py_ssize_t cg, const Geom* g,
                                 Py_ssize_t n, Py_ssize_t ih) noexcept nogil:
    """col2im for one input row: x[n, ih, :, c0:c0 + cg] += every entry of the NHWC cols of those
    channels (rows (n, oh, ow) of ld values, columns (i, j, c < cg)) that im2col read from it.
    Only that part of x is written."""
    cdef Py_ssize_t row_len = g.kw * cg
    cdef Py_ssize_t i, oh, ow, j, iw, iw0, r
    cdef floating* x_row = x + ((n * H + ih) * W) * C + c0
    cdef const floating* src
    # Output columns [ow_lo, ow_hi) read a whole kernel row inside the input: its first tap at
    # columns [0, W - (kw - 1) * (dw + 1)).
    cdef Py_ssize_t ow_lo, ow_hi
    ow_lo, ow_hi = valid_range(-g.pad_left, g.sw, W - (g.kw - 1) * (g.dw + 1), g.out_w)
    for i in range(g.kh):
        oh = output_row_reading(ih, i, g)
        if oh < 0:
            continue
        r = (n * g.out_h + oh) * g.out_w
        for ow in range(g.out_w):
            src = cols + (r + ow) * ld + i * row_len
            iw0 = ow * g.sw - g.pad_left
            if g.dw == 0 and cg == C and ow_lo <= ow < ow_hi:
                add(x_row + iw0 * C, src, row_len)
            else:
                for j in range(g.kw):
                    iw = iw0 + j * (g.dw + 1)
                    if 0 <= iw < W:
                        add(x_row + iw * C, src + j * cg, cg)


cdef inline void gather_row_nchw(const floating* cols_image, Py_ssize_t ld, floating* x_image,
                                 Py_ssize_t H, Py_ssize_t W, const Geom* g, Py_ssize_t c,
                                 Py_ssize_t ih) noexcept nogil:
    """col2im for one input row of one image: x_image[c, ih] += every entry of the image's NCHW
    cols (rows (c, i, j) of ld values) that im2col read from it. Only this row is written."""
    cdef Py_ssize_t i, j, oh, ow, base, lo, hi
    cdef floating* x_row = x_image + (c * H + ih) * W
    cdef const floating* src
    for i in range(g.kh):
        oh = output_row_reading(ih, i, g)
        if oh < 0:
            continue
        for j in range(g.kw):
            src = cols_image + ((c * g.kh + i) * g.kw + j) * ld + oh * g.out_w
            base = j * (g.dw + 1) - g.pad_left
            lo, hi = valid_range(base, g.sw, W, g.out_w)
            for ow in range(lo, hi):
                x_row[ow * g.sw + base] += src[ow]
