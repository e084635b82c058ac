/// TopK along `axis`: the `k` largest (`largest = 1`) or smallest elements of
/// each line, in order from the most extreme, and their int64 indices along
/// the axis; of equal values the lower index comes first (as onnxruntime).
/// `k` is the attribute (opset < 10) or the int64 input 1, known before the
/// run. Values and indices are two steps, each computing the selection.
/// `sorted = 0` leaves the order unspecified: the sorted order is one.
final class TopKKernel: Kernel {
    enum Output: Sendable { case values, indices }
    let output: Output
    let axis: Int
    let largest: Bool
    /// The attribute `k` (opset < 10); nil when it is operand 1.
    let k: Int?
    /// The input's element type (float32 or int64).
    let type: ElementType

    init(output: Output, axis: Int, largest: Bool, k: Int?, type: ElementType) {
        self.output = output
        self.axis = axis
        self.largest = largest
        self.k = k
        self.type = type
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[0] == type, type != .bool else { throw AimetError.unsupported("a \(types[0]) input is not supported (float32 and int64)") }
        if k == nil && types[1] != .int64 { throw AimetError.invalid("K is \(types[1]), expected int64") }
        return output == .values ? type : .int64
    }

    private func count(_ operands: [Operand]) throws -> Int {
        if let k { return k }
        let values = try operands[1].integers("K")
        guard values.count == 1 else { throw AimetError.invalid("K has \(values.count) values, expected 1") }
        return values[0]
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        var x = operands[0].shape
        let a = try Shapes.axis(axis, rank: x.count)
        let k = try count(operands)
        guard k >= 0, k <= x[a] else { throw AimetError.shape("k = \(k) is outside 0...\(x[a]) (axis \(a) of the input \(x))") }
        x[a] = k
        return x
    }

    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        Shapes.isLaterAxis(axis, rank: shapes[0].count)
    }

    func run(_ args: KernelArgs) throws {
        let shape = args.shapes[0]
        let a = try Shapes.axis(axis, rank: shape.count)
        let (outer, length, inner) = Shapes.around(shape, axis: a)
        let k = args.outputShape[a]
        if type == .int64 {
            let x = Int64Pointer(args.inputs[0])
            select(outer, length, inner, k, args) { x[$0] }
        } else {
            let x = args.inputs[0]
            select(outer, length, inner, k, args) { x[$0] }
        }
    }

    /// Selects each line's `k` first elements in the order (more extreme, lower index).
    private func select<T: Comparable>(_ outer: Int, _ length: Int, _ inner: Int, _ k: Int, _ args: KernelArgs,
                                       _ value: (Int) -> T) {
        let lines = outer * inner
        let y = args.output, yi = Int64Pointer(args.output)
        let largest = self.largest, wantValues = output == .values, isInteger = type == .int64
        Parallel.forEach(lines, workers: lines * length >= 1 << 14 ? args.workers : 1) { range, _ in
            var order = [Int](repeating: 0, count: length)
            for line in range {
                let o = line / inner, i = line % inner
                let base = o * length * inner + i, outBase = o * k * inner + i
                for j in 0..<length { order[j] = j }
                func before(_ p: Int, _ q: Int) -> Bool {
                    let vp = value(base + p * inner), vq = value(base + q * inner)
                    if vp != vq { return largest ? vp > vq : vp < vq }
                    return p < q
                }
                if k < length / 8 {
                    // Small k: keep a sorted prefix of k candidates.
                    var top = Array(order[..<k]).sorted(by: before)
                    for j in k..<length where k > 0 && before(j, top[k - 1]) {
                        var pos = k - 1
                        while pos > 0 && before(j, top[pos - 1]) { top[pos] = top[pos - 1]; pos -= 1 }
                        top[pos] = j
                    }
                    order.replaceSubrange(0..<k, with: top)
                } else {
                    order.sort(by: before)
                }
                for r in 0..<k {
                    let src = base + order[r] * inner, dst = outBase + r * inner
                    if !wantValues {
                        yi[dst] = Int64(order[r])
                    } else if isInteger {
                        yi[dst] = Int64Pointer(args.inputs[0])[src]
                    } else {
                        y[dst] = args.inputs[0][src]
                    }
                }
            }
        }
    }
}
