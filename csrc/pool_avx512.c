/* pool_avx512.c - the max-pooling loops of pool_max.h compiled with AVX-512 (setup.py gives
 * *_avx512.c files those flags); pool.c calls them when ctx.isa is PYNN_ISA_AVX512. Same loops
 * and order as the portable build, so the same bits. */
#include "pool_max.h"

PYNN_MAXPOOL_FAMILY(float, f32, _avx512)
PYNN_MAXPOOL_FAMILY(double, f64, _avx512)
