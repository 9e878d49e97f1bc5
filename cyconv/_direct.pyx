"""Direct convolution for inputs with few channels: no im2col matrix, no BLAS.

With few input channels the inner dimension of im2col + GEMM, K = kh * kw * C, is small (9 to 147)
and BLAS spends its time packing and on edges. Here each thread computes register tiles of the
output straight from a padded copy of the input: a micro-kernel keeps a rows x cols block of
accumulators in vector registers, and each of the K terms adds one broadcast value per row times one
vector of cols values (typed loops of fixed length, which gcc -O3 vectorises and keeps in registers).

  NHWC: rows are output pixels (consecutive in (n, oh, ow), across output rows), columns are filters,
        so a tile row is a contiguous run of the NHWC output. The vector operand is a packed panel
        of the kernel, (K, cols) per block of filters; the broadcast values are read from the padded
        copy at each pixel's patch.
  NCHW: rows are filters, columns are consecutive output pixels of one output row, so a tile row is
        a contiguous run of the NCHW output (vectorising over filters would need a transpose of
        every tile on the way out). The vector operand is a run of input pixels: the padded copy
        stores each row split by column phase (column ow * sw + u lands in phase u % sw), so the
        pixels one tap reads are contiguous for any stride.

Every function trusts its caller (shapes, dtypes, contiguity, geometry: validated in Python before);
compiled without bounds checks unless built with CYCONV_CYTHON_DEBUG=1.

Geometry arguments (as in cyconv._im2col):
  sh, sw            strides
  dh, dw            dilation as gaps between taps: tap i sits at i * (dh + 1)
  pad_top, pad_left padding before the first row / column, any sign (negative crops); the padding
                    after is implied by y's shape, which the caller computed
  pad_value         the value read outside the input
  num_threads       OpenMP threads, >= 1 (cyconv._config guarantees it); each output element is
                    computed by one thread in a fixed order, so the results do not depend on it

Output pixel (oh, ow), tap (i, j) reads input row  ih = oh * sh - pad_top  + i * (dh + 1)
                                      and column  iw = ow * sw - pad_left + j * (dw + 1).

Work: parallel over bands of whole output rows of one image (about BAND_PIXELS pixels each); a band
copies the input rows it reads, padded, into its thread's buffer, then computes its tiles. Memory:
besides y, that buffer per thread (the band's input rows) and the packed kernel.

This file is compiled once per CPU variant (cyconv._direct, cyconv._direct_avx2, ...; see setup.py
and cyconv._cpu); the tile size follows the vector registers of the variant.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdlib cimport free, malloc

from cyconv._patches cimport copy, fill, valid_range

cdef extern from *:
    """
    /* Register tiles (rows x columns of accumulators) for the instruction set of this build: columns
       are filters (NHWC) or output pixels (NCHW), rows are output pixels (NHWC) or filters (NCHW).
       The fastest measured (AMD Zen 4, 3x3 and 7x7 kernels, 3 channels, 32 and 64 filters) among
       those where:
       - The accumulators, the column operands (kept in registers when rows > 1) and the broadcast
         value should fit the vector registers (32 with AVX-512, 16 otherwise): one spilled
         accumulator makes the loop 2x slower.
       - More than 16 columns, so gcc vectorises the column loop instead of first unrolling it
         completely (its complete-peeling limit is 16 iterations) and leaving scalar code.
       - At least 2 rows: with one, gcc's unroll-and-jam of the term loop leaves scalar code (8x
         slower).
       The SSE2 / NEON baseline cannot meet all three; these were the fastest there. */
    #if defined(__AVX512F__)
      #define CYCONV_COLS_F32 32     /* 2 zmm */
      #define CYCONV_PIXELS_F32 12   /* NHWC: 24 zmm accumulators + 2 + 1 */
      #define CYCONV_FILTERS_F32 8   /* NCHW: 16 + 2 + 1; divides the usual filter counts */
      #define CYCONV_COLS_F64 32     /* 4 zmm */
      #define CYCONV_PIXELS_F64 6    /* 24 + 4 + 1 */
      #define CYCONV_FILTERS_F64 6
    #elif defined(__AVX2__)
      #define CYCONV_COLS_F32 32     /* 4 ymm */
      #define CYCONV_PIXELS_F32 2    /* 8 ymm + 4 + 1 */
      #define CYCONV_FILTERS_F32 2
      #define CYCONV_COLS_F64 20     /* 5 ymm */
      #define CYCONV_PIXELS_F64 2    /* 10 ymm + 5 + 1 */
      #define CYCONV_FILTERS_F64 2
    #else
      #define CYCONV_COLS_F32 20     /* 5 xmm */
      #define CYCONV_PIXELS_F32 2    /* 10 xmm + 5 + 2 */
      #define CYCONV_FILTERS_F32 2
      #define CYCONV_COLS_F64 18     /* 9 xmm */
      #define CYCONV_PIXELS_F64 2    /* 18 xmm: spills, still the fastest measured */
      #define CYCONV_FILTERS_F64 2
    #endif
    #define CYCONV_MAX_ROWS 12
    #define CYCONV_MAX_TILE (12 * 32)
    /* Every tile fits the arrays the micro-kernel and the band loops size with these. */
    #define CYCONV_TILE_FITS(rows, cols) ((rows) <= CYCONV_MAX_ROWS && (rows) * (cols) <= CYCONV_MAX_TILE)
    _Static_assert(CYCONV_TILE_FITS(CYCONV_PIXELS_F32, CYCONV_COLS_F32), "NHWC float32 tile too large");
    _Static_assert(CYCONV_TILE_FITS(CYCONV_FILTERS_F32, CYCONV_COLS_F32), "NCHW float32 tile too large");
    _Static_assert(CYCONV_TILE_FITS(CYCONV_PIXELS_F64, CYCONV_COLS_F64), "NHWC float64 tile too large");
    _Static_assert(CYCONV_TILE_FITS(CYCONV_FILTERS_F64, CYCONV_COLS_F64), "NCHW float64 tile too large");
    """
    enum: CYCONV_COLS_F32
    enum: CYCONV_PIXELS_F32
    enum: CYCONV_FILTERS_F32
    enum: CYCONV_COLS_F64
    enum: CYCONV_PIXELS_F64
    enum: CYCONV_FILTERS_F64
    enum: CYCONV_MAX_ROWS
    enum: CYCONV_MAX_TILE

# A thread's unit of work is a band of whole output rows of one image, of about this many pixels:
# it copies the input rows the band reads, padded, into its own buffer, then computes the band.
cdef Py_ssize_t BAND_PIXELS = 384


cdef inline object _span(object n, object s, object k, object d):
    """The input positions n outputs at stride s read with k taps d gaps apart: the first output's
    first tap to the last output's last tap. Python ints, so it never overflows."""
    return (n - 1) * s + (k - 1) * (d + 1) + 1


cdef object _work_sizes(bint nchw, object C, object F, object OH, object OW, object kh, object kw, object sh,
                        object sw, object dh, object dw, object itemsize):
    """The work buffers of direct_nhwc (nchw false) or direct_nchw, in Python ints (a geometry whose
    buffers could not exist gives huge numbers, never an overflow):
        (band   output rows per unit of work,
         Hb     input rows a band reads,
         row    NHWC: Wr, the pixels of a padded input row; NCHW: L, the values of one of the sw
                column phases a padded input row is split into,
         buffer elements of one thread's buffer: Hb * Wr * C (NHWC) or C * Hb * sw * L (NCHW),
         panels elements of the packed kernel: one (K, width) panel per block of width filters)
    The one place these sizes are computed: the kernels allocate them, work_bytes counts them."""
    cols = CYCONV_COLS_F32 if itemsize == 4 else CYCONV_COLS_F64
    band = min(max(BAND_PIXELS // OW, 1), OH)
    Hb = _span(band, sh, kh, dh)
    K = C * kh * kw
    if nchw:
        # Phase row length: tiles read pixels up to max(OW, cols) - 1, plus the largest tap shift.
        row = max(OW, cols) + (kw - 1) * (dw + 1) // sw
        buffer = C * Hb * sw * row
        width = CYCONV_FILTERS_F32 if itemsize == 4 else CYCONV_FILTERS_F64
    else:
        row = _span(OW, sw, kw, dw)
        buffer = Hb * row * C
        width = cols
    return band, Hb, row, buffer, (F + width - 1) // width * K * width


def work_bytes(bint nchw, object channels, object filters, object out_h, object out_w, object kh, object kw,
               object sh, object sw, object dh, object dw, object itemsize, object num_threads):
    """The bytes the work buffers of one direct_nhwc (nchw false) or direct_nchw call allocate with
    num_threads >= 1 threads, computed with Python ints: a geometry whose buffers could not exist
    (huge strides or dilations) gives a huge number, never an overflow. The caller refuses those
    before calling."""
    _, _, _, buffer, panels = _work_sizes(nchw, channels, filters, out_h, out_w, kh, kw, sh, sw, dh, dw, itemsize)
    taps = channels * kh * kw
    return itemsize * (num_threads * buffer + panels) + 2 * taps * sizeof(Py_ssize_t)


cdef inline void _micro_kernel(Py_ssize_t rows, const floating** a, const Py_ssize_t* a_off,
                               const floating* b, const Py_ssize_t* b_off, Py_ssize_t K,
                               const floating* bias, bint bias_per_row,
                               floating** dst, Py_ssize_t nrows, Py_ssize_t ncols) noexcept nogil:
    """One register tile of a K-term product (K >= 1), rows x cols (rows is a constant at each call
    site, cols the dtype's; after inlining every loop but the one over k has a fixed length):
        tile[r, c] = sum_k a[r][a_off[k]] * b[b_off[k] + c]   (terms added in the order k = 0, 1, ...)
    stored as dst[r][c] = tile[r, c] + (bias[r] if bias_per_row else bias[c]) for r < nrows <= rows,
    c < ncols <= cols."""
    cdef Py_ssize_t cols = CYCONV_COLS_F32 if floating is float else CYCONV_COLS_F64
    cdef floating acc[CYCONV_MAX_TILE]
    cdef Py_ssize_t k, r, c, ao
    cdef const floating* bk
    cdef floating v
    # The first term sets the accumulators: no zeroing pass (gcc would make it a memset of the
    # tile in memory instead of clearing registers).
    for r in range(rows):
        v = a[r][a_off[0]]
        for c in range(cols):
            acc[r * cols + c] = v * b[b_off[0] + c]
    for k in range(1, K):
        ao = a_off[k]
        bk = b + b_off[k]
        for r in range(rows):
            v = a[r][ao]
            for c in range(cols):
                acc[r * cols + c] += v * bk[c]
    if nrows == rows and ncols == cols:  # the common full tile, with loops of fixed length
        for r in range(rows):
            for c in range(cols):
                dst[r][c] = acc[r * cols + c] + (bias[r] if bias_per_row else bias[c])
    else:
        for r in range(nrows):
            for c in range(ncols):
                dst[r][c] = acc[r * cols + c] + (bias[r] if bias_per_row else bias[c])


cdef inline void _copy_padded(floating* dst, const floating* src, Py_ssize_t count, Py_ssize_t step,
                              Py_ssize_t base, Py_ssize_t size, floating pad) noexcept nogil:
    """dst[m] = src[base + m * step] where 0 <= base + m * step < size, else pad, for m < count."""
    cdef Py_ssize_t lo, hi, m
    lo, hi = valid_range(base, step, size, count)
    fill(dst, lo, pad)
    if step == 1:
        copy(dst + lo, src + base + lo, hi - lo)
    else:
        for m in range(lo, hi):
            dst[m] = src[base + m * step]
    fill(dst + hi, count - hi, pad)


cdef inline void _pack_panels(const floating* kf, Py_ssize_t F, Py_ssize_t K, floating* wp,
                              Py_ssize_t width) noexcept nogil:
    """wp[b, k, c] = kf[(b * width + c) * K + k], zero for filters past F: the kernel kf, F filters of
    K values each, as one (K, width) panel per block of width filters."""
    cdef Py_ssize_t last = F % width, tail = F - last
    cdef Py_ssize_t f, k
    for f in range(F):
        for k in range(K):
            wp[((f // width) * K + k) * width + f % width] = kf[f * K + k]
    if last:  # the last panel's columns past F
        for k in range(K):
            fill(wp + (tail * K + k * width) + last, width - last, 0)


# ---------------------------------------------------------------------------------------------- NHWC

cdef inline void _pad_rows_nhwc(const floating[:, :, :, ::1] x, Py_ssize_t n, Py_ssize_t ih0, Py_ssize_t rows,
                                floating* buf, Py_ssize_t Wr, Py_ssize_t pad_left, floating pad) noexcept nogil:
    """buf (rows, Wr, C) = input rows ih0 .. ih0 + rows - 1 of image n, columns -pad_left onwards,
    pad_value outside the input."""
    cdef Py_ssize_t H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t r
    for r in range(rows):
        if 0 <= ih0 + r < H:
            _copy_padded(buf + r * Wr * C, &x[n, ih0 + r, 0, 0], Wr * C, 1, -pad_left * C, W * C, pad)
        else:
            fill(buf + r * Wr * C, Wr * C, pad)


cdef inline void _band_nhwc(const floating* buf, Py_ssize_t npix, Py_ssize_t OW, Py_ssize_t Wr, Py_ssize_t C,
                            Py_ssize_t sh, Py_ssize_t sw, const Py_ssize_t* a_off, const Py_ssize_t* b_off,
                            Py_ssize_t K, const floating* wp, const floating* bias, Py_ssize_t F,
                            floating* y) noexcept nogil:
    """The first npix output pixels of a band of output rows (pixel q in its row q // OW, column
    q % OW), every filter: y[q * F + f]. buf holds the band's padded input rows (.., Wr, C). Tiles of
    rows consecutive pixels, which may span two output rows."""
    cdef Py_ssize_t rows = CYCONV_PIXELS_F32 if floating is float else CYCONV_PIXELS_F64
    cdef Py_ssize_t cols = CYCONV_COLS_F32 if floating is float else CYCONV_COLS_F64
    cdef const floating* pixel[CYCONV_MAX_ROWS]
    cdef floating* dst[CYCONV_MAX_ROWS]
    cdef Py_ssize_t q = 0, oh = 0, ow = 0, r, blk, f0, nrows
    while q < npix:
        nrows = min(rows, npix - q)
        # Where each pixel's patch starts, walking (oh, ow); rows past npix repeat the last pixel
        # (computed, never stored).
        for r in range(rows):
            if r >= nrows:
                pixel[r] = pixel[nrows - 1]
                continue
            pixel[r] = buf + (oh * sh * Wr + ow * sw) * C
            dst[r] = y + (q + r) * F
            ow += 1
            if ow == OW:
                ow = 0
                oh += 1
        for blk in range((F + cols - 1) // cols):
            f0 = blk * cols
            _micro_kernel(rows, pixel, a_off, wp + f0 * K, b_off, K, bias + f0, False, dst, nrows, min(cols, F - f0))
            for r in range(nrows):
                dst[r] += cols
        q += rows


def direct_nhwc(const floating[:, :, :, ::1] x,        # IN  (N, H, W, C)
                const floating[:, :, :, ::1] kernel,   # IN  (F, kh, kw, C)
                const floating[::1] bias,              # IN  (F,)
                floating[:, :, :, ::1] y,              # OUT (N, OH, OW, F)
                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value, int num_threads):
    """y[n, oh, ow, f] = bias[f] + sum_{i, j, c} xpad[n, ih, iw, c] * kernel[f, i, j, c] (NHWC), with
    num_threads >= 1 threads.

    Parallel over bands of output rows; a band's input rows, (Hb, Wr) pixels, are copied with their
    padding, then its tiles of consecutive output pixels computed. Raises MemoryError if the work
    buffers cannot be allocated."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[3]
    cdef Py_ssize_t F = kernel.shape[0], kh = kernel.shape[1], kw = kernel.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2]
    cdef Py_ssize_t cols = CYCONV_COLS_F32 if floating is float else CYCONV_COLS_F64
    cdef Py_ssize_t K = kh * kw * C, band, Hb, Wr, buffer, panels
    band, Hb, Wr, buffer, panels = _work_sizes(False, C, F, OH, OW, kh, kw, sh, sw, dh, dw, sizeof(floating))
    cdef Py_ssize_t bands = (OH + band - 1) // band
    cdef floating pad = <floating>pad_value
    cdef Py_ssize_t t, n, oh0, nb, i, j, c
    cdef floating* buf
    cdef floating* bufs = <floating*>malloc(num_threads * buffer * sizeof(floating))
    cdef floating* wp = <floating*>malloc(panels * sizeof(floating))
    cdef Py_ssize_t* a_off = <Py_ssize_t*>malloc(K * sizeof(Py_ssize_t))
    cdef Py_ssize_t* b_off = <Py_ssize_t*>malloc(K * sizeof(Py_ssize_t))
    try:
        if not (bufs and wp and a_off and b_off):
            raise MemoryError("cyconv direct_nhwc: cannot allocate the work buffers")
        with nogil:
            _pack_panels(&kernel[0, 0, 0, 0], F, K, wp, cols)
            # Term k = (i, j, c): its input value sits a_off[k] after the pixel's patch start in the
            # band's buffer, its row of the kernel panel b_off[k] after the panel start.
            for i in range(kh):
                for j in range(kw):
                    for c in range(C):
                        a_off[(i * kw + j) * C + c] = (i * (dh + 1) * Wr + j * (dw + 1)) * C + c
                        b_off[(i * kw + j) * C + c] = ((i * kw + j) * C + c) * cols
            for t in prange(N * bands, schedule="static", num_threads=num_threads):
                n = t // bands
                oh0 = t % bands * band
                nb = min(band, OH - oh0)
                buf = bufs + threadid() * buffer
                # The nb output rows read Hb - (band - nb) * sh input rows (Hb for a whole band).
                _pad_rows_nhwc(x, n, oh0 * sh - pad_top, Hb - (band - nb) * sh, buf, Wr, pad_left, pad)
                _band_nhwc(buf, nb * OW, OW, Wr, C, sh, sw, a_off, b_off, K, wp, &bias[0], F, &y[n, oh0, 0, 0])
    finally:
        free(bufs)
        free(wp)
        free(a_off)
        free(b_off)


# ---------------------------------------------------------------------------------------------- NCHW

cdef inline void _pad_rows_nchw(const floating[:, :, :, ::1] x, Py_ssize_t n, Py_ssize_t ih0, Py_ssize_t rows,
                                floating* buf, Py_ssize_t Hb, Py_ssize_t sw, Py_ssize_t L, Py_ssize_t pad_left,
                                floating pad) noexcept nogil:
    """buf (C, Hb, sw, L)[c, r, phase, m] = input (c, ih0 + r, m * sw + phase - pad_left) of image n
    for r < rows, pad_value outside the input: each padded row split into its sw column phases."""
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t c, r, phase
    cdef floating* dst
    for c in range(C):
        for r in range(rows):
            for phase in range(sw):
                dst = buf + ((c * Hb + r) * sw + phase) * L
                if 0 <= ih0 + r < H:
                    _copy_padded(dst, &x[n, c, ih0 + r, 0], L, sw, phase - pad_left, W, pad)
                else:
                    fill(dst, L, pad)


cdef inline void _band_nchw(const floating* buf, Py_ssize_t nb, Py_ssize_t OW, Py_ssize_t sh, Py_ssize_t sw,
                            Py_ssize_t L, const Py_ssize_t* a_off, const Py_ssize_t* b_off, Py_ssize_t K,
                            const floating* wp, const floating* bias, Py_ssize_t F, floating* y,
                            Py_ssize_t plane) noexcept nogil:
    """nb output rows of a band, every filter: y[f * plane + oh * OW + ow]. buf holds the band's padded
    input rows (C, Hb, sw, L); the pixels of output row oh, tap k start at buf + oh * sh * sw * L +
    b_off[k]. Tiles of cols pixels of one row; when OW >= cols the last tile of a row ends at OW,
    overlapping the one before (those pixels are computed twice, identically), so every tile is
    full."""
    cdef Py_ssize_t rows = CYCONV_FILTERS_F32 if floating is float else CYCONV_FILTERS_F64
    cdef Py_ssize_t cols = CYCONV_COLS_F32 if floating is float else CYCONV_COLS_F64
    cdef const floating* filt[CYCONV_MAX_ROWS]
    cdef floating* dst[CYCONV_MAX_ROWS]
    cdef Py_ssize_t oh, tile, ow0, r, blk, f0
    for oh in range(nb):
        for tile in range((OW + cols - 1) // cols):
            ow0 = max(min(tile * cols, OW - cols), 0)
            for blk in range((F + rows - 1) // rows):
                f0 = blk * rows
                for r in range(rows):
                    filt[r] = wp + f0 * K + r
                    dst[r] = y + (f0 + r) * plane + oh * OW + ow0
                _micro_kernel(rows, filt, a_off, buf + oh * sh * sw * L + ow0, b_off, K, bias + f0, True, dst,
                              min(rows, F - f0), min(cols, OW))


def direct_nchw(const floating[:, :, :, ::1] x,        # IN  (N, C, H, W)
                const floating[:, :, :, ::1] kernel,   # IN  (F, C, kh, kw)
                const floating[::1] bias,              # IN  (F,)
                floating[:, :, :, ::1] y,              # OUT (N, F, OH, OW)
                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                Py_ssize_t pad_top, Py_ssize_t pad_left, double pad_value, int num_threads):
    """y[n, f, oh, ow] = bias[f] + sum_{c, i, j} xpad[n, c, ih, iw] * kernel[f, c, i, j] (NCHW), with
    num_threads >= 1 threads.

    Parallel over bands of output rows; a band's input rows are copied with their padding, each row
    split into sw column phases of L values, then its rows computed. Raises MemoryError if the work
    buffers cannot be allocated."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t F = kernel.shape[0], kh = kernel.shape[2], kw = kernel.shape[3]
    cdef Py_ssize_t OH = y.shape[2], OW = y.shape[3]
    cdef Py_ssize_t rows = CYCONV_FILTERS_F32 if floating is float else CYCONV_FILTERS_F64
    cdef Py_ssize_t K = C * kh * kw, band, Hb, L, buffer, panels
    band, Hb, L, buffer, panels = _work_sizes(True, C, F, OH, OW, kh, kw, sh, sw, dh, dw, sizeof(floating))
    cdef Py_ssize_t bands = (OH + band - 1) // band
    cdef floating pad = <floating>pad_value
    cdef Py_ssize_t t, n, oh0, nb, c, i, j, u
    cdef floating* buf
    cdef floating* bufs = <floating*>malloc(num_threads * buffer * sizeof(floating))
    cdef floating* wp = <floating*>malloc(panels * sizeof(floating))
    cdef Py_ssize_t* a_off = <Py_ssize_t*>malloc(K * sizeof(Py_ssize_t))
    cdef Py_ssize_t* b_off = <Py_ssize_t*>malloc(K * sizeof(Py_ssize_t))
    try:
        if not (bufs and wp and a_off and b_off):
            raise MemoryError("cyconv direct_nchw: cannot allocate the work buffers")
        with nogil:
            _pack_panels(&kernel[0, 0, 0, 0], F, K, wp, rows)
            # Term k = (c, i, j): its weights are row k of the filter panel; its input values, for
            # a tile's pixels, start b_off[k] after the tile's start in the band's buffer.
            for c in range(C):
                for i in range(kh):
                    for j in range(kw):
                        u = j * (dw + 1)
                        a_off[(c * kh + i) * kw + j] = ((c * kh + i) * kw + j) * rows
                        b_off[(c * kh + i) * kw + j] = ((c * Hb + i * (dh + 1)) * sw + u % sw) * L + u // sw
            for t in prange(N * bands, schedule="static", num_threads=num_threads):
                n = t // bands
                oh0 = t % bands * band
                nb = min(band, OH - oh0)
                buf = bufs + threadid() * buffer
                # The nb output rows read Hb - (band - nb) * sh input rows (Hb for a whole band).
                _pad_rows_nchw(x, n, oh0 * sh - pad_top, Hb - (band - nb) * sh, buf, Hb, sw, L, pad_left, pad)
                _band_nchw(buf, nb, OW, sh, sw, L, a_off, b_off, K, wp, &bias[0], F, &y[n, 0, oh0, 0], OH * OW)
    finally:
        free(bufs)
        free(wp)
        free(a_off)
        free(b_off)
