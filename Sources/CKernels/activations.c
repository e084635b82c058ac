// The executor's elementwise activations, VL floats at a time: exp by
// Cody–Waite reduction and a degree-6 polynomial (Cephes' expf, ~1 ulp),
// erf by the fits below, tanh by a polynomial near 0 and `1 − 2/(e^(2x) + 1)` beyond, erfc by the
// Chebyshev fit of Numerical Recipes (relative error < 1.2e-7) with e^(−x²/2)
// from the exact square of x. Special values as the scalar formulas give them.
#include "vectors.h"
#include "aimet_activations.h"

// No fused multiply-adds: each function's argument (a·v, the GELU cubic) is
// rounded as the Swift reference rounds it, so the two differ only by the
// polynomials, not by the argument rounding a steep function amplifies.
#pragma clang fp contract(off)

INLINE vf select(vi mask, vf a, vf b) { return floats((mask & bits(a)) | (~mask & bits(b))); }
INLINE vf vmin(vf a, vf b) { return select(b < a, b, a); }
INLINE vf vmax(vf a, vf b) { return select(b > a, b, a); }
INLINE vf vabs(vf x) { return floats(bits(x) & (vi){0} + 0x7fffffff); }

/// `c[0]·t^(n−1) + … + c[n−1]` by Horner's rule (coefficients highest first; a
/// constant array, so the loop unrolls into the multiply-adds).
INLINE vf horner(vf t, const float *c, int n) {
    vf p = splat(c[0]);
    for (int i = 1; i < n; i++) p = p * t + c[i];
    return p;
}

/// `p · 2^k` for integral k in [−252, 254] (2^k as two normal factors, for the results below 2^−126).
INLINE vf scale2(vf p, vf k) {
    vi ki = __builtin_convertvector(k, vi);
    vi k1 = ki >> 1, k2 = ki - k1;
    return p * floats((k1 + 127) << 23) * floats((k2 + 127) << 23);
}

/// e^x: k = round(x / ln 2), r = x − k·ln 2 in two steps (exact first step),
/// e^r by a polynomial on |r| <= ln2/2; ∞ above 88.73, 0 below −104; NaN stays NaN.
INLINE vf vexp(vf x) {
    const vf hi = splat(88.7228391f), lo = splat(-104.0f);
    vf c = vmin(vmax(x, lo), hi);
    // round to nearest by adding and subtracting 1.5·2^23 (|c / ln 2| < 2^22)
    vf k = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    vf r = c - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    vf z = r * r;
    static const float coefficients[] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f,
                                         1.6666665459e-1f, 5.0000001201e-1f};
    vf p = horner(r, coefficients, 6);
    p = p * z + r + 1.0f;
    vf e = scale2(p, k);
    e = select(x > hi, splat(__builtin_inff()), e);
    return select(x != x, x, e);
}

INLINE vf vsigmoid(vf v) { return 1.0f / (1.0f + vexp(-v)); }

/// tanh: odd; |x| < 0.625 by Cephes' polynomial, else 1 − 2/(e^(2|x|) + 1).
INLINE vf vtanh(vf v) {
    vf x = vabs(v);
    vf z = v * v;
    static const float c[] = {-5.70498872745e-3f, 2.06390887954e-2f, -5.37397155531e-2f, 1.33314422036e-1f,
                              -3.33332819422e-1f};
    vf p = horner(z, c, 5);
    vf small = v + v * z * p;
    vf large = 1.0f - 2.0f / (vexp(x + x) + 1.0f);
    vi sign = bits(v) & (vi){0} + (int)0x80000000;
    large = floats(bits(large) | sign);
    return select(x < 0.625f, small, large);
}

/// GELU, `v/2 · erfc(−v/√2)`: erfc(z) for z = |v|/√2 as `t·e^(−z²)·e^(P(t))`,
/// `t = 1/(1 + z/2)`; z² = v²/2 from v² split exactly into hi + lo, so the
/// steep factor e^(−z²) carries no rounding of z. v >= 0: `v/2 · (2 − erfc(z))`.
INLINE vf vgelu(vf v) {
    vf x = vabs(v);
    vf z = x * 0.707106781186547524f;
    vf t = 1.0f / (1.0f + 0.5f * z);
    static const float c[] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                              -0.18628806f, 0.09678418f, 0.37409196f, 1.00002368f, -1.26551223f};
    vf p = horner(t, c, 10);
    vf sq = x * x;
    vf err = __builtin_elementwise_fma(x, x, -sq);  // x² − sq exactly
    vf erfc = t * vexp(sq * -0.5f) * vexp(p - err * 0.5f);
    erfc = select(x < 14.0f, erfc, splat(0));  // erfc(14/√2) < 1e-43; and no ∞·0 from an ∞ or huge v
    vf g = 0.5f * v * select(v < 0.0f, erfc, 2.0f - erfc);
    return select(v != v, v, g);
}

/// erf: `v·P(v²)` (degree 6) for |v| < 0.921875; beyond, `1 − e^(−v²)·R(|v|)` with
/// `R ≈ erfc·e^(v²)` (degree 11 in |v| − 2.4234375, least-squares fits on Chebyshev
/// nodes) up to 3.925, past which erf is ±1 in float32; the sign of v restored.
/// Within 2e-7 relative.
INLINE vf verf(vf v) {
    vf x = vabs(v);
    vf t = x * x;
    static const float cs[] = {8.410998998442665e-05f, -0.0008153776288963854f, 0.005202175583690405f,
                               -0.026859957724809647f, 0.11283708363771439f, -0.37612634897232056f,
                               1.128379225730896f};
    vf small = v * horner(t, cs, 7);
    vf u = vmin(vmax(x, splat(0.921875f)), splat(3.925f)) - 2.4234375953674316f;
    static const float cb[] = {-4.858165993937291e-07f, 2.0797588149434887e-06f, -4.877245373791084e-06f,
                               1.7195294276461937e-05f, -6.968329398659989e-05f, 0.00024769434821791947f,
                               -0.0008383640088140965f, 0.0027661644853651524f, -0.008801939897239208f,
                               0.026866255328059196f, -0.0783112570643425f, 0.2166484296321869f};
    vf r = horner(u, cb, 12);
    vf big = 1.0f - vexp(-t) * r;
    big = select(x >= 3.925f, splat(1), big);
    vi sign = bits(v) & (vi){0} + (int)0x80000000;
    big = floats(bits(big) | sign);
    vf y = select(x >= 0.921875f, big, small);
    return select(v != v, v, y);
}

INLINE vf activate(aimetk_activation_kind kind, vf v, float a, float b) {
    switch (kind) {
    case AIMETK_ACT_SIGMOID: return vsigmoid(v);
    case AIMETK_ACT_TANH: return vtanh(v);
    case AIMETK_ACT_HARD_SIGMOID:
        return clamp(__builtin_elementwise_fma(splat(a), v, splat(b)), splat(0), splat(1));
    case AIMETK_ACT_HARD_SWISH: return v * clamp((v + 3.0f) / 6.0f, splat(0), splat(1));
    case AIMETK_ACT_SWISH: return v * vsigmoid(a * v);
    case AIMETK_ACT_GELU_TANH:
        return v * vsigmoid(2.0f * 0.797884560802865355f * (v + 0.044715f * v * v * v));
    case AIMETK_ACT_GELU: return vgelu(v);
    case AIMETK_ACT_LEAKY_RELU: return select(v >= 0.0f, v, a * v);
    case AIMETK_ACT_SOFTSIGN: return v / (1.0f + vabs(v));
    case AIMETK_ACT_THRESHOLDED_RELU: return select(v > a, v, splat(0));
    case AIMETK_ACT_ERF: return verf(v);
    case AIMETK_ACT_EXP: return vexp(v);
    }
    return v;
}

/// One kind's loop (the switch above folds away in each copy).
#define ACTIVATION_LOOP(KIND)                                                                        \
    for (; i + VL <= n; i += VL) {                                                                   \
        vf v = load(x + i) + bias;                                                                   \
        if (residual) v = v + load(residual + i);                                                    \
        store(y + i, activate(KIND, v, a, b));                                                       \
    }                                                                                                \
    if (i < n) {                                                                                     \
        vf v = load_part(x + i, n - i) + bias;                                                       \
        if (residual) v = v + load_part(residual + i, n - i);                                        \
        store_part(y + i, activate(KIND, v, a, b), n - i);                                           \
    }

INLINE void activation(aimetk_activation_kind kind, float a, float b, const float *x, float *y, long n, float bias,
                       const float *residual) {
    long i = 0;
    switch (kind) {
    case AIMETK_ACT_SIGMOID: ACTIVATION_LOOP(AIMETK_ACT_SIGMOID) break;
    case AIMETK_ACT_TANH: ACTIVATION_LOOP(AIMETK_ACT_TANH) break;
    case AIMETK_ACT_HARD_SIGMOID: ACTIVATION_LOOP(AIMETK_ACT_HARD_SIGMOID) break;
    case AIMETK_ACT_HARD_SWISH: ACTIVATION_LOOP(AIMETK_ACT_HARD_SWISH) break;
    case AIMETK_ACT_SWISH: ACTIVATION_LOOP(AIMETK_ACT_SWISH) break;
    case AIMETK_ACT_GELU_TANH: ACTIVATION_LOOP(AIMETK_ACT_GELU_TANH) break;
    case AIMETK_ACT_GELU: ACTIVATION_LOOP(AIMETK_ACT_GELU) break;
    case AIMETK_ACT_LEAKY_RELU: ACTIVATION_LOOP(AIMETK_ACT_LEAKY_RELU) break;
    case AIMETK_ACT_SOFTSIGN: ACTIVATION_LOOP(AIMETK_ACT_SOFTSIGN) break;
    case AIMETK_ACT_THRESHOLDED_RELU: ACTIVATION_LOOP(AIMETK_ACT_THRESHOLDED_RELU) break;
    case AIMETK_ACT_ERF: ACTIVATION_LOOP(AIMETK_ACT_ERF) break;
    case AIMETK_ACT_EXP: ACTIVATION_LOOP(AIMETK_ACT_EXP) break;
    }
}

AIMETK_BUILDS(activation,
              (aimetk_activation_kind kind, float a, float b, const float *x, float *y, long n, float bias,
               const float *residual),
              activation(kind, a, b, x, y, n, bias, residual))

void aimetk_activation(aimetk_activation_kind kind, float a, float b, const float *x, float *y, long n, float bias,
                       const float *residual, aimetk_isa isa) {
    AIMETK_CALL(activation, isa, (kind, a, b, x, y, n, bias, residual));
}
