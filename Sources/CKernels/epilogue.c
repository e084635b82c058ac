// The epilogue of the executor's GEMM convs (bias, residual, clamp) on one
// run of outputs, VL floats at a time.
#include "vectors.h"

INLINE void bias_clamp(const float *x, float *y, long n, float bias, const float *residual, float lo, float hi) {
    const vf b = splat(bias), l = splat(lo), h = splat(hi);
    long i = 0;
    if (residual) {
        for (; i + VL <= n; i += VL) store(y + i, clamp(load(x + i) + b + load(residual + i), l, h));
    } else {
        for (; i + VL <= n; i += VL) store(y + i, clamp(load(x + i) + b, l, h));
    }
    if (i < n) {
        vf v = load_part(x + i, n - i) + b;
        if (residual) v = v + load_part(residual + i, n - i);
        store_part(y + i, clamp(v, l, h), n - i);
    }
}

AIMETK_BUILDS(bias_clamp,
              (const float *x, float *y, long n, float bias, const float *residual, float lo, float hi),
              bias_clamp(x, y, n, bias, residual, lo, hi))

void aimetk_bias_clamp(const float *x, float *y, long n, float bias, const float *residual, float lo, float hi,
                       aimetk_isa isa) {
    AIMETK_CALL(bias_clamp, isa, (x, y, n, bias, residual, lo, hi));
}
