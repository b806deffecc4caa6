/* transpose_avx512.h - a 16 x 16 float transpose in AVX-512 registers, for the copies that
 * turn strided columns into rows (attention's k^T and v^T, GEMM's B^T slivers). Include only
 * from code that runs after runtime.c found AVX-512 (a file built with the AVX-512 flags, or a
 * function with the same target attribute, which this one carries so that either inlines it). */
#ifndef PYNN_TRANSPOSE_AVX512_H
#define PYNN_TRANSPOSE_AVX512_H
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

/* v[i] lane j -> v[j] lane i: pairs of lanes, pairs of pairs, then 128-bit quarters twice */
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))
static inline void pynn_tr16_avx512_f32(__m512 *v) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        v[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        v[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        v[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        v[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 4; i++) {
            t[8 * h + i] = _mm512_shuffle_f32x4(v[8 * h + i], v[8 * h + 4 + i], 0x88);
            t[8 * h + 4 + i] = _mm512_shuffle_f32x4(v[8 * h + i], v[8 * h + 4 + i], 0xdd);
        }
    for (int i = 0; i < 8; i++) {
        v[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        v[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
    }
}
#endif
#endif /* PYNN_TRANSPOSE_AVX512_H */
