// Kernels of the Swift core written in C, so that each is built for several
// instruction sets (baseline x86-64, AVX2, AVX-512) and the best one the
// processor has is chosen at run time. Internal to libaimetcle (hidden).
//
// The AdaRound sweep does the same IEEE operations in the same order on
// every instruction set (no fused multiply-adds), so its results are the
// same bit for bit whichever runs. The runtime's kernels (depthwise conv,
// epilogue) use fused multiply-adds where the instruction set has them:
// their results agree to float32 rounding, not bit for bit.
#ifndef AIMET_KERNELS_H
#define AIMET_KERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

#define AIMETK_HIDDEN __attribute__((visibility("hidden")))

/// Instruction sets a kernel is built for.
typedef enum {
    AIMETK_ISA_BASELINE = 0,  // SSE2 on x86-64; the compiler's default elsewhere
    AIMETK_ISA_AVX2 = 1,
    AIMETK_ISA_AVX512 = 2,
} aimetk_isa;

/// The best instruction set this processor (and its OS) supports.
AIMETK_HIDDEN aimetk_isa aimetk_best_isa(void);

/// A job of the worker pool: called once per worker index.
typedef void (*aimetk_task)(void *context, int worker);

/// Runs `task(context, w)` for w = 0 ..< workers, worker 0 on the calling
/// thread and worker w > 0 always on the pool's w-th thread, and returns 0
/// when all are done. Returns -1 without running anything when the pool is
/// taken (another thread's job, or a call from inside a job) or cannot have
/// that many threads: the caller then runs the loop another way.
AIMETK_HIDDEN int aimetk_pool_run(int workers, aimetk_task task, void *context);

/// The state and the scalars of one AdaRound step over a run of weights that
/// share one encoding (see AdaRoundWeights.swift for the formulas).
typedef struct {
    const float *g;    // ∂Lrec/∂w~
    float *ch;         // ∂w~/∂V
    float *rg;         // ∂Lround/∂V
    float *m, *s, *v;  // Adam's moments, V
    const float *base; // floor(w/s) − o
    float *soft;       // w~(V)
    float a1, b2, a2, eps, step_size, root;  // Adam: 1−β₁, β₂, 1−β₂, ε, lr/(1−β₁ᵗ), √(1−β₂ᵗ)
    float scale, offset, n;                  // the encoding
    float pow_exponent, round_factor;        // β − 1, −2·reg·β
} aimetk_adaround_kernel;

/// What a sweep does (flags).
enum {
    AIMETK_UPDATE = 1,            // Adam step on V with ∂L/∂V = g·ch (+ rg)
    AIMETK_READ_ROUND_GRAD = 2,   // add rg to the gradient
    AIMETK_PREPARE = 4,           // soft weight and derivatives of the (new) V
    AIMETK_ROUND = 8,             // with PREPARE: the rounding-loss gradient into rg
    AIMETK_ZERO_ROUND_GRAD = 16,  // with PREPARE and not ROUND: zero rg
};

/// One sweep over elements [begin, end) of a run (16-lane groups, four at a time).
AIMETK_HIDDEN void aimetk_adaround_sweep(const aimetk_adaround_kernel *k, long begin, long end, unsigned flags,
                                         aimetk_isa isa);

/// A 2-D convolution over planes of NCHW tensors, as the direct kernels take
/// it, with the fused epilogue of the executor's convs (`lo = −∞, hi = +∞`: no
/// activation; `lo = 0, hi = +∞`: Relu; a NaN stays NaN). Three kernels take it:
///
/// - depthwise 3×3, dilation 1, horizontal stride 1 or 2 (any vertical stride and padding), weights [M, 1, 3, 3]:
///   `y[n, o] = min(max(conv(x[n, o / (M/C)], w[o]) + bias[o] + residual[n, o], lo), hi)`;
/// - depthwise, any window and dilation, horizontal stride 1 or 2 (`aimetk_depthwise_planes`), weights
///   [M, 1, kernel_h, kernel_w], the same formula;
/// - dense 3×3, stride 2, few input channels (a network's first conv), weights [M, C, 3, 3]:
///   `y[n, o] = min(max(Σ_c conv(x[n, c], w[o, c]) + bias[o] + residual[n, o], lo), hi)`.
typedef struct {
    const float *x;           // input [N, C, in_h, in_w]
    const float *w;           // weights, as above
    const float *bias;        // [M]
    const float *residual;    // [N, M, out_h, out_w], or NULL
    float *y;                 // output [N, M, out_h, out_w]
    float *scratch;           // the kernel's `_scratch(·)` floats, any contents
    long channels, out_channels;  // C and M (depthwise: a multiple of C)
    long in_h, in_w, out_h, out_w;
    long kernel_h, kernel_w;  // the window (3 × 3 for the 3×3 kernels)
    long dilation_h, dilation_w;  // >= 1 (1 for the 3×3 kernels)
    long stride_h, stride_w;  // depthwise: stride_w 1 or 2; dense: both 2
    long pad_top, pad_left;   // >= 0 (bottom and right padding follow from the sizes)
    float lo, hi;
} aimetk_conv2d;

/// Floats of scratch `aimetk_depthwise3x3_planes` needs for this geometry (two padded planes).
AIMETK_HIDDEN long aimetk_depthwise3x3_scratch(const aimetk_conv2d *k);

/// Depthwise: output planes [begin, end) of the N·M planes (plane p: image p / M, output channel p % M).
AIMETK_HIDDEN void aimetk_depthwise3x3_planes(const aimetk_conv2d *k, long begin, long end, aimetk_isa isa);

/// Floats of scratch `aimetk_depthwise_planes` needs for this geometry (two padded planes).
AIMETK_HIDDEN long aimetk_depthwise_scratch(const aimetk_conv2d *k);

/// Depthwise, any window: output planes [begin, end) of the N·M planes (as `aimetk_depthwise3x3_planes`).
AIMETK_HIDDEN void aimetk_depthwise_planes(const aimetk_conv2d *k, long begin, long end, aimetk_isa isa);

/// Floats of scratch `aimetk_dense3x3s2` needs (a padded plane per input channel).
AIMETK_HIDDEN long aimetk_dense3x3s2_scratch(const aimetk_conv2d *k);

/// Dense, stride 2: output channels [o_begin, o_end) of image `image`.
AIMETK_HIDDEN void aimetk_dense3x3s2(const aimetk_conv2d *k, long image, long o_begin, long o_end, aimetk_isa isa);

/// The epilogue of a conv on one run of outputs: `y[i] = min(max(x[i] + bias + residual[i], lo), hi)`
/// for `i < n` (`residual` may be NULL; `x` may be `y`), the sum in that order.
AIMETK_HIDDEN void aimetk_bias_clamp(const float *x, float *y, long n, float bias, const float *residual, float lo,
                                     float hi, aimetk_isa isa);

#ifdef __cplusplus
}
#endif
#endif

// The activation kernels (a header of their own; included here so that a build whose module
// cache predates it still sees it).
#include "aimet_activations.h"
