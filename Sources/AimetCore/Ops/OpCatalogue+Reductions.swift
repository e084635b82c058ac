// Reductions over axes, and the index of an extreme along one axis.

extension OpCatalogue {
    static let reductions: [OpEntry] = [
        reduce("ReduceSum", .sum, axesInputSince: 13), reduce("ReduceMean", .mean), reduce("ReduceMax", .max),
        reduce("ReduceMin", .min), reduce("ReduceProd", .prod), reduce("ReduceL1", .l1), reduce("ReduceL2", .l2),
        reduce("ReduceLogSum", .logSum), reduce("ReduceLogSumExp", .logSumExp), reduce("ReduceSumSquare", .sumSquare),
        argExtremum("ArgMax", largest: true), argExtremum("ArgMin", largest: false),
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
