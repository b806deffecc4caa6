/* rnn.h - recurrent cells over a whole sequence (SimpleRNN, LSTM, GRU) and their
 * backpropagation through time; the NumPy twin and the math are in pynn/reference/rnn.py.
 *
 * All arrays are C-contiguous, batch-first: xproj (B,T,G*H), h/c (B,T,H), w_rec (H,G*H),
 * with G = 1 (SimpleRNN), 4 (LSTM: i,f,c,o), 3 (GRU: z,r,h, Keras reset_after=True).
 * gates (B,T,4H): LSTM the activated i,f,g,o; GRU z,r,n and the recurrent projection of h.
 * b_rec: GRU the recurrent bias (3H); LSTM a bias (4H) added to xproj inside the fused pass
 * (z = h_{t-1} @ w_rec + (xproj_t + b_rec), so the caller's GEMM needs no bias sweep), and
 * backward db_rec (4H) = the sum of dxproj over all B*T rows (its gradient; GRU: of drp),
 * computed with dw_rec as one more row of the same GEMM.
 * Pointers a cell does not use (c, c0, gates, b_rec, dc0, db_rec...) may be NULL; dh_last/dc_last
 * NULL mean zero. mask (B,T) of 0/1 bytes, NULL for every step: a step with mask 0 is skipped
 * (the state carries over, h_t = h_{t-1}, c_t = c_{t-1}; its gates are 0), and
 * backward passes the state gradients through it with dxproj = 0 (the reference's semantics).
 * B, T, H >= 1. Returns PYNN_OK or PYNN_ENOMEM (scratch allocation).
 */
#ifndef PYNN_RNN_H
#define PYNN_RNN_H
#include "pynn.h"

enum { PYNN_RNN_TANH = 0, PYNN_RNN_RELU = 1, PYNN_RNN_LSTM = 2, PYNN_RNN_GRU = 3 };

int pynn_rnn_forward_f32(float *h, float *c, float *gates,
                         const float *xproj, const float *h0, const float *c0,
                         const float *w_rec, const float *b_rec, const uint8_t *mask,
                         pynn_idx B, pynn_idx T, pynn_idx H, int cell, pynn_ctx ctx);
int pynn_rnn_forward_f64(double *h, double *c, double *gates,
                         const double *xproj, const double *h0, const double *c0,
                         const double *w_rec, const double *b_rec, const uint8_t *mask,
                         pynn_idx B, pynn_idx T, pynn_idx H, int cell, pynn_ctx ctx);
int pynn_rnn_backward_f32(float *dxproj, float *dh0, float *dc0, float *dw_rec, float *db_rec,
                          const float *h0, const float *c0, const float *w_rec,
                          const float *h, const float *c, const float *gates,
                          const float *dh, const float *dh_last, const float *dc_last,
                          const uint8_t *mask, pynn_idx B, pynn_idx T, pynn_idx H, int cell,
                          pynn_ctx ctx);
int pynn_rnn_backward_f64(double *dxproj, double *dh0, double *dc0, double *dw_rec,
                          double *db_rec, const double *h0, const double *c0,
                          const double *w_rec, const double *h, const double *c,
                          const double *gates, const double *dh, const double *dh_last,
                          const double *dc_last, const uint8_t *mask, pynn_idx B, pynn_idx T,
                          pynn_idx H, int cell, pynn_ctx ctx);
#endif
