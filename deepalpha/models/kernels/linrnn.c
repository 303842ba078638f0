/* Fused CPU kernels of the gated linear RNN (RNN-LIN, DecompGRN), called through ctypes.
 *
 * Legend of dimension letters:
 *     t  time steps (oldest first)    n  rows (stocks)    h  hidden units
 *
 * One layer, from packed gate pre-activations ``z [t, n, G*h]`` (G = 2: ``[zf | zc]``; G = 3:
 * ``[zf | zc | zo]``), float32, C-contiguous:
 *
 *     f = sigmoid(zf), c = SiLU(zc) = zc sigmoid(zc),  h_t = f_t h_{t-1} + (1 - f_t) c_t, h_0 = 0
 *     y_t = sigmoid(zo_t) h_t                                                  (G = 3 only)
 *
 * Every (row, unit) pair is an independent recurrence, so the work is split into tiles of
 * TILE rows; a tile walks through time with its state in L1 and reads one contiguous
 * ``TILE * G * h`` slab of z per step. Tiles are spread over an OpenMP team of ``num_threads``.
 * Gates are evaluated inside the loop, forward and backward, so nothing of size [t, n, h] is
 * materialised besides h (and y) forward and dz backward: one pass over memory each way.
 *
 * The exponential is a branch-free Cephes-style approximation (range reduction to
 * [-ln2/2, ln2/2], degree-6 polynomial; relative error about 2e-7, i.e. float rounding) that
 * the compiler vectorises (with -fno-trapping-math, which the build passes; the build also
 * tries -march=native first, which about halves the time on an AVX2 machine).
 *
 * Backward (reverse time, g_t = dL/dh_t):
 *     g_t   = gh_t + f_{t+1} g_{t+1},       gh_t = dL/dh_t (+ dL/dy_t sigmoid(zo_t) when G = 3)
 *     dzf_t = g_t (h_{t-1} - c_t) f_t (1 - f_t)
 *     dzc_t = g_t (1 - f_t) s_t (1 + zc_t (1 - s_t)),   s = sigmoid(zc)
 *     dzo_t = dL/dy_t h_t o_t (1 - o_t)                                       (G = 3 only)
 */

#include <stdint.h>
#include <string.h>

#define TILE 16 /* rows per tile */
#define MAX_H 1024 /* largest hidden size (per-tile state lives on the stack) */
#define MIN_PARALLEL_ROWS 64

#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif

int linrnn_max_h(void) { return MAX_H; }

#include "fastmath.h"

/* Forward of rows [r0, r1) over all steps. */
static void fwd_tile(const float *restrict z, float *restrict hs, float *restrict y,
                     int64_t t_len, int64_t n, int64_t hd, int gates, int64_t r0, int64_t r1)
{
    float state[TILE * MAX_H];
    const int64_t zs = gates * hd;
    const int64_t rows = r1 - r0;
    memset(state, 0, sizeof(float) * rows * hd);
    for (int64_t t = 0; t < t_len; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
            const float *restrict zr = z + (t * n + r0 + r) * zs;
            float *restrict hr = hs + (t * n + r0 + r) * hd;
            float *restrict st = state + r * hd;
#pragma omp simd
            for (int64_t k = 0; k < hd; ++k) {
                float f = sigmoid(zr[k]);
                float zc = zr[hd + k];
                float c = zc * sigmoid(zc);
                float h = c + f * (st[k] - c);
                st[k] = h;
                hr[k] = h;
            }
            if (gates == 3) {
                float *restrict yr = y + (t * n + r0 + r) * hd;
#pragma omp simd
                for (int64_t k = 0; k < hd; ++k)
                    yr[k] = sigmoid(zr[2 * hd + k]) * hr[k];
            }
        }
    }
}

/* Backward of rows [r0, r1): reads z, h and the upstream gradient g_out ([t, n, h]: dL/dh when
 * gates == 2, dL/dy when gates == 3; with last_only, [n, h]: the gradient of the last step
 * only, the others being 0), writes dz [t, n, gates*h]. */
static void bwd_tile(const float *restrict z, const float *restrict hs,
                     const float *restrict g_out, float *restrict dz, int64_t t_len, int64_t n,
                     int64_t hd, int gates, int last_only, int64_t r0, int64_t r1)
{
    float g[TILE * MAX_H], f_next[TILE * MAX_H], zeros[MAX_H];
    const int64_t zs = gates * hd;
    const int64_t rows = r1 - r0;
    memset(g, 0, sizeof(float) * rows * hd);
    memset(f_next, 0, sizeof(float) * rows * hd);
    memset(zeros, 0, sizeof(float) * hd);
    for (int64_t t = t_len - 1; t >= 0; --t) {
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t row = t * n + r0 + r;
            const float *restrict zr = z + row * zs;
            const float *restrict hr = hs + row * hd;
            const float *restrict hp = t > 0 ? hs + ((t - 1) * n + r0 + r) * hd : zeros;
            const float *restrict go = !last_only       ? g_out + row * hd
                                       : t == t_len - 1 ? g_out + (r0 + r) * hd
                                                        : zeros;
            float *restrict dzr = dz + row * zs;
            float *restrict gr = g + r * hd;
            float *restrict fr = f_next + r * hd;
            if (gates == 3) {
#pragma omp simd
                for (int64_t k = 0; k < hd; ++k) {
                    float o = sigmoid(zr[2 * hd + k]);
                    dzr[2 * hd + k] = go[k] * hr[k] * o * (1.0f - o);
                    gr[k] = go[k] * o + fr[k] * gr[k];
                }
            } else {
#pragma omp simd
                for (int64_t k = 0; k < hd; ++k)
                    gr[k] = go[k] + fr[k] * gr[k];
            }
#pragma omp simd
            for (int64_t k = 0; k < hd; ++k) {
                float f = sigmoid(zr[k]);
                float zc = zr[hd + k];
                float s = sigmoid(zc);
                float c = zc * s;
                float prev = hp[k];
                float gk = gr[k];
                float omf = 1.0f - f;
                dzr[k] = gk * (prev - c) * f * omf;
                dzr[hd + k] = gk * omf * s * (1.0f + zc * (1.0f - s));
                fr[k] = f;
            }
        }
    }
}

/* 1 for a size the kernels refuse (h outside [1, MAX_H], gates not 2 or 3), else 0. */
static int bad_size(int64_t hd, int gates)
{
    return hd > MAX_H || hd < 1 || (gates != 2 && gates != 3);
}

/* Rows of tile i: [*r0, *r1). */
static void tile_rows(int64_t i, int64_t n, int64_t *r0, int64_t *r1)
{
    *r0 = i * TILE;
    *r1 = *r0 + TILE < n ? *r0 + TILE : n;
}

/* z [t, n, gates*h] -> hs [t, n, h] and, when gates == 3, y [t, n, h]. Returns 0, or 1 for a
 * bad size (h > MAX_H or gates not 2/3). */
int linrnn_fwd(const float *z, float *hs, float *y, int64_t t_len, int64_t n, int64_t hd,
               int gates, int num_threads)
{
    if (bad_size(hd, gates))
        return 1;
    const int64_t tiles = (n + TILE - 1) / TILE;
    (void)num_threads;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (n >= MIN_PARALLEL_ROWS)
    for (int64_t i = 0; i < tiles; ++i) {
        int64_t r0, r1;
        tile_rows(i, n, &r0, &r1);
        fwd_tile(z, hs, y, t_len, n, hd, gates, r0, r1);
    }
    return 0;
}

/* Gradient of linrnn_fwd: g_out [t, n, h] (dL/dh for gates == 2, dL/dy for gates == 3), or
 * [n, h] for the last step alone when last_only != 0 -> dz [t, n, gates*h]. Returns 0, or 1 for
 * a bad size. */
int linrnn_bwd(const float *z, const float *hs, const float *g_out, float *dz, int64_t t_len,
               int64_t n, int64_t hd, int gates, int last_only, int num_threads)
{
    if (bad_size(hd, gates))
        return 1;
    const int64_t tiles = (n + TILE - 1) / TILE;
    (void)num_threads;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (n >= MIN_PARALLEL_ROWS)
    for (int64_t i = 0; i < tiles; ++i) {
        int64_t r0, r1;
        tile_rows(i, n, &r0, &r1);
        bwd_tile(z, hs, g_out, dz, t_len, n, hd, gates, last_only, r0, r1);
    }
    return 0;
}
