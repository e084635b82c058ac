/// The loops of a broadcast elementwise operation `out = f(a, b)`.
///
/// Shapes are right-aligned and padded with 1s; an operand's stride along an
/// axis is 0 where it is broadcast. Adjacent axes along which both operands
/// are contiguous (or both broadcast) merge, so the innermost loop is one of
/// `f(a[i], b[i])`, `f(a[i], b)`, `f(a, b[i])` over a run of elements.
enum Broadcast {
    static func apply<F: BinaryFunction>(_ f: F.Type, _ a: UnsafePointer<Float>, _ aShape: [Int],
                                         _ b: UnsafePointer<Float>, _ bShape: [Int],
                                         _ out: UnsafeMutablePointer<Float>, _ outShape: [Int], workers: Int) {
        let total = outShape.reduce(1, *)
        guard total > 0 else { return }
        // Fast paths: same shape, or one operand a single value.
        let aCount = aShape.reduce(1, *), bCount = bShape.reduce(1, *)
        if aCount == total && bCount == total {
            split(total, workers) { lo, hi in contiguous(f, a + lo, b + lo, out + lo, hi - lo) }
            return
        }
        if aCount == total && bCount == 1 {
            split(total, workers) { lo, hi in scalarB(f, a + lo, b[0], out + lo, hi - lo) }
            return
        }
        if bCount == total && aCount == 1 {
            split(total, workers) { lo, hi in scalarA(f, a[0], b + lo, out + lo, hi - lo) }
            return
        }
        // General: strides per axis, merged where possible.
        let rank = outShape.count
        var dims = outShape
        var sa = strides(aShape, rank: rank, outShape), sb = strides(bShape, rank: rank, outShape)
        // Drop size-1 axes, then merge axis i into i+1 when both operands step contiguously across.
        var d2: [Int] = [], a2: [Int] = [], b2: [Int] = []
        for i in 0..<rank where dims[i] != 1 { d2.append(dims[i]); a2.append(sa[i]); b2.append(sb[i]) }
        dims = d2; sa = a2; sb = b2
        var i = dims.count - 2
        while i >= 0 {
            if sa[i] == sa[i + 1] * dims[i + 1] && sb[i] == sb[i + 1] * dims[i + 1] {
                dims[i] *= dims[i + 1]
                sa[i] = sa[i + 1]; sb[i] = sb[i + 1]
                dims.remove(at: i + 1); sa.remove(at: i + 1); sb.remove(at: i + 1)
            }
            i -= 1
        }
        let inner = dims.last ?? 1
        let ia = sa.last ?? 0, ib = sb.last ?? 0
        let outerDims = Array(dims.dropLast()), outerA = Array(sa.dropLast()), outerB = Array(sb.dropLast())
        let outer = outerDims.reduce(1, *)
        split(outer, workers) { lo, hi in
            // Offsets of the first outer index, then an odometer.
            var index = [Int](repeating: 0, count: outerDims.count)
            var rest = lo
            var offA = 0, offB = 0
            for k in stride(from: outerDims.count - 1, through: 0, by: -1) {
                index[k] = rest % outerDims[k]
                rest /= outerDims[k]
                offA += index[k] * outerA[k]
                offB += index[k] * outerB[k]
            }
            for o in lo..<hi {
                let y = out + o * inner
                switch (ia, ib) {
                case (1, 1): contiguous(f, a + offA, b + offB, y, inner)
                case (1, 0): scalarB(f, a + offA, b[offB], y, inner)
                case (0, 1): scalarA(f, a[offA], b + offB, y, inner)
                default: y.update(repeating: F.apply(a[offA], b[offB]), count: inner)
                }
                var k = outerDims.count - 1
                while k >= 0 {
                    index[k] += 1
                    offA += outerA[k]
                    offB += outerB[k]
                    if index[k] < outerDims[k] { break }
                    offA -= outerA[k] * outerDims[k]
                    offB -= outerB[k] * outerDims[k]
                    index[k] = 0
                    k -= 1
                }
            }
        }
    }

    /// Element strides of `shape` right-aligned to `rank` axes, 0 where broadcast.
    private static func strides(_ shape: [Int], rank: Int, _ outShape: [Int]) -> [Int] {
        var result = [Int](repeating: 0, count: rank)
        var step = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            let axis = i + rank - shape.count
            result[axis] = shape[i] == 1 && outShape[axis] != 1 ? 0 : step
            step *= shape[i]
        }
        return result
    }

    /// Splits `0..<count` over workers in blocks worth parallelizing.
    @inline(__always)
    private static func split(_ count: Int, _ workers: Int, _ body: (Int, Int) -> Void) {
        let w = count >= 1 << 15 ? workers : 1
        Parallel.forEach(count, workers: w) { range, _ in body(range.lowerBound, range.upperBound) }
    }

    @inline(__always)
    private static func contiguous<F: BinaryFunction>(_ f: F.Type, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                                      _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { y.store8(F.apply(a.load8(i), b.load8(i)), i); i += 8 }
        while i < n { y[i] = F.apply(a[i], b[i]); i += 1 }
    }

    @inline(__always)
    private static func scalarB<F: BinaryFunction>(_ f: F.Type, _ a: UnsafePointer<Float>, _ b: Float,
                                                   _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let bv = Float8(repeating: b)
        var i = 0
        while i + 8 <= n { y.store8(F.apply(a.load8(i), bv), i); i += 8 }
        while i < n { y[i] = F.apply(a[i], b); i += 1 }
    }

    @inline(__always)
    private static func scalarA<F: BinaryFunction>(_ f: F.Type, _ a: Float, _ b: UnsafePointer<Float>,
                                                   _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let av = Float8(repeating: a)
        var i = 0
        while i + 8 <= n { y.store8(F.apply(av, b.load8(i)), i); i += 8 }
        while i < n { y[i] = F.apply(a, b[i]); i += 1 }
    }
}

/// An elementwise function of two floats, scalar and 8-lane.
protocol BinaryFunction {
    static func apply(_ a: Float8, _ b: Float8) -> Float8
    static func apply(_ a: Float, _ b: Float) -> Float
}
