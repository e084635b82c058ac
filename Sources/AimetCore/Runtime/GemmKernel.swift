/// ONNX Gemm: `Y[M, N] = alpha · A' · B' + beta · C`, with `A' = transA ? Aᵀ : A`
/// (`[M, K]`), `B' = transB ? Bᵀ : B` (`[K, N]`) and `C` (optional)
/// broadcast unidirectionally to `[M, N]`. One `sgemm`; with several workers
/// the rows of Y are split between them (its columns when there are few rows).
final class GemmKernel: Kernel {
    let alpha: Float
    let beta: Float
    let transA: Bool
    let transB: Bool
    let hasC: Bool
    /// Whether B and C are constants (the batch split needs what all rows share to be constant).
    let constantB: Bool
    let constantC: Bool

    init(node: Node, constantB: Bool = true, constantC: Bool = true) {
        self.constantB = constantB
        self.constantC = constantC
        alpha = node.float("alpha", default: 1)
        beta = node.float("beta", default: 1)
        transA = node.int("transA", default: 0) != 0
        transB = node.int("transB", default: 0) != 0
        hasC = node.inputs.count > 2 && !node.inputs[2].isEmpty
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let a = shapes[0], b = shapes[1]
        guard a.count == 2, b.count == 2 else { throw AimetError.shape("A \(a) and B \(b) must both be 2-D") }
        let m = transA ? a[1] : a[0], k = transA ? a[0] : a[1]
        let kb = transB ? b[1] : b[0], n = transB ? b[0] : b[1]
        guard k == kb else {
            throw AimetError.shape("A \(a)\(transA ? "ᵀ" : "") has \(k) columns, B \(b)\(transB ? "ᵀ" : "") \(kb) rows")
        }
        guard max(m, n, k) < BLAS.maxDimension else { throw AimetError.shape("A \(a) or B \(b) is too large") }
        if hasC && !Shapes.broadcasts(shapes[2], to: [m, n]) {
            throw AimetError.shape("C of shape \(shapes[2]) does not broadcast to the output [\(m), \(n)]")
        }
        return [m, n]
    }

    /// Row i of Y reads row i of A (when not transposed), all of B, and row i of
    /// C or all of it (broadcast over rows). What every row reads must be a
    /// constant (a computed B would be split with the batch); a C with a row
    /// per output row splits with the batch only when it is computed (a constant is not split).
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        guard !transA, constantB else { return false }
        guard hasC else { return true }
        let perRow = shapes[2].count == 2 && shapes[2][0] != 1
        return perRow ? !constantC : constantC
    }

    func run(_ args: KernelArgs) throws {
        let a = args.inputs[0], b = args.inputs[1], y = args.output
        let aShape = args.shapes[0], bShape = args.shapes[1]
        let m = args.outputShape[0], n = args.outputShape[1]
        let k = transA ? aShape[0] : aShape[1]
        let lda = aShape[1], ldb = bShape[1]
        if hasC {
            // Y = beta · C (broadcast), then Y += alpha · A'B'.
            let zero: [Float] = [0]
            zero.withUnsafeBufferPointer { z in
                Broadcast.apply(BetaTimesC.self, z.baseAddress!, [1], args.inputs[2], args.shapes[2], y, [m, n], workers: 1)
            }
            if beta != 1 { for i in 0..<(m * n) { y[i] *= beta } }
        }
        // Workers take rows of Y, or (few rows) columns.
        let workers = m * n * k >= 1 << 20 ? args.workers : 1
        if m >= 16 * workers {
            Parallel.forEach(m, workers: workers) { rows, _ in
                let rowA = transA ? a + rows.lowerBound : a + rows.lowerBound * lda
                BLAS.sgemm(transA: transA, transB: transB, m: rows.count, n: n, k: k, alpha: alpha,
                           a: rowA, lda: lda, b: b, ldb: ldb, beta: hasC ? 1 : 0, c: y + rows.lowerBound * n, ldc: n)
            }
        } else {
            Parallel.forEach(n, workers: workers) { cols, _ in
                let colB = transB ? b + cols.lowerBound * ldb : b + cols.lowerBound
                BLAS.sgemm(transA: transA, transB: transB, m: m, n: cols.count, k: k, alpha: alpha,
                           a: a, lda: lda, b: colB, ldb: ldb, beta: hasC ? 1 : 0, c: y + cols.lowerBound, ldc: n)
            }
        }
    }

    /// Broadcast copy of C (`0 + c`).
    private enum BetaTimesC: BinaryFunction {
        @inline(__always) static func apply(_ a: Float8, _ b: Float8) -> Float8 { b }
        @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { b }
    }
}
