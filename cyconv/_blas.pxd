# Row-major matrix products on SciPy's BLAS, callable without the GIL from any compiled module
# (scipy.linalg.cython_blas, the route scikit-learn's _cython_blas takes).
#
# The callers run these inside their own OpenMP team, one product per thread on a buffer the
# thread just filled, so SciPy's BLAS must be held to one thread around the parallel region
# (cyconv._blas_threads does that); otherwise its own workers would fight the team.
from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, sgemm


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
                      const floating* a, int lda, const floating* b, int ldb, floating beta,
                      floating* c, int ldc) noexcept nogil:
    """c = alpha * op(a) @ op(b) + beta * c, every matrix row-major.

    op(a) is m x k: a is (m, k) with row stride lda, or (k, m) when trans_a.
    op(b) is k x n: b is (k, n) with row stride ldb, or (n, k) when trans_b.
    c is (m, n) with row stride ldc. beta == 0 ignores what c held (it may be uninitialised).
    """
    # BLAS is column-major: the row-major c is the column-major c^T = op(b)^T @ op(a)^T, so the
    # operands swap places and each keeps its own transpose flag.
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    if floating is float:
        sgemm(&ta, &tb, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda, &beta, c, &ldc)
    else:
        dgemm(&ta, &tb, &n, &m, &k, &alpha, <double*>b, &ldb, <double*>a, &lda, &beta, c, &ldc)
