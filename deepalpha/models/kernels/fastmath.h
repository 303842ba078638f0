/* Fast float32 exp and sigmoid shared by the kernels (linrnn.c, gru.c): exp by range reduction
 * to round(x / ln 2) and a degree-6 polynomial on the remainder (relative error about 1e-7),
 * inputs clamped to [-87, 88] so the result stays a normal float. The including file defines
 * INLINE and includes <stdint.h>. */
#ifndef DEEPALPHA_FASTMATH_H
#define DEEPALPHA_FASTMATH_H

INLINE float exp_approx(float x)
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

INLINE float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

#endif
