/// Normalizations that standardize blocks of contiguous elements with the
/// block's own statistics, then scale (and shift) them:
///
///     y = (x − μ) / √(σ² + ε) · scale + bias      μ, σ² = mean, variance of the block
///     y = x / √(mean(x²) + ε) · scale              (RMSNormalization)
///
/// - LayerNormalization / RMSNormalization(axis): a block is `x[i₀, …, i_{axis−1}, :, …, :]`;
///   scale and bias broadcast to the normalized shape `x.shape[axis...]`.
/// - InstanceNormalization: a block is one channel of one item, `x[n, c]`; scale, bias `[C]`.
/// - GroupNormalization(num_groups G): a block is `C / G` consecutive channels of
///   one item; scale, bias `[C]` (opset 21) or one per group `[G]` (opset 18).
/// - BatchNormalization with statistics computed at run time (operands
///   `scale, B, mean, var`, each `[C]`): a block is `x[n, c]`, μ and σ² are the given
///   `mean[c]`, `var[c]` (with constant parameters `BatchNormKernel` runs it).
///
/// LayerNormalization's optional outputs Mean (μ) and InvStdDev (1 / √(σ² + ε)),
/// shaped `x.shape[..<axis]` followed by ones, are steps of their own
/// (`Output.mean`, `.inverseDeviation`) reading only `x`.
///
/// Statistics in two passes (mean, then the centred sum of squares) with
/// float8 partial sums added into float64, so blocks of 10⁵ values keep
/// onnxruntime's accuracy.
final class NormalizationKernel: Kernel {
    enum Kind: Sendable, Equatable {
        case layer(axis: Int)
        case rms(axis: Int)
        case instance
        case group(groups: Int, perChannel: Bool)
        case batch
    }
    enum Output: Sendable { case normalized, mean, inverseDeviation }
    let kind: Kind
    let epsilon: Float
    let hasBias: Bool
    let output: Output

    init(_ kind: Kind, epsilon: Float, hasBias: Bool, output: Output = .normalized) {
        self.kind = kind
        self.epsilon = epsilon
        self.hasBias = hasBias
        self.output = output
    }

    /// The blocks of an input: `rows` blocks of `length` contiguous elements,
    /// starting at axis `axis` (axes before it index the blocks).
    private struct Blocks {
        let rows: Int
        let length: Int
        let axis: Int
    }

    private func blocks(_ x: [Int]) throws -> Blocks {
        switch kind {
        case .layer(let axis), .rms(let axis):
            let a = try Shapes.axis(axis, rank: x.count)
            return Blocks(rows: Shapes.product(x, 0..<a), length: Shapes.product(x, a..<x.count), axis: a)
        case .instance, .batch:
            guard x.count >= (kind == .batch ? 2 : 3) else { throw AimetError.shape("input of shape \(x) has too few axes") }
            return Blocks(rows: x[0] * x[1], length: Shapes.product(x, 2..<x.count), axis: kind == .batch ? 1 : 2)
        case .group(let groups, _):
            guard x.count >= 2 else { throw AimetError.shape("input of shape \(x) has no channel axis") }
            guard x[1] % groups == 0 else {
                throw AimetError.shape("the \(x[1]) channels of the input \(x) do not split into \(groups) groups")
            }
            return Blocks(rows: x[0] * groups, length: x[1] / groups * Shapes.product(x, 2..<x.count), axis: 1)
        }
    }

    /// The shape scale and bias must have.
    private func checkParameter(_ p: [Int], _ x: [Int], _ b: Blocks, _ role: String) throws {
        switch kind {
        case .layer, .rms:
            let normalized = Array(x[b.axis...])
            let extra = p.count - normalized.count
            guard (extra <= 0 || p[..<extra].allSatisfy({ $0 == 1 })),
                  Shapes.broadcasts(Array(p.dropFirst(max(extra, 0))), to: normalized) else {
                throw AimetError.shape("\(role) of shape \(p) does not broadcast to the normalized shape \(normalized)")
            }
        case .instance, .group(_, true), .batch:
            guard p.reduce(1, *) == x[1], p.filter({ $0 != 1 }).count <= 1 else {
                throw AimetError.shape("\(role) of shape \(p) does not have one value per channel (\(x[1]))")
            }
        case .group(let groups, false):
            guard p.reduce(1, *) == groups, p.filter({ $0 != 1 }).count <= 1 else {
                throw AimetError.shape("\(role) of shape \(p) does not have one value per group (\(groups))")
            }
        }
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let x = shapes[0]
        let b = try blocks(x)
        guard output == .normalized else { return Array(x[..<b.axis]) + [Int](repeating: 1, count: x.count - b.axis) }
        try checkParameter(shapes[1], x, b, "scale")
        if hasBias { try checkParameter(shapes[2], x, b, "bias") }
        if kind == .batch {
            try checkParameter(shapes[3], x, b, "mean")
            try checkParameter(shapes[4], x, b, "var")
        }
        return x
    }

    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        guard let b = try? blocks(shapes[0]) else { return false }
        return b.axis > 0
    }

    func run(_ args: KernelArgs) throws {
        let x = args.shapes[0]
        let b = try blocks(x)
        guard output == .normalized else { return statistics(args, b) }
        let scale = parameter(args, 1, x, b), bias = hasBias ? parameter(args, 2, x, b) : nil
        let input = args.inputs[0], output = args.output
        let eps = Double(epsilon)
        let kind = self.kind
        let means = kind == .batch ? parameter(args, 3, x, b) : [], variances = kind == .batch ? parameter(args, 4, x, b) : []
        let channels = x.count > 1 ? x[1] : 1
        Parallel.forEach(b.rows, workers: b.rows * b.length >= 1 << 15 ? args.workers : 1) { range, _ in
            for r in range {
                let src = input + r * b.length, dst = output + r * b.length
                switch kind {
                case .rms:
                    let inv = Float(1 / (squareSum(src, b.length) / Double(b.length) + eps).squareRoot())
                    affine(src, dst, b.length, mean: 0, inv: inv, scale, bias)
                case .layer:
                    let (mean, variance) = moments(src, b.length)
                    affine(src, dst, b.length, mean: Float(mean), inv: Float(1 / (variance + eps).squareRoot()), scale, bias)
                case .instance:
                    let (mean, variance) = moments(src, b.length)
                    let c = r % channels
                    segment(src, dst, b.length, mean: mean, inv: 1 / (variance + eps).squareRoot(), scale[c], bias?[c] ?? 0)
                case .batch:
                    let c = r % channels
                    let inv = 1 / (Double(variances[c]) + eps).squareRoot()
                    segment(src, dst, b.length, mean: Double(means[c]), inv: inv, scale[c], bias?[c] ?? 0)
                case .group(let groups, let perChannel):
                    let (mean, variance) = moments(src, b.length)
                    let inv = 1 / (variance + eps).squareRoot(), g = r % groups
                    if perChannel {
                        let per = channels / groups, run = b.length / max(per, 1)
                        for k in 0..<per {
                            let c = g * per + k
                            segment(src + k * run, dst + k * run, run, mean: mean, inv: inv, scale[c], bias?[c] ?? 0)
                        }
                    } else {
                        segment(src, dst, b.length, mean: mean, inv: inv, scale[g], bias?[g] ?? 0)
                    }
                }
            }
        }
    }

    /// One mean or inverse deviation per block.
    private func statistics(_ args: KernelArgs, _ b: Blocks) {
        let x = args.inputs[0], y = args.output
        let eps = Double(epsilon), wantMean = output == .mean
        Parallel.forEach(b.rows, workers: b.rows * b.length >= 1 << 15 ? args.workers : 1) { range, _ in
            for r in range {
                let (mean, variance) = moments(x + r * b.length, b.length)
                y[r] = Float(wantMean ? mean : 1 / (variance + eps).squareRoot())
            }
        }
    }

    /// Operand `k` (scale or bias) as one value per element of a block (layer,
    /// rms: broadcast to the normalized shape) or per channel / group.
    private func parameter(_ args: KernelArgs, _ k: Int, _ x: [Int], _ b: Blocks) -> [Float] {
        let p = args.inputs[k], shape = args.shapes[k]
        let count = shape.reduce(1, *)
        switch kind {
        case .layer, .rms:
            guard count != b.length else { return Array(UnsafeBufferPointer(start: p, count: count)) }
            let target = Array(x[b.axis...])
            let own = Array(shape.suffix(target.count))
            let padded = [Int](repeating: 1, count: target.count - own.count) + own
            // Strides of the parameter over the normalized shape (0 along broadcast axes).
            var strides = [Int](repeating: 0, count: target.count), s = 1
            for i in stride(from: target.count - 1, through: 0, by: -1) {
                strides[i] = padded[i] == 1 ? 0 : s
                s *= padded[i]
            }
            var out = [Float](repeating: 0, count: b.length), index = [Int](repeating: 0, count: target.count)
            for j in 0..<b.length {
                var offset = 0
                for i in 0..<target.count { offset += index[i] * strides[i] }
                out[j] = p[offset]
                var i = target.count - 1
                while i >= 0 {
                    index[i] += 1
                    if index[i] < target[i] { break }
                    index[i] = 0
                    i -= 1
                }
            }
            return out
        default:
            return Array(UnsafeBufferPointer(start: p, count: count))
        }
    }
}

/// `y[j] = (x[j] − mean) · inv · scale[j] (+ bias[j])`.
@inline(__always)
private func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, mean: Float, inv: Float,
                    _ scale: [Float], _ bias: [Float]?) {
    scale.withUnsafeBufferPointer { s in
        guard let s = s.baseAddress, n > 0 else { return }
        let m8 = Float8(repeating: mean), i8 = Float8(repeating: inv)
        var j = 0
        if let bias {
            bias.withUnsafeBufferPointer { b in
                guard let b = b.baseAddress else { return }
                while j + 8 <= n { y.store8((x.load8(j) - m8) * i8 * s.load8(j) + b.load8(j), j); j += 8 }
                while j < n { y[j] = (x[j] - mean) * inv * s[j] + b[j]; j += 1 }
            }
        } else {
            while j + 8 <= n { y.store8((x.load8(j) - m8) * i8 * s.load8(j), j); j += 8 }
            while j < n { y[j] = (x[j] - mean) * inv * s[j]; j += 1 }
        }
    }
}

/// `y = x · a + c` with `a = inv · scale`, `c = bias − mean · a` (one channel's run).
@inline(__always)
private func segment(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, mean: Double, inv: Double,
                     _ scale: Float, _ bias: Float) {
    let a = inv * Double(scale), c = Double(bias) - mean * a
    let af = Float(a), cf = Float(c)
    let a8 = Float8(repeating: af), c8 = Float8(repeating: cf)
    var j = 0
    while j + 8 <= n { y.store8(x.load8(j) * a8 + c8, j); j += 8 }
    while j < n { y[j] = x[j] * af + cf; j += 1 }
}

/// Mean and (biased) variance of `n` values, two passes.
@inline(__always)
private func moments(_ x: UnsafePointer<Float>, _ n: Int) -> (Double, Double) {
    guard n > 0 else { return (0, 0) }
    let mean = blockSum(x, n, { $0 }, { $0 }) / Double(n)
    let m8 = Float8(repeating: Float(mean)), m = Float(mean)
    let variance = blockSum(x, n, { let d = $0 - m8; return d * d }, { let d = $0 - m; return d * d }) / Double(n)
    return (mean, variance)
}

/// Σ x².
@inline(__always)
private func squareSum(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
    blockSum(x, n, { $0 * $0 }, { $0 * $0 })
}

/// Σ f(x): 16 float lanes over blocks of 512 values, each block's partial sums added in float64.
@inline(__always)
private func blockSum(_ x: UnsafePointer<Float>, _ n: Int, _ f8: (Float8) -> Float8, _ f: (Float) -> Float) -> Double {
    var total: Double = 0
    var start = 0
    while start < n {
        let end = min(start + 512, n)
        var a0 = Float8(), a1 = Float8()
        var i = start
        while i + 16 <= end {
            a0 += f8(x.load8(i))
            a1 += f8(x.load8(i + 8))
            i += 16
        }
        var part: Double = 0
        let lanes = a0 + a1
        for k in 0..<8 { part += Double(lanes[k]) }
        while i < end { part += Double(f(x[i])); i += 1 }
        total += part
        start = end
    }
    return total
}
