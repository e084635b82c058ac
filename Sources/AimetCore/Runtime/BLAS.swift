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

    /// One product per item of the batch axes `batch`: `C_i = op(A_i)·op(B_i)`,
    /// C_i at `c + i·m·n` (ldc = n), A_i and B_i at the element offsets that
    /// `aStrides` and `bStrides` give for item i's batch coordinates (0 on an
    /// axis where the operand broadcasts); items shared out over `workers`.
    static func sgemmBatch(batch: [Int], aStrides: [Int], bStrides: [Int], transA: Bool = false, transB: Bool = false,
                           m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                           c: UnsafeMutablePointer<Float>, workers: Int) {
        Parallel.forEach(batch.reduce(1, *), workers: workers) { range, _ in
            for item in range {
                var rest = item, offA = 0, offB = 0
                for axis in stride(from: batch.count - 1, through: 0, by: -1) {
                    let i = rest % batch[axis]
                    rest /= batch[axis]
                    offA += i * aStrides[axis]
                    offB += i * bStrides[axis]
                }
                sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a + offA, lda: lda, b: b + offB, ldb: ldb,
                      c: c + item * m * n, ldc: n)
            }
        }
    }

    /// Element strides of an operand's batch axes `shape` right-aligned to `rank`
    /// axes, for items of `item` elements; 0 where the operand has size 1 (broadcast).
    static func batchStrides(_ shape: [Int], rank: Int, item: Int) -> [Int] {
        var result = [Int](repeating: 0, count: rank)
        var step = item
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            result[i + rank - shape.count] = shape[i] == 1 ? 0 : step
            step *= shape[i]
        }
        return result
    }

    /// The largest dimension or leading dimension OpenBLAS's 32-bit interface takes.
    static let maxDimension = Int(Int32.max)
}
