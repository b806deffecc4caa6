/* peak_avx512.c - the machine's measured FP32 peak for the GEMM benchmark: an AVX-512 FMA
 * throughput loop, 16 independent accumulators per thread (more than FMA latency x ports),
 * so the loop is bound by FMA issue only. Runs only where runtime.c found AVX-512. */
#include <immintrin.h>
#include "gemm.h"

#define PYNN_PEAK_ACC(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) \
                         X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

float pynn_fma_peak_avx512_f32(pynn_idx iters, int nthreads) {
    /* per thread: iters x 16 FMAs of 16 lanes = iters * 512 flops; returns a checksum */
    float total = 0.0f;
    int nt = nthreads < 1 ? 1 : nthreads;
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1) reduction(+:total)")
    for (int t = 0; t < nt; t++) {
        /* acc -> acc * x + y converges to y / (1 - x): no overflow, no subnormals */
        __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-3f);
#define PYNN_PEAK_DECL(i) __m512 acc##i = _mm512_set1_ps((float)(i + t));
        PYNN_PEAK_ACC(PYNN_PEAK_DECL)
        for (pynn_idx it = 0; it < iters; it++) {
#define PYNN_PEAK_FMA(i) acc##i = _mm512_fmadd_ps(acc##i, x, y);
            PYNN_PEAK_ACC(PYNN_PEAK_FMA)
        }
#define PYNN_PEAK_SUM(i) s = _mm512_add_ps(s, acc##i);
        __m512 s = _mm512_setzero_ps();
        PYNN_PEAK_ACC(PYNN_PEAK_SUM)
        total += _mm512_reduce_add_ps(s);
    }
    return total;
}
