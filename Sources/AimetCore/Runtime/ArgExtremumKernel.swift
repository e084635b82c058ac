/// ArgMax / ArgMin along `axis`: the int64 index of the largest (smallest)
/// element of each line along the axis; of equal extremes the first, or the
/// last with `select_last_index = 1` (opset 12+). `keepdims = 1` keeps the
/// axis as size 1. float32 or int64 input; an empty axis has no answer.
final class ArgExtremumKernel: Kernel {
    let largest: Bool
    let axis: Int
    let keepDims: Bool
    let selectLast: Bool
    /// The input's element type.
    let type: ElementType

    init(largest: Bool, axis: Int, keepDims: Bool, selectLast: Bool, type: ElementType) {
        self.largest = largest
        self.axis = axis
        self.keepDims = keepDims
        self.selectLast = selectLast
        self.type = type
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[0] == type, type != .bool else { throw AimetError.unsupported("a \(types[0]) input is not supported (float32 and int64)") }
        return .int64
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        var x = shapes[0]
        let a = try Shapes.axis(axis, rank: x.count)
        guard x[a] > 0 else { throw AimetError.shape("axis \(a) of the input \(x) is empty: no index to return") }
        if keepDims { x[a] = 1 } else { x.remove(at: a) }
        return x
    }

    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        Shapes.isLaterAxis(axis, rank: shapes[0].count)
    }

    func run(_ args: KernelArgs) throws {
        let shape = args.shapes[0]
        let a = try Shapes.axis(axis, rank: shape.count)
        let (outer, length, inner) = Shapes.around(shape, axis: a)
        let y = Int64Pointer(args.output)
        let lines = outer * inner
        let workers = lines * length >= 1 << 15 ? args.workers : 1
        func each<T: Comparable>(_ value: @escaping (Int) -> T) {
            Parallel.forEach(lines, workers: workers) { range, _ in
                for line in range {
                    let base = (line / inner) * length * inner + line % inner
                    y[line] = Int64(best(length) { value(base + $0 * inner) })
                }
            }
        }
        if type == .int64 {
            let x = Int64Pointer(args.inputs[0])
            each { x[$0] }
        } else {
            let x = args.inputs[0]
            each { x[$0] }
        }
    }

    /// The index of the extreme of `value(0..<length)` (length > 0).
    @inline(__always)
    private func best<T: Comparable>(_ length: Int, _ value: (Int) -> T) -> Int {
        var index = 0, top = value(0)
        for k in 1..<length {
            let v = value(k)
            let better = largest ? (selectLast ? v >= top : v > top) : (selectLast ? v <= top : v < top)
            if better { index = k; top = v }
        }
        return index
    }
}
