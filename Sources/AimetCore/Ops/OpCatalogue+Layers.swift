// Layers with weights and products: convolutions, Gemm, MatMul, Einsum.

extension OpCatalogue {
    static let layers: [OpEntry] = [
        OpEntry("Conv", equalization: .weightLayer) { c in
            try convolution(c, .conv)
        },
        OpEntry("ConvTranspose", equalization: .weightLayer) { c in
            try convolution(c, .convTranspose)
        },
        OpEntry("Gemm", equalization: .weightLayer) { c in
            var operands = [try c.input(0, "A"), try c.input(1, "B")]
            if let bias = c.optional(2) { operands.append(bias) }
            return c.step(GemmKernel(node: c.node, constantB: c.constant(1) != nil, constantC: c.constant(2) != nil), operands)
        },
        OpEntry("MatMul") { c in
            c.step(MatMulKernel(constantA: c.constant(0) != nil, constantB: c.constant(1) != nil),
                   [try c.input(0, "A"), try c.input(1, "B")])
        },
        OpEntry("Einsum") { c in
            let operands = c.node.inputs.filter { !$0.isEmpty }
            let kernel = try EinsumKernel(equation: c.string("equation", default: ""), what: c.what,
                                          constantA: c.constant(0) != nil, constantB: c.constant(1) != nil, operands: operands.count)
            return c.step(kernel, operands)
        },
    ]

    /// A Conv or ConvTranspose: with constant weight and bias, the kernel with the
    /// weights prepared at compile time (and open to the conv fusions); else the
    /// kernel that reads them from its operands at each run.
    private static func convolution(_ c: NodeContext, _ layer: RuntimeWeightConvKernel.Layer) throws -> [CompiledStep] {
        let x = try c.input(0, "data"), w = try c.input(1, "weight"), b = c.optional(2)
        if let weight = c.constant(1)?.tensor, b == nil || c.constant(2) != nil {
            let bias = try b.map { _ in try c.floatConstant(2, "bias") }
            switch layer {
            case .conv: return c.step(try ConvKernel(node: c.node, weight: weight, bias: bias), [x])
            case .convTranspose: return c.step(try ConvTransposeKernel(node: c.node, weight: weight, bias: bias), [x])
            }
        }
        return c.step(RuntimeWeightConvKernel(node: c.node, layer: layer, hasBias: b != nil), [x, w] + (b.map { [$0] } ?? []))
    }
}
