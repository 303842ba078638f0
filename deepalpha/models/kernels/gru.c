/* Fused CPU kernels of PyTorch's GRU layer (the nn.GRU equations), called through ctypes.
 *
 * Legend of dimension letters:
 *     t  time steps (oldest first)    n  rows (stocks)    f  input features    h  hidden units
 *     hp, fp  h and f rounded up to a multiple of VW (the SIMD width, gru_simd_width(): 16 floats
 *             with AVX-512, 8 with AVX, else 4): padded widths
 *
 * One layer, float32, C-contiguous, h_0 = 0, gate order r, z, n as in nn.GRU:
 *
 *     r   = sigmoid(x_t W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr)
 *     z   = sigmoid(x_t W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)
 *     hn  = h_{t-1} W_hn^T + b_hn,     n_t = tanh(x_t W_in^T + b_in + r * hn)
 *     h_t = (1 - z) * n_t + z * h_{t-1}
 *
 * Rows are split into tiles of TR rows; a tile walks through time with its state in L1. A
 * forward step of a tile is two small GEMMs, [TR, h] x [h, 3hp] (recurrent) and [TR, f] x
 * [f, 3hp] (input), on the register-blocked micro-kernel below (the weights, a few tens of KB,
 * stay in L1/L2), then the gates while the products are hot: no [t, n, 3h] pre-activation
 * ever goes to memory. The forward writes hs [t, n, h] and, for the backward, the gates
 * [t, n, 4h] = [r | z | n | hn].
 *
 * Backward, per tile in reverse time (g = dL/dh_t: the upstream gradient plus what flows back
 * from step t + 1):
 *
 *     da_n = g (1 - z) (1 - n^2),   da_r = da_n hn r (1 - r),   da_z = g (h_{t-1} - n) z (1 - z)
 *     d gi = [da_r | da_z | da_n],  d gh = [da_r | da_z | da_n r]
 *     dL/dh_{t-1} = g z + d gh W_hh,        dx_t = d gi W_ih
 *     dW_hh += d gh^T h_{t-1},  dW_ih += d gi^T x_t,  db_ih += sum d gi,  db_hh += sum d gh
 *
 * all five products on the same micro-kernel while the tile's gate gradients are hot. Each
 * tile sums its weight and bias gradients into its own slot of `partial`, which the caller adds
 * up in an order fixed by the shape: the result does not depend on the number of threads (every
 * row and every tile is computed by the same instructions whatever the OpenMP team size), and
 * nothing of size [t, n, h] is written besides dx.
 *
 * Weights come padded by the caller (zeros in the padding), gate g at offset g hp:
 *     wit [f, 3hp] = W_ih^T,  wht [h, 3hp] = W_hh^T             (forward)
 *     wi [3hp, fp] = W_ih,    wh [3hp, hp] = W_hh                (backward)
 *     bias [4hp]   = [b_ir + b_hr | b_iz + b_hz | b_in | b_hn]
 * and `partial` is [tiles, 3hp hp + 3hp fp + 4hp]: per tile dW_hh [3hp, hp], dW_ih [3hp, fp] and
 * [sum da_r | sum da_z | sum da_n | sum da_n r] (tiles = gru_tiles(n)).
 *
 * sigmoid and tanh use a branch-free exponential in the style of linrnn.c (Cephes-type range
 * reduction, degree-6 polynomial, relative error about 2e-7), which the compiler vectorises.
 */

#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) /* 32 vector registers of 16 floats: a 6 x 64 block in 24 of them */
#define VW 16 /* floats per SIMD vector (the vector type below) */
#define NV 4 /* vectors (columns / VW) of the micro-kernel's register block (at most 4) */
#elif defined(__AVX__) /* 16 registers of 8 floats: a 6 x 16 block in 12 of them */
#define VW 8
#define NV 2
#else /* 128-bit vectors (SSE, NEON): a 6 x 8 block */
#define VW 4
#define NV 2
#endif
#define MR 6 /* rows of the micro-kernel's register block */
#define TR 24 /* rows per tile: a multiple of MR */
#define MAX_H 256 /* largest padded hidden size and input width (tile buffers are on the stack) */
#define MIN_PARALLEL_ROWS 48

#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
typedef float vf __attribute__((vector_size(VW * sizeof(float)), aligned(4)));
#define ALIGNED __attribute__((aligned(64)))
#else
#error "gru.c needs GCC or Clang vector extensions"
#endif

int gru_max_h(void) { return MAX_H; }
int gru_simd_width(void) { return VW; }
int64_t gru_tiles(int64_t n) { return (n + TR - 1) / TR; }

/* 1 for a size the kernels refuse, else 0. */
static int gru_bad_size(int64_t hd, int64_t hp, int64_t f, int64_t fp)
{
    return hd < 1 || hp < hd || hp % VW != 0 || hp > MAX_H || f < 1 || fp < f || fp % VW != 0 ||
           fp > MAX_H;
}

#include "fastmath.h"

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|); absolute error about 1e-7. */
INLINE float gru_tanh(float x)
{
    float a = x < 0.0f ? -x : x;
    float e = exp_approx(-2.0f * a);
    float t = (1.0f - e) / (1.0f + e);
    return x < 0.0f ? -t : t;
}

/* c[mr rows, nv*VW cols] (+)= A[mr rows, k] b[k, nv*VW cols], A[i, k] = a[i ars + k aks]
 * (a row-major matrix: ars = its row stride, aks = 1; a transposed one: ars = 1, aks = its row
 * stride); c's old values are added when accumulate != 0. mr (1..MR) and nv (1..NV) are
 * compile-time constants at every call, so the accumulators live in registers. */
INLINE void micro(const float *restrict a, int64_t ars, int64_t aks, const float *restrict b,
                  int64_t ldb, float *restrict c, int64_t ldc, int64_t k_len, int mr, int nv,
                  int accumulate)
{
    vf acc[MR][4]; /* nv <= NV <= 4 of them used */
    for (int i = 0; i < mr; ++i)
        for (int v = 0; v < nv; ++v)
            acc[i][v] = accumulate ? *(const vf *)(c + i * ldc + v * VW) : (vf){0};
    for (int64_t k = 0; k < k_len; ++k) {
        vf bv[4];
        const float *restrict ak = a + k * aks;
        for (int v = 0; v < nv; ++v)
            bv[v] = *(const vf *)(b + k * ldb + v * VW);
        for (int i = 0; i < mr; ++i) {
            const float s = ak[i * ars];
            for (int v = 0; v < nv; ++v)
                acc[i][v] += s * bv[v];
        }
    }
    for (int i = 0; i < mr; ++i)
        for (int v = 0; v < nv; ++v)
            *(vf *)(c + i * ldc + v * VW) = acc[i][v];
}

#define MICRO(M, V) micro(a, ars, aks, b, ldb, c, ldc, k_len, M, V, accumulate)
#define MICRO_ROWS(M)                                                                           \
    case M:                                                                                     \
        switch (nv) {                                                                           \
        case 4: MICRO(M, 4); break;                                                             \
        case 3: MICRO(M, 3); break;                                                             \
        case 2: MICRO(M, 2); break;                                                             \
        default: MICRO(M, 1); break;                                                            \
        }                                                                                       \
        break;

/* The edge blocks of tile_gemm (fewer than MR rows or NV vectors). */
static void micro_edge(const float *restrict a, int64_t ars, int64_t aks, const float *restrict b,
                       int64_t ldb, float *restrict c, int64_t ldc, int64_t k_len, int mr, int nv,
                       int accumulate)
{
    switch (mr) {
        MICRO_ROWS(6)
        MICRO_ROWS(5)
        MICRO_ROWS(4)
        MICRO_ROWS(3)
        MICRO_ROWS(2)
    default:
        switch (nv) {
        case 4: MICRO(1, 4); break;
        case 3: MICRO(1, 3); break;
        case 2: MICRO(1, 2); break;
        default: MICRO(1, 1); break;
        }
    }
}

/* c[rows, cols] (+)= A[rows, k] b[k, cols] (A, accumulate: see micro); cols a multiple of VW.
 * Column blocks of NV vectors outermost, so a block of b stays in L1 across the row blocks. */
static void tile_gemm(const float *restrict a, int64_t ars, int64_t aks, const float *restrict b,
                      int64_t ldb, float *restrict c, int64_t ldc, int64_t rows, int64_t k_len,
                      int64_t cols, int accumulate)
{
    for (int64_t j = 0; j < cols; j += NV * VW) {
        const int nv = (cols - j) / VW >= NV ? NV : (int)((cols - j) / VW);
        for (int64_t i = 0; i < rows; i += MR) {
            const int mr = rows - i >= MR ? MR : (int)(rows - i);
            const float *ai = a + i * ars;
            float *ci = c + i * ldc + j;
            if (mr == MR && nv == NV)
                micro(ai, ars, aks, b + j, ldb, ci, ldc, k_len, MR, NV, accumulate);
            else
                micro_edge(ai, ars, aks, b + j, ldb, ci, ldc, k_len, mr, nv, accumulate);
        }
    }
}

/* Rows [r0, r0 + rows) of step t of src [t, n, width] into dst [TR, ld] (other entries kept). */
static void gather_rows(const float *restrict src, int64_t t, int64_t n, int64_t width,
                        int64_t r0, int64_t rows, float *restrict dst, int64_t ld)
{
    for (int64_t r = 0; r < rows; ++r)
        memcpy(dst + r * ld, src + ((t * n) + r0 + r) * width, sizeof(float) * width);
}

/* Forward of rows [r0, r0 + rows) over all steps. */
static void gru_fwd_tile(const float *restrict x, const float *restrict wit,
                         const float *restrict wht, const float *restrict bias,
                         float *restrict hs, float *restrict gates, int64_t t_len, int64_t n,
                         int64_t f, int64_t hd, int64_t hp, int64_t fp, int64_t r0, int64_t rows)
{
    float state[TR * MAX_H] ALIGNED; /* [TR, hp]: h_{t-1} of the tile (other rows stay 0) */
    float gh[TR * 3 * MAX_H] ALIGNED; /* [TR, 3hp]: h W_hh^T, then + x W_i{r,z}^T */
    float gin[TR * MAX_H] ALIGNED; /* [TR, hp]: x W_in^T */
    float xa[TR * MAX_H] ALIGNED; /* [TR, fp]: the step's inputs (a partial tile's) */
    const int64_t ldg = 3 * hp;
    const float *restrict br = bias, *restrict bz = bias + hp, *restrict bin = bias + 2 * hp;
    const float *restrict bhn = bias + 3 * hp;
    memset(state, 0, sizeof(float) * TR * hp);
    memset(xa, 0, sizeof(float) * TR * fp);
    for (int64_t t = 0; t < t_len; ++t) {
        const float *xt = x + (t * n + r0) * f; /* a full tile reads x in place */
        int64_t xs = f;
        if (rows < TR) {
            gather_rows(x, t, n, f, r0, rows, xa, fp);
            xt = xa, xs = fp;
        }
        if (t > 0)
            tile_gemm(state, hp, 1, wht, ldg, gh, ldg, TR, hd, ldg, 0);
        else /* h_0 = 0: no recurrent product at the first step */
            memset(gh, 0, sizeof(float) * TR * ldg);
        tile_gemm(xt, xs, 1, wit, ldg, gh, ldg, TR, f, 2 * hp, 1);
        tile_gemm(xt, xs, 1, wit + 2 * hp, ldg, gin, hp, TR, f, hp, 0);
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t row = t * n + r0 + r;
            const float *restrict ghr = gh + r * ldg;
            const float *restrict gnr = gin + r * hp;
            float *restrict st = state + r * hp;
            float *restrict hr = hs + row * hd;
            if (gates) {
                float *restrict sv = gates + row * 4 * hd;
#pragma omp simd
                for (int64_t k = 0; k < hd; ++k) {
                    const float rg = sigmoid(ghr[k] + br[k]);
                    const float zg = sigmoid(ghr[hp + k] + bz[k]);
                    const float hn = ghr[2 * hp + k] + bhn[k];
                    const float ng = gru_tanh(gnr[k] + bin[k] + rg * hn);
                    const float h = ng + zg * (st[k] - ng);
                    st[k] = h;
                    hr[k] = h;
                    sv[k] = rg;
                    sv[hd + k] = zg;
                    sv[2 * hd + k] = ng;
                    sv[3 * hd + k] = hn;
                }
            } else { /* inference: nothing saved */
#pragma omp simd
                for (int64_t k = 0; k < hd; ++k) {
                    const float rg = sigmoid(ghr[k] + br[k]);
                    const float zg = sigmoid(ghr[hp + k] + bz[k]);
                    const float hn = ghr[2 * hp + k] + bhn[k];
                    const float ng = gru_tanh(gnr[k] + bin[k] + rg * hn);
                    const float h = ng + zg * (st[k] - ng);
                    st[k] = h;
                    hr[k] = h;
                }
            }
        }
    }
}

/* Backward of rows [r0, r0 + rows): see the file comment. pt: this tile's slot of partial. */
static void gru_bwd_tile(const float *restrict x, const float *restrict gates,
                         const float *restrict hs, const float *restrict g_out,
                         const float *restrict wi, const float *restrict wh, float *restrict dx,
                         float *restrict pt, int64_t t_len, int64_t n, int64_t f, int64_t hd,
                         int64_t hp, int64_t fp, int last_only, int64_t r0, int64_t rows)
{
    float carry[TR * MAX_H] ALIGNED; /* [TR, hp]: dL/dh_t flowing back from step t + 1 */
    float da[TR * 4 * MAX_H] ALIGNED; /* [TR, 4hp]: [da_r | da_z | da_n | da_n r], padding 0 */
    float hprev[TR * MAX_H] ALIGNED; /* [TR, hp]: h_{t-1} of the tile, padding 0 */
    float xa[TR * MAX_H] ALIGNED; /* [TR, fp]: x_t of the tile, padding 0 */
    float dxa[TR * MAX_H] ALIGNED; /* [TR, fp]: dx_t of the tile */
    float zeros[MAX_H] ALIGNED;
    const int64_t ldd = 4 * hp;
    float *restrict dwh = pt, *restrict dwi = pt + 3 * hp * hp, *restrict db = dwi + 3 * hp * fp;
    memset(pt, 0, sizeof(float) * (3 * hp * hp + 3 * hp * fp + 4 * hp));
    memset(carry, 0, sizeof(float) * TR * hp);
    memset(da, 0, sizeof(float) * TR * ldd);
    memset(hprev, 0, sizeof(float) * TR * hp);
    memset(xa, 0, sizeof(float) * TR * fp);
    memset(zeros, 0, sizeof(float) * hd);
    for (int64_t t = t_len - 1; t >= 0; --t) {
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t row = t * n + r0 + r;
            const float *restrict sv = gates + row * 4 * hd;
            const float *restrict hp_ = t > 0 ? hs + row * hd - n * hd : zeros;
            const float *restrict go = !last_only       ? g_out + row * hd
                                       : t == t_len - 1 ? g_out + (r0 + r) * hd
                                                        : zeros;
            float *restrict cr = carry + r * hp;
            float *restrict dr = da + r * ldd;
#pragma omp simd
            for (int64_t k = 0; k < hd; ++k) {
                const float g = go[k] + cr[k];
                const float rg = sv[k], zg = sv[hd + k], ng = sv[2 * hd + k], hn = sv[3 * hd + k];
                const float dan = g * (1.0f - zg) * (1.0f - ng * ng);
                const float dar = dan * hn * rg * (1.0f - rg);
                const float daz = g * (hp_[k] - ng) * zg * (1.0f - zg);
                const float dhn = dan * rg;
                dr[k] = dar;
                dr[hp + k] = daz;
                dr[2 * hp + k] = dan;
                dr[3 * hp + k] = dhn;
                db[k] += dar;
                db[hp + k] += daz;
                db[2 * hp + k] += dan;
                db[3 * hp + k] += dhn;
                cr[k] = g * zg; /* the direct path; the product below adds d gh W_hh */
            }
        }
        gather_rows(x, t, n, f, r0, rows, xa, fp);
        /* dW_ih += d gi^T x_t (d gi = da[:, :3hp], read transposed; k runs over the rows) */
        tile_gemm(da, 1, ldd, xa, fp, dwi, fp, 3 * hp, rows, fp, 1);
        if (dx) { /* dx_t = d gi W_ih */
            tile_gemm(da, ldd, 1, wi, fp, dxa, fp, TR, 3 * hp, fp, 0);
            for (int64_t r = 0; r < rows; ++r)
                memcpy(dx + (t * n + r0 + r) * f, dxa + r * fp, sizeof(float) * f);
        }
        if (t == 0) /* h_0 = 0: no dW_hh term, and dL/dh_0 is not needed */
            break;
        gather_rows(hs, t - 1, n, hd, r0, rows, hprev, hp);
        /* dW_hh += d gh^T h_{t-1}: rows r, z from da[:, :2hp], rows n from da[:, 3hp:] */
        tile_gemm(da, 1, ldd, hprev, hp, dwh, hp, 2 * hp, rows, hp, 1);
        tile_gemm(da + 3 * hp, 1, ldd, hprev, hp, dwh + 2 * hp * hp, hp, hp, rows, hp, 1);
        /* dL/dh_{t-1} = g z + d gh W_hh */
        tile_gemm(da, ldd, 1, wh, hp, carry, hp, TR, 2 * hp, hp, 1);
        tile_gemm(da + 3 * hp, ldd, 1, wh + 2 * hp * hp, hp, carry, hp, TR, hp, hp, 1);
    }
}

/* x [t, n, f] -> hs [t, n, h] and, unless gates is NULL, the saved gates [t, n, 4h]. Weights
 * and bias padded as in the file comment. Returns 0, or 1 for a bad size. */
int gru_fwd(const float *x, const float *wit, const float *wht, const float *bias, float *hs,
            float *gates, int64_t t_len, int64_t n, int64_t f, int64_t hd, int64_t hp,
            int64_t fp, int num_threads)
{
    if (gru_bad_size(hd, hp, f, fp))
        return 1;
    const int64_t tiles = gru_tiles(n);
    (void)num_threads;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (n >= MIN_PARALLEL_ROWS)
    for (int64_t i = 0; i < tiles; ++i) {
        const int64_t r0 = i * TR, rows = r0 + TR < n ? TR : n - r0;
        gru_fwd_tile(x, wit, wht, bias, hs, gates, t_len, n, f, hd, hp, fp, r0, rows);
    }
    return 0;
}

/* Gradient of gru_fwd: x, gates, hs as saved, g_out = dL/dhs [t, n, h] (or [n, h], the last
 * step alone, when last_only != 0) -> dx [t, n, f] (skipped when NULL) and the per-tile sums
 * partial [tiles, 3hp hp + 3hp fp + 4hp]. Returns 0, or 1 for a bad size. */
int gru_bwd(const float *x, const float *gates, const float *hs, const float *g_out,
            const float *wi, const float *wh, float *dx, float *partial, int64_t t_len,
            int64_t n, int64_t f, int64_t hd, int64_t hp, int64_t fp, int last_only,
            int num_threads)
{
    if (gru_bad_size(hd, hp, f, fp))
        return 1;
    const int64_t tiles = gru_tiles(n), slot = 3 * hp * hp + 3 * hp * fp + 4 * hp;
    (void)num_threads;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (n >= MIN_PARALLEL_ROWS)
    for (int64_t i = 0; i < tiles; ++i) {
        const int64_t r0 = i * TR, rows = r0 + TR < n ? TR : n - r0;
        gru_bwd_tile(x, gates, hs, g_out, wi, wh, dx, partial + i * slot, t_len, n, f, hd, hp,
                     fp, last_only, r0, rows);
    }
    return 0;
}
