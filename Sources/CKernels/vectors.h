// Private helpers of the runtime's C kernels (depthwise.c, epilogue.c): a
// 16-float vector type of the compiler's vector extensions (one AVX-512
// register, two AVX2 or four SSE registers), its loads, stores and the
// clamp of the fused epilogues (the three builds of a kernel: builds.h).
#ifndef AIMET_KERNELS_VECTORS_H
#define AIMET_KERNELS_VECTORS_H

#include <string.h>
#include "builds.h"

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

typedef float vf2 __attribute__((vector_size(2 * VL * 4)));  // two vectors, for stride 2

INLINE vf2 load2(const float *p) { vf2 x; memcpy(&x, p, sizeof x); return x; }
INLINE vf evens(vf2 a) {
    return __builtin_shufflevector(a, a, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}
INLINE vf odds(vf2 a) {
    return __builtin_shufflevector(a, a, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}

/// Bias, residual and clamp, then the store of `v` to `y[q ..< q + VL]`, lane
/// by lane past `count`: the end of the call's last plane (lanes past the end
/// of a plane land on the call's next planes, written later).
INLINE void finish(vf v, float *y, const float *residual, long q, long count, vf lo, vf hi) {
    if (q + VL <= count) {
        if (residual) v = v + load(residual + q);
        store(y + q, clamp(v, lo, hi));
    } else {
        if (residual) v = v + load_part(residual + q, count - q);
        store_part(y + q, clamp(v, lo, hi), count - q);
    }
}

/// Walks the output planes of a depthwise conv (plane p: image p / M, output
/// channel p % M): each plane's output channel `o` and input plane `x`,
/// stepped from plane to plane (small planes notice divisions). `within`:
/// `o`'s place among the M/C output channels of its input channel.
typedef struct {
    long o, within;
    const float *x;
} plane_cursor;

INLINE plane_cursor plane_at(const aimetk_conv2d *k, long p) {
    const long multiplier = k->out_channels / k->channels, o = p % k->out_channels;
    return (plane_cursor){o, o % multiplier,
                          k->x + (p / k->out_channels * k->channels + o / multiplier) * k->in_h * k->in_w};
}

INLINE plane_cursor plane_after(const aimetk_conv2d *k, plane_cursor c) {
    const long within = c.within + 1 == k->out_channels / k->channels ? 0 : c.within + 1;
    return (plane_cursor){c.o + 1 == k->out_channels ? 0 : c.o + 1, within,
                          within == 0 ? c.x + k->in_h * k->in_w : c.x};
}

/// The columns of lanes 0 ..< VL in a flat layout's first vector (`j mod ow`).
INLINE vi first_columns(long ow) {
    vi col;
    for (int j = 0; j < VL; j++) col[j] = (int)(j % ow);
    return col;
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

#endif
