// Layers with weights and products: convolutions, Gemm, MatMul, Einsum, Attention, RotaryEmbedding.

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
        OpEntry("Attention") { c in
            for key in ["left_window_size", "right_window_size"] where c.node.int(key, default: -1) != -1 {
                throw AimetError.unsupported("\(c.what): \(key) = \(c.node.int(key, default: -1)) (local-window attention, opset 25) is not supported")
            }
            return try attention(c)
        },
        OpEntry("RotaryEmbedding") { c in
            var operands = [try c.input(0, "X"), try c.input(1, "cos_cache"), try c.input(2, "sin_cache")]
            if let positions = c.optional(3) { operands.append(positions) }
            let kernel = RotaryEmbeddingKernel(what: c.what, numHeads: c.node.attributes["num_heads"].map { _ in c.node.int("num_heads", default: 0) },
                                               rotaryDim: c.node.attributes["rotary_embedding_dim"].map { _ in c.node.int("rotary_embedding_dim", default: 0) },
                                               interleaved: c.node.int("interleaved", default: 0) != 0, hasPositions: operands.count == 4,
                                               constantCaches: c.constant(1) != nil && c.constant(2) != nil)
            return c.step(kernel, operands)
        },
    ]

    /// The steps of an Attention node: Y, and each of present_key, present_value and
    /// qk_matmul_output that the graph reads.
    private static func attention(_ c: NodeContext) throws -> [CompiledStep] {
        var operands = [try c.input(0, "Q"), try c.input(1, "K"), try c.input(2, "V")]
        var mask: Int?, past: Int?, nonpad: Int?
        if let name = c.optional(3) {
            mask = operands.count
            operands.append(name)
        }
        switch (c.optional(4), c.optional(5)) {
        case (nil, nil): break
        case let (key?, value?):
            past = operands.count
            operands += [key, value]
        default: throw AimetError.invalid("\(c.what): past_key and past_value must be given together")
        }
        if let name = c.optional(6) {
            nonpad = operands.count
            operands.append(name)
        }
        let mode = c.node.int("qk_matmul_output_mode", default: 0)
        guard (0...3).contains(mode) else { throw AimetError.invalid("\(c.what): qk_matmul_output_mode \(mode) is not 0 to 3") }
        let softcap = c.node.float("softcap", default: 0)
        let scoresUsed = c.node.outputs.count > 3 && !c.node.outputs[3].isEmpty && c.used.contains(c.node.outputs[3])
        if scoresUsed && mode == 0 && softcap > 0 {
            throw AimetError.unsupported("\(c.what): qk_matmul_output_mode 0 with a softcap is not supported (the operator text gives the product before the softcap, the reference implementation the value after it)")
        }
        let precision = c.node.int("softmax_precision", default: 1)
        guard precision == 1 || precision == 11 else {
            throw AimetError.unsupported("\(c.what): softmax_precision \(precision) is not supported (the executor computes the softmax in float32; float and double are accepted)")
        }
        let scale: Float? = c.node.attributes["scale"] == nil ? nil : c.node.float("scale", default: 1)
        func kernel(_ output: AttentionKernel.Output) -> AttentionKernel {
            AttentionKernel(output: output, qHeads: c.node.attributes["q_num_heads"].map { _ in c.node.int("q_num_heads", default: 0) },
                            kvHeads: c.node.attributes["kv_num_heads"].map { _ in c.node.int("kv_num_heads", default: 0) },
                            scale: scale, softcap: softcap, isCausal: c.node.int("is_causal", default: 0) != 0, scoresMode: mode,
                            mask: mask, maskIsBool: c.type(3) == .bool, past: past, nonpad: nonpad,
                            constantMask: c.constant(3) != nil, constantNonpad: c.constant(6) != nil)
        }
        var steps = [CompiledStep(kernel: kernel(.y), operands: operands, output: c.node.output)]
        for (index, output) in [(1, AttentionKernel.Output.presentKey), (2, .presentValue), (3, .scores)]
        where index < c.node.outputs.count && !c.node.outputs[index].isEmpty && c.used.contains(c.node.outputs[index]) {
            steps.append(CompiledStep(kernel: kernel(output), operands: operands, output: c.node.outputs[index]))
        }
        return steps
    }

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
