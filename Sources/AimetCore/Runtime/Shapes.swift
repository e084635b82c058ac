/// Shape arithmetic shared by the kernels.
enum Shapes {
    /// The element count, or an error for a shape too large to address.
    static func count(_ shape: [Int]) throws -> Int {
        var n = 1
        for d in shape {
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, p < 1 << 40 else { throw AimetError.shape("shape \(shape) is too large") }
            n = p
        }
        return n
    }

    /// Product of `shape[range]`.
    static func product(_ shape: [Int], _ range: Range<Int>) -> Int {
        var n = 1
        for i in range { n *= shape[i] }
        return n
    }

    /// Whether a kernel that works along `axis` (negative: from the end) of a rank-`rank` operand keeps the
    /// items of axis 0 apart: the axis is a later one (the batch split of `isBatchSeparable`).
    static func isLaterAxis(_ axis: Int, rank: Int) -> Bool {
        (try? Shapes.axis(axis, rank: rank)) ?? 0 > 0
    }

    /// `shape` as `[outer, length, inner]` around axis `a` (element `(o, i, j)` at `(o·length + i)·inner + j`).
    static func around(_ shape: [Int], axis a: Int) -> (outer: Int, length: Int, inner: Int) {
        (product(shape, 0..<a), shape[a], product(shape, (a + 1)..<shape.count))
    }

    /// A possibly negative axis for a rank, checked.
    static func axis(_ axis: Int, rank: Int, allowEnd: Bool = false) throws -> Int {
        let limit = allowEnd ? rank + 1 : rank
        let a = axis < 0 ? axis + limit - (allowEnd ? 1 : 0) : axis
        guard a >= 0, a < limit else { throw AimetError.invalid("axis \(axis) is out of range for rank \(rank)") }
        return a
    }

    /// The numpy broadcast of two shapes (multidirectional).
    static func broadcast(_ a: [Int], _ b: [Int]) throws -> [Int] {
        let r = max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            guard da == db || da == 1 || db == 1 else {
                throw AimetError.shape("shapes \(a) and \(b) do not broadcast (axis \(i): \(da) vs \(db))")
            }
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Whether `a` broadcasts to exactly `target` (unidirectional broadcasting).
    static func broadcasts(_ a: [Int], to target: [Int]) -> Bool {
        guard a.count <= target.count else { return false }
        let shift = target.count - a.count
        for i in 0..<a.count where a[i] != 1 && a[i] != target[i + shift] { return false }
        return true
    }
}
