/// An elementwise activation `y = act(x)` of one input (see `Activation`):
/// Relu, Clip with constant bounds, LeakyRelu, Sigmoid, Tanh, HardSigmoid,
/// HardSwish, Elu, Selu, Celu, Softplus, Softsign, ThresholdedRelu, Gelu,
/// Mish, Swish. Float32; Relu also on int64 (`max(x, 0)`, opset 14).
final class ActivationKernel: Kernel {
    let activation: Activation
    /// The element type of the input and the output.
    let type: ElementType

    init(_ activation: Activation, type: ElementType = .float32) {
        self.activation = activation
        self.type = type
    }

    func outputType(_ types: [ElementType]) throws -> ElementType {
        guard types[0] == type else {
            throw AimetError.unsupported("the input is \(types[0]), this step was compiled for \(type)")
        }
        return type
    }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] { shapes[0] }

    func run(_ args: KernelArgs) throws {
        let count = args.outputShape.reduce(1, *)
        let x = args.inputs[0], y = args.output
        let workers = count >= 1 << 15 ? args.workers : 1
        if type == .int64 {
            // Relu (the only activation compiled for int64).
            let xi = Int64Pointer(x), yi = Int64Pointer(y)
            Parallel.forEach(count, workers: workers) { range, _ in
                for i in range { yi[i] = Swift.max(xi[i], 0) }
            }
            return
        }
        Parallel.forEach(count, workers: workers) { range, _ in
            activation.apply(x + range.lowerBound, to: y + range.lowerBound, range.count)
        }
    }
}
