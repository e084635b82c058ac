/// The scatter ops: the output is a copy of `data` where the int64
/// `indices` select elements (or blocks) that `updates` replaces or is
/// combined into with `reduction` (none, add, mul, max, min), in index order
/// (with repeated indices, `none` keeps the last update). Negative indices
/// count from the end of their axis.
///
/// - ScatterElements(axis) / Scatter: indices and updates have one shape of
///   the data's rank; update at position p goes to p with its `axis`
///   coordinate replaced by `indices[p]`.
/// - ScatterND: the last axis of indices (size k) holds coordinates into the
///   data's first k axes; update block `updates[m…, :]` (the data's
///   trailing axes) goes to `data[indices[m…, :], :]`.
final class ScatterKernel: Kernel {
    enum Kind: Sendable {
        case elements(axis: Int)
        case nd
    }
    enum Reduction: String, Sendable {
        case none, add, mul, max, min
    }
    let kind: Kind
    let reduction: Reduction
    let type: ElementType

    init(_ kind: Kind, reduction: Reduction, type: ElementType) {
        self.kind = kind
        self.reduction = reduction
        self.type = type
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[1] == .int64 else { throw AimetError.invalid("the indices are \(types[1]), expected an integer tensor") }
        guard types[2] == types[0] else { throw AimetError.invalid("updates are \(types[2]) and data \(types[0])") }
        return types[0]
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let data = shapes[0], indices = shapes[1], updates = shapes[2]
        switch kind {
        case .elements(let axis):
            let a = try Shapes.axis(axis, rank: data.count)
            guard indices == updates, indices.count == data.count else {
                throw AimetError.shape("indices \(indices) and updates \(updates) must have one shape of the data's rank \(data.count)")
            }
            for k in 0..<data.count where k != a && indices[k] > data[k] {
                throw AimetError.shape("indices \(indices) exceed the data \(data) on axis \(k)")
            }
        case .nd:
            guard let k = indices.last, k >= 1, k <= data.count,
                  updates == Array(indices.dropLast()) + Array(data[k...]) else {
                throw AimetError.shape("indices \(indices) and updates \(updates) do not fit ScatterND on data \(data)")
            }
        }
        return data
    }

    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        if case .elements(let axis) = kind { return Shapes.isLaterAxis(axis, rank: shapes[0].count) }
        return false
    }

    /// Combines update element `u` into output element `o` (element offsets).
    @inline(__always)
    private func apply(_ out: UnsafeMutablePointer<Float>, _ o: Int, _ updates: UnsafePointer<Float>, _ u: Int) {
        if type == .int64 {
            let dst = Int64Pointer(out), src = Int64Pointer(updates)
            let a = dst[o], b = src[u]
            switch reduction {
            case .none: dst[o] = b
            case .add: dst[o] = a &+ b
            case .mul: dst[o] = a &* b
            case .max: dst[o] = Swift.max(a, b)
            case .min: dst[o] = Swift.min(a, b)
            }
        } else {
            let a = out[o], b = updates[u]
            switch reduction {
            case .none: out[o] = b
            case .add: out[o] = a + b
            case .mul: out[o] = a * b
            case .max: out[o] = Swift.max(a, b)
            case .min: out[o] = Swift.min(a, b)
            }
        }
    }

    func run(_ args: KernelArgs) throws {
        let data = args.shapes[0], indices = args.shapes[1]
        let count = try Shapes.count(data)
        args.output.update(from: args.inputs[0], count: count * type.slots)
        let raw = Int64Pointer(args.inputs[1]), updates = args.inputs[2]
        let strides = StridedCopy.strides(data)
        func resolve(_ i: Int, _ axis: Int) throws -> Int {
            let n = data[axis]
            guard i >= -n, i < n else { throw AimetError.invalid("index \(i) is out of range for axis \(axis) of size \(n)") }
            return i < 0 ? i + n : i
        }
        switch kind {
        case .elements(let axis):
            let a = try Shapes.axis(axis, rank: data.count)
            let total = try Shapes.count(indices)
            var index = [Int](repeating: 0, count: indices.count)
            for e in 0..<total {
                let i = try resolve(Int(raw[e]), a)
                var at = 0
                for k in 0..<index.count { at += (k == a ? i : index[k]) * strides[k] }
                apply(args.output, at, updates, e)
                var k = index.count - 1
                while k >= 0 {
                    index[k] += 1
                    if index[k] < indices[k] { break }
                    index[k] = 0
                    k -= 1
                }
            }
        case .nd:
            let k = indices[indices.count - 1]
            let tuples = Shapes.product(indices, 0..<(indices.count - 1))
            let block = Shapes.product(data, k..<data.count)
            for t in 0..<tuples {
                var at = 0
                for c in 0..<k { at += try resolve(Int(raw[t * k + c]), c) * strides[c] }
                for e in 0..<block { apply(args.output, at + e, updates, t * block + e) }
            }
        }
    }
}
