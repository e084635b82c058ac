#if canImport(Glibc)
import Glibc
#endif

/// GlobalAveragePool, GlobalMaxPool, GlobalLpPool: one value per plane
/// `x[n, c]` over all its spatial axes, `y` of shape `[N, C, 1, ...]`:
///
///     average: Σ x / count     max: max x     lp: (Σ |x|^p)^(1/p)
final class GlobalPoolKernel: Kernel {
    enum Kind: Sendable { case average, max, lp(Float) }
    let kind: Kind

    init(_ kind: Kind) {
        self.kind = kind
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let x = shapes[0]
        guard x.count >= 3 else { throw AimetError.shape("input of shape \(x) has no spatial axes (rank >= 3 expected)") }
        return [x[0], x[1]] + [Int](repeating: 1, count: x.count - 2)
    }

    func run(_ args: KernelArgs) throws {
        let shape = args.shapes[0]
        let planes = shape[0] * shape[1], size = Shapes.product(shape, 2..<shape.count)
        let x = args.inputs[0], y = args.output
        let kind = self.kind
        Parallel.forEach(planes, workers: planes * size >= 1 << 16 ? args.workers : 1) { range, _ in
            for p in range {
                let plane = x + p * size
                switch kind {
                case .average: y[p] = vectorSum(plane, size) / Float(max(size, 1))
                case .max: y[p] = vectorMax(plane, size)
                case .lp(let power): y[p] = lpNorm(plane, size, power)
                }
            }
        }
    }
}

/// The largest of `count` floats (−∞ for none; NaN if any is NaN).
@inline(__always)
func vectorMax(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc = Float8(repeating: -.infinity)
    var nan = false
    var i = 0
    while i + 8 <= count {
        let v = x.load8(i)
        nan = nan || any(v .!= v)
        acc = acc.replacing(with: v, where: v .> acc)
        i += 8
    }
    var top = acc.max()
    while i < count {
        nan = nan || x[i].isNaN
        top = Swift.max(top, x[i])
        i += 1
    }
    return nan ? .nan : top
}

/// `(Σ |x|^p)^(1/p)` over `count` floats (p = 1 and 2 without `pow`), summed in float64.
@inline(__always)
func lpNorm(_ x: UnsafePointer<Float>, _ count: Int, _ p: Float) -> Float {
    var sum: Double = 0
    switch p {
    case 1: for i in 0..<count { sum += Double(abs(x[i])) }
    case 2: for i in 0..<count { sum += Double(x[i]) * Double(x[i]) }
    default: for i in 0..<count { sum += pow(Double(abs(x[i])), Double(p)) }
    }
    return Float(p == 1 ? sum : p == 2 ? sum.squareRoot() : pow(sum, 1 / Double(p)))
}
