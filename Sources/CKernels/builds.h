// The three builds of a kernel (AVX-512, AVX2, baseline x86-64) and the call
// of the one for an instruction set, for the C kernels' sources.
#ifndef AIMET_KERNELS_BUILDS_H
#define AIMET_KERNELS_BUILDS_H

#include "aimet_kernels.h"

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
