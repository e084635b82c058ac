// Pooling.

extension OpCatalogue {
    static let pooling: [OpEntry] = [
        OpEntry("MaxPool") { c in
            var steps = try c.unary(PoolKernel(node: c.node, kind: .max), "X")
            if c.node.outputs.count > 1, !c.node.outputs[1].isEmpty {
                steps.append(CompiledStep(kernel: try PoolKernel(node: c.node, kind: .max, output: .indices),
                                          operands: [try c.input(0, "X")], output: c.node.outputs[1]))
            }
            return steps
        },
        OpEntry("AveragePool") { c in try c.unary(PoolKernel(node: c.node, kind: .average), "X") },
        OpEntry("LpPool") { c in try c.unary(PoolKernel(node: c.node, kind: .lp(Float(c.node.int("p", default: 2)))), "X") },
        OpEntry("GlobalAveragePool") { c in try c.unary(GlobalPoolKernel(.average), "X") },
        OpEntry("GlobalMaxPool") { c in try c.unary(GlobalPoolKernel(.max), "X") },
        OpEntry("GlobalLpPool") { c in try c.unary(GlobalPoolKernel(.lp(Float(c.node.int("p", default: 2)))), "X") },
        // Scattering the input's values (indices are integers): the output keeps the input's encoding.
        OpEntry("MaxUnpool", quantization: .dataMovement) { c in
            var operands = [try c.input(0, "X"), try c.input(1, "I")]
            if let shape = c.optional(2) { operands.append(shape) }
            return c.step(try MaxUnpoolKernel(node: c.node, shapeOperand: operands.count == 3), operands)
        },
    ]
}
