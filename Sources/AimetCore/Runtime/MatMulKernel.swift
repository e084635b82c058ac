/// ONNX MatMul (numpy `matmul`): `Y[..., M, N] = A[..., M, K] · B[..., K, N]`,
/// batch axes broadcast; a 1-D A is a row `[1, K]` and a 1-D B a column
/// `[K, 1]`, the added axis dropped from the result. With a 2-D B the batch
/// axes of A fold into M (one `sgemm`); otherwise one `sgemm` per batch item,
/// the items shared out over the workers.
///
/// Fused (see `Fusion`), a product by a constant matrix takes an epilogue:
/// `Y[..., m, :] = act(A·B[..., m, :] + bias)`, each tile of rows or columns
/// finished while it is in cache.
final class MatMulKernel: Kernel {
    /// Whether A and B are constants (the batch split needs what all items share to be constant).
    let constantA: Bool
    let constantB: Bool
    /// The fused epilogue: a row of N added to every output row, then the activation.
    let bias: [Float]?
    let activation: Activation

    init(constantA: Bool = false, constantB: Bool = true, bias: [Float]? = nil, activation: Activation = .none) {
        self.constantA = constantA
        self.constantB = constantB
        self.bias = bias
        self.activation = activation
    }

    /// This product with an epilogue (B must be a constant matrix: the epilogue runs on its one-GEMM path).
    func with(bias: [Float]?, activation: Activation) -> MatMulKernel {
        MatMulKernel(constantA: constantA, constantB: constantB, bias: bias, activation: activation)
    }

    /// The epilogue on columns `columns` of `rows` output rows of `n` starting at `y`.
    private func finish(_ y: UnsafeMutablePointer<Float>, rows: Range<Int>, columns: Range<Int>, n: Int) {
        guard bias != nil || activation != .none else { return }
        guard let bias else {
            for r in rows { activation.apply(y + r * n + columns.lowerBound, columns.count) }
            return
        }
        bias.withUnsafeBufferPointer { b in
            for r in rows { activation.apply(y + r * n + columns.lowerBound, columns.count, residual: b.baseAddress! + columns.lowerBound) }
        }
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let (a, b) = (shapes[0], shapes[1])
        guard !a.isEmpty, !b.isEmpty else { throw AimetError.shape("MatMul of a scalar (\(a) × \(b))") }
        let a2 = a.count == 1 ? [1] + a : a, b2 = b.count == 1 ? b + [1] : b
        let m = a2[a2.count - 2], k = a2[a2.count - 1], kb = b2[b2.count - 2], n = b2[b2.count - 1]
        guard k == kb else { throw AimetError.shape("A \(a) has \(k) columns, B \(b) has \(kb) rows") }
        guard max(m, n, k) < BLAS.maxDimension else { throw AimetError.shape("A \(a) or B \(b) is too large") }
        var batch = try Shapes.broadcast(Array(a2.dropLast(2)), Array(b2.dropLast(2)))
        if a.count > 1 { batch.append(m) }
        if b.count > 1 { batch.append(n) }
        return batch
    }

    /// Item i of the output's axis 0 reads item i of an operand whose axis 0 is
    /// the output's axis 0 (A with batch axes or as the rows of a 2-D product;
    /// B with batch axes); every item reads all of the other operand, which
    /// must then be a constant (a computed one would be split with the batch).
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        let (a, b) = (shapes[0], shapes[1])
        guard let out = try? outputShape(shapes), !out.isEmpty else { return false }
        let aSplits = a.count >= 2 && a.count - (b.count == 1 ? 1 : 0) == out.count
        let bSplits = b.count >= 3 && b.count - (a.count == 1 ? 1 : 0) == out.count
        return (aSplits || constantA) && (bSplits || constantB)
    }

    func run(_ args: KernelArgs) throws {
        let (a, b) = (args.shapes[0], args.shapes[1])
        let a2 = a.count == 1 ? [1] + a : a, b2 = b.count == 1 ? b + [1] : b
        let m = a2[a2.count - 2], k = a2[a2.count - 1], n = b2[b2.count - 1]
        let pa = args.inputs[0], pb = args.inputs[1], y = args.output
        let aBatch = Array(a2.dropLast(2)), bBatch = Array(b2.dropLast(2))
        let bItems = bBatch.reduce(1, *)
        if bItems == 1 {
            // B is one matrix: all of A's rows in one GEMM.
            let rows = aBatch.reduce(1, *) * m
            let workers = rows * n * k >= 1 << 20 ? args.workers : 1
            if rows >= 16 * workers {
                Parallel.forEach(rows, workers: workers) { r, _ in
                    BLAS.sgemm(m: r.count, n: n, k: k, a: pa + r.lowerBound * k, lda: k, b: pb, ldb: n,
                               c: y + r.lowerBound * n, ldc: n)
                    finish(y, rows: r, columns: 0..<n, n: n)
                }
            } else {
                Parallel.forEach(n, workers: workers) { cols, _ in
                    BLAS.sgemm(m: rows, n: cols.count, k: k, a: pa, lda: k, b: pb + cols.lowerBound, ldb: n,
                               c: y + cols.lowerBound, ldc: n)
                    finish(y, rows: 0..<rows, columns: cols, n: n)
                }
            }
            return
        }
        let batch = try Shapes.broadcast(aBatch, bBatch)
        let items = batch.reduce(1, *)
        BLAS.sgemmBatch(batch: batch, aStrides: BLAS.batchStrides(aBatch, rank: batch.count, item: m * k),
                        bStrides: BLAS.batchStrides(bBatch, rank: batch.count, item: k * n), m: m, n: n, k: k,
                        a: pa, lda: k, b: pb, ldb: n, c: y, workers: items * m * n * k >= 1 << 20 ? args.workers : 1)
    }
}
