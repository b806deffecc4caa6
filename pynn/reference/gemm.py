"""General matrix multiply, the NumPy twin of csrc/gemm.c (the spec)."""
from .. import _checks

__all__ = ["gemm"]


def gemm(a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    """out (M, N) = alpha * op(a) @ op(b) + beta * out.

    op(a) = a.T if trans_a else a, shape (M, K); op(b) = b.T if trans_b else b, shape (K, N).
    float32/float64, one dtype. beta != 0 needs `out` and reads it; beta == 0 never reads it
    (NaN in out does not propagate). K == 0 gives beta * out (zeros when beta == 0).
    """
    a, b, M, N, K, alpha, beta, out = _checks.gemm_args(a, b, trans_a, trans_b, alpha, beta, out)
    opa = a.T if trans_a else a  # (M, K)
    opb = b.T if trans_b else b  # (K, N)
    if beta == 0.0:
        out[...] = alpha * (opa @ opb)  # (M, N)
    else:
        out[...] = alpha * (opa @ opb) + beta * out  # (M, N)
    return out
