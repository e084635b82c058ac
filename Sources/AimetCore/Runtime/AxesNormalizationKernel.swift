/// Normalizations over a set of axes, each output group being the elements
/// that share their position on the other axes (walked through offset tables,
/// so the axes need not be contiguous):
///
/// - MeanVarianceNormalization(axes, default `[0, 2, 3]`):
///   `y = (x − μ) / (σ + 1e-9)`, μ and σ² the mean and (biased) variance of the group.
/// - LpNormalization(axis, p ∈ {1, 2}): `y = x / ‖x‖_p` along one axis; a group whose
///   norm is 0 gives 0 (as onnxruntime).
final class AxesNormalizationKernel: Kernel {
    enum Kind: Sendable { case meanVariance(axes: [Int]), lp(axis: Int, p: Int) }
    let kind: Kind

    init(_ kind: Kind) {
        self.kind = kind
    }

    private func mask(rank: Int) throws -> [Bool] {
        var mask = [Bool](repeating: false, count: rank)
        let axes: [Int]
        switch kind {
        case .meanVariance(let a): axes = a
        case .lp(let axis, _): axes = [axis]
        }
        for axis in axes {
            let a = try Shapes.axis(axis, rank: rank)
            guard !mask[a] else { throw AimetError.invalid("axis \(axis) is listed twice in axes \(axes)") }
            mask[a] = true
        }
        return mask
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        _ = try mask(rank: shapes[0].count)
        return shapes[0]
    }

    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        guard !shapes[0].isEmpty, let m = try? mask(rank: shapes[0].count) else { return false }
        return !m[0]
    }

    func run(_ args: KernelArgs) throws {
        let layout = ReduceLayout(shape: args.shapes[0], mask: try mask(rank: args.shapes[0].count))
        let offsets = layout.reducedOffsets(), bases = layout.outputBases()
        let x = args.inputs[0], y = args.output
        let kind = self.kind
        let n = Double(offsets.count)
        Parallel.forEach(bases.count, workers: bases.count * offsets.count >= 1 << 14 ? args.workers : 1) { range, _ in
            for g in range {
                let src = x + bases[g], dst = y + bases[g]
                switch kind {
                case .meanVariance:
                    var sum: Double = 0
                    for off in offsets { sum += Double(src[off]) }
                    let mean = sum / n
                    var squares: Double = 0
                    for off in offsets { let d = Double(src[off]) - mean; squares += d * d }
                    let scale = 1 / ((squares / n).squareRoot() + 1e-9)
                    for off in offsets { dst[off] = Float((Double(src[off]) - mean) * scale) }
                case .lp(_, let p):
                    var norm: Double = 0
                    for off in offsets { norm += p == 1 ? Double(abs(src[off])) : Double(src[off]) * Double(src[off]) }
                    if p == 2 { norm = norm.squareRoot() }
                    let scale = norm == 0 ? 0 : 1 / norm
                    for off in offsets { dst[off] = Float(Double(src[off]) * scale) }
                }
            }
        }
    }
}
