// The CBLAS declarations of OpenBLAS (cblas_sgemm, openblas_get_num_threads, ...).
// pkg-config "openblas" puts the openblas-pthread (or -openmp / -serial) include
// folder first, so this finds OpenBLAS's own cblas.h rather than another BLAS's.
#include <cblas.h>
