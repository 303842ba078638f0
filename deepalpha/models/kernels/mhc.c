/* Fused CPU kernels for manifold-constrained hyper-connections (mHC), called through ctypes.
 *
 * Legend of dimension letters:
 *     b        batch (all leading dims flattened)
 *     s, i, j  residual streams (n of them; rows i = output stream, columns j = input stream)
 *     d        features per stream
 *
 * Every array is float32 and C-contiguous; sizes are int64_t. Output / gradient pointers marked
 * "nullable" may be NULL (that output is then not computed). ``num_threads`` is the size of the
 * OpenMP team over the batch (pass torch.get_num_threads()); without OpenMP the code runs
 * serially and ignores it. Plain C99 (no torch or Python headers); built by
 * deepalpha/models/kernels/__init__.py with ``cc -O3 -fopenmp -shared -fPIC`` (no -ffast-math:
 * float reductions keep IEEE semantics, the dot products use 8 explicit partial sums instead).
 *
 * Sinkhorn works on blocks of LANES samples stored lane-last, ``[i][j][lane]``, so every loop
 * over the lanes has a compile-time trip count and vectorises across samples (like the eager
 * version's batch-last layout). The backward recomputes the forward iteration of its block from
 * the saved softmax into a per-thread workspace, then runs the exact reverse loop of
 * deepalpha/models/sinkhorn.py (``_SinkhornFn.backward``).
 */

#include <stdint.h>
#include <stdlib.h>
#include <math.h>

#ifndef LANES
#define LANES 8 /* samples per Sinkhorn block */
#endif
#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif
#define MAX_N 16 /* largest n the Sinkhorn kernels accept */
#define MIN_PARALLEL_WORK 16384 /* float multiply-adds below which one thread is used */

int mhc_abi_version(void) { return 1; }

int mhc_max_n(void) { return MAX_N; }

/* ---------------------------------------------------------------------------------------- */
/* helpers                                                                                   */

/* sum_k a[k] b[k] with 8 partial sums (vectorisable without -ffast-math) */
static inline float dot(const float *restrict a, const float *restrict b, int64_t d)
{
    float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    int64_t k = 0;
    for (; k + 8 <= d; k += 8)
        for (int l = 0; l < 8; ++l)
            acc[l] += a[k + l] * b[k + l];
    float tail = 0.f;
    for (; k < d; ++k)
        tail += a[k] * b[k];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

/* [b, nn] samples b0 .. b0+LANES-1 -> block [nn][LANES]; lanes past the batch get ``fill`` */
INLINE void load_block(const float *restrict src, float *restrict blk, int64_t b0, int64_t b,
                       int nn, float fill)
{
    for (int l = 0; l < LANES; ++l) {
        if (b0 + l < b) {
            const float *p = src + (b0 + l) * nn;
            for (int k = 0; k < nn; ++k)
                blk[k * LANES + l] = p[k];
        } else {
            for (int k = 0; k < nn; ++k)
                blk[k * LANES + l] = fill;
        }
    }
}

/* block [nn][LANES] -> [b, nn] (valid lanes only) */
INLINE void store_block(const float *restrict blk, float *restrict dst, int64_t b0, int64_t b,
                        int nn)
{
    for (int l = 0; l < LANES && b0 + l < b; ++l) {
        float *p = dst + (b0 + l) * nn;
        for (int k = 0; k < nn; ++k)
            p[k] = blk[k * LANES + l];
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Sinkhorn-Knopp                                                                            */

/* row softmax in place, max-subtracted: m [n][n][LANES] */
INLINE void softmax_rows(float *restrict m, int n)
{
    for (int i = 0; i < n; ++i) {
        float *row = m + i * n * LANES;
        float mx[LANES], sum[LANES];
        for (int l = 0; l < LANES; ++l)
            mx[l] = row[l];
        for (int j = 1; j < n; ++j)
            for (int l = 0; l < LANES; ++l)
                mx[l] = row[j * LANES + l] > mx[l] ? row[j * LANES + l] : mx[l];
        for (int j = 0; j < n; ++j)
            for (int l = 0; l < LANES; ++l)
                row[j * LANES + l] = expf(row[j * LANES + l] - mx[l]);
        for (int l = 0; l < LANES; ++l)
            sum[l] = row[l];
        for (int j = 1; j < n; ++j)
            for (int l = 0; l < LANES; ++l)
                sum[l] += row[j * LANES + l];
        for (int l = 0; l < LANES; ++l)
            sum[l] = 1.f / sum[l];
        for (int j = 0; j < n; ++j)
            for (int l = 0; l < LANES; ++l)
                row[j * LANES + l] *= sum[l];
    }
}

/* Record of one round for the backward: m after the row step [n][n][L], then r, 1/r, 1/c
 * [n][L] each. */
static inline int64_t round_floats(int n) { return ((int64_t)n * n + 3 * (int64_t)n) * LANES; }

/* t_max rounds of (column normalise with +eps, row normalise) on m [n][n][LANES] in place;
 * rec (nullable) receives round_floats(n) floats per round. */
INLINE void sinkhorn_rounds(float *restrict m, int n, int t_max, float eps, float *restrict rec)
{
    float ic[MAX_N * LANES];
    for (int t = 0; t < t_max; ++t) {
        /* column sums c_j = sum_i m_ij + eps; m_ij /= c_j */
        for (int k = 0; k < n * LANES; ++k)
            ic[k] = m[k];
        for (int i = 1; i < n; ++i)
            for (int k = 0; k < n * LANES; ++k)
                ic[k] += m[i * n * LANES + k];
        for (int k = 0; k < n * LANES; ++k)
            ic[k] = 1.f / (ic[k] + eps);
        for (int i = 0; i < n; ++i)
            for (int k = 0; k < n * LANES; ++k)
                m[i * n * LANES + k] *= ic[k];
        /* row sums r_i = sum_j m_ij; m_ij /= r_i */
        float *r_rec = rec ? rec + n * n * LANES : NULL;
        for (int i = 0; i < n; ++i) {
            float *row = m + i * n * LANES;
            float r[LANES], ir[LANES];
            for (int l = 0; l < LANES; ++l)
                r[l] = row[l];
            for (int j = 1; j < n; ++j)
                for (int l = 0; l < LANES; ++l)
                    r[l] += row[j * LANES + l];
            for (int l = 0; l < LANES; ++l)
                ir[l] = 1.f / r[l];
            for (int j = 0; j < n; ++j)
                for (int l = 0; l < LANES; ++l)
                    row[j * LANES + l] *= ir[l];
            if (rec) {
                for (int l = 0; l < LANES; ++l) {
                    r_rec[i * LANES + l] = r[l];
                    r_rec[(n + i) * LANES + l] = ir[l];
                }
            }
        }
        if (rec) {
            for (int k = 0; k < n * n * LANES; ++k)
                rec[k] = m[k];
            for (int k = 0; k < n * LANES; ++k)
                r_rec[2 * n * LANES + k] = ic[k];
            rec += round_floats(n);
        }
    }
}

/* forward of the block of samples b0 .. b0+LANES-1 (see mhc_sinkhorn_fwd) */
INLINE void fwd_block(const float *logits, float *out, float *soft, int64_t b0, int64_t b, int n,
                      int t_max, float eps)
{
    float m[MAX_N * MAX_N * LANES];
    load_block(logits, m, b0, b, n * n, 0.f);
    softmax_rows(m, n);
    if (soft)
        store_block(m, soft, b0, b, n * n);
    sinkhorn_rounds(m, n, t_max, eps, NULL);
    store_block(m, out, b0, b, n * n);
}

/* backward of one block (see mhc_sinkhorn_bwd); rec: t_max * round_floats(n) floats */
INLINE void bwd_block(const float *soft, const float *grad_out, float *grad_logits, int64_t b0,
                      int64_t b, int n, int t_max, float eps, float *restrict rec)
{
    float s[MAX_N * MAX_N * LANES], g[MAX_N * MAX_N * LANES], dc[MAX_N * LANES];
    load_block(soft, s, b0, b, n * n, 1.f / (float)n);
    load_block(grad_out, g, b0, b, n * n, 0.f);
    {
        float m[MAX_N * MAX_N * LANES];
        for (int k = 0; k < n * n * LANES; ++k)
            m[k] = s[k];
        sinkhorn_rounds(m, n, t_max, eps, rec);
    }
    for (int t = t_max - 1; t >= 0; --t) {
        const float *restrict mrow = rec + t * round_floats(n);
        const float *restrict r = mrow + n * n * LANES;
        const float *restrict ir = r + n * LANES;
        const float *restrict ic = ir + n * LANES;
        /* through m_row = m_col / r: g_ij <- (g_ij - sum_j' g_ij' m_row_ij') / r_i */
        for (int i = 0; i < n; ++i) {
            float *gi = g + i * n * LANES;
            const float *mi = mrow + i * n * LANES;
            float acc[LANES];
            for (int l = 0; l < LANES; ++l)
                acc[l] = gi[l] * mi[l];
            for (int j = 1; j < n; ++j)
                for (int l = 0; l < LANES; ++l)
                    acc[l] += gi[j * LANES + l] * mi[j * LANES + l];
            for (int j = 0; j < n; ++j)
                for (int l = 0; l < LANES; ++l)
                    gi[j * LANES + l] = (gi[j * LANES + l] - acc[l]) * ir[i * LANES + l];
        }
        /* through m_col = m / c (c includes eps), m_col_ij = m_row_ij r_i:
         * g_ij <- (g_ij - sum_i' g_i'j m_col_i'j) / c_j */
        for (int k = 0; k < n * LANES; ++k)
            dc[k] = 0.f;
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j)
                for (int l = 0; l < LANES; ++l)
                    dc[j * LANES + l] += g[(i * n + j) * LANES + l] *
                                         (mrow[(i * n + j) * LANES + l] * r[i * LANES + l]);
        for (int i = 0; i < n; ++i)
            for (int k = 0; k < n * LANES; ++k)
                g[i * n * LANES + k] = (g[i * n * LANES + k] - dc[k]) * ic[k];
    }
    /* through the row softmax: g_ij <- s_ij (g_ij - sum_j' g_ij' s_ij') */
    for (int i = 0; i < n; ++i) {
        float *gi = g + i * n * LANES;
        const float *si = s + i * n * LANES;
        float acc[LANES];
        for (int l = 0; l < LANES; ++l)
            acc[l] = gi[l] * si[l];
        for (int j = 1; j < n; ++j)
            for (int l = 0; l < LANES; ++l)
                acc[l] += gi[j * LANES + l] * si[j * LANES + l];
        for (int j = 0; j < n; ++j)
            for (int l = 0; l < LANES; ++l)
                gi[j * LANES + l] = si[j * LANES + l] * (gi[j * LANES + l] - acc[l]);
    }
    store_block(g, grad_logits, b0, b, n * n);
}

/* Copies of the block functions with n fixed at compile time (unrolled), and one for any n. */
typedef void (*fwd_block_fn)(const float *, float *, float *, int64_t, int64_t, int, int, float);
typedef void (*bwd_block_fn)(const float *, const float *, float *, int64_t, int64_t, int, int,
                             float, float *);
#define INSTANCE(NAME, N)                                                                        \
    static void fwd_block_##NAME(const float *a, float *o, float *p, int64_t b0, int64_t b,       \
                                 int n, int t, float e)                                           \
    {                                                                                             \
        (void)n;                                                                                  \
        fwd_block(a, o, p, b0, b, N, t, e);                                                       \
    }                                                                                             \
    static void bwd_block_##NAME(const float *p, const float *g, float *o, int64_t b0, int64_t b, \
                                 int n, int t, float e, float *w)                                 \
    {                                                                                             \
        (void)n;                                                                                  \
        bwd_block(p, g, o, b0, b, N, t, e, w);                                                    \
    }
INSTANCE(2, 2)
INSTANCE(3, 3)
INSTANCE(4, 4)
INSTANCE(any, n)

static fwd_block_fn pick_fwd(int n)
{
    return n == 4 ? fwd_block_4 : n == 2 ? fwd_block_2 : n == 3 ? fwd_block_3 : fwd_block_any;
}

static bwd_block_fn pick_bwd(int n)
{
    return n == 4 ? bwd_block_4 : n == 2 ? bwd_block_2 : n == 3 ? bwd_block_3 : bwd_block_any;
}

/* Forward. logits [b, n, n] (already floored) -> out [b, n, n]; soft [b, n, n] (nullable)
 * receives the row softmax the backward needs. Returns 0, or -1 unless 1 <= n <= MAX_N and
 * t_max >= 0. */
int mhc_sinkhorn_fwd(const float *logits, float *out, float *soft, int64_t b, int n, int t_max,
                     float eps, int num_threads)
{
    if (n < 1 || n > MAX_N || t_max < 0)
        return -1;
    const fwd_block_fn block = pick_fwd(n);
    const int64_t nblk = (b + LANES - 1) / LANES;
    const int par = b * n * n * (int64_t)(t_max + 2) >= MIN_PARALLEL_WORK / 4;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (par)
    for (int64_t blk = 0; blk < nblk; ++blk)
        block(logits, out, soft, blk * LANES, b, n, t_max, eps);
    return 0;
}

/* Backward. soft [b, n, n] (the forward's row softmax), grad_out [b, n, n] -> grad_logits
 * [b, n, n]: the exact gradient of the unrolled iteration. Returns 0, -1 on bad n / t_max as in
 * the forward, or -2 when the per-thread workspace (t_max * (n*n + 3n) * LANES floats) cannot be
 * allocated. */
int mhc_sinkhorn_bwd(const float *soft, const float *grad_out, float *grad_logits, int64_t b,
                     int n, int t_max, float eps, int num_threads)
{
    if (n < 1 || n > MAX_N || t_max < 0)
        return -1;
    const bwd_block_fn block = pick_bwd(n);
    const int64_t nblk = (b + LANES - 1) / LANES;
    const int par = b * n * n * (int64_t)(t_max + 2) >= MIN_PARALLEL_WORK / 4;
    const size_t rec_floats = (size_t)(t_max > 0 ? t_max : 1) * (size_t)round_floats(n);
    int failed = 0;
#pragma omp parallel num_threads(num_threads) if (par)
    {
        float *rec = malloc(rec_floats * sizeof(float));
        if (!rec) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t blk = 0; blk < nblk; ++blk)
            if (rec)
                block(soft, grad_out, grad_logits, blk * LANES, b, n, t_max, eps, rec);
        free(rec);
    }
    return failed ? -2 : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* pre_mix: u = sum_s h_pre[s] x[s, :]                                                       */

/* x [b, s, d], h_pre [b, s] -> u [b, d] */
void mhc_pre_mix_fwd(const float *x, const float *h_pre, float *u, int64_t b, int64_t s,
                     int64_t d, int num_threads)
{
#pragma omp parallel for num_threads(num_threads) schedule(static) if (b * s * d >= MIN_PARALLEL_WORK)
    for (int64_t n = 0; n < b; ++n) {
        const float *restrict xb = x + n * s * d;
        const float *restrict hb = h_pre + n * s;
        float *restrict ub = u + n * d;
        for (int64_t k = 0; k < d; ++k)
            ub[k] = 0.f;
        for (int64_t t = 0; t < s; ++t) {
            const float a = hb[t];
            const float *restrict xt = xb + t * d;
            for (int64_t k = 0; k < d; ++k)
                ub[k] += a * xt[k];
        }
    }
}

/* x [b, s, d], h_pre [b, s], grad_u [b, d] -> grad_x [b, s, d] (nullable) = h_pre grad_u,
 * grad_h_pre [b, s] (nullable) = <grad_u, x[s, :]> */
void mhc_pre_mix_bwd(const float *x, const float *h_pre, const float *grad_u, float *grad_x,
                     float *grad_h_pre, int64_t b, int64_t s, int64_t d, int num_threads)
{
#pragma omp parallel for num_threads(num_threads) schedule(static) if (b * s * d >= MIN_PARALLEL_WORK)
    for (int64_t n = 0; n < b; ++n) {
        const float *restrict gb = grad_u + n * d;
        for (int64_t t = 0; t < s; ++t) {
            if (grad_x) {
                const float a = h_pre[n * s + t];
                float *restrict gx = grad_x + (n * s + t) * d;
                for (int64_t k = 0; k < d; ++k)
                    gx[k] = a * gb[k];
            }
            if (grad_h_pre)
                grad_h_pre[n * s + t] = dot(gb, x + (n * s + t) * d, d);
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* post_mix: out[i, :] = sum_j h_res[i, j] x[j, :] + h_post[i] y[:]                          */

/* x [b, s, d], h_res [b, s, s], h_post [b, s], y [b, d] -> out [b, s, d] */
void mhc_post_mix_fwd(const float *x, const float *h_res, const float *h_post, const float *y,
                      float *out, int64_t b, int64_t s, int64_t d, int num_threads)
{
#pragma omp parallel for num_threads(num_threads) schedule(static) if (b * s * s * d >= MIN_PARALLEL_WORK)
    for (int64_t n = 0; n < b; ++n) {
        const float *restrict xb = x + n * s * d;
        const float *restrict hb = h_res + n * s * s;
        const float *restrict yb = y + n * d;
        for (int64_t i = 0; i < s; ++i) {
            float *restrict o = out + (n * s + i) * d;
            for (int64_t k = 0; k < d; ++k)
                o[k] = 0.f;
            for (int64_t j = 0; j < s; ++j) {
                const float a = hb[i * s + j];
                const float *restrict xj = xb + j * d;
                for (int64_t k = 0; k < d; ++k)
                    o[k] += a * xj[k];
            }
            const float p = h_post[n * s + i];
            for (int64_t k = 0; k < d; ++k)
                o[k] += p * yb[k];
        }
    }
}

/* x [b, s, d], h_res [b, s, s], h_post [b, s], y [b, d], grad_out [b, s, d] ->
 *   grad_x [b, s, d]      (nullable) grad_x[j, :] = sum_i h_res[i, j] grad_out[i, :]
 *   grad_h_res [b, s, s]  (nullable) grad_h_res[i, j] = <grad_out[i, :], x[j, :]>
 *   grad_h_post [b, s]    (nullable) grad_h_post[i] = <grad_out[i, :], y>
 *   grad_y [b, d]         (nullable) grad_y = sum_i h_post[i] grad_out[i, :] */
void mhc_post_mix_bwd(const float *x, const float *h_res, const float *h_post, const float *y,
                      const float *grad_out, float *grad_x, float *grad_h_res,
                      float *grad_h_post, float *grad_y, int64_t b, int64_t s, int64_t d,
                      int num_threads)
{
#pragma omp parallel for num_threads(num_threads) schedule(static) if (b * s * s * d >= MIN_PARALLEL_WORK)
    for (int64_t n = 0; n < b; ++n) {
        const float *restrict xb = x + n * s * d;
        const float *restrict hb = h_res + n * s * s;
        const float *restrict pb = h_post + n * s;
        const float *restrict yb = y + n * d;
        const float *restrict gb = grad_out + n * s * d;
        if (grad_x) {
            for (int64_t j = 0; j < s; ++j) {
                float *restrict o = grad_x + (n * s + j) * d;
                for (int64_t k = 0; k < d; ++k)
                    o[k] = 0.f;
                for (int64_t i = 0; i < s; ++i) {
                    const float a = hb[i * s + j];
                    const float *restrict gi = gb + i * d;
                    for (int64_t k = 0; k < d; ++k)
                        o[k] += a * gi[k];
                }
            }
        }
        if (grad_h_res)
            for (int64_t i = 0; i < s; ++i)
                for (int64_t j = 0; j < s; ++j)
                    grad_h_res[(n * s + i) * s + j] = dot(gb + i * d, xb + j * d, d);
        if (grad_h_post)
            for (int64_t i = 0; i < s; ++i)
                grad_h_post[n * s + i] = dot(gb + i * d, yb, d);
        if (grad_y) {
            float *restrict o = grad_y + n * d;
            for (int64_t k = 0; k < d; ++k)
                o[k] = 0.f;
            for (int64_t i = 0; i < s; ++i) {
                const float a = pb[i];
                const float *restrict gi = gb + i * d;
                for (int64_t k = 0; k < d; ++k)
                    o[k] += a * gi[k];
            }
        }
    }
}
