/// ONNX ReverseSequence: for each item `b` of the batch axis, the first
/// `sequence_lens[b]` elements along the time axis are reversed, the rest
/// copied: `y[t, b] = x[len_b − 1 − t, b]` for `t < len_b`, else `x[t, b]`
/// (time and batch are axes 0 and 1, in either order; any element type;
/// each `[t, b]` block of the trailing axes moves whole).
final class ReverseSequenceKernel: Kernel {
    let timeAxis: Int
    let batchAxis: Int
    let slots: Int

    init(timeAxis: Int, batchAxis: Int, type: ElementType) throws {
        guard Set([timeAxis, batchAxis]) == [0, 1] else {
            throw AimetError.invalid("time_axis \(timeAxis) and batch_axis \(batchAxis) must be 0 and 1 in some order")
        }
        self.timeAxis = timeAxis
        self.batchAxis = batchAxis
        slots = type.slots
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[1] == .int64 else { throw AimetError.invalid("sequence_lens is \(types[1]), expected int64") }
        return types[0]
    }

    /// The lengths are checked here when known before the run (the executor names the node).
    func outputShape(_ operands: [Operand]) throws -> [Int] {
        let shape = try outputShape(operands.map(\.shape))
        if let lengths = operands[1].value?.integers {
            try check(lengths, steps: shape[timeAxis])
        }
        return shape
    }

    func check(_ lengths: [Int], steps: Int) throws {
        for (b, length) in lengths.enumerated() where length < 0 || length > steps {
            throw AimetError.invalid("sequence_lens[\(b)] = \(length) is outside [0, \(steps)]")
        }
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let x = shapes[0]
        guard x.count >= 2 else { throw AimetError.shape("the input has shape \(x); expected rank 2 or more") }
        guard shapes[1] == [x[batchAxis]] else {
            throw AimetError.shape("sequence_lens has shape \(shapes[1]); expected [\(x[batchAxis])] (the batch axis)")
        }
        return x
    }

    /// Item `i` of axis 0 reads other items of it: along time, or through the lengths along batch.
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool { false }

    func run(_ args: KernelArgs) throws {
        let x = args.shapes[0]
        let lengths = Int64Pointer(args.inputs[1])
        let steps = x[timeAxis], items = x[batchAxis]
        let block = Shapes.product(x, 2..<x.count) * slots
        // Element offsets of (t, b) blocks.
        let timeStride = timeAxis == 0 ? items * block : block, batchStride = batchAxis == 0 ? steps * block : block
        try check((0..<items).map { Int(lengths[$0]) }, steps: steps)
        let src = args.inputs[0], dst = args.output
        Parallel.forEach(items, workers: steps * items * block >= 1 << 15 ? args.workers : 1) { range, _ in
            for b in range {
                let length = Int(lengths[b])
                for t in 0..<steps {
                    let from = t < length ? length - 1 - t : t
                    (dst + t * timeStride + b * batchStride).update(from: src + from * timeStride + b * batchStride, count: block)
                }
            }
        }
    }
}
