# C-level recognition of plainly valid kernel calls, shared by the hot wrappers (the idea of
# pynn/_ext/_gemm.pyx's _plain_call, in one place).
#
# A wrapper first asks these inline tests whether its call is plainly valid: every array an
# exact np.ndarray of one float dtype, C-contiguous, aligned, native byte order; outputs also
# writeable and of the expected shape; no overlap where the checks forbid it (byte ranges of
# contiguous arrays); scalars exact Python floats / ints inside their ranges. Such a call is
# one that pynn._checks would pass through unchanged, so the wrapper may go straight to C.
# Any other call, valid or not, takes the pynn._checks path: errors stay those of the
# reference. Each test costs a few pointer and flag reads (no Python calls).
cimport numpy as cnp
from cpython.float cimport PyFloat_CheckExact, PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_CheckExact, PyLong_AsLongLongAndOverflow
from libc.math cimport isfinite


cdef inline int float_type(object x) noexcept:
    """NPY_FLOAT32 / NPY_FLOAT64 when x is a plain float array (exact ndarray, C-contiguous,
    aligned, native order), else 0."""
    if type(x) is not cnp.ndarray:
        return 0
    cdef cnp.ndarray a = <cnp.ndarray>x
    cdef int t = cnp.PyArray_TYPE(a)
    if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64:
        return 0
    if not (cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a)
            and cnp.PyArray_ISNOTSWAPPED(a)):
        return 0
    return t


cdef inline bint plain(object x, int typenum) noexcept:
    """x is a plain array (see float_type) of type typenum (any type number, e.g. NPY_INT64)."""
    if type(x) is not cnp.ndarray:
        return False
    cdef cnp.ndarray a = <cnp.ndarray>x
    return (cnp.PyArray_TYPE(a) == typenum and cnp.PyArray_IS_C_CONTIGUOUS(a)
            and cnp.PyArray_ISALIGNED(a) and cnp.PyArray_ISNOTSWAPPED(a))


cdef inline bint plain_like(object x, cnp.ndarray like, bint writeable) noexcept:
    """x is a plain array of like's type and shape (and writeable when asked)."""
    if not plain(x, cnp.PyArray_TYPE(like)):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>x
    return cnp.PyArray_SAMESHAPE(a, like) and (not writeable or cnp.PyArray_ISWRITEABLE(a))


cdef inline bint plain_2d(object x, int typenum) noexcept:
    return plain(x, typenum) and cnp.PyArray_NDIM(<cnp.ndarray>x) == 2


cdef inline bint disjoint(cnp.ndarray a, cnp.ndarray b) noexcept:
    """The bytes of contiguous arrays a and b do not meet (an empty array meets nothing)."""
    cdef char *pa = cnp.PyArray_BYTES(a)
    cdef char *pb = cnp.PyArray_BYTES(b)
    cdef cnp.npy_intp na = cnp.PyArray_NBYTES(a), nb = cnp.PyArray_NBYTES(b)
    return na == 0 or nb == 0 or pa + na <= pb or pb + nb <= pa


cdef inline bint inplace_ok(cnp.ndarray out, cnp.ndarray x) noexcept:
    """out may be written while x is read elementwise: the same buffer (both contiguous of one
    shape, so one layout) or disjoint."""
    return cnp.PyArray_BYTES(out) == cnp.PyArray_BYTES(x) or disjoint(out, x)


cdef inline object new_or_out(object out, int nd, cnp.npy_intp *dims, int typenum):
    """A new C-ordered array when out is None; out when it is a plain writeable array of that
    shape and type; else None (the caller falls back to pynn._checks)."""
    if out is None:
        return cnp.PyArray_EMPTY(nd, dims, typenum, 0)
    if not plain(out, typenum):
        return None
    cdef cnp.ndarray o = <cnp.ndarray>out
    if cnp.PyArray_NDIM(o) != nd or not cnp.PyArray_ISWRITEABLE(o):
        return None
    cdef int d
    for d in range(nd):
        if cnp.PyArray_DIM(o, d) != dims[d]:
            return None
    return out


cdef inline object new_like(object out, cnp.ndarray like):
    """new_or_out with like's shape and type."""
    return new_or_out(out, cnp.PyArray_NDIM(like), cnp.PyArray_DIMS(like),
                      cnp.PyArray_TYPE(like))


cdef inline bint float_in(object v, double lo, double hi, bint lo_open, bint hi_open) noexcept:
    """v is an exact, finite Python float in [lo, hi] (open ends when asked)."""
    if not PyFloat_CheckExact(v):
        return False
    cdef double d = PyFloat_AS_DOUBLE(v)
    return (isfinite(d) and d >= lo and d <= hi and not (lo_open and d == lo)
            and not (hi_open and d == hi))


cdef inline bint int_in(object v, long long lo) noexcept:
    """v is an exact Python int (not bool) in [lo, 2**63)."""
    if not PyLong_CheckExact(v):
        return False
    cdef int overflow = 0
    cdef long long i = PyLong_AsLongLongAndOverflow(v, &overflow)
    return overflow == 0 and i >= lo


cdef inline bint labels_ok(object labels, cnp.npy_intp n, cnp.npy_intp k) noexcept:
    """labels is a plain int64 array of shape (n,) with every value in [0, k)."""
    if not plain(labels, cnp.NPY_INT64):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>labels
    if cnp.PyArray_NDIM(a) != 1 or cnp.PyArray_DIM(a, 0) != n:
        return False
    cdef const cnp.int64_t *p = <const cnp.int64_t *>cnp.PyArray_DATA(a)
    cdef cnp.npy_intp i
    for i in range(n):
        if p[i] < 0 or p[i] >= k:
            return False
    return True
