// Activations: elementwise functions of one input, each with the function
// AdaRound's loss applies when the activation follows a layer.

extension OpCatalogue {
    static let activations: [OpEntry] = [
        OpEntry("Relu", equalization: .scaleEquivariant, activation: { _ in .relu }) { c in
            try c.unary(ActivationKernel(.relu), "X")
        },
        OpEntry("LeakyRelu", equalization: .endsGroup,
                activation: { c in .leakyRelu(c.node.float("alpha", default: 0.01)) }) { c in
            try c.unary(ActivationKernel(.leakyRelu(c.node.float("alpha", default: 0.01))), "X")
        },
        OpEntry("PRelu", equalization: .scaleEquivariant, activation: preluActivation) { c in
            c.step(BinaryKernel(.prelu), [try c.input(0, "X"), try c.input(1, "slope")])
        },
        OpEntry("Clip", activation: { c in
            switch try? clipActivation(c) {
            case .relu?: return .relu
            case .clip(let lo, let hi)?: return .clip(lo, hi)
            default: return nil
            }
        }) { c in
            try c.unary(ActivationKernel(clipActivation(c)), "input")
        },
        OpEntry("Sigmoid", activation: { _ in .pointwise(.sigmoid) }) { c in
            try c.unary(ActivationKernel(.sigmoid), "X")
        },
        OpEntry("Softmax") { c in try c.unary(SoftmaxKernel(node: c.node, opset: c.opset)) },
    ]

    /// PReLU with a constant slope, one per channel (`[C]`, `[C, 1, 1]`) or one in all.
    private static let preluActivation: @Sendable (NodeContext) -> AdaRoundActivation? = { c in
        guard c.node.inputs.count == 2, let slope = try? c.floatConstant(1, "slope") else { return nil }
        guard slope.count == 1 || slope.shape.filter({ $0 != 1 }).count == 1 else { return nil }
        return .prelu(slope.data)
    }

    /// The activation of a Clip node: bounds from inputs 1 and 2 (opset 11+,
    /// float scalars known at compile time; empty = unbounded) or from the
    /// `min` / `max` attributes (opset < 11, and graphs built in memory).
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
        if lo == 0 && hi == .greatestFiniteMagnitude { return .relu }
        return .clip(lo, hi)
    }
}
