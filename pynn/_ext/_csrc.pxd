# Declarations shared by every Cython wrapper: pynn.h (index type, context, runtime queries).
# Each kernel family declares its own header's functions at the top of its .pyx.
from libc.stddef cimport ptrdiff_t
from libc.stdint cimport int64_t

cdef extern from "pynn.h" nogil:
    ctypedef ptrdiff_t pynn_idx
    ctypedef struct pynn_ctx:
        int nthreads
        int isa
    enum:
        PYNN_OK
        PYNN_ENOMEM
        PYNN_EINVAL
        PYNN_ISA_GENERIC
        PYNN_ISA_AVX2
        PYNN_ISA_AVX512
    int pynn_cpu_isa()
    int pynn_have_openmp()
    int pynn_omp_max_threads()
    void pynn_omp_set_threads(int n)
    const char *pynn_build_flags()
