// Private helpers of the runtime's C kernels (depthwise.c, epilogue.c): a
// 16-float vector type of the compiler's vector extensions (one AVX-512
// register, two AVX2 or four SSE registers), its loads, stores and the
// clamp of the fused epilogues, and the three builds of a kernel.
#ifndef AIMET_KERNELS_VECTORS_H
#define AIMET_KERNELS_VECTORS_H

#include <string.h>
#include "aimet_kernels.h"

// The vector helpers are always inlined: no vector crosses a call, whatever the target.
#pragma clang diagnostic ignored "-Wpsabi"

enum { VL = 16 };  // floats per vector
typedef float vf __attribute__((vector_size(VL * 4)));
typedef int vi __attribute__((vector_size(VL * 4)));

#define INLINE static inline __attribute__((always_inline))

INLINE vf splat(float x) { return (vf){0} + x; }
INLINE vi bits(vf x) { return (vi)x; }
INLINE vf floats(vi x) { return (vf)x; }
INLINE vf load(const float *p) { vf x; memcpy(&x, p, sizeof x); return x; }
INLINE void store(float *p, vf x) { memcpy(p, &x, sizeof x); }

/// The first `count` (< VL) lanes from `p`, zeros elsewhere: through a zeroed
/// buffer (a lane-by-lane build goes through memory and stalls on every lane).
INLINE vf load_part(const float *p, long count) {
    float buffer[VL] = {0};
    memcpy(buffer, p, (size_t)count * sizeof(float));
    return load(buffer);
}

/// The first `count` (< VL) lanes to `p` (through a buffer, as `load_part`).
INLINE void store_part(float *p, vf x, long count) {
    float buffer[VL];
    store(buffer, x);
    memcpy(p, buffer, (size_t)count * sizeof(float));
}

/// `min(max(v, lo), hi)` as Swift's `min` and `max` (and ONNX Clip) compute it:
/// `lo >= v ? lo : v`, then `hi < t ? hi : t`, so a NaN stays NaN.
INLINE vf clamp(vf v, vf lo, vf hi) {
    vi low = lo >= v;
    vf t = floats((low & bits(lo)) | (~low & bits(v)));
    vi high = hi < t;
    return floats((high & bits(hi)) | (~high & bits(t)));
}

/// Copies `n` floats as two runs of `bytes` (a constant after inlining, so
/// each is one vector move): the first and the last, overlapping when `n` is
/// less than twice the run.
INLINE void copy_ends(float *dst, const float *src, long n, size_t bytes) {
    unsigned char head[VL * 4], tail[VL * 4];
    const long floats = (long)(bytes / 4);
    memcpy(head, src, bytes);
    memcpy(tail, src + n - floats, bytes);
    memcpy(dst, head, bytes);
    memcpy(dst + n - floats, tail, bytes);
}

/// Copies `n` floats, writing nothing else: whole vectors, the last one
/// overlapping the one before it; runs shorter than VL as two overlapping
/// halves or quarters (fewer than 4 floats one at a time).
INLINE void copy_floats(float *dst, const float *src, long n) {
    if (n >= VL) {
        long j = 0;
        for (; j + VL <= n; j += VL) store(dst + j, load(src + j));
        if (j < n) store(dst + n - VL, load(src + n - VL));
    } else if (n >= VL / 2) {
        copy_ends(dst, src, n, VL / 2 * 4);
    } else if (n >= VL / 4) {
        copy_ends(dst, src, n, VL / 4 * 4);
    } else {
        for (long j = 0; j < n; j++) dst[j] = src[j];
    }
}

/// Defines `static void name_avx512(params)`, `name_avx2` and `name_baseline`,
/// each running `body` (a statement using the parameters) built for its
/// instruction set; AVX2 comes with FMA (every AVX2 processor has it).
#if defined(__x86_64__)
#define AIMETK_BUILDS(name, params, body)                                                  \
    __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) static void name##_avx512 params { body; } \
    __attribute__((target("avx2,fma"))) static void name##_avx2 params { body; }           \
    static void name##_baseline params { body; }
/// Calls the build of `name` for `isa` (at most the processor's best).
#define AIMETK_CALL(name, isa, args)                                                       \
    do {                                                                                   \
        const aimetk_isa best_ = aimetk_best_isa();                                        \
        const aimetk_isa chosen_ = (isa) > best_ ? best_ : (isa);                          \
        if (chosen_ == AIMETK_ISA_AVX512) name##_avx512 args;                              \
        else if (chosen_ == AIMETK_ISA_AVX2) name##_avx2 args;                             \
        else name##_baseline args;                                                         \
    } while (0)
#else
#define AIMETK_BUILDS(name, params, body) static void name##_baseline params { body; }
#define AIMETK_CALL(name, isa, args) name##_baseline args
#endif

#endif
