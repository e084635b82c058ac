#if canImport(Glibc)
import Glibc
#endif

/// Softmax, LogSoftmax and Hardmax over rows of the input:
///
/// - Softmax: `y_i = exp(x_i − max x) / Σ_j exp(x_j − max x)` (the sum in
///   float64, so rows of 10⁵ values stay within 1e-6 relative);
/// - LogSoftmax: `y_i = (x_i − max x) − log Σ_j exp(x_j − max x)`;
/// - Hardmax: `y_i = 1` at the first maximum of the row, 0 elsewhere.
///
/// Opset 13+: a row runs along the one axis `axis` (default −1). Opsets < 13
/// coerce the input to 2-D at `axis` (default 1), `[∏ d[..<axis], ∏ d[axis...]]`,
/// and a row spans all the trailing axes together.
final class SoftmaxKernel: Kernel {
    enum Function: Sendable { case softmax, logSoftmax, hardmax }
    let function: Function
    let axis: Int
    let legacy: Bool

    init(_ function: Function, node: Node, opset: Int) {
        self.function = function
        legacy = opset < 13
        axis = node.int("axis", default: legacy ? 1 : -1)
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        _ = try Shapes.axis(axis, rank: shapes[0].count)
        return shapes[0]
    }

    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        Shapes.isLaterAxis(axis, rank: shapes[0].count)
    }

    func run(_ args: KernelArgs) throws {
        let shape = args.shapes[0]
        let a = try Shapes.axis(axis, rank: shape.count)
        let outer = Shapes.product(shape, 0..<a)
        // legacy: one row of ∏ d[a...]; 13+: rows of d[a] with stride `inner`
        let length = legacy ? Shapes.product(shape, a..<shape.count) : shape[a]
        let inner = legacy ? 1 : Shapes.product(shape, (a + 1)..<shape.count)
        let x = args.inputs[0], y = args.output
        let function = function
        Parallel.forEach(outer * inner, workers: outer * inner * length >= 1 << 15 ? args.workers : 1) { range, _ in
            for r in range {
                let o = r / inner, i = r % inner
                let base = o * length * inner + i
                switch function {
                case .softmax: Self.softmax(x + base, y + base, length, inner)
                case .logSoftmax: Self.logSoftmax(x + base, y + base, length, inner)
                case .hardmax: Self.hardmax(x + base, y + base, length, inner)
                }
            }
        }
    }

    /// The largest of `n` values `x[j·stride]` (−∞ for none; NaNs skipped).
    @inline(__always)
    private static func maximum(_ x: UnsafePointer<Float>, _ n: Int, _ stride: Int) -> Float {
        var top = -Float.infinity
        for j in 0..<n { top = max(top, x[j * stride]) }
        return top
    }

    private static func softmax(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ stride: Int) {
        let top = maximum(x, n, stride)
        var sum: Double = 0
        for j in 0..<n {
            let e = expf(x[j * stride] - top)
            y[j * stride] = e
            sum += Double(e)
        }
        let scale = Float(1 / sum)
        for j in 0..<n { y[j * stride] *= scale }
    }

    private static func logSoftmax(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ stride: Int) {
        let top = maximum(x, n, stride)
        var sum: Double = 0
        for j in 0..<n { sum += Double(expf(x[j * stride] - top)) }
        let logSum = Float(log(sum))
        for j in 0..<n { y[j * stride] = (x[j * stride] - top) - logSum }
    }

    private static func hardmax(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ stride: Int) {
        var first = 0
        for j in 1..<max(n, 1) where x[j * stride] > x[first * stride] { first = j }
        for j in 0..<n { y[j * stride] = j == first ? 1 : 0 }
    }
}
