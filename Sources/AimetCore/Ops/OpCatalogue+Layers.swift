// Layers with weights, and batch normalization.

extension OpCatalogue {
    static let layers: [OpEntry] = [
        OpEntry("Conv", equalization: .weightLayer) { c in
            let w = try c.floatConstant(1, "weight")
            let b = try c.optional(2).map { _ in try c.floatConstant(2, "bias") }
            return try c.unary(ConvKernel(node: c.node, weight: w, bias: b), "data")
        },
        OpEntry("ConvTranspose", equalization: .weightLayer) { c in
            let w = try c.floatConstant(1, "weight")
            let b = try c.optional(2).map { _ in try c.floatConstant(2, "bias") }
            return try c.unary(ConvTransposeKernel(node: c.node, weight: w, bias: b), "data")
        },
        OpEntry("Gemm", equalization: .weightLayer) { c in
            var operands = [try c.input(0, "A"), try c.input(1, "B")]
            if let bias = c.optional(2) { operands.append(bias) }
            return c.step(GemmKernel(node: c.node), operands)
        },
        OpEntry("MatMul") { c in
            c.step(MatMulKernel(), [try c.input(0, "A"), try c.input(1, "B")])
        },
    ]
}
