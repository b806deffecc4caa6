/* conv_avx512.c - the direct small-K convolution loops of conv_direct.h compiled with
 * AVX-512 (setup.py gives *_avx512.c files those flags); conv.c calls them when ctx.isa is
 * PYNN_ISA_AVX512. Same loops and summation order as the portable build. */
#include "conv_direct.h"

#define pynn_conv_direct_forward_f32 pynn_conv_direct_forward_f32_avx512
#define pynn_conv_direct_forward_f64 pynn_conv_direct_forward_f64_avx512
#define pynn_conv_direct_pool2_forward_f32 pynn_conv_direct_pool2_forward_f32_avx512
#define pynn_conv_direct_pool2_forward_f64 pynn_conv_direct_pool2_forward_f64_avx512
#define pynn_conv_direct_dweight_f32 pynn_conv_direct_dweight_f32_avx512
#define pynn_conv_direct_dweight_f64 pynn_conv_direct_dweight_f64_avx512
PYNN_CONV_DIRECT_FAMILY(float, f32)
PYNN_CONV_DIRECT_FAMILY(double, f64)
