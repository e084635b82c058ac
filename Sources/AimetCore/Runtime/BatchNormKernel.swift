/// BatchNormalization in inference mode, per channel (axis 1):
///
///     y = γ · (x − μ) / √(σ² + ε) + β = x · s + t,   s = γ / √(σ² + ε),   t = β − μ · s
///
/// `s` and `t` are computed once at compile time (in float64), then one
/// vectorized multiply-add per element, with an optional fused activation.
/// A batch norm right after a conv is folded into the conv instead.
final class BatchNormKernel: Kernel {
    let scale: [Float]
    let shift: [Float]
    let activation: Activation

    init(scale: [Float], shift: [Float], activation: Activation = .none) {
        self.scale = scale
        self.shift = shift
        self.activation = activation
    }

    /// Reads the node's parameters (`γ, β, μ, σ²` constants, `epsilon`).
    convenience init(node: Node, gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor) throws {
        let what = "node '\(node.name)' (BatchNormalization)"
        let c = gamma.count
        guard beta.count == c, mean.count == c, variance.count == c else {
            throw AimetError.shape("\(what): scale, B, mean and var have \(gamma.count), \(beta.count), \(mean.count), \(variance.count) values; they must agree")
        }
        if node.int("training_mode", default: 0) != 0 {
            throw AimetError.unsupported("\(what): training_mode = 1 (the executor runs inference only)")
        }
        if node.int("spatial", default: 1) == 0 {
            throw AimetError.unsupported("\(what): spatial = 0 (per-element statistics, opset < 9) is not supported")
        }
        let eps = Double(node.float("epsilon", default: 1e-5))
        var s = [Float](repeating: 0, count: c), t = s
        for i in 0..<c {
            let v = Double(variance.data[i]) + eps
            guard v > 0 else { throw AimetError.numeric("\(what): var + epsilon is \(v) for channel \(i); it must be positive") }
            let si = Double(gamma.data[i]) / v.squareRoot()
            s[i] = Float(si)
            t[i] = Float(Double(beta.data[i]) - Double(mean.data[i]) * si)
        }
        self.init(scale: s, shift: t)
    }

    /// The same normalization followed by `activation`.
    func with(_ activation: Activation) -> BatchNormKernel {
        BatchNormKernel(scale: scale, shift: shift, activation: activation)
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let x = shapes[0]
        guard x.count >= 2, x[1] == scale.count else {
            throw AimetError.shape("input of shape \(x) does not have \(scale.count) channels on axis 1")
        }
        return x
    }

    func run(_ args: KernelArgs) throws {
        let shape = args.shapes[0]
        let c = shape[1], n = shape[0], plane = Shapes.product(shape, 2..<shape.count)
        let x = args.inputs[0], y = args.output
        Parallel.forEach(n * c, workers: n * c * plane >= 1 << 15 ? args.workers : 1) { range, _ in
            for p in range {
                let ch = p % c
                let s = scale[ch], t = shift[ch]
                let sv = Float8(repeating: s), tv = Float8(repeating: t)
                let src = x + p * plane, dst = y + p * plane
                var i = 0
                while i + 8 <= plane { dst.store8(src.load8(i) * sv + tv, i); i += 8 }
                while i < plane { dst[i] = src[i] * s + t; i += 1 }
                if activation != .none { activation.apply(dst, plane) }
            }
        }
    }
}
