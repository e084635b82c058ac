// The vectorized activation functions of the executor (activations.c),
// built like the other C kernels for baseline x86-64, AVX2 and AVX-512.
// Internal to libaimetcle (hidden).
#ifndef AIMET_ACTIVATIONS_H
#define AIMET_ACTIVATIONS_H

#include "aimet_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/// The functions `aimetk_activation` computes (parameters `a`, `b` as noted).
typedef enum {
    AIMETK_ACT_SIGMOID = 0,       // 1 / (1 + e^-v)
    AIMETK_ACT_TANH = 1,          // tanh(v)
    AIMETK_ACT_HARD_SIGMOID = 2,  // min(max(a·v + b, 0), 1), a·v + b in one rounding
    AIMETK_ACT_HARD_SWISH = 3,    // v · min(max((v + 3) / 6, 0), 1)
    AIMETK_ACT_SWISH = 4,         // v · sigmoid(a·v)
    AIMETK_ACT_GELU_TANH = 5,     // v · sigmoid(2·√(2/π)·(v + 0.044715·v³))
    AIMETK_ACT_GELU = 6,          // v/2 · erfc(−v/√2)
    AIMETK_ACT_LEAKY_RELU = 7,    // v >= 0 ? v : a·v
    AIMETK_ACT_SOFTSIGN = 8,      // v / (1 + |v|)
    AIMETK_ACT_THRESHOLDED_RELU = 9,  // v > a ? v : 0
    AIMETK_ACT_ERF = 10,          // erf(v) (ONNX Erf)
    AIMETK_ACT_EXP = 11,          // e^v (ONNX Exp)
} aimetk_activation_kind;

/// `y[i] = f(x[i] + bias + residual[i])` for `i < n` (`residual` may be NULL;
/// `x` may be `y`). exp and erfc are polynomial approximations within 1e-6
/// relative of libm's (float64 erfc for GELU) over the whole float range.
AIMETK_HIDDEN void aimetk_activation(aimetk_activation_kind kind, float a, float b, const float *x, float *y, long n,
                                     float bias, const float *residual, aimetk_isa isa);

#ifdef __cplusplus
}
#endif
#endif
