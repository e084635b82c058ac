// The fused per-weight work of an AdaRound step (AdaRoundWeights.swift):
// Adam on V, then the rectified sigmoid of the new V, the soft weight, its
// derivative and the rounding-loss gradient — one pass, four 16-lane groups
// at a time (independent dependency chains: the polynomials are long, and one
// group at a time waits on them; measured on AVX-512, 64 lanes run the
// rounding sweep in 0.62 of the time of 16), written once with the compiler's
// vector extensions and built for each instruction set. The rounding gradient
// of a group whose lanes are all saturated is zero (+0), as in the 16-lane
// reference. The operations and their order are those of the scalar reference
// in AdaRoundMath.swift (fastExp, fastPow, AdamSchedule.step).
#include <string.h>
#include "builds.h"

// a·b + c stays a rounded product then a rounded sum on every target.
#pragma clang fp contract(off)
// The vector helpers are always inlined: no vector crosses a call, whatever the target.
#pragma clang diagnostic ignored "-Wpsabi"

enum { LANES = 64, GROUP = 16 };
typedef float vf __attribute__((vector_size(LANES * 4)));  // LANES floats
typedef int vi __attribute__((vector_size(LANES * 4)));
typedef _Bool vb __attribute__((ext_vector_type(LANES)));  // one bit per lane

#define INLINE static inline __attribute__((always_inline))

INLINE vf splat(float x) { return (vf){0} + x; }
INLINE vi bits(vf x) { return (vi)x; }
INLINE vf floats(vi x) { return (vf)x; }
// minps / maxps: the second operand unless the first is strictly smaller / larger.
INLINE vf vmin(vf a, vf b) { vi m = a < b; return floats((m & bits(a)) | (~m & bits(b))); }
INLINE vf vmax(vf a, vf b) { vi m = a > b; return floats((m & bits(a)) | (~m & bits(b))); }
INLINE vf clamp(vf x, float lo, float hi) { return vmin(vmax(x, splat(lo)), splat(hi)); }
INLINE vf keep(vf a, vi mask) { return floats(bits(a) & mask); }


// 2^n for n held in the low bits of shifted = n + 1.5·2^23.
INLINE vf pow2(vf shifted) {
    const int bias = 0x4B400000 - 127;  // bits(1.5·2^23) − 127
    return floats((bits(shifted) - bias) << 23);
}

INLINE vf fast_exp(vf x) {
    vf xc = clamp(x, -87.0f, 88.0f);
    const float magic = 12582912.0f;
    vf shifted = xc * 1.44269504f + magic;
    vf n = shifted - magic;
    vf r = (xc - n * 0.693359375f) - n * -2.1219444e-4f;
    vf p = splat(1.98756915e-4f);
    p = p * r + 1.39819995e-3f;
    p = p * r + 8.3334519e-3f;
    p = p * r + 4.16657959e-2f;
    p = p * r + 1.66666655e-1f;
    p = p * r + 5.00000012e-1f;
    vf e = p * (r * r) + r + 1.0f;
    return e * pow2(shifted);
}

// a^p for a in [0, 1], p >= 0 (0^p = 0).
INLINE vf fast_pow(vf a, float p) {
    vi i = bits(vmax(a, splat(1.17549435e-38f))) - 0x3F3504F3;
    vf e = __builtin_convertvector(i >> 23, vf);
    vf m = floats((i & 0x007FFFFF) + 0x3F3504F3);
    vf t = m - 1.0f;
    vf l = splat(-0.20686046f);
    l = l * t + 0.31841058f;
    l = l * t - 0.36641372f;
    l = l * t + 0.47979364f;
    l = l * t - 0.72120844f;
    l = l * t + 1.4427018f;
    vf y = clamp(p * (e + l * t), -126.0f, 0.0f);
    const float magic = 12582912.0f;
    vf shifted = y + magic;
    vf f = y - (shifted - magic);
    vf q = splat(1.3400437e-3f);
    q = q * f + 9.676042e-3f;
    q = q * f + 5.5503272e-2f;
    q = q * f + 0.24022107f;
    q = q * f + 0.6931472f;
    q = q * f + 1.0000001f;
    return keep(q * pow2(shifted), splat(0.0f) < a);
}

// `count` lanes (LANES, or fewer at the end of a run: the missing lanes are
// zeros and not stored; the stored ones are computed as in a full vector).
INLINE vf load(const float *p, long i, long count) {
    vf x = {0};
    if (count == LANES) memcpy(&x, p + i, sizeof x);
    else for (long j = 0; j < count; j++) x[j] = p[i + j];
    return x;
}

INLINE void store(vf x, float *p, long i, long count) {
    if (count == LANES) memcpy(p + i, &x, sizeof x);
    else for (long j = 0; j < count; j++) p[i + j] = x[j];
}

INLINE void body(const aimetk_adaround_kernel *k, long i, long count, unsigned flags) {
    vf vv = load(k->v, i, count);
    if (flags & AIMETK_UPDATE) {
        // ∂L/∂V, then Adam (torch's float32 arithmetic).
        vf grad = load(k->g, i, count) * load(k->ch, i, count);
        if (flags & AIMETK_READ_ROUND_GRAD) grad = grad + load(k->rg, i, count);
        vf mm = load(k->m, i, count);
        mm = mm + k->a1 * (grad - mm);
        store(mm, k->m, i, count);
        vf ss = load(k->s, i, count);
        ss = ss * k->b2 + k->a2 * grad * grad;
        store(ss, k->s, i, count);
        vv = vv - k->step_size * (mm / (__builtin_elementwise_sqrt(ss) / k->root + k->eps));
        store(vv, k->v, i, count);
    }
    if (!(flags & AIMETK_PREPARE)) return;
    // h = clamp(σ(V)·(ζ − γ) + γ, 0, 1); dh/dV where the clamp passes.
    const float zeta = 1.1f, gamma = -0.1f, width = zeta - gamma;
    vf sig = 1.0f / (1.0f + fast_exp(-vv));
    vf raw = sig * width + gamma;
    vf h = clamp(raw, 0.0f, 1.0f);
    vf dh = keep(width * sig * (1.0f - sig), raw == h);
    if (flags & AIMETK_ROUND) {
        // Per 16-lane group: any lane with a gradient? (Saturated groups, h ∈ {0, 1} in
        // every lane, are common late in the optimisation.)
        vb nonzero = __builtin_convertvector(dh != 0.0f, vb);
        unsigned long long mask = 0;
        memcpy(&mask, &nonzero, sizeof nonzero);
        if (!mask) {
            store(splat(0.0f), k->rg, i, count);
        } else {
            // ∂(reg·(1 − |2h − 1|^β))/∂V = −2·reg·β·|u|^(β−1)·sign(u)·dh/dV, u = 2h − 1.
            vf u = 2.0f * h - 1.0f;
            vi sign = bits(u) & (int)0x80000000;
            vf p = fast_pow(floats(bits(u) & ~(int)0x80000000), k->pow_exponent);
            vf rg = k->round_factor * floats(bits(p) ^ sign) * dh;
            // The lanes of the groups with a gradient, as a lane mask.
            unsigned long long groups = 0;
            for (int g = 0; g < LANES / GROUP; g++)
                if ((mask >> (g * GROUP)) & 0xFFFF) groups |= 0xFFFFULL << (g * GROUP);
            vb groupBits;
            memcpy(&groupBits, &groups, sizeof groupBits);
            vi keepGroup = -__builtin_convertvector(groupBits, vi);
            store(keep(rg, keepGroup), k->rg, i, count);
        }
    } else if (flags & AIMETK_ZERO_ROUND_GRAD) {
        store(splat(0.0f), k->rg, i, count);
    }
    // w~ = (clamp(floor(w/s) + h − o, 0, n) + o)·s; chain = s·dh/dV where the clamp passes.
    vf t = load(k->base, i, count) + h;
    vf tc = clamp(t, 0.0f, k->n);
    store((tc + k->offset) * k->scale, k->soft, i, count);
    store(keep(k->scale * dh, t == tc), k->ch, i, count);
}

INLINE void sweep(const aimetk_adaround_kernel *kernel, long begin, long end, unsigned flags) {
    // A local copy: the stores cannot alias it, so its pointers and scalars stay in registers.
    const aimetk_adaround_kernel local = *kernel, *k = &local;
    long i = begin;
    for (; i + LANES <= end; i += LANES) body(k, i, LANES, flags);
    if (i < end) body(k, i, end - i, flags);
}

// The sweeps of a schedule with their flags as constants; anything else the general one.
#define DISPATCH(k, begin, end, flags)                                                                  \
    do {                                                                                               \
        const unsigned all = AIMETK_UPDATE | AIMETK_PREPARE;                                           \
        if ((flags) == (all | AIMETK_READ_ROUND_GRAD | AIMETK_ROUND))                                   \
            sweep(k, begin, end, all | AIMETK_READ_ROUND_GRAD | AIMETK_ROUND);                         \
        else if ((flags) == all)                                                                       \
            sweep(k, begin, end, all);                                                                 \
        else if ((flags) == (all | AIMETK_ROUND))                                                      \
            sweep(k, begin, end, all | AIMETK_ROUND);                                                  \
        else                                                                                           \
            sweep(k, begin, end, flags);                                                               \
    } while (0)

AIMETK_BUILDS(sweep_isa, (const aimetk_adaround_kernel *k, long begin, long end, unsigned flags),
              DISPATCH(k, begin, end, flags))

void aimetk_adaround_sweep(const aimetk_adaround_kernel *k, long begin, long end, unsigned flags, aimetk_isa isa) {
    AIMETK_CALL(sweep_isa, isa, (k, begin, end, flags));
}
