#if canImport(Glibc)
import Glibc
#endif

/// Softmax: `y_i = exp(x_i − max x) / Σ_j exp(x_j − max x)` (the sum in
/// float64, so rows of 10⁵ values stay within 1e-6 relative).
///
/// Opset 13+: over the one axis `axis` (default −1). Opsets < 13 flatten the
/// input to 2-D at `axis` (default 1), `[∏ d[..<axis], ∏ d[axis...]]`, and
/// normalize each row over all the trailing axes together.
final class SoftmaxKernel: Kernel {
    let axis: Int
    let legacy: Bool

    init(node: Node, opset: Int) {
        legacy = opset < 13
        axis = node.int("axis", default: legacy ? 1 : -1)
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        _ = try Shapes.axis(axis, rank: shapes[0].count)
        return shapes[0]
    }

    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        (try? Shapes.axis(axis, rank: shapes[0].count)) ?? 0 > 0
    }

    func run(_ args: KernelArgs) throws {
        let shape = args.shapes[0]
        let a = try Shapes.axis(axis, rank: shape.count)
        let outer = Shapes.product(shape, 0..<a)
        // legacy: one row of ∏ d[a...]; 13+: rows of d[a] with stride `inner`
        let length = legacy ? Shapes.product(shape, a..<shape.count) : shape[a]
        let inner = legacy ? 1 : Shapes.product(shape, (a + 1)..<shape.count)
        let x = args.inputs[0], y = args.output
        Parallel.forEach(outer * inner, workers: outer * inner * length >= 1 << 15 ? args.workers : 1) { range, _ in
            for r in range {
                let o = r / inner, i = r % inner
                let base = o * length * inner + i
                var top = -Float.infinity
                for j in 0..<length { top = max(top, x[base + j * inner]) }
                var sum: Double = 0
                for j in 0..<length {
                    let e = expf(x[base + j * inner] - top)
                    y[base + j * inner] = e
                    sum += Double(e)
                }
                let scale = Float(1 / sum)
                for j in 0..<length { y[base + j * inner] *= scale }
            }
        }
    }
}
