// Reductions over axes, the index of an extreme along one axis, the k extremes.

extension OpCatalogue {
    static let reductions: [OpEntry] = [
        reduce("ReduceSum", .sum, axesInputSince: 13), reduce("ReduceMean", .mean), reduce("ReduceMax", .max),
        reduce("ReduceMin", .min), reduce("ReduceProd", .prod), reduce("ReduceL1", .l1), reduce("ReduceL2", .l2),
        reduce("ReduceLogSum", .logSum), reduce("ReduceLogSumExp", .logSumExp), reduce("ReduceSumSquare", .sumSquare),
        argExtremum("ArgMax", largest: true), argExtremum("ArgMin", largest: false),
        // TopK's values are elements of its input (they keep its encoding); the indices are integers.
        OpEntry("TopK", quantization: .dataMovement) { c in
            let x = try c.input(0, "X")
            var operands = [x]
            var k: Int?
            if c.opset < 10 {
                guard let attribute = c.node.attributes["k"]?.intValue else { throw AimetError.invalid("\(c.what) has no k") }
                k = attribute
            } else {
                operands.append(try c.input(1, "K"))
            }
            let axis = c.node.int("axis", default: -1), largest = c.node.int("largest", default: 1) != 0
            var steps: [CompiledStep] = []
            for (index, output) in [(0, TopKKernel.Output.values), (1, .indices)]
            where index < c.node.outputs.count && !c.node.outputs[index].isEmpty {
                steps.append(CompiledStep(kernel: TopKKernel(output: output, axis: axis, largest: largest, k: k, type: c.type(0)),
                                          operands: operands, output: c.node.outputs[index]))
            }
            return steps
        },
    ]

    /// A Reduce* op: axes from the `axes` attribute before opset `axesInputSince`,
    /// from the optional input 1 since (baked into the kernel when constant).
    private static func reduce(_ type: String, _ operation: ReduceKernel.Operation, axesInputSince: Int = 18) -> OpEntry {
        OpEntry(type) { c in
            let data = try c.input(0, "data")
            let keepDims = c.node.int("keepdims", default: 1) != 0
            guard c.opset >= axesInputSince else {
                let kernel = ReduceKernel(operation, type: c.type(0), axes: c.node.ints("axes"), axesOperand: false,
                                          keepDims: keepDims, noopWithEmptyAxes: false)
                return c.step(kernel, [data])
            }
            let noop = c.node.int("noop_with_empty_axes", default: 0) != 0
            guard let axesName = c.optional(1), c.constant(1) == nil else {
                let axes = try c.intConstant(1, "axes")
                return c.step(ReduceKernel(operation, type: c.type(0), axes: axes, axesOperand: false, keepDims: keepDims,
                                           noopWithEmptyAxes: noop), [data])
            }
            return c.step(ReduceKernel(operation, type: c.type(0), axes: nil, axesOperand: true, keepDims: keepDims,
                                       noopWithEmptyAxes: noop), [data, axesName])
        }
    }

    /// ArgMax / ArgMin: int64 indices, no activation to quantize.
    private static func argExtremum(_ type: String, largest: Bool) -> OpEntry {
        OpEntry(type, quantization: .none) { c in
            try c.unary(ArgExtremumKernel(largest: largest, axis: c.node.int("axis", default: 0),
                                          keepDims: c.node.int("keepdims", default: 1) != 0,
                                          selectLast: c.node.int("select_last_index", default: 0) != 0, type: c.type(0)), "data")
        }
    }
}
