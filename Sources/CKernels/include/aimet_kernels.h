// Element-wise kernels of the Swift core written in C, so that each is built
// for several instruction sets (baseline x86-64, AVX2, AVX-512) and the best
// one the processor has is chosen at run time. Every version does the same
// IEEE operations in the same order (no fused multiply-adds), so the results
// are the same bit for bit whichever runs. Internal to libaimetcle (hidden).
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

#ifdef __cplusplus
}
#endif
#endif
