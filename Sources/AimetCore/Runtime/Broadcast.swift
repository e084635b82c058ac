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

/// An element type as it sits in the executor's float-sized slots (see
/// `Value`): float32 as it is, int64 over two slots, bool as 0 or 1.
protocol SlotElement {
    static func load(_ p: UnsafePointer<Float>, _ i: Int) -> Self
    static func store(_ value: Self, _ p: UnsafeMutablePointer<Float>, _ i: Int)
}

extension Float: SlotElement {
    @inline(__always) static func load(_ p: UnsafePointer<Float>, _ i: Int) -> Float { p[i] }
    @inline(__always) static func store(_ value: Float, _ p: UnsafeMutablePointer<Float>, _ i: Int) { p[i] = value }
}

extension Int64: SlotElement {
    @inline(__always) static func load(_ p: UnsafePointer<Float>, _ i: Int) -> Int64 { Int64Pointer(p)[i] }
    @inline(__always) static func store(_ value: Int64, _ p: UnsafeMutablePointer<Float>, _ i: Int) { Int64Pointer(p)[i] = value }
}

extension Bool: SlotElement {
    @inline(__always) static func load(_ p: UnsafePointer<Float>, _ i: Int) -> Bool { p[i] != 0 }
    @inline(__always) static func store(_ value: Bool, _ p: UnsafeMutablePointer<Float>, _ i: Int) { p[i] = value ? 1 : 0 }
}

extension Broadcast {
    /// The loops of a broadcast operation over any number of operands of any
    /// element type: calls `body(out, offsets, steps, count)` for every run of
    /// `count` output elements starting at element `out`, where operand `k`'s
    /// element `i` of the run is at `offsets[k] + i · steps[k]` (`steps[k]` is 1,
    /// or 0 where the operand is broadcast along the innermost merged axis).
    /// Axes are merged as in `apply`; the element range is split over workers.
    static func walk(_ shapes: [[Int]], _ outShape: [Int], workers: Int,
                     _ body: (_ out: Int, _ offsets: [Int], _ steps: [Int], _ count: Int) -> Void) {
        let total = outShape.reduce(1, *)
        guard total > 0 else { return }
        let n = shapes.count, rank = outShape.count
        let all = shapes.map { strides($0, rank: rank, outShape) }
        var dims: [Int] = []
        var st = [[Int]](repeating: [], count: n)
        for i in 0..<rank where outShape[i] != 1 {
            dims.append(outShape[i])
            for k in 0..<n { st[k].append(all[k][i]) }
        }
        var i = dims.count - 2
        while i >= 0 {
            if (0..<n).allSatisfy({ st[$0][i] == st[$0][i + 1] * dims[i + 1] }) {
                dims[i] *= dims[i + 1]
                dims.remove(at: i + 1)
                for k in 0..<n { st[k][i] = st[k][i + 1]; st[k].remove(at: i + 1) }
            }
            i -= 1
        }
        let inner = dims.last ?? 1
        let steps = st.map { $0.last ?? 0 }
        let outerDims = Array(dims.dropLast())
        let outer = st.map { Array($0.dropLast()) }
        split(total, workers) { lo, hi in
            var index = [Int](repeating: 0, count: outerDims.count)
            var offsets = [Int](repeating: 0, count: n)
            var rest = lo / inner
            for k in stride(from: outerDims.count - 1, through: 0, by: -1) {
                index[k] = rest % outerDims[k]
                rest /= outerDims[k]
                for m in 0..<n { offsets[m] += index[k] * outer[m][k] }
            }
            var position = lo
            var j = lo % inner
            while position < hi {
                let count = min(inner - j, hi - position)
                if j != 0 {
                    for m in 0..<n { offsets[m] += j * steps[m] }
                    body(position, offsets, steps, count)
                    for m in 0..<n { offsets[m] -= j * steps[m] }
                    j = 0
                } else {
                    body(position, offsets, steps, count)
                }
                position += count
                var k = outerDims.count - 1
                while k >= 0 {
                    index[k] += 1
                    for m in 0..<n { offsets[m] += outer[m][k] }
                    if index[k] < outerDims[k] { break }
                    for m in 0..<n { offsets[m] -= outer[m][k] * outerDims[k] }
                    index[k] = 0
                    k -= 1
                }
            }
        }
    }

    /// `out[i] = f(a[i], b[i])` with broadcasting, for elements of any slot type.
    @inline(__always)
    static func map<A: SlotElement, B: SlotElement, R: SlotElement>(
        _ a: UnsafePointer<Float>, _ aShape: [Int], _ b: UnsafePointer<Float>, _ bShape: [Int],
        _ out: UnsafeMutablePointer<Float>, _ outShape: [Int], workers: Int, _ f: (A, B) -> R) {
        walk([aShape, bShape], outShape, workers: workers) { o, offsets, steps, count in
            let oa = offsets[0], ob = offsets[1], sa = steps[0], sb = steps[1]
            for i in 0..<count { R.store(f(A.load(a, oa + i * sa), B.load(b, ob + i * sb)), out, o + i) }
        }
    }

    /// `out[i] = f(a[i], b[i], c[i])` with broadcasting, for elements of any slot type.
    @inline(__always)
    static func map<A: SlotElement, B: SlotElement, C: SlotElement, R: SlotElement>(
        _ a: UnsafePointer<Float>, _ aShape: [Int], _ b: UnsafePointer<Float>, _ bShape: [Int],
        _ c: UnsafePointer<Float>, _ cShape: [Int],
        _ out: UnsafeMutablePointer<Float>, _ outShape: [Int], workers: Int, _ f: (A, B, C) -> R) {
        walk([aShape, bShape, cShape], outShape, workers: workers) { o, offsets, steps, count in
            let oa = offsets[0], ob = offsets[1], oc = offsets[2], sa = steps[0], sb = steps[1], sc = steps[2]
            for i in 0..<count {
                R.store(f(A.load(a, oa + i * sa), B.load(b, ob + i * sb), C.load(c, oc + i * sc)), out, o + i)
            }
        }
    }
}

extension Broadcast {
    /// `out[i] = f(a[i], b[i])` on one-slot elements (float32, bool) with broadcasting,
    /// 8 lanes at a time over runs where each operand is contiguous or repeated
    /// (the comparisons' loops).
    static func map8(_ a: UnsafePointer<Float>, _ aShape: [Int], _ b: UnsafePointer<Float>, _ bShape: [Int],
                     _ out: UnsafeMutablePointer<Float>, _ outShape: [Int], workers: Int,
                     _ f8: (Float8, Float8) -> Float8, _ f: (Float, Float) -> Float) {
        walk([aShape, bShape], outShape, workers: workers) { o, offsets, steps, count in
            let pa = a + offsets[0], pb = b + offsets[1], y = out + o
            let sa = steps[0], sb = steps[1]
            var i = 0
            switch (sa, sb) {
            case (1, 1): while i + 8 <= count { y.store8(f8(pa.load8(i), pb.load8(i)), i); i += 8 }
            case (1, 0):
                let v = Float8(repeating: pb[0])
                while i + 8 <= count { y.store8(f8(pa.load8(i), v), i); i += 8 }
            case (0, 1):
                let v = Float8(repeating: pa[0])
                while i + 8 <= count { y.store8(f8(v, pb.load8(i)), i); i += 8 }
            default: break
            }
            while i < count { y[i] = f(pa[i * sa], pb[i * sb]); i += 1 }
        }
    }

    /// `out[i] = f(a[i], b[i], c[i])` on one-slot elements with broadcasting, 8 lanes
    /// at a time over runs where every operand is contiguous or repeated (Where's loop).
    static func map8(_ a: UnsafePointer<Float>, _ aShape: [Int], _ b: UnsafePointer<Float>, _ bShape: [Int],
                     _ c: UnsafePointer<Float>, _ cShape: [Int],
                     _ out: UnsafeMutablePointer<Float>, _ outShape: [Int], workers: Int,
                     _ f8: (Float8, Float8, Float8) -> Float8, _ f: (Float, Float, Float) -> Float) {
        walk([aShape, bShape, cShape], outShape, workers: workers) { o, offsets, steps, count in
            let pa = a + offsets[0], pb = b + offsets[1], pc = c + offsets[2], y = out + o
            let sa = steps[0], sb = steps[1], sc = steps[2]
            @inline(__always) func lanes(_ p: UnsafePointer<Float>, _ s: Int, _ i: Int) -> Float8 {
                s == 1 ? p.load8(i) : Float8(repeating: p[0])
            }
            var i = 0
            while i + 8 <= count { y.store8(f8(lanes(pa, sa, i), lanes(pb, sb, i), lanes(pc, sc, i)), i); i += 8 }
            while i < count { y[i] = f(pa[i * sa], pb[i * sb], pc[i * sc]); i += 1 }
        }
    }
}
