#if canImport(Glibc)
import Glibc
#endif

/// LRN over the channels of `x [N, C, D1, ...]`:
///
///     y[n, c] = x[n, c] / (bias + alpha / size · Σ x[n, i]²)^beta,
///     i ∈ [max(0, c − ⌊(size − 1)/2⌋), min(C − 1, c + ⌈(size − 1)/2⌉)]
///
/// The sum of squares is built per channel plane, vectorized over the spatial positions.
final class LocalResponseNormKernel: Kernel {
    let size: Int
    let alpha: Float
    let beta: Float
    let bias: Float

    init(size: Int, alpha: Float, beta: Float, bias: Float) {
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.bias = bias
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        guard shapes[0].count >= 3 else { throw AimetError.shape("input of shape \(shapes[0]) has no spatial axes (rank >= 3 expected)") }
        return shapes[0]
    }

    func run(_ args: KernelArgs) throws {
        let shape = args.shapes[0]
        let n = shape[0], channels = shape[1], plane = Shapes.product(shape, 2..<shape.count)
        let x = args.inputs[0], y = args.output
        let below = (size - 1) / 2, above = size - 1 - below
        let scale = alpha / Float(size), bias = self.bias, beta = self.beta
        Parallel.forEach(n * channels, workers: n * channels * plane * size >= 1 << 15 ? args.workers : 1) { range, _ in
            var sums = [Float](repeating: 0, count: plane)
            sums.withUnsafeMutableBufferPointer { buffer in
                guard let acc = buffer.baseAddress else { return }
                for item in range {
                    let b = item / channels, c = item % channels
                    acc.update(repeating: 0, count: plane)
                    for i in max(0, c - below)...min(channels - 1, c + above) {
                        let src = x + (b * channels + i) * plane
                        var j = 0
                        while j + 8 <= plane { let v = src.load8(j); acc.store8(acc.load8(j) + v * v, j); j += 8 }
                        while j < plane { acc[j] += src[j] * src[j]; j += 1 }
                    }
                    let src = x + item * plane, dst = y + item * plane
                    for j in 0..<plane { dst[j] = src[j] / powf(bias + scale * acc[j], beta) }
                }
            }
        }
    }
}
