/// Trilu: keeps the upper (`upper = 1`, the default) or lower triangle of
/// each matrix in the last two axes and zeroes the rest. With row i, column
/// j and diagonal offset k (operand 1, an int64 scalar, default 0):
/// upper keeps `j − i ≥ k`, lower keeps `j − i ≤ k`. Any element type (a
/// zero is all-zero bits in every type).
final class TriluKernel: Kernel {
    let upper: Bool
    let width: Int

    init(upper: Bool, type: ElementType) {
        self.upper = upper
        self.width = type.slots
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        if types.count > 1 && types[1] != .int64 { throw AimetError.invalid("k is \(types[1]), expected int64") }
        return types[0]
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        guard shapes[0].count >= 2 else { throw AimetError.shape("the input \(shapes[0]) has fewer than 2 axes") }
        if shapes.count > 1 && Shapes.product(shapes[1], 0..<shapes[1].count) != 1 {
            throw AimetError.shape("k has shape \(shapes[1]), expected a scalar")
        }
        return shapes[0]
    }

    /// A row's mask depends on its row index, so the batch may not be the row axis.
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool { shapes[0].count > 2 }

    func run(_ args: KernelArgs) throws {
        let x = args.shapes[0]
        let rows = x[x.count - 2], cols = x[x.count - 1]
        let matrices = Shapes.product(x, 0..<(x.count - 2))
        let k = args.inputs.count > 1 ? Int(Int64Pointer(args.inputs[1])[0]) : 0
        let w = width, upper = self.upper
        let rowLength = cols * w
        let src = args.inputs[0], dst = args.output
        Parallel.forEach(matrices * rows, workers: matrices * rows * rowLength >= 1 << 16 ? args.workers : 1) { range, _ in
            for r in range {
                let i = r % rows
                // Columns kept: [i + k, cols) for upper, [0, i + k] for lower (clamped).
                let edge = i.addingReportingOverflow(k)
                let cut = edge.overflow ? (k > 0 ? Int.max : Int.min) : edge.partialValue
                let lo = upper ? min(max(cut, 0), cols) : 0
                let hi = upper ? cols : min(max(cut &+ 1, 0), cols)
                let s = src + r * rowLength, d = dst + r * rowLength
                d.update(repeating: 0, count: rowLength)
                if hi > lo { (d + lo * w).update(from: s + lo * w, count: (hi - lo) * w) }
            }
        }
    }
}
