/// A linear layer (Gemm / MatMul) on whole samples: `rows` rows of `inFeatures`
/// per sample (1 for Gemm; the middle axes of a MatMul input), weight
/// `[out, in]`. The mini-batch's rows are gathered into one matrix X, then,
/// each worker taking a range of output features (no gradient reduction),
///
///     Y          = α · X · W[o0..<o1]ᵀ          [R, o1 − o0]
///     dY         = 2·scale·(act(Y + b) − target)·act'(Y + b)
///     dW[o0..<o1] = α · dYᵀ · X                 [o1 − o0, in]
///
/// A worker's gradient rows are final once its second GEMM is done, and no
/// other worker reads its weight rows: the AdaRound step on them can follow
/// on the same thread (`GradientRowsEngine`).
final class LinearEngine: EngineCore, ReconstructionEngine, GradientRowsEngine {
    let inFeatures: Int, outFeatures: Int, rows: Int
    let alpha: Float
    var positionsPerSample: Int { rows }
    var takesPositions: Bool { false }
    // inputs [N, rows, in], targets [N, rows, out]

    init(inFeatures: Int, outFeatures: Int, rows: Int, alpha: Float, samples: Int,
         inputs: [Float], targets: [Float], bias: [Float], activation: AdaRoundActivation, workers: Int) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.rows = rows
        self.alpha = alpha
        super.init(samples: samples, inputs: inputs, targets: targets, bias: bias, activation: activation, workers: workers)
    }

    func run(_ indices: UnsafeBufferPointer<Int>, weight: UnsafePointer<Float>,
             gradient: UnsafeMutablePointer<Float>?, scale: Float) -> Double {
        run(indices, weight: weight, gradient: gradient, scale: scale, rowsDone: nil)
    }

    func run(_ indices: UnsafeBufferPointer<Int>, weight: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>?,
             scale: Float, rowsDone: ((Range<Int>) -> Void)?) -> Double {
        let n = indices.count * rows, fin = inFeatures, fout = outFeatures, alpha = self.alpha
        let withGradient = gradient != nil
        // Enough work per worker to pay for the hand-off.
        let shares = min(workers, max(1, n * fin * fout / (1 << 16)), fout)
        let biasPointer = UnsafePointer(bias.pointer), slopePointer = slopes.map { UnsafePointer($0.pointer) }
        losses.reset()
        let workspace = workspaces[0]
        let xs = workspace.floats(n * fin, slot: 0), ts = workspace.floats(n * fout, slot: 1)
        let y = workspace.floats(n * fout, slot: 2)
        return inputs.withUnsafeBufferPointer { xb in
            targets.withUnsafeBufferPointer { tb in
                // Consecutive samples (evaluation) are read in place; a mini-batch is gathered.
                let consecutive = indices.count > 0 && indices[indices.count - 1] - indices[0] == indices.count - 1
                let x: UnsafePointer<Float>, t: UnsafePointer<Float>
                if consecutive {
                    x = xb.baseAddress! + indices[0] * rows * fin
                    t = tb.baseAddress! + indices[0] * rows * fout
                } else {
                    for (j, b) in indices.enumerated() {
                        (xs + j * rows * fin).update(from: xb.baseAddress! + b * rows * fin, count: rows * fin)
                        (ts + j * rows * fout).update(from: tb.baseAddress! + b * rows * fout, count: rows * fout)
                    }
                    x = UnsafePointer(xs)
                    t = UnsafePointer(ts)
                }
                Parallel.forEach(fout, workers: shares) { range, w in
                    let o0 = range.lowerBound, width = range.count
                    BLAS.sgemm(transB: true, m: n, n: width, k: fin, alpha: alpha, a: x, lda: fin, b: weight + o0 * fin, ldb: fin,
                               c: y + o0, ldc: fout)
                    var loss = 0.0
                    for r in 0..<n {
                        loss += lossEpilogueChannels(y + r * fout + o0, t + r * fout + o0, width, bias: biasPointer + o0,
                                                     activation, slopes: slopePointer.map { $0 + o0 },
                                                     scale: scale, gradient: withGradient)
                    }
                    if let gradient {
                        BLAS.sgemm(transA: true, m: width, n: fin, k: n, alpha: alpha, a: y + o0, lda: fout, b: x, ldb: fin,
                                   c: gradient + o0 * fin, ldc: fin)
                        rowsDone?(o0 * fin..<(o0 + width) * fin)
                    }
                    losses.add(w, loss)
                }
                return losses.total
            }
        }
    }
}

/// A transposed convolution (weight `[C, M/g, kH, kW]`) on whole images, data
/// NCHW. The geometry is the forward conv's with the roles swapped (`in` is
/// the big output map, `out` the input map). Per image (each worker taking a
/// share of the images) and group:
///
///     cols   = W_gᵀ · x_g                 [M/g·kH·kW, HWin];   y_g = col2im(cols) + b
///     dcols  = im2col(dY_g)               (the adjoint of col2im)
///     dW_g  += x_g · dcolsᵀ               [C/g, M/g·kH·kW]
final class ConvTransposeEngine: EngineCore, ReconstructionEngine {
    let geometry: ConvGeometry
    let groups: Int, inChannels: Int, outPerGroup: Int
    var positionsPerSample: Int { geometry.inCount }
    var takesPositions: Bool { false }
    // inputs [N, C, HWin], targets [N, M, HWout]
    private let partials: GradientPartials

    init(geometry: ConvGeometry, groups: Int, inChannels: Int, outPerGroup: Int, samples: Int,
         inputs: [Float], targets: [Float], bias: [Float], activation: AdaRoundActivation, workers: Int) {
        self.geometry = geometry
        self.groups = groups
        self.inChannels = inChannels
        self.outPerGroup = outPerGroup
        partials = GradientPartials(workers: max(1, workers), count: inChannels * outPerGroup * geometry.kernelCount)
        super.init(samples: samples, inputs: inputs, targets: targets, bias: bias, activation: activation, workers: workers)
    }

    func run(_ indices: UnsafeBufferPointer<Int>, weight: UnsafePointer<Float>,
             gradient: UnsafeMutablePointer<Float>?, scale: Float) -> Double {
        let g = geometry, cg = inChannels / groups, mg = outPerGroup, m = mg * groups
        let hwIn = g.outCount, hwOut = g.inCount, rowsPerGroup = mg * g.kernelCount
        let withGradient = gradient != nil
        let shares = min(workers, indices.count)
        withData { x, t in
            Parallel.forEach(indices.count, workers: shares) { range, w in
                let ws = workspaces[w]
                let cols = ws.floats(rowsPerGroup * hwIn, slot: 0), y = ws.floats(m * hwOut, slot: 1)
                let dW: UnsafeMutablePointer<Float>? = withGradient ? partials.zeroed(w) : nil
                var loss = 0.0
                for j in range {
                    let b = indices[j]
                    y.update(repeating: 0, count: m * hwOut)
                    for grp in 0..<groups {
                        let xg = x + (b * inChannels + grp * cg) * hwIn
                        BLAS.sgemm(transA: true, m: rowsPerGroup, n: hwIn, k: cg, a: weight + grp * cg * rowsPerGroup,
                                   lda: rowsPerGroup, b: xg, ldb: hwIn, c: cols, ldc: hwIn)
                        Im2col.unpackAdd(cols, rowStride: hwIn, channels: mg, g, into: y + grp * mg * hwOut)
                    }
                    for o in 0..<m {
                        loss += lossEpilogue(y + o * hwOut, t + (b * m + o) * hwOut, hwOut, bias: bias[o],
                                             activation.forChannel(o), scale: scale, gradient: withGradient)
                    }
                    guard let dW else { continue }
                    for grp in 0..<groups {
                        let xg = x + (b * inChannels + grp * cg) * hwIn
                        Im2col.pack(y + grp * mg * hwOut, channels: mg, g, pixels: 0..<hwIn, into: cols, rowStride: hwIn)
                        BLAS.sgemm(transB: true, m: cg, n: rowsPerGroup, k: hwIn, a: xg, lda: hwIn, b: cols, ldb: hwIn,
                                   beta: 1, c: dW + grp * cg * rowsPerGroup, ldc: rowsPerGroup)
                    }
                }
                losses.add(w, loss)
            }
            if let gradient { partials.sum(shares, into: gradient) }
        }
        return losses.total
    }
}
