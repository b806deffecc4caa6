# cython: language_level=3
"""C backend of pynn.reference.gemm: general matrix multiply over csrc/gemm.c.

The wrapper checks its arguments with pynn._checks (the same checks as the reference), then
makes one C call with the GIL released. op(a) and op(b) are stride swaps: transposed,
Fortran-ordered and strided views reach C by their strides, never copied.
"""
import numpy as np
from cython cimport floating

from pynn import _checks
from pynn._ext._csrc cimport pynn_idx, pynn_ctx, PYNN_OK, PYNN_ENOMEM
from pynn._ext._runtime cimport get_ctx

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


cdef int _gemm(floating[:, ::1] out,        # OUT (M, N)
               const floating[:, :] a,      # IN  (M, K), or (K, M) with trans_a
               const floating[:, :] b,      # IN  (K, N), or (N, K) with trans_b
               bint trans_a, bint trans_b, double alpha, double beta,
               pynn_ctx ctx) noexcept:
    cdef pynn_idx M = out.shape[0], N = out.shape[1]
    cdef pynn_idx K = a.shape[0] if trans_a else a.shape[1]
    cdef pynn_idx ra = a.strides[0] // sizeof(floating), ca = a.strides[1] // sizeof(floating)
    cdef pynn_idx rb = b.strides[0] // sizeof(floating), cb = b.strides[1] // sizeof(floating)
    cdef const floating *pa = NULL
    cdef const floating *pb = NULL
    cdef int status = PYNN_OK
    if M == 0 or N == 0:
        return PYNN_OK
    if K > 0:
        pa = &a[0, 0]
        pb = &b[0, 0]
    if trans_a:
        ra, ca = ca, ra
    if trans_b:
        rb, cb = cb, rb
    with nogil:
        if floating is float:
            status = pynn_gemm_f32(&out[0, 0], N, 1, pa, ra, ca, pb, rb, cb, M, N, K,
                                   <float>alpha, <float>beta, ctx)
        else:
            status = pynn_gemm_f64(&out[0, 0], N, 1, pa, ra, ca, pb, rb, cb, M, N, K,
                                   alpha, beta, ctx)
    return status


def gemm(a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    """out (M, N) = alpha * op(a) @ op(b) + beta * out. See pynn.reference.gemm."""
    cdef int status
    a, b, M, N, K, alpha, beta, out = _checks.gemm_args(a, b, trans_a, trans_b, alpha, beta, out)
    if a.dtype == np.float32:
        status = _gemm[float](out, a, b, trans_a, trans_b, alpha, beta, get_ctx())
    else:
        status = _gemm[double](out, a, b, trans_a, trans_b, alpha, beta, get_ctx())
    if status == PYNN_ENOMEM:
        raise MemoryError(f"gemm could not allocate its packing scratch for "
                          f"({M}, {K}) @ ({K}, {N})")
    return out


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
