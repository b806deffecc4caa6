# cython: language_level=3
"""C backend of pynn.reference.gemm: general matrix multiply over csrc/gemm.c.

op(a) and op(b) are stride swaps: transposed, Fortran-ordered and strided views reach C by
their strides, never copied. One C call with the GIL released.

Checks: pynn._checks.gemm_args (the same function as the reference) decides every call that
is not plainly valid. A call is plainly valid when a, b (and out) are exact ndarrays of one
float dtype, 2-D, aligned, native, inner sizes agree, alpha/beta are finite floats, out is
C-contiguous, aligned, writeable, of shape (M, N), and its bytes do not meet those of a or b.
Such calls, which gemm_args would pass through unchanged, are recognised here with C-level
flag tests instead (about 0.2 us instead of 4 us: the small layer GEMMs this library is for
take a few microseconds). Anything else, valid or not, goes to gemm_args.
"""
import numpy as np
cimport numpy as cnp
from libc.math cimport isfinite

from pynn import _checks
from pynn._ext._csrc cimport pynn_idx, pynn_ctx, PYNN_OK, PYNN_ENOMEM
from pynn._ext._runtime cimport get_ctx

cnp.import_array()

cdef extern from "gemm.h" nogil:
    int pynn_gemm_f32(float *C, pynn_idx rsc, pynn_idx csc,
                      const float *A, pynn_idx rsa, pynn_idx csa,
                      const float *B, pynn_idx rsb, pynn_idx csb,
                      pynn_idx M, pynn_idx N, pynn_idx K, float alpha, float beta, pynn_ctx ctx)
    int pynn_gemm_f64(double *C, pynn_idx rsc, pynn_idx csc,
                      const double *A, pynn_idx rsa, pynn_idx csa,
                      const double *B, pynn_idx rsb, pynn_idx csb,
                      pynn_idx M, pynn_idx N, pynn_idx K, double alpha, double beta,
                      pynn_ctx ctx)
    float pynn_fma_peak_avx512_f32(pynn_idx iters, int nthreads)

__all__ = ["gemm"]


cdef inline bint _plain_input(object x, int typenum):
    """x is an exact, 2-D, aligned, native-order ndarray of type typenum."""
    if type(x) is not cnp.ndarray:
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>x
    return (cnp.PyArray_NDIM(arr) == 2 and cnp.PyArray_TYPE(arr) == typenum
            and cnp.PyArray_ISALIGNED(arr) and cnp.PyArray_ISNOTSWAPPED(arr))


cdef inline void _extent(cnp.ndarray x, char **lo, char **hi) noexcept:
    """[lo, hi): the bytes a 2-D array can touch."""
    cdef char *p = <char *>cnp.PyArray_DATA(x)
    cdef char *q = p
    cdef int d
    cdef cnp.npy_intp step
    for d in range(2):
        step = (cnp.PyArray_DIM(x, d) - 1) * cnp.PyArray_STRIDE(x, d)
        if step < 0:
            p += step
        else:
            q += step
    lo[0] = p
    hi[0] = q + cnp.PyArray_ITEMSIZE(x)


cdef inline bint _disjoint(cnp.ndarray x, cnp.ndarray y) noexcept:
    cdef char *xl
    cdef char *xh
    cdef char *yl
    cdef char *yh
    _extent(x, &xl, &xh)
    _extent(y, &yl, &yh)
    return xh <= yl or yh <= xl


cdef object _plain_call(a, b, bint ta, bint tb, alpha, beta, out):
    """The checked out array if this call is plainly valid (see the module doc), else None."""
    if type(alpha) is not float or type(beta) is not float:
        return None
    if not (isfinite(<double>alpha) and isfinite(<double>beta)):
        return None
    if type(a) is not cnp.ndarray:
        return None
    cdef int typenum = cnp.PyArray_TYPE(<cnp.ndarray>a)
    if typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64:
        return None
    if not (_plain_input(a, typenum) and _plain_input(b, typenum)):
        return None
    cdef cnp.ndarray A = <cnp.ndarray>a, B = <cnp.ndarray>b, C
    cdef cnp.npy_intp M = cnp.PyArray_DIM(A, 1 if ta else 0), K = cnp.PyArray_DIM(A, 0 if ta else 1)
    cdef cnp.npy_intp N = cnp.PyArray_DIM(B, 0 if tb else 1)
    if cnp.PyArray_DIM(B, 1 if tb else 0) != K:
        return None
    cdef cnp.npy_intp dims[2]
    if out is None:
        if <double>beta != 0.0:
            return None
        dims[0] = M
        dims[1] = N
        return cnp.PyArray_EMPTY(2, dims, typenum, 0)
    if type(out) is not cnp.ndarray:
        return None
    C = <cnp.ndarray>out
    if (cnp.PyArray_NDIM(C) != 2 or cnp.PyArray_TYPE(C) != typenum
            or cnp.PyArray_DIM(C, 0) != M or cnp.PyArray_DIM(C, 1) != N
            or not cnp.PyArray_ISCARRAY(C) or not cnp.PyArray_ISNOTSWAPPED(C)):
        return None
    if cnp.PyArray_SIZE(C) and not (_disjoint(C, A) and _disjoint(C, B)):
        return None
    return out


cdef int _gemm(cnp.ndarray out,   # OUT (M, N), C-contiguous
               cnp.ndarray a,     # IN  (M, K), or (K, M) with trans_a
               cnp.ndarray b,     # IN  (K, N), or (N, K) with trans_b
               bint ta, bint tb, double alpha, double beta) noexcept:
    cdef pynn_idx M = cnp.PyArray_DIM(out, 0), N = cnp.PyArray_DIM(out, 1)
    cdef pynn_idx K = cnp.PyArray_DIM(a, 0 if ta else 1)
    cdef pynn_idx isz = cnp.PyArray_ITEMSIZE(a)
    # element strides of op(a), op(b): a transpose swaps them
    cdef pynn_idx ra = cnp.PyArray_STRIDE(a, 1 if ta else 0) // isz
    cdef pynn_idx ca = cnp.PyArray_STRIDE(a, 0 if ta else 1) // isz
    cdef pynn_idx rb = cnp.PyArray_STRIDE(b, 1 if tb else 0) // isz
    cdef pynn_idx cb = cnp.PyArray_STRIDE(b, 0 if tb else 1) // isz
    cdef void *pc = cnp.PyArray_DATA(out)
    cdef const void *pa = cnp.PyArray_DATA(a)
    cdef const void *pb = cnp.PyArray_DATA(b)
    cdef pynn_ctx ctx = get_ctx()
    cdef int status = PYNN_OK
    if M == 0 or N == 0:
        return PYNN_OK
    with nogil:
        if isz == 4:
            status = pynn_gemm_f32(<float *>pc, N, 1, <const float *>pa, ra, ca,
                                   <const float *>pb, rb, cb, M, N, K,
                                   <float>alpha, <float>beta, ctx)
        else:
            status = pynn_gemm_f64(<double *>pc, N, 1, <const double *>pa, ra, ca,
                                   <const double *>pb, rb, cb, M, N, K, alpha, beta, ctx)
    return status


def gemm(a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    """out (M, N) = alpha * op(a) @ op(b) + beta * out. See pynn.reference.gemm."""
    cdef bint ta = trans_a, tb = trans_b
    checked = _plain_call(a, b, ta, tb, alpha, beta, out)
    if checked is None:
        a, b, _, _, _, alpha, beta, checked = _checks.gemm_args(a, b, trans_a, trans_b,
                                                               alpha, beta, out)
    if _gemm(checked, a, b, ta, tb, alpha, beta) == PYNN_ENOMEM:
        raise MemoryError(f"gemm could not allocate its packing scratch for "
                          f"op(a) {np.shape(a)} (trans_a={ta}) @ op(b) {np.shape(b)} "
                          f"(trans_b={tb})")
    return checked


def _fma_peak_flops(pynn_idx iters, int nthreads):
    """Run the AVX-512 FMA throughput loop (benchmark peak); returns the flops it did.

    Not a kernel (not in __all__): bench/gemm.py times it. Needs an AVX-512 CPU.
    """
    from pynn._ext._runtime import cpu_isa
    if cpu_isa() != "avx512":
        raise RuntimeError(f"the FMA peak loop needs AVX-512; this CPU has {cpu_isa()!r}")
    with nogil:
        pynn_fma_peak_avx512_f32(iters, nthreads)
    return float(iters) * 512.0 * nthreads
