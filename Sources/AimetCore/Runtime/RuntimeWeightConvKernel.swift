/// A Conv or ConvTranspose whose weight (operand 1) and optional bias
/// (operand 2) arrive at run time — graph inputs or computed values — instead
/// of as initializers. Each run prepares the constant-weight kernel
/// (`ConvKernel` / `ConvTransposeKernel`) from the operands' current values and
/// runs it on operand 0: the same arithmetic, at the cost of one copy of the
/// weights per run. Shape inference checks the weight and bias shapes the same
/// way with a zero weight of the operand's shape.
final class RuntimeWeightConvKernel: Kernel {
    enum Layer: Sendable { case conv, convTranspose }

    let node: Node
    let layer: Layer
    let hasBias: Bool

    init(node: Node, layer: Layer, hasBias: Bool) {
        self.node = node
        self.layer = layer
        self.hasBias = hasBias
    }

    /// The constant-weight kernel for these weight and bias values.
    private func prepared(weight: Tensor, bias: Tensor?) throws -> any Kernel {
        switch layer {
        case .conv: return try ConvKernel(node: node, weight: weight, bias: bias)
        case .convTranspose: return try ConvTransposeKernel(node: node, weight: weight, bias: bias)
        }
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let weightCount = try Shapes.count(shapes[1])
        let weight = Tensor(validShape: shapes[1], data: [Float](repeating: 0, count: weightCount))
        var bias: Tensor?
        if hasBias {
            guard shapes[2].count == 1 else { throw AimetError.shape("bias of shape \(shapes[2]) is not 1-D") }
            bias = Tensor(validShape: shapes[2], data: [Float](repeating: 0, count: shapes[2][0]))
        }
        return try prepared(weight: weight, bias: bias).outputShape([shapes[0]])
    }

    /// The weights index output channels, not images: a batch cannot be split.
    func isBatchSeparable(_ shapes: [[Int]]) -> Bool { false }

    func run(_ args: KernelArgs) throws {
        let weight = Tensor(validShape: args.shapes[1],
                            data: Array(UnsafeBufferPointer(start: args.inputs[1], count: args.shapes[1].reduce(1, *))))
        let bias = hasBias ? Tensor(validShape: args.shapes[2],
                                    data: Array(UnsafeBufferPointer(start: args.inputs[2], count: args.shapes[2].reduce(1, *)))) : nil
        var inner = args
        inner.inputs = [args.inputs[0]]
        inner.shapes = [args.shapes[0]]
        try prepared(weight: weight, bias: bias).run(inner)
    }
}
