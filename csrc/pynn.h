/* pynn.h - what every C kernel of pynn shares: the index type, status codes, the
 * per-call context (threads, instruction set), thread-count and flush-to-zero helpers.
 *
 * Rules for csrc/ (see STYLE.md): C99, no Python.h, no I/O, no exit/assert on user data.
 * Sizes and indices are signed 64-bit (pynn_idx). The Python/Cython layer validates every
 * argument before a kernel runs; kernels trust their arguments. Threads are passed in
 * (ctx.nthreads), never read from a global, and one thread writes each output element, so
 * the same inputs give the same bits whatever the thread count.
 */
#ifndef PYNN_H
#define PYNN_H

#include <stddef.h>
#include <stdint.h>

typedef ptrdiff_t pynn_idx;

/* status codes returned by kernels that can fail */
enum { PYNN_OK = 0, PYNN_ENOMEM = 1, PYNN_EINVAL = 2 };

/* instruction-set paths, ordered: a CPU that runs one runs all below it */
enum { PYNN_ISA_GENERIC = 0, PYNN_ISA_AVX2 = 1, PYNN_ISA_AVX512 = 2 };

/* per-call context, built by the Cython layer (pynn/_ext/_runtime.pyx) for each call */
typedef struct {
    int nthreads; /* >= 1; 1 means: never enter an OpenMP parallel region */
    int isa;      /* one of PYNN_ISA_*, already capped to what the CPU supports */
} pynn_ctx;

/* runtime.c */
int pynn_cpu_isa(void);        /* best ISA this CPU and OS support */
int pynn_have_openmp(void);    /* 1 if built with OpenMP */
int pynn_omp_max_threads(void);/* omp_get_max_threads() of the calling thread, 1 without OpenMP */
void pynn_omp_set_threads(int n);
const char *pynn_build_flags(void);

/* Threads worth using for `work` units of roughly one flop or byte each: small jobs stay on
 * the calling thread (entering a parallel region costs a few microseconds). */
static inline int pynn_threads_for(pynn_ctx ctx, double work) {
    int nt = ctx.nthreads < 1 ? 1 : ctx.nthreads;
    if (work < 32768.0) return 1;
    if (work < 32768.0 * nt) {
        int t = (int)(work / 32768.0);
        return t < 1 ? 1 : t;
    }
    return nt;
}

/* Flush-to-zero and denormals-are-zero for the duration of a kernel, on each thread that
 * runs it. Arithmetic on subnormal floats is ~50x slower on x86 (Adam moments of weights
 * with always-zero gradients decay into them); the caller's MXCSR is restored on exit so
 * NumPy code on the same thread keeps IEEE semantics. */
#if defined(__x86_64__) || defined(_M_X64) || defined(__SSE2__)
#include <xmmintrin.h>
#define PYNN_FTZ_BEGIN unsigned int pynn_mxcsr_saved_ = _mm_getcsr(); _mm_setcsr(pynn_mxcsr_saved_ | 0x8040u)
#define PYNN_FTZ_END _mm_setcsr(pynn_mxcsr_saved_)
#else
#define PYNN_FTZ_BEGIN do {} while (0)
#define PYNN_FTZ_END do {} while (0)
#endif

#define PYNN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PYNN_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif /* PYNN_H */
