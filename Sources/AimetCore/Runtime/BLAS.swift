import CBLAS
import Synchronization

/// Single-precision GEMM through OpenBLAS (`cblas_sgemm`), row-major.
///
/// Concurrent calls from several threads are safe. OpenBLAS splits a single
/// large call over its own threads (OPENBLAS_NUM_THREADS, default: all cores);
/// when the executor runs its own workers, each calling GEMMs, those threads
/// only get in each other's way, so `singleThreaded` turns them off for the
/// duration (measured on resnet18, batch 32, 2 cores: 1160 ms with OpenBLAS
/// threads under our 2 workers, 1290 ms with OpenBLAS threads alone, 770 ms
/// with single-threaded OpenBLAS under our 2 workers).
enum BLAS {
    /// Runs `body` with OpenBLAS set to one thread. OpenBLAS's thread count is
    /// process-wide: the first of overlapping calls saves it and the last one
    /// restores it, so concurrent runs nest correctly.
    static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        threadState.withLock { state in
            if state.depth == 0 {
                state.saved = openblas_get_num_threads()
                if state.saved != 1 { openblas_set_num_threads(1) }
            }
            state.depth += 1
        }
        defer {
            threadState.withLock { state in
                state.depth -= 1
                if state.depth == 0 && state.saved != 1 { openblas_set_num_threads(state.saved) }
            }
        }
        return try body()
    }

    private static let threadState = Mutex<(depth: Int, saved: Int32)>((0, 1))

    /// `C[m×n] = alpha · op(A) · op(B) + beta · C`, where `op(A)` is `m×k`
    /// (`A` stored `k×m` when `transA`) and `op(B)` is `k×n` (`B` stored `n×k`
    /// when `transB`); `lda`, `ldb`, `ldc` are row strides in elements.
    /// With `k == 0` the product is zero: `C = beta · C`.
    @inline(__always)
    static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            for i in 0..<m {
                let row = c + i * ldc
                if beta == 0 { row.update(repeating: 0, count: n) } else { for j in 0..<n { row[j] *= beta } }
            }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The largest dimension or leading dimension OpenBLAS's 32-bit interface takes.
    static let maxDimension = Int(Int32.max)
}
