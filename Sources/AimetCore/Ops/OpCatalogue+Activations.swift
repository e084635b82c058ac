// Activations: elementwise functions of one input (each with the function
// AdaRound's loss applies when the activation follows a layer), PRelu, Clip,
// and the row-wise Softmax, LogSoftmax, Hardmax.

extension OpCatalogue {
    static let activations: [OpEntry] = [
        OpEntry("Relu", equalization: .scaleEquivariant, activation: { _ in .elementwise(.relu) }) { c in
            // Relu-14 takes integers too: max(x, 0) on int64.
            try c.unary(ActivationKernel(.relu, type: c.type(0) == .int64 ? .int64 : .float32), "X")
        },
        elementwise("LeakyRelu") { c in .leakyRelu(c.node.float("alpha", default: 0.01)) },
        OpEntry("PRelu", equalization: .scaleEquivariant, activation: preluActivation) { c in
            c.step(BinaryKernel(.prelu), [try c.input(0, "X"), try c.input(1, "slope")])
        },
        OpEntry("Clip", activation: { c in (try? clipActivation(c)).map { .elementwise($0) } }, compile: compileClip),
        elementwise("Sigmoid") { _ in .sigmoid },
        elementwise("Tanh") { _ in .tanh },
        elementwise("HardSigmoid") { c in
            .hardSigmoid(alpha: c.node.float("alpha", default: 0.2), beta: c.node.float("beta", default: 0.5))
        },
        elementwise("HardSwish") { _ in .hardSwish },
        elementwise("Elu") { c in .elu(alpha: c.node.float("alpha", default: 1), gamma: 1) },
        // The defaults are ONNX's float32 constants.
        elementwise("Selu") { c in
            .elu(alpha: c.node.float("alpha", default: 1.673_263_192_176_818_847_656_25),
                 gamma: c.node.float("gamma", default: 1.050_701_022_148_132_324_218_75))
        },
        elementwise("Celu") { c in
            let alpha = c.node.float("alpha", default: 1)
            guard alpha != 0 else { throw AimetError.invalid("\(c.what): alpha is 0 (Celu divides by it)") }
            return .celu(alpha: alpha)
        },
        elementwise("Softplus") { _ in .softplus },
        elementwise("Softsign") { _ in .softsign },
        elementwise("ThresholdedRelu") { c in .thresholdedRelu(alpha: c.node.float("alpha", default: 1)) },
        elementwise("Gelu") { c in
            switch c.string("approximate", default: "none") {
            case "none": return .gelu(tanhApproximation: false)
            case "tanh": return .gelu(tanhApproximation: true)
            case let other: throw AimetError.invalid("\(c.what): approximate is '\(other)'; ONNX defines 'none' and 'tanh'")
            }
        },
        elementwise("Mish") { _ in .mish },
        elementwise("Swish") { c in .swish(alpha: c.node.float("alpha", default: 1)) },
        OpEntry("Softmax") { c in try c.unary(SoftmaxKernel(.softmax, node: c.node, opset: c.opset)) },
        OpEntry("LogSoftmax") { c in try c.unary(SoftmaxKernel(.logSoftmax, node: c.node, opset: c.opset)) },
        OpEntry("Hardmax") { c in try c.unary(SoftmaxKernel(.hardmax, node: c.node, opset: c.opset)) },
    ]

    /// The entry of an elementwise float32 activation of input 0: `function`
    /// reads the node's attributes (and throws for invalid ones); the same
    /// function runs in the executor and in AdaRound's loss.
    private static func elementwise(_ type: String,
                                    _ function: @escaping @Sendable (NodeContext) throws -> Activation) -> OpEntry {
        OpEntry(type, activation: { c in (try? function(c)).map { .elementwise($0) } }) { c in
            try c.unary(ActivationKernel(function(c)), "X")
        }
    }

    /// PReLU with a constant slope, one per channel (`[C]`, `[C, 1, 1]`) or one in all.
    private static let preluActivation: @Sendable (NodeContext) -> AdaRoundActivation? = { c in
        guard c.node.inputs.count == 2, let slope = try? c.floatConstant(1, "slope") else { return nil }
        guard slope.count == 1 || slope.shape.filter({ $0 != 1 }).count == 1 else { return nil }
        return .prelu(slope.data)
    }

    /// Clip: float32 with constant bounds is the `.clip` activation (fusable
    /// into a conv's epilogue); bounds computed at run time or int64 data run
    /// in `ClipKernel`, which reads the bounds from its operands.
    private static let compileClip: @Sendable (NodeContext) throws -> [CompiledStep] = { c in
        let x = try c.input(0, "input")
        let type = c.type(0)
        guard type == .float32 || type == .int64 else {
            throw AimetError.unsupported("\(c.what): the input is \(type); Clip computes on float32 and int64")
        }
        if type == .float32, let activation = try? clipActivation(c) {
            return c.step(ActivationKernel(activation), [x])
        }
        var operands = [x]
        var minOperand: Int?, maxOperand: Int?
        if let lo = c.optional(1) { minOperand = operands.count; operands.append(lo) }
        if let hi = c.optional(2) { maxOperand = operands.count; operands.append(hi) }
        return c.step(ClipKernel(type: type, minOperand: minOperand, maxOperand: maxOperand), operands)
    }

    /// The activation of a float32 Clip node with constant bounds: from inputs
    /// 1 and 2 (opset 11+, float scalars known at compile time; absent =
    /// unbounded) or from the `min` / `max` attributes (opset < 11, and graphs
    /// built in memory). Throws when a bound is computed at run time.
    static func clipActivation(_ c: NodeContext) throws -> Activation {
        func bound(_ index: Int, _ key: String, _ fallback: Float) throws -> Float {
            if let name = c.optional(index) {
                guard let value = c.constants[name], value.type == .float32 else {
                    throw AimetError.unsupported("\(c.what): the \(key) bound '\(name)' is not a float constant")
                }
                guard value.count == 1 else {
                    throw AimetError.invalid("\(c.what): the \(key) bound '\(name)' has \(value.count) values, expected 1")
                }
                return value.slots[0]
            }
            return c.node.attributes[key]?.floatValue ?? fallback
        }
        let lo = try bound(1, "min", -.greatestFiniteMagnitude)
        let hi = try bound(2, "max", .greatestFiniteMagnitude)
        // (An unbounded max is FLT_MAX, not ∞: Clip(0, —) maps +∞ to FLT_MAX, Relu does not.)
        return .clip(lo, hi)
    }
}
