# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""C backend of pynn.reference.embedding: table lookup and its scatter-add gradient.

Each wrapper checks its arguments with pynn._checks (ids become C-contiguous int64 in range),
allocates `out` if absent, then makes one C call with the GIL released. The table is passed
by its row stride (a copy only when its rows are not contiguous); dy is made C-contiguous.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t

from pynn import _checks
from pynn._ext._csrc cimport pynn_idx, pynn_ctx
from pynn._ext._runtime cimport get_ctx

cnp.import_array()

cdef extern from "embedding.h" nogil:
    void pynn_embedding_forward_f32(float *out, const int64_t *ids, const float *table,
                                    pynn_idx N, pynn_idx D, pynn_idx rst, pynn_ctx ctx)
    void pynn_embedding_forward_f64(double *out, const int64_t *ids, const double *table,
                                    pynn_idx N, pynn_idx D, pynn_idx rst, pynn_ctx ctx)
    void pynn_embedding_backward_f32(float *dtable, const int64_t *ids, const float *dy,
                                     pynn_idx N, pynn_idx V, pynn_idx D, pynn_ctx ctx)
    void pynn_embedding_backward_f64(double *dtable, const int64_t *ids, const double *dy,
                                     pynn_idx N, pynn_idx V, pynn_idx D, pynn_ctx ctx)

__all__ = ["embedding_forward", "embedding_backward"]


cdef inline void *_data(a):
    return cnp.PyArray_DATA(<cnp.ndarray>a)


def embedding_forward(ids, table, out=None):
    """out (*ids.shape, D) = table (V, D)[ids]. See pynn.reference.embedding_forward."""
    ids, table = _checks.embedding_args(ids, table)
    out = _checks.out_array(out, ids.shape + (table.shape[1],), table.dtype,
                            inputs=(table, ids))  # ids are read while out is written
    if table.shape[1] > 1 and table.strides[1] != table.itemsize:
        table = np.ascontiguousarray(table)
    cdef pynn_idx N = ids.size, D = table.shape[1]
    cdef pynn_idx rst = table.strides[0] // table.itemsize
    cdef pynn_ctx ctx = get_ctx()
    cdef const int64_t *pi = <const int64_t *>_data(ids)
    cdef void *po = _data(out)
    cdef const void *pt = _data(table)
    if N == 0 or D == 0:
        return out
    if table.dtype == np.float32:
        with nogil:
            pynn_embedding_forward_f32(<float *>po, pi, <const float *>pt, N, D, rst, ctx)
    else:
        with nogil:
            pynn_embedding_forward_f64(<double *>po, pi, <const double *>pt, N, D, rst, ctx)
    return out


def embedding_backward(ids, dy, n_rows, out=None):
    """out (n_rows, D) = scatter-add of dy rows at ids (written). Thread-count independent."""
    ids, dy, n_rows = _checks.embedding_grad_args(ids, dy, n_rows)
    cdef pynn_idx D = dy.shape[dy.ndim - 1], N = ids.size, V = n_rows
    out = _checks.out_array(out, (n_rows, D), dy.dtype, inputs=(dy, ids))
    dy = _checks.contiguous(dy)
    cdef pynn_ctx ctx = get_ctx()
    cdef const int64_t *pi = <const int64_t *>_data(ids)
    cdef void *po = _data(out)
    cdef const void *pd = _data(dy)
    if D == 0:
        return out
    if dy.dtype == np.float32:
        with nogil:
            pynn_embedding_backward_f32(<float *>po, pi, <const float *>pd, N, V, D, ctx)
    else:
        with nogil:
            pynn_embedding_backward_f64(<double *>po, pi, <const double *>pd, N, V, D, ctx)
    return out
