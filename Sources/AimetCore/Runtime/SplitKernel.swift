/// One output of Split: part `part` of `parts` consecutive pieces of the
/// data along `axis`. The piece sizes are the `split` list (an attribute
/// before opset 13, else operand 1: an int64 tensor known before the run),
/// which must add up to the axis size; without one, `parts` equal pieces —
/// with `num_outputs` (opset 18) a size not divisible by `parts` gives pieces
/// of `⌈d / parts⌉` and a smaller last one. Any element type; the piece is a
/// strided view of the data (`StridedCopy`).
final class SplitKernel: Kernel {
    let axis: Int
    let part: Int
    let parts: Int
    /// The attribute form's sizes.
    let sizes: [Int]?
    /// Whether an axis size not divisible by `parts` is allowed (num_outputs).
    let uneven: Bool
    let width: Int

    init(axis: Int, part: Int, parts: Int, sizes: [Int]?, uneven: Bool, type: ElementType) {
        self.axis = axis
        self.part = part
        self.parts = parts
        self.sizes = sizes
        self.uneven = uneven
        self.width = type.slots
    }

    /// The piece's first index and size along the (normalized) axis.
    private func piece(_ x: [Int], _ split: [Int]?) throws -> (axis: Int, start: Int, size: Int) {
        let a = try Shapes.axis(axis, rank: x.count)
        let d = x[a]
        var list: [Int]
        if let split = split ?? sizes {
            guard split.count == parts, split.allSatisfy({ $0 >= 0 }), split.reduce(0, +) == d else {
                throw AimetError.shape("split sizes \(split) do not divide axis \(a) of size \(d) into \(parts) outputs")
            }
            list = split
        } else if d % parts == 0 {
            list = [Int](repeating: d / parts, count: parts)
        } else {
            let chunk = d / parts + 1
            guard uneven, chunk * (parts - 1) <= d else {
                throw AimetError.shape("axis \(a) of size \(d) does not split into \(parts) equal outputs")
            }
            list = [Int](repeating: chunk, count: parts - 1) + [d - chunk * (parts - 1)]
        }
        return (a, list[..<part].reduce(0, +), list[part])
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        if types.count > 1 && types[1] != .int64 { throw AimetError.invalid("the split input is \(types[1]), expected int64") }
        return types[0]
    }

    func outputShape(_ operands: [Operand]) throws -> [Int] {
        let split = operands.count > 1 ? try operands[1].integers("split input") : nil
        var out = operands[0].shape
        let p = try piece(out, split)
        out[p.axis] = p.size
        return out
    }

    func isBatchSeparable(_ shapes: [[Int]]) -> Bool {
        Shapes.isLaterAxis(axis, rank: shapes[0].count)
    }

    func run(_ args: KernelArgs) throws {
        let x = args.shapes[0]
        var split: [Int]?
        if args.inputs.count > 1 {
            let p = Int64Pointer(args.inputs[1])
            split = (0..<Shapes.product(args.shapes[1], 0..<args.shapes[1].count)).map { Int(p[$0]) }
        }
        let p = try piece(x, split)
        let strides = StridedCopy.strides(x)
        StridedCopy.run(args.inputs[0], offset: p.start * strides[p.axis], strides: strides, into: args.output,
                        shape: args.outputShape, width: width, workers: args.workers)
    }
}
