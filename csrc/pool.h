/* pool.h - 2-D pooling and nearest upsampling, NHWC: max and average over windows (pool size g.KH x g.KW, strides
 * g.sh, g.sw, leading pads g.pt, g.pl; g.dh = g.dw = 1, g.OC = g.C), global average and global
 * max over H and W. Padded positions never take part. x is read through its four strides
 * (g.xs*); y, dy, dx are C-contiguous. Backward of max pooling recomputes the argmax from x
 * (no saved indices): ties go to the first position in row-major window order, a NaN wins. */
#ifndef PYNN_POOL_H
#define PYNN_POOL_H
#include "conv.h"

void pynn_max_pool2d_forward_f32(float *y, const float *x, pynn_conv_geom g, pynn_ctx ctx);
void pynn_max_pool2d_forward_f64(double *y, const double *x, pynn_conv_geom g, pynn_ctx ctx);
void pynn_max_pool2d_backward_f32(float *dx, const float *x, const float *dy, pynn_conv_geom g,
                                  pynn_ctx ctx);
void pynn_max_pool2d_backward_f64(double *dx, const double *x, const double *dy,
                                  pynn_conv_geom g, pynn_ctx ctx);
void pynn_avg_pool2d_forward_f32(float *y, const float *x, pynn_conv_geom g, pynn_ctx ctx);
void pynn_avg_pool2d_forward_f64(double *y, const double *x, pynn_conv_geom g, pynn_ctx ctx);
void pynn_avg_pool2d_backward_f32(float *dx, const float *dy, pynn_conv_geom g, pynn_ctx ctx);
void pynn_avg_pool2d_backward_f64(double *dx, const double *dy, pynn_conv_geom g, pynn_ctx ctx);
/* global: y (B,C); only g.B, g.H, g.W, g.C and x strides are read */
void pynn_global_avg_pool2d_forward_f32(float *y, const float *x, pynn_conv_geom g, pynn_ctx ctx);
void pynn_global_avg_pool2d_forward_f64(double *y, const double *x, pynn_conv_geom g,
                                        pynn_ctx ctx);
void pynn_global_avg_pool2d_backward_f32(float *dx, const float *dy, pynn_conv_geom g,
                                         pynn_ctx ctx);
void pynn_global_avg_pool2d_backward_f64(double *dx, const double *dy, pynn_conv_geom g,
                                         pynn_ctx ctx);
void pynn_global_max_pool2d_forward_f32(float *y, const float *x, pynn_conv_geom g, pynn_ctx ctx);
void pynn_global_max_pool2d_forward_f64(double *y, const double *x, pynn_conv_geom g,
                                        pynn_ctx ctx);
void pynn_global_max_pool2d_backward_f32(float *dx, const float *x, const float *dy,
                                         pynn_conv_geom g, pynn_ctx ctx);
void pynn_global_max_pool2d_backward_f64(double *dx, const double *x, const double *dy,
                                         pynn_conv_geom g, pynn_ctx ctx);
/* nearest-neighbour upsampling by (g.KH, g.KW): y (B, H*KH, W*KW, C) (g.OH, g.OW), x read
 * through its strides; backward sums each KH x KW block of dy (C-contiguous) */
void pynn_upsampling2d_forward_f32(float *y, const float *x, pynn_conv_geom g, pynn_ctx ctx);
void pynn_upsampling2d_forward_f64(double *y, const double *x, pynn_conv_geom g, pynn_ctx ctx);
void pynn_upsampling2d_backward_f32(float *dx, const float *dy, pynn_conv_geom g, pynn_ctx ctx);
void pynn_upsampling2d_backward_f64(double *dx, const double *dy, pynn_conv_geom g,
                                    pynn_ctx ctx);
#endif
