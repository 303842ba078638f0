/* Fused CPU recurrence of PyTorch's GRU layer (nn.GRU equations), called through ctypes.
 *
 * Legend of dimension letters:
 *     t  time steps (oldest first)    n  rows (stocks)    h  hidden units
 *     hp h rounded up to a multiple of VW (the SIMD width): the padded gate width
 *
 * One layer, float32, C-contiguous. The input projection of all steps is one GEMM done by the
 * caller (torch), with the r and z parts of the recurrent bias folded in:
 *
 *     gi [t, n, 3h] = x_t W_ih^T + b_ih + [b_hr | b_hz | 0]          (gate order r, z, n)
 *
 * and the recurrence (h_0 = 0) is, per step, exactly PyTorch's:
 *
 *     gh  = h_{t-1} W_hh^T                       [n, 3h]   (recurrent GEMM, in here)
 *     r   = sigmoid(gi_r + gh_r),  z = sigmoid(gi_z + gh_z)
 *     hn  = gh_n + b_hn,           n_t = tanh(gi_n + r * hn)
 *     h_t = (1 - z) * n_t + z * h_{t-1}
 *
 * Rows are split into tiles of TR rows; a tile walks through time with its state h and its
 * recurrent product gh in L1 (gh never goes to memory), so a step is one small GEMM
 * [TR, h] x [h, 3hp] (register-blocked micro-kernel below, W_hh^T streamed from L2) followed by
 * the gates while the tile is hot. Tiles are spread over an OpenMP team of num_threads; every
 * row is computed by the same instructions whatever the team size, so results do not depend on
 * it. The forward writes hs [t, n, h] and, for the backward, the gates [t, n, 4h] =
 * [r | z | n | hn]. The backward (reverse time, g = dL/dh_t) writes
 *
 *     da [t, n, 4h] = [da_r | da_z | da_n | da_n * r]
 *         dn = g (1 - z),  da_n = dn (1 - n^2),  da_r = da_n hn r (1 - r),
 *         da_z = g (h_{t-1} - n) z (1 - z)
 *     dL/dh_{t-1} += g z + [da_r | da_z | da_n r] W_hh            (recurrent GEMM, in here)
 *
 * from which the caller gets every other gradient as large GEMMs over all steps:
 * d gi = da[..., :3h], d gh = [da_r | da_z | da_n r], dW_hh = sum_t d gh_t^T h_{t-1},
 * dW_ih = d gi^T x, dx = d gi W_ih, db_ih = sum d gi, db_hh = sum d gh.
 *
 * The weights come padded by the caller: wt [h, 3hp] (W_hh^T, gate g in columns
 * [g hp, g hp + h), zeros elsewhere) for the forward and w [3hp, hp] (W_hh, gate g in rows
 * [g hp, g hp + h), zeros elsewhere) for the backward.
 *
 * sigmoid and tanh use the branch-free exponential of linrnn.c's style (Cephes-type range
 * reduction, degree-6 polynomial, relative error about 2e-7), which the compiler vectorises.
 */

#include <stdint.h>
#include <string.h>

#define VW 16 /* floats per SIMD vector (the vector type below; 512 bits) */
#define MR 6 /* rows of the micro-kernel's register block */
#define NV 4 /* vectors (columns / VW) of the micro-kernel's register block */
#define TR 24 /* rows per tile: a multiple of MR */
#define MAX_H 256 /* largest hidden size (the per-tile buffers live on the stack) */
#define MIN_PARALLEL_ROWS 48

#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
typedef float vf __attribute__((vector_size(VW * sizeof(float)), aligned(4)));
#define ALIGNED __attribute__((aligned(64)))
#else
#error "gru.c needs GCC or Clang vector extensions"
#endif

int gru_max_h(void) { return MAX_H; }

/* 1 for a size the kernels refuse, else 0. */
static int gru_bad_size(int64_t hd, int64_t hp)
{
    return hd < 1 || hd > MAX_H || hp < hd || hp % VW != 0 || hp > MAX_H;
}

INLINE float gru_exp(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float r = x * 1.44269504088896341f + shifter;
    union { float f; int32_t i; } bits = {r};
    int32_t n = bits.i - 0x4B400000; /* the integer round(x / ln 2) */
    float fn = r - shifter;
    float y = x - fn * 0.693359375f;
    y = y - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * y + 1.3981999507e-3f;
    p = p * y + 8.3334519073e-3f;
    p = p * y + 4.1665795894e-2f;
    p = p * y + 1.6666665459e-1f;
    p = p * y + 5.0000001201e-1f;
    p = p * y * y + y + 1.0f;
    union { int32_t i; float f; } scale = {(n + 127) << 23};
    return p * scale.f;
}

INLINE float gru_sigmoid(float x) { return 1.0f / (1.0f + gru_exp(-x)); }

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|); absolute error about 1e-7. */
INLINE float gru_tanh(float x)
{
    float a = x < 0.0f ? -x : x;
    float e = gru_exp(-2.0f * a);
    float t = (1.0f - e) / (1.0f + e);
    return x < 0.0f ? -t : t;
}

/* c[MR rows, nv*VW cols] (+)= a[MR rows, k] b[k, nv*VW cols] (c's old values added when
 * accumulate != 0); row strides lda, ldb, ldc. nv (1..NV) and accumulate are compile-time
 * constants at every call, so the loops unroll into registers. */
INLINE void micro(const float *restrict a, int64_t lda, const float *restrict b, int64_t ldb,
                  float *restrict c, int64_t ldc, int64_t k_len, int nv, int accumulate)
{
    vf acc[MR][NV];
    for (int i = 0; i < MR; ++i)
        for (int v = 0; v < nv; ++v)
            acc[i][v] = accumulate ? *(const vf *)(c + i * ldc + v * VW) : (vf){0};
    for (int64_t k = 0; k < k_len; ++k) {
        vf bv[NV];
        for (int v = 0; v < nv; ++v)
            bv[v] = *(const vf *)(b + k * ldb + v * VW);
        for (int i = 0; i < MR; ++i) {
            const float s = a[i * lda + k];
            for (int v = 0; v < nv; ++v)
                acc[i][v] += s * bv[v];
        }
    }
    for (int i = 0; i < MR; ++i)
        for (int v = 0; v < nv; ++v)
            *(vf *)(c + i * ldc + v * VW) = acc[i][v];
}

/* c[rows, cols] (+)= a[rows, k] b[k, cols] (see micro) for rows a multiple of MR and cols a
 * multiple of VW: column blocks of NV vectors outermost (a block of b stays in L1 across the row
 * blocks). */
INLINE void tile_gemm(const float *restrict a, int64_t lda, const float *restrict b, int64_t ldb,
                      float *restrict c, int64_t ldc, int64_t rows, int64_t k_len, int64_t cols,
                      int accumulate)
{
    for (int64_t j = 0; j < cols; j += NV * VW) {
        const int64_t left = (cols - j) / VW;
        for (int64_t i = 0; i < rows; i += MR) {
            const float *ai = a + i * lda;
            float *ci = c + i * ldc + j;
            switch (left >= NV ? NV : left) {
            case 4: micro(ai, lda, b + j, ldb, ci, ldc, k_len, 4, accumulate); break;
            case 3: micro(ai, lda, b + j, ldb, ci, ldc, k_len, 3, accumulate); break;
            case 2: micro(ai, lda, b + j, ldb, ci, ldc, k_len, 2, accumulate); break;
            default: micro(ai, lda, b + j, ldb, ci, ldc, k_len, 1, accumulate); break;
            }
        }
    }
}

/* Rows of tile i: [*r0, *r1). */
static void gru_tile_rows(int64_t i, int64_t n, int64_t *r0, int64_t *r1)
{
    *r0 = i * TR;
    *r1 = *r0 + TR < n ? *r0 + TR : n;
}

/* Forward of rows [r0, r1) over all steps. */
static void gru_fwd_tile(const float *restrict gi, const float *restrict wt,
                         const float *restrict bhn, float *restrict hs, float *restrict gates,
                         int64_t t_len, int64_t n, int64_t hd, int64_t hp, int64_t r0, int64_t r1)
{
    float state[TR * MAX_H] ALIGNED; /* [TR, hd]: h_{t-1} of the tile (rows past r1 stay 0) */
    float gh[TR * 3 * MAX_H] ALIGNED; /* [TR, 3hp] */
    const int64_t rows = r1 - r0, ldg = 3 * hp;
    memset(state, 0, sizeof(float) * TR * hd);
    for (int64_t t = 0; t < t_len; ++t) {
        if (t > 0)
            tile_gemm(state, hd, wt, ldg, gh, ldg, TR, hd, ldg, 0);
        else /* h_0 = 0: no product at the first step */
            memset(gh, 0, sizeof(float) * TR * ldg);
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t row = t * n + r0 + r;
            const float *restrict gr = gi + row * 3 * hd;
            const float *restrict ghr = gh + r * ldg;
            float *restrict st = state + r * hd;
            float *restrict hr = hs + row * hd;
            if (gates) {
                float *restrict sv = gates + row * 4 * hd;
#pragma omp simd
                for (int64_t k = 0; k < hd; ++k) {
                    const float rg = gru_sigmoid(gr[k] + ghr[k]);
                    const float zg = gru_sigmoid(gr[hd + k] + ghr[hp + k]);
                    const float hn = ghr[2 * hp + k] + bhn[k];
                    const float ng = gru_tanh(gr[2 * hd + k] + rg * hn);
                    const float h = ng + zg * (st[k] - ng);
                    st[k] = h;
                    hr[k] = h;
                    sv[k] = rg;
                    sv[hd + k] = zg;
                    sv[2 * hd + k] = ng;
                    sv[3 * hd + k] = hn;
                }
            } else {
#pragma omp simd
                for (int64_t k = 0; k < hd; ++k) {
                    const float rg = gru_sigmoid(gr[k] + ghr[k]);
                    const float zg = gru_sigmoid(gr[hd + k] + ghr[hp + k]);
                    const float hn = ghr[2 * hp + k] + bhn[k];
                    const float ng = gru_tanh(gr[2 * hd + k] + rg * hn);
                    const float h = ng + zg * (st[k] - ng);
                    st[k] = h;
                    hr[k] = h;
                }
            }
        }
    }
}

/* Backward of rows [r0, r1): reads gates, hs and the upstream gradient g_out ([t, n, h], or
 * [n, h] for the last step alone with last_only), writes da [t, n, 4h]. */
static void gru_bwd_tile(const float *restrict gates, const float *restrict hs,
                         const float *restrict g_out, const float *restrict w,
                         float *restrict da, int64_t t_len, int64_t n, int64_t hd, int64_t hp,
                         int last_only, int64_t r0, int64_t r1)
{
    float carry[TR * MAX_H] ALIGNED; /* [TR, hp]: dL/dh_t flowing back from step t + 1 */
    float dgh[TR * 3 * MAX_H] ALIGNED; /* [TR, 3hp]: d gh of the step (padding stays 0) */
    float zeros[MAX_H] ALIGNED;
    const int64_t rows = r1 - r0, ldg = 3 * hp;
    memset(carry, 0, sizeof(float) * TR * hp);
    memset(dgh, 0, sizeof(float) * TR * ldg);
    memset(zeros, 0, sizeof(float) * hd);
    for (int64_t t = t_len - 1; t >= 0; --t) {
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t row = t * n + r0 + r;
            const float *restrict sv = gates + row * 4 * hd;
            const float *restrict hprev = t > 0 ? hs + row * hd - n * hd : zeros;
            const float *restrict go = !last_only       ? g_out + row * hd
                                       : t == t_len - 1 ? g_out + (r0 + r) * hd
                                                        : zeros;
            float *restrict cr = carry + r * hp;
            float *restrict dr = dgh + r * ldg;
            float *restrict dar = da + row * 4 * hd;
#pragma omp simd
            for (int64_t k = 0; k < hd; ++k) {
                const float g = go[k] + cr[k];
                const float rg = sv[k], zg = sv[hd + k], ng = sv[2 * hd + k], hn = sv[3 * hd + k];
                const float dan = g * (1.0f - zg) * (1.0f - ng * ng);
                const float dar_ = dan * hn * rg * (1.0f - rg);
                const float daz = g * (hprev[k] - ng) * zg * (1.0f - zg);
                const float dhn = dan * rg;
                dar[k] = dar_;
                dar[hd + k] = daz;
                dar[2 * hd + k] = dan;
                dar[3 * hd + k] = dhn;
                dr[k] = dar_;
                dr[hp + k] = daz;
                dr[2 * hp + k] = dhn;
                cr[k] = g * zg; /* the direct path; the product below adds d gh W_hh */
            }
        }
        if (t > 0) /* dL/dh_0 is not needed (h_0 = 0 is no input) */
            tile_gemm(dgh, ldg, w, hp, carry, hp, TR, ldg, hp, 1);
    }
}

/* gi [t, n, 3h], wt [h, 3hp], bhn [h] -> hs [t, n, h] and, unless gates is NULL, the saved
 * gates [t, n, 4h] = [r | z | n | hn]. Returns 0, or 1 for a bad size. */
int gru_fwd(const float *gi, const float *wt, const float *bhn, float *hs, float *gates,
            int64_t t_len, int64_t n, int64_t hd, int64_t hp, int num_threads)
{
    if (gru_bad_size(hd, hp))
        return 1;
    const int64_t tiles = (n + TR - 1) / TR;
    (void)num_threads;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (n >= MIN_PARALLEL_ROWS)
    for (int64_t i = 0; i < tiles; ++i) {
        int64_t r0, r1;
        gru_tile_rows(i, n, &r0, &r1);
        gru_fwd_tile(gi, wt, bhn, hs, gates, t_len, n, hd, hp, r0, r1);
    }
    return 0;
}

/* Gradient of gru_fwd: gates [t, n, 4h], hs [t, n, h], g_out = dL/dhs [t, n, h] (or [n, h], the
 * last step alone, when last_only != 0), w [3hp, hp] -> da [t, n, 4h]. Returns 0, or 1 for a
 * bad size. */
int gru_bwd(const float *gates, const float *hs, const float *g_out, const float *w, float *da,
            int64_t t_len, int64_t n, int64_t hd, int64_t hp, int last_only, int num_threads)
{
    if (gru_bad_size(hd, hp))
        return 1;
    const int64_t tiles = (n + TR - 1) / TR;
    (void)num_threads;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (n >= MIN_PARALLEL_ROWS)
    for (int64_t i = 0; i < tiles; ++i) {
        int64_t r0, r1;
        gru_tile_rows(i, n, &r0, &r1);
        gru_bwd_tile(gates, hs, g_out, w, da, t_len, n, hd, hp, last_only, r0, r1);
    }
    return 0;
}
