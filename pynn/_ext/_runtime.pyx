# cython: language_level=3
# (boundscheck, wraparound, cdivision, initializedcheck are set by setup.py;
#  PYNN_CYTHON_DEBUG=1 at build time turns the checks on)
"""Runtime state of the C backend: threads and instruction-set path.

Python-level configuration (pynn/_config.py) writes here; every kernel wrapper reads the
current context with get_ctx(), a C call without Python objects.
"""
from pynn._ext._csrc cimport (pynn_ctx, pynn_cpu_isa, pynn_have_openmp, pynn_omp_max_threads,
                              pynn_omp_set_threads, pynn_build_flags)

ISA_NAMES = ("generic", "avx2", "avx512")

cdef int _cpu_isa = pynn_cpu_isa()
cdef int _isa = _cpu_isa
cdef int _threads = 1
cdef bint _single = False   # forced serial, e.g. in a child forked after OpenMP ran


cdef pynn_ctx get_ctx() noexcept:
    cdef pynn_ctx c
    cdef int m
    c.isa = _isa
    if _single:
        c.nthreads = 1
    else:
        # omp_get_max_threads() is what threadpoolctl / omp_set_num_threads limit
        m = pynn_omp_max_threads()
        c.nthreads = _threads if _threads < m else m
        if c.nthreads < 1:
            c.nthreads = 1
    return c


def cpu_isa():
    """Name of the best instruction-set path this CPU supports."""
    return ISA_NAMES[_cpu_isa]


def get_isa():
    return ISA_NAMES[_isa]


def set_isa(name):
    global _isa
    if name not in ISA_NAMES:
        raise ValueError(f"unknown arch {name!r}: expected one of {ISA_NAMES}")
    idx = ISA_NAMES.index(name)
    if idx > _cpu_isa:
        raise ValueError(f"arch {name!r} is not supported by this CPU (best: {ISA_NAMES[_cpu_isa]!r})")
    _isa = idx


def set_threads(int n):
    global _threads
    _threads = n if n > 0 else 1
    pynn_omp_set_threads(_threads)


def get_threads():
    return get_ctx().nthreads


def set_single_threaded(bint flag):
    global _single
    _single = flag


def have_openmp():
    return bool(pynn_have_openmp())


def omp_max_threads():
    return pynn_omp_max_threads()


def build_flags():
    return pynn_build_flags().decode()
