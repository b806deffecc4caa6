/* runtime.c - what the Python layer asks about the machine: CPU instruction sets (cpuid plus
 * the OS's xgetbv register-state check), OpenMP availability and thread counts, build flags.
 * No state lives here: the chosen ISA and thread count are passed to every kernel in pynn_ctx. */
#include "pynn.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
static unsigned long long pynn_xgetbv0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

int pynn_cpu_isa(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return PYNN_ISA_GENERIC;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return PYNN_ISA_GENERIC;
    unsigned long long xcr0 = pynn_xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return PYNN_ISA_GENERIC; /* OS saves XMM and YMM state */
    if (__get_cpuid_max(0, 0) < 7) return PYNN_ISA_GENERIC;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
        avx512vl = (b >> 31) & 1;
    int os_zmm = (xcr0 & 0xe6) == 0xe6; /* opmask, ZMM_Hi256, Hi16_ZMM state */
    if (avx512f && avx512dq && avx512bw && avx512vl && fma && os_zmm) return PYNN_ISA_AVX512;
    if (avx2 && fma) return PYNN_ISA_AVX2;
    return PYNN_ISA_GENERIC;
}
#else
int pynn_cpu_isa(void) { return PYNN_ISA_GENERIC; }
#endif

int pynn_have_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int pynn_omp_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void pynn_omp_set_threads(int n) {
#ifdef _OPENMP
    if (n >= 1) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

#ifndef PYNN_CFLAGS
#define PYNN_CFLAGS "unknown"
#endif
const char *pynn_build_flags(void) { return PYNN_CFLAGS; }
