#include "aimet_kernels.h"

aimetk_isa aimetk_best_isa(void) {
#if defined(__x86_64__)
    static int cached = -1;  // benign race: every thread computes the same value
    int isa = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (isa < 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
            isa = AIMETK_ISA_AVX512;
        else if (__builtin_cpu_supports("avx2"))
            isa = AIMETK_ISA_AVX2;
        else
            isa = AIMETK_ISA_BASELINE;
        __atomic_store_n(&cached, isa, __ATOMIC_RELAXED);
    }
    return (aimetk_isa)isa;
#else
    return AIMETK_ISA_BASELINE;
#endif
}
